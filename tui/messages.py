"""The Textual messages the app's panes react to.

The run driver (tui/driver.py) turns each engine event (`team.events`, plain
dataclasses free of Textual) into one `EngineEvent` and posts it to every pane
that shows runs; each pane handles it with `@on(EngineEvent)` and picks the
event types it cares about, the way Toad routes its protocol updates. A new pane
is one handler, not another branch in the app. A pane may list the event types it
takes in `ENGINE_EVENTS`, by their `type` names (the driver posts it nothing else); without it,
it gets all. Names, not classes: the app paints before `team.events` is imported (its
frozen dataclasses cost ~15 ms); a handler imports the module when its first event arrives.

An event of a run the user has since left (Ctrl+N, a restart) can still be queued at a
pane; it is dropped for every pane at once as it is taken from the queue (`no_dispatch`,
which Textual reads then), so no handler has to check the run id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from team.events import Event


class EngineEvent(Message, bubble=False, no_dispatch=None):  # None: `no_dispatch` below is kept
    """One event of a run, delivered to one pane (it does not bubble: every pane gets its own).

    `current_run` gives the run the app shows now; an event of another run is not handled."""

    def __init__(self, event: Event, current_run: Callable[[], str | None] | None = None) -> None:
        super().__init__()
        self.event = event
        self._current_run = current_run

    @property
    def stale(self) -> bool:
        """Of a run the app no longer shows (events without a run id never are)."""
        return bool(self._current_run and self.event.run_id and self.event.run_id != self._current_run())

    @property
    def no_dispatch(self) -> bool:  # type: ignore[override]  # Textual's flag, read as it leaves the queue
        return self.stale
