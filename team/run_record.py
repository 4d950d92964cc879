"""Saving a turn's outputs into its run record: after `RunFinished`, reported by `OutputsSaved`.

Why after: copying every sandbox file into the record takes up to
`FINISH_COPY_TIMEOUT` seconds, and a stop must not wait for it. The team's state is
taken in memory before RunFinished (a follow-up needs it, and it is fast); this
step writes it as state.json, copies the files, says what the record lacks, emits
`OutputsSaved` and writes run.json, in that order and with no await between the
last three, so whoever waited for OutputsSaved finds run.json written.

It runs as one task the controller owns (a second stop never starts a second copy);
`close()` cancels it, and the record then says the copy was cut short.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import events as ev
from .api import EndReason, RunState
from .records import RunRecord, load_team_state, read_events, why
from .run_outbox import Outbox

FINISH_COPY_TIMEOUT = 20.0
STATE_WAIT = 5.0  # taking the team's state (in memory) before RunFinished


async def save_outputs(
    session: Any,
    record: RunRecord | None,
    outbox: Outbox,
    meta: dict[str, Any],
    *,
    state: dict[str, Any] | None = None,
    state_error: str | None = None,
) -> None:
    """Write state.json, copy the sandbox's files into `record`, emit OutputsSaved, write
    run.json (`meta` plus `files_skipped` and `record_incomplete`)."""
    files = 0
    skipped: list[dict[str, str]] = []
    try:
        if record is not None:
            if state_error is not None:
                record.problem(f"state.json not saved: the team's state could not be taken ({state_error})")
            elif state is not None:
                await asyncio.to_thread(record.write_json, "state.json", state)
            try:
                files, skipped = await asyncio.wait_for(_copy(session, record, outbox), FINISH_COPY_TIMEOUT)
            except TimeoutError:
                record.problem(f"saving the sandbox's files was cut short after {FINISH_COPY_TIMEOUT:.0f} s")
            except Exception as exc:
                record.problem(f"saving the sandbox's files failed ({why(exc)})")
    except asyncio.CancelledError:
        if record is not None:
            record.problem("saving the sandbox's files was cut short: the app closed while copying")
        _saved(record, outbox, meta, files, skipped)
        raise
    _saved(record, outbox, meta, files, skipped)


async def _copy(session: Any, record: RunRecord, outbox: Outbox) -> tuple[int, list[dict[str, str]]]:
    if not session.initialized:
        return 0, []
    report = await session.download_all(record.files_dir)
    limited = report.summary(failures=False)  # what limits left out; failures come below
    if limited:
        outbox.emit_late(ev.Notice(level="warning", text=f"run record: {limited}"))
    if report.incomplete:
        record.problem(report.incomplete)
    return len(report.saved), [{"path": p, "reason": r} for p, r in report.skipped]


def _saved(record: RunRecord | None, outbox: Outbox, meta: dict[str, Any], files: int,
           skipped: list[dict[str, str]]) -> None:
    """Say what the record lacks, emit OutputsSaved, write run.json (no await in between)."""
    if record is not None:
        record.sync()
        untold = record.untold()
        if untold:
            outbox.emit_late(ev.Notice(level="warning", text="run record incomplete: " + "; ".join(untold)))
    outbox.emit_late(ev.OutputsSaved(files=files, problem="; ".join(record.problems) if record else ""))
    if record is not None:
        record.finish({**meta, "files_skipped": skipped})


def recorded_conversation(folder: Path, run_id: str) -> dict[str, Any]:
    """What `continue_run` needs of a recorded conversation: its team state (ValueError saying
    what is missing), first task, turns, totals, data, last turn and seq, and its files."""
    state = load_team_state(folder, run_id)
    meta = _read_json(folder / "run.json")
    recorded = read_events(folder / "events.jsonl")
    return {
        "state": state,
        "task": meta.get("task") or next((e.get("task") for e in recorded if e.get("type") == "run_started"), ""),
        "turns": list(meta.get("turns") or []),
        "totals": dict(meta.get("totals") or {}),
        "data": list(meta.get("data") or []),
        "turn": max([int(e.get("turn", 1)) for e in recorded] or [1]),
        "seq": max([int(e.get("seq", 0)) for e in recorded] or [0]),
        "files": folder / "files",
    }


def _read_json(path: Path) -> dict[str, Any]:
    """A record's JSON file, or {} when it is missing or damaged (the caller says what it lacks)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def turn_entry(turn: int, task: str | None, finished: ev.RunFinished) -> dict[str, Any]:
    """One turn of the conversation as run.json lists it."""
    now = datetime.now()
    return {
        "turn": turn,
        "task": task,
        "reason": finished.reason,
        "message": finished.message,
        "started": datetime.fromtimestamp(now.timestamp() - finished.elapsed).isoformat(timespec="seconds"),
        "finished": now.isoformat(timespec="seconds"),
        "messages": finished.messages,
        "elapsed": finished.elapsed,
        "tokens_in": finished.tokens_in,
        "tokens_out": finished.tokens_out,
    }


