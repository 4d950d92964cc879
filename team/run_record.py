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
from datetime import datetime
from typing import Any

from . import events as ev
from .records import RunRecord, why
from .run_outbox import Outbox

FINISH_COPY_TIMEOUT = 20.0


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
    files, skipped = 0, []
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
