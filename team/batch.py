"""`sbteam-tui batch tasks.txt`: many tasks at once, each with its own sandbox and record.

One task per line (blank lines and lines starting with '#' are skipped). Each
task gets its own `RunController`, so its own sandbox (E2B: one cloud sandbox
each; local: one kernel each) and its own run record. Concurrency is capped:
local kernels by the CPU count (more would only thrash a small machine),
E2B by what the user asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .config import Settings
from .events import RunFinished


@dataclass
class BatchResult:
    index: int
    task: str
    run_id: str = ""
    reason: str = "pending"
    message: str = ""
    elapsed: float = 0.0
    files: int = 0


def read_tasks(path: Path) -> list[str]:
    text = Path(path).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def effective_concurrency(requested: int, sandbox: str) -> int:
    requested = max(1, requested)
    if sandbox == "local":
        return min(requested, os.cpu_count() or 1)
    return requested


async def run_batch(
    settings: Settings,
    tasks: list[str],
    *,
    concurrency: int = 2,
    controller_factory: Callable[[Settings], Any] | None = None,
    progress: TextIO | None = None,
) -> list[BatchResult]:
    """Run every task; returns one result per task, in input order."""
    from .run import RunController

    factory = controller_factory or (lambda s: RunController(s))
    limit = effective_concurrency(concurrency, settings.sandbox)
    gate = asyncio.Semaphore(limit)
    results = [BatchResult(index=i + 1, task=t) for i, t in enumerate(tasks)]
    out = progress or sys.stderr
    done = 0

    def report(result: BatchResult) -> None:
        out.write(
            f"[{done}/{len(tasks)}] #{result.index} {result.reason.upper()} in {result.elapsed:.1f} s — "
            f"{_short(result.task)}\n"
        )
        out.flush()

    async def one(result: BatchResult) -> None:
        nonlocal done
        async with gate:
            controller = factory(settings)
            t0 = time.monotonic()
            try:
                result.reason = "running"
                result.run_id = controller.start(result.task)
                async for event in controller.events():
                    if isinstance(event, RunFinished):
                        result.reason, result.message = event.reason, event.message
                result.files = len([f for f in await controller.list_files() if not f.is_dir])
            except Exception as exc:  # one bad task must not sink the batch
                result.reason, result.message = "error", str(exc).splitlines()[0][:200] if str(exc) else repr(exc)
            finally:
                result.elapsed = time.monotonic() - t0
                with contextlib.suppress(Exception):
                    await controller.close()
                done += 1
                report(result)

    out.write(f"batch: {len(tasks)} task(s), {limit} at a time, sandbox {settings.sandbox}\n")
    await asyncio.gather(*(one(r) for r in results))
    return results


def _short(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def summary_table(results: list[BatchResult]) -> str:
    rows = [("#", "reason", "seconds", "files", "run id", "task")]
    rows += [
        (str(r.index), r.reason, f"{r.elapsed:.1f}", str(r.files), r.run_id or "—", _short(r.task, 40))
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    ok = sum(r.reason == "terminate" for r in results)
    lines.append(f"\n{ok}/{len(results)} finished with TERMINATE")
    return "\n".join(lines)
