"""Benchmark: stop → RunFinished with a full sandbox (2,000 files, 500 MB) vs an empty one.

    python bench/bench_stop.py [--stops N] [--files N] [--mb N]

The real LocalSandbox and a scripted model that streams forever (no network). Each
cycle starts a run, calls `stop()` once the model streams, and times `stop()` called →
`RunFinished` received, then → `OutputsSaved` (the sandbox's files copied into the run
record, which RunFinished no longer waits for). The baseline is the same cycle with an
empty sandbox, measured in the same run. Goal: p95 < 1 s with the full sandbox.

Prints a table (see bench/common.py) and the BENCH_JSON line for `python -m bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Row, at_most, emit, info, median, percentile  # noqa: E402

STOP_GOAL = 1.0  # s, p95
CYCLE_TIMEOUT = 60.0

now = time.perf_counter

FILL = """
import os
os.makedirs('/home/user/bulk', exist_ok=True)
block = os.urandom(1 << 20)
size = {size}
for i in range({files}):
    d = f'/home/user/bulk/d{{i // 100:02d}}'
    os.makedirs(d, exist_ok=True)
    with open(f'{{d}}/f{{i:04d}}.bin', 'wb') as fh:
        left = size
        while left > 0:
            fh.write(block[: min(left, len(block))])
            left -= len(block)
print('filled')
"""


def make_settings(home: Path) -> Any:
    from team.config import Settings

    return Settings.load(env={"SBTEAM_HOME": str(home), "SBTEAM_SANDBOX": "local"}, env_file=None)


def talker(turn: Any) -> Any:
    from team.scripted import Say

    return Say("word " * 20000)  # streams for minutes at the pace below


async def stop_cycle(ctrl: Any) -> tuple[float, float]:
    """One run stopped while the model streams: (stop → RunFinished, stop → OutputsSaved), s."""
    from team import events as ev

    ctrl.start("talk")
    stopped_at = finished_at = saved_at = 0.0
    stopper: asyncio.Task[None] | None = None
    async for event in ctrl.events():
        if stopper is None and isinstance(event, ev.TokenDelta):
            stopped_at = now()
            stopper = asyncio.create_task(ctrl.stop())
        elif isinstance(event, ev.RunFinished):
            finished_at = now()
            if event.reason != "stopped":
                raise RuntimeError(f"the run ended with {event.reason!r}, not stopped")
        elif isinstance(event, ev.OutputsSaved):
            saved_at = now()
    if stopper is not None:
        await stopper
    return finished_at - stopped_at, saved_at - stopped_at


async def series(settings: Any, stops: int, files: int, mb: int) -> tuple[list[float], list[float], int]:
    """`stops` cycles on one sandbox holding `files` files of `mb` MB in all (0: empty)."""
    from team.run import RunController
    from team.scripted import ScriptedChatCompletionClient

    ctrl = RunController(settings, model_factory=lambda: ScriptedChatCompletionClient(talker, pace=0.01))
    finished: list[float] = []
    saved: list[float] = []
    copied = 0
    try:
        await ctrl.warm_up()
        if files:
            size = mb * (1 << 20) // files
            result = await ctrl.session.sandbox.run_code(FILL.format(files=files, size=size), timeout=300)
            if getattr(result, "error", None) is not None:
                raise RuntimeError(f"filling the sandbox failed: {result.error}")
        for _ in range(stops):
            done, kept = await asyncio.wait_for(stop_cycle(ctrl), CYCLE_TIMEOUT)
            finished.append(done)
            saved.append(kept)
            record = ctrl.record
            if record is not None:
                copied = max(copied, sum(1 for p in record.files_dir.rglob("*") if p.is_file()))
                shutil.rmtree(record.files_dir, ignore_errors=True)  # 500 MB per run is enough disk
    finally:
        await ctrl.close()
    return finished, saved, copied


async def measure(stops: int, files: int, mb: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="sbteam-bench-stop-") as tmp:
        settings = make_settings(Path(tmp) / "home")
        empty, empty_saved, _ = await series(settings, stops, 0, 0)
        full, full_saved, copied = await series(settings, stops, files, mb)
    base = percentile(empty, 95)
    ours = percentile(full, 95)
    return [
        at_most(f"stop → RunFinished p95, sandbox with {files:,} files / {mb} MB", ours, STOP_GOAL, "s",
                baseline=base,
                note=f"{stops} graceful stops while the model streams; baseline: the same with an empty "
                     f"sandbox (p95); medians {median(full):.3f} s vs {median(empty):.3f} s"),
        info("stop → OutputsSaved (files copied into the record), full sandbox, median", median(full_saved), "s",
             baseline=median(empty_saved),
             note=f"{copied:,} file(s) copied per run; RunFinished no longer waits for this"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stops", type=int, default=6, help="stops per sandbox (empty, full)")
    parser.add_argument("--files", type=int, default=2000, help="files in the full sandbox")
    parser.add_argument("--mb", type=int, default=500, help="their total size, MB")
    args = parser.parse_args()
    start = now()
    rows = asyncio.run(measure(args.stops, args.files, args.mb))
    emit(rows, f"bench_stop: stop latency with a full sandbox ({now() - start:.1f} s)")


if __name__ == "__main__":
    main()