class TurnEnd:
    """A mixin of `RunController`: the end of a turn (see the module docstring)."""

    session: Any
    record: RunRecord | None
    run_id: str | None
    task: str | None
    turn: int
    turn_task: str | None
    model_label: str
    agent_models: Any
    uploads: list[dict[str, Any]]
    last_finished: ev.RunFinished | None
    _outbox: Outbox
    _saving: asyncio.Task[None] | None
    _finishing: bool
    _finished: asyncio.Event
    _abandoned: bool
    _team: Any
    _tally: Any
    _meter: Any
    _state: dict[str, Any] | None
    _t0: float
    _turns: list[dict[str, Any]]
    _totals: dict[str, Any]

    if TYPE_CHECKING:  # provided by RunController
        async def _open_turn(self, outbox: Outbox) -> None: ...
        def _set_state(self, new: RunState, reason: str = "") -> None: ...
        @property
        def cost(self) -> float | None: ...
        @property
        def sandbox_kind(self) -> str: ...

    async def _finish(self, outbox: Outbox, reason: EndReason, message: str = "") -> None:
        """Take the team's state (in memory), emit the turn's one RunFinished and FINISHED,
        then start saving its outputs (`team.run_record`, reported by OutputsSaved)."""
        if self._finishing or outbox is not self._outbox:
            return
        self._finishing = True
        state: dict[str, Any] | None = None
        state_error: str | None = None
        team = self._team
        if team is not None and not self._abandoned:  # kept in memory for a follow-up turn
            try:
                state = self._state = await asyncio.wait_for(team.swarm.save_state(), STATE_WAIT)
            except Exception as exc:
                state_error = why(exc)
        tally = self._tally
        if self._meter is not None:  # [models #14] tokens of replies a stop cut short (no message carries them)
            for agent, (used_in, used_out) in self._meter.take_unreported().items():
                tally.add_usage(agent, used_in, used_out)
        finished = ev.RunFinished(
            reason=reason,
            message=message,
            messages=tally.messages,
            elapsed=round(time.monotonic() - self._t0, 2),
            tokens_in=tally.tokens_in,
            tokens_out=tally.tokens_out,
            cost=self.cost,
            agent_tokens={k: list(v) for k, v in tally.agent_tokens.items()},
        )
        self._turns = [t for t in self._turns if t.get("turn") != self.turn]
        self._turns.append(turn_entry(self.turn, self.turn_task or self.task, finished))
        for key in ("messages", "elapsed", "tokens_in", "tokens_out"):
            self._totals[key] = round(self._totals.get(key, 0) + getattr(finished, key), 2)
        outbox.emit(finished)
        self.last_finished = finished
        self._set_state(RunState.FINISHED, reason)
        outbox.close()
        self._finished.set()
        self._saving = asyncio.create_task(
            self._save_turn(outbox, self._run_meta(), state, state_error), name=f"save-{outbox.run_id}-{outbox.turn}"
        )

    async def _save_turn(self, outbox: Outbox, meta: dict[str, Any], state: dict[str, Any] | None,
                         state_error: str | None) -> None:
        """A turn stopped before it opened (the last turn still saving) reports at once and
        is recorded once that is done: nothing in `_finish` waits for a copy."""
        await self._open_turn(outbox)
        await save_outputs(self.session, outbox.record, outbox, meta, state=state, state_error=state_error)

    def _run_meta(self) -> dict[str, Any]:
        """run.json as of this turn's end: the conversation (first task, every turn, totals, data)."""
        first = self._turns[0] if self._turns else {}
        return {
            "run_id": self.run_id,
            "task": self.task,
            "model": self.model_label,
            "sandbox": self.sandbox_kind,
            # when the conversation began (this is written at a turn's end)
            "started": first.get("started")
            or datetime.fromtimestamp(time.time() - (time.monotonic() - self._t0)).isoformat(timespec="seconds"),
            "finished": datetime.now().isoformat(timespec="seconds"),
            "models": self.agent_models,  # [models #14] each agent's model
            "turns": list(self._turns),
            "totals": dict(self._totals),
            "data": list(self.uploads),
        }
