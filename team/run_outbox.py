"""`Outbox`: where one turn's events go: scrubbed, stamped, recorded, queued for `events()`.

One per turn, so a turn's late events (an abandoned team winding down, the copy of
its files into the record after RunFinished) can never land in the next turn's
stream or numbering. A new turn's outbox holds its events until `open()`: the
previous turn may still be saving its outputs into the same record, and the new
turn's numbering continues where that one ended.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import Any

from . import events as ev
from .records import RunRecord
from .redact import StreamScrub, scrub


class Outbox:
    def __init__(self, run_id: str, turn: int, secrets: list[str]) -> None:
        self.run_id = run_id
        self.turn = turn
        self.secrets = secrets
        self.queue: asyncio.Queue[ev.Event] = asyncio.Queue()
        self.t0 = time.monotonic()
        self.seq = 0
        self.after: Outbox | None = None  # the turn whose numbering this one continues
        self.base = 0  # … or at least this (a recorded conversation's last seq)
        self.waits_for: asyncio.Task[None] | None = None  # the last turn saving its outputs
        self.record: RunRecord | None = None
        self.opened = False
        self.closed = False  # after RunFinished: the team's late events are dropped
        self._held: list[ev.Event] = []
        # open streams: (type, message id or call/stream) -> (scrubber, the stream's last event)
        self._streams: dict[tuple[str, str], tuple[StreamScrub, Any]] = {}

    def open(self, record: RunRecord | None) -> None:
        """Start recording into `record`, numbered after the turn this one continues (by
        now done with its outputs); what was held goes out first."""
        after, self.after = self.after, None
        self.record, self.opened = record, True
        self.seq = max(self.base, after.seq if after is not None else 0)
        held, self._held = self._held, []
        for event in held:
            self._put(event)

    def emit(self, event: ev.Event) -> None:
        """Scrub, stamp, record and queue one event (dropped once the turn is closed).

        Streamed text (TokenDelta per message, SandboxOutput per call and stream)
        goes through a StreamScrub of its own, so a key split across chunks never
        shows; any other event first flushes what the streams held back.
        """
        if self.closed:
            return
        if self.secrets and isinstance(event, (ev.TokenDelta, ev.SandboxOutput)):
            key = (event.type, getattr(event, "message_id", "") or f"{getattr(event, 'call_id', '')}/{getattr(event, 'stream', '')}")
            scrubber = self._streams[key][0] if key in self._streams else StreamScrub(self.secrets)
            self._streams[key] = (scrubber, event)
            text = scrubber.feed(event.text)
            if text:
                self._put(event if text is event.text else dataclasses.replace(event, text=text))
            return
        self._flush_streams()
        self._put(scrub_event(event, self.secrets))

    def close(self) -> None:
        """The turn's team is done: from now on only `emit_late` gets through."""
        self._flush_streams()
        self.closed = True

    def emit_late(self, event: ev.Event) -> None:
        """An event of the turn's own ending (saving its outputs), after `close`."""
        self._put(scrub_event(event, self.secrets))

    def _flush_streams(self) -> None:
        """Emit what each stream's scrubber held back (the stream ended, or something else came)."""
        streams, self._streams = self._streams, {}
        for scrubber, last in streams.values():
            rest = scrubber.flush()
            if rest:
                self._put(dataclasses.replace(last, text=rest))

    def _put(self, event: ev.Event) -> None:
        if not self.opened:
            self._held.append(event)
            return
        self.seq += 1
        stamped = dataclasses.replace(
            event, run_id=self.run_id, seq=self.seq, ts=round(time.monotonic() - self.t0, 3), turn=self.turn
        )
        if self.record is not None:
            problem = self.record.append(stamped)
            if problem:
                self.queue.put_nowait(
                    dataclasses.replace(ev.Notice(level="warning", text=problem), run_id=self.run_id,
                                        seq=self.seq, ts=stamped.ts, turn=self.turn)
                )
        self.queue.put_nowait(stamped)


def scrub_event(event: ev.Event, secrets: list[str]) -> ev.Event:
    """The event with every configured secret replaced by `***` (a model or an
    endpoint may echo the key): done once here for the screen, `--json` and the record."""
    if not secrets:
        return event
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, str):
            if any(s in value for s in secrets):
                changes[f.name] = scrub(value, secrets)
        elif isinstance(value, (dict, list)):
            text = json.dumps(value, ensure_ascii=False, default=str)
            if any(s in text for s in secrets):
                try:
                    changes[f.name] = json.loads(scrub(text, secrets))
                except ValueError:
                    changes[f.name] = type(value)()
    return dataclasses.replace(event, **changes) if changes else event
