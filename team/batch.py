"""`sbteam-tui batch tasks.txt`: many tasks at once, each with its own sandbox and record.

One task per line (blank lines and lines starting with '#' are skipped). Each
task gets its own `RunController`, so its own sandbox (E2B: one cloud sandbox
each; local: one kernel each) and its own run record. Concurrency is capped:
local kernels by the CPU count (more would only thrash a small machine), E2B
by the process's sandbox cap (SBTEAM_E2B_CONCURRENCY; creations are paced and
retried in `team.sandbox.e2b`).

With `--out DIR` every finished task is a line of `DIR/results.jsonl` (written
as it finishes), plus `summary.json`: running the same command again skips the
tasks already finished (by a hash of the task text), and `--shard I/N` (or a
Kubernetes Indexed Job's variables) takes one slice of the file. `batch merge`
combines the shards' folders (`team.scale` has the shared machinery).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from .config import Settings
from .events import RunFinished
from .scale import (
    SUMMARY,
    Progress,
    ResultLog,
    Shard,
    Stopper,
    at_scale,
    merge_results,
    on_sigint,
    read_summary,
    result_dirs,
    run_pool,
    text_hash,
    text_keys,
    write_json,
    write_text,
)
from .scale import effective_concurrency as _capped

# the run ended on its own (a limit, the spend cap, a runaway model included): not re-run on resume
FINISHED = ("terminate", "max_messages", "timeout", "loop", "budget", "degenerate")
RUN_GRACE = 120.0  # seconds past SBTEAM_TIMEOUT before a task is cut off


@dataclass
class BatchResult:
    index: int
    task: str
    run_id: str = ""
    reason: str = "pending"
    message: str = ""
    elapsed: float = 0.0
    files: int = 0
    key: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None
    skipped: bool = False  # finished in an earlier run into the same folder

    @property
    def status(self) -> str:
        return "finished" if self.reason in FINISHED else "failed"


def read_tasks(path: Path) -> list[str]:
    text = Path(path).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def effective_concurrency(requested: int, sandbox: str) -> int:
    return _capped(requested, sandbox)[0]


async def run_batch(
    settings: Settings,
    tasks: list[str],
    *,
    concurrency: int = 2,
    controller_factory: Callable[[Settings], Any] | None = None,
    progress: TextIO | None = None,
    out: Path | None = None,
    shard: Shard | None = None,
    stop: asyncio.Event | None = None,
) -> list[BatchResult]:
    """Run every task (of this shard); returns one result per task, in input order.
    With `out`, tasks already finished there are skipped and each finished task is
    appended to `out/results.jsonl` as it finishes."""
    from .run import RunController

    settings = at_scale(settings)
    factory = controller_factory or (lambda s: RunController(s))
    keys = text_keys(tasks)
    results = [BatchResult(index=i + 1, task=t, key=k) for i, (t, k) in enumerate(zip(tasks, keys, strict=True))]
    if shard is not None:
        results = shard.take(results)
    log = ResultLog(out) if out is not None else None
    earlier = log.load() if log is not None else {}
    for result in results:
        record = earlier.get(result.key)
        if record is not None and record.get("status") == "finished" and record.get("task_hash") == text_hash(result.task):
            _restore(result, record)
    todo = [r for r in results if not r.skipped]
    limit, why = _capped(concurrency, settings.sandbox)
    board = Progress(len(results), progress, what="task", score_label="terminated")
    board.done = board.skipped = len(results) - len(todo)
    stream = board.out
    head = f"batch: {len(results)} task(s)"
    if shard is not None:
        head += f" (shard {shard.label} of {len(tasks)})"
    head += f", {limit} at a time, sandbox {settings.sandbox}" + (f" ({why})" if why else "")
    stream.write(head + (f", results in {out}" if out is not None else "") + "\n")
    if board.done:
        stream.write(f"batch: {board.done} task(s) already finished in {out}: skipped (resume)\n")
    stream.flush()
    stopper = Stopper(stop)
    stop = stopper.event
    t0 = time.monotonic()

    async def one(result: BatchResult) -> None:
        if stop.is_set():
            return
        board.started()
        controller = factory(settings)
        stopper.active.add(controller)
        t_start = time.monotonic()
        try:
            result.reason = "running"
            result.run_id = controller.start(result.task)

            async def drain() -> None:
                async for event in controller.events():
                    if isinstance(event, RunFinished):
                        result.reason, result.message = event.reason, event.message
                        result.tokens_in, result.tokens_out, result.cost = event.tokens_in, event.tokens_out, event.cost

            try:
                await asyncio.wait_for(drain(), settings.timeout + RUN_GRACE)
            except TimeoutError:
                result.reason, result.message = "error", f"did not finish within {settings.timeout + RUN_GRACE:.0f} s"
            if stop.is_set() and result.reason == "running":
                result.reason = "stopped"
            saved = getattr(controller, "outputs_saved", None)
            if saved is not None:  # the record's copy of the files follows RunFinished
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(saved(), RUN_GRACE)
            result.files = len([f for f in await controller.list_files() if not f.is_dir])
        except Exception as exc:  # one bad task must not sink the batch
            result.reason, result.message = "error", str(exc).splitlines()[0][:200] if str(exc) else repr(exc)
        finally:
            result.elapsed = time.monotonic() - t_start
            with contextlib.suppress(Exception):
                await asyncio.shield(controller.close())
            stopper.active.discard(controller)
            if log is not None:
                log.append(_record(result))
            line = f"#{result.index} {result.reason.upper()} in {result.elapsed:.1f} s — {_short(result.task)}"
            if result.status == "failed" and result.message:
                line += f" — {_short(result.message, 160)}"
            board.finished(line, good=result.reason == "terminate" if result.status == "finished" else None,
                           failed=result.status == "failed")

    with on_sigint(stopper):
        await run_pool(todo, one, limit, stop)
    board.close()
    if out is not None:
        write_batch_summary(out, results, shard=shard, planned=len(tasks), wall=time.monotonic() - t0, sandbox=settings.sandbox)
    return results


def _record(result: BatchResult) -> dict[str, Any]:
    data = asdict(result)
    data.pop("skipped")
    data.update(status=result.status, task_hash=text_hash(result.task), elapsed=round(result.elapsed, 3),
                finished=datetime.now().isoformat(timespec="milliseconds"))
    return data


def _restore(result: BatchResult, record: dict[str, Any]) -> None:
    for name in ("run_id", "reason", "message", "elapsed", "files", "tokens_in", "tokens_out", "cost"):
        if name in record:
            setattr(result, name, record[name])
    result.skipped = True


def _short(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def batch_summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    reasons = Counter(str(r.get("reason")) for r in records)
    costs = [r.get("cost") for r in records]
    known = [c for c in costs if isinstance(c, (int, float))]
    return {
        "tasks_with_results": len(records),
        "finished": sum(1 for r in records if r.get("status") == "finished"),
        "failed": sum(1 for r in records if r.get("status") != "finished"),
        "reasons": dict(sorted(reasons.items())),
        "tokens_in": sum(int(r.get("tokens_in") or 0) for r in records),
        "tokens_out": sum(int(r.get("tokens_out") or 0) for r in records),
        "cost": round(sum(known), 6) if costs and len(known) == len(costs) else None,
        "seconds": round(sum(float(r.get("elapsed") or 0) for r in records), 2),
        "failures": [{"index": r.get("index"), "task": _short(str(r.get("task", "")), 80), "reason": r.get("reason"),
                      "message": r.get("message", "")} for r in records if r.get("status") != "finished"],
    }


def write_batch_summary(out: Path, results: Sequence[BatchResult], *, shard: Shard | None, planned: int,
                        wall: float | None = None, sandbox: str = "") -> dict[str, Any]:
    records = [_record(r) for r in results if r.reason not in ("pending", "running")]
    summary = {"generated": datetime.now().isoformat(timespec="seconds"), "shard": shard.label if shard else None,
               "tasks_planned": len(results), "tasks_in_plan": planned, "sandbox": sandbox, **batch_summary(records)}
    if wall is not None:
        summary["wall_seconds"] = round(wall, 2)
    write_json(out / SUMMARY, summary)
    return summary


def merge_batches(folders: Sequence[Path], out: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """`batch merge`: the shards' results in one results.jsonl and summary.json in `out`."""
    from .events import json_text

    dirs = result_dirs(folders)
    merged, problems = merge_results(dirs)
    records = sorted(merged.values(), key=lambda r: int(r.get("index") or 0))
    first = next((s for s in (read_summary(d) for d in dirs) if s), {})
    planned = first.get("tasks_in_plan")
    summary = {"generated": datetime.now().isoformat(timespec="seconds"), "shard": None,
               "merged_from": [str(d) for d in dirs], "tasks_in_plan": planned, **batch_summary(records)}
    if isinstance(planned, int) and planned > len(records):
        problems.append(f"{planned - len(records)} of {planned} task(s) have no result")
    summary["problems"] = problems
    write_text(ResultLog(out).path, "".join(json_text(r) + "\n" for r in records))
    write_json(out / SUMMARY, summary)
    return summary, records, problems


def summary_table(results: list[BatchResult]) -> str:
    rows = [("#", "reason", "seconds", "files", "run id", "task")]
    rows += [
        (str(r.index), r.reason + (" (earlier)" if r.skipped else ""), f"{r.elapsed:.1f}", str(r.files),
         r.run_id or "—", _short(r.task, 40))
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    ok = sum(r.reason == "terminate" for r in results)
    lines.append(f"\n{ok}/{len(results)} finished with TERMINATE")
    return "\n".join(lines)
