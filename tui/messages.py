"""The Textual messages the app's panes react to.

The run driver (tui/driver.py) turns each engine event (`team.events`, plain
dataclasses free of Textual) into one `EngineEvent` and posts it to every pane
that shows runs; each pane handles it with `@on(EngineEvent)` and picks the
event types it cares about, the way Toad routes its protocol updates. A new pane
is one handler, not another branch in the app. A pane may list the event types it
takes in `ENGINE_EVENTS` (the driver posts it nothing else); without it, it gets all.
"""

from __future__ import annotations

from textual.message import Message

from team.events import Event


class EngineEvent(Message, bubble=False):
    """One event of a run, delivered to one pane (it does not bubble: every pane gets its own)."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event
