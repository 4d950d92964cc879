"""What hostile sandbox content costs the host: memory for an output flood, memory
and disk for a huge sparse file.

    python bench/bench_host_cost.py [--flood SECONDS]

The baseline of each row is the amount of data the sandbox threw at the host in
the same run (MB printed; the file's size), so the ratio says how much of it the
host kept. Goals (issue 11): host RSS growth < 50 MB for a 10 s flood and for
reading a 4 GB sparse file. Follows the bench/common.py protocol.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402

from bench.common import Row, at_most, emit  # noqa: E402
from team.sandbox.limits import Limits  # noqa: E402
from team.sandbox.local import LocalSandbox  # noqa: E402
from team.session import CodeSession  # noqa: E402

GOAL_MB = 50.0
MB = 1 << 20


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / MB


def disk_mb(folder: Path) -> float:
    """What the files under `folder` really take on disk (sparse-aware)."""
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file()) / MB


async def measure(flood_s: float) -> list[Row]:
    box = await LocalSandbox.create(limits=replace(Limits.default(), file=0))
    session = CodeSession(factory=lambda: asyncio.sleep(0, box))
    await session.initialize()
    try:
        await box.run_code("1+1")  # everything imported and warm before measuring
        printed = [0]

        def count(msg: object) -> None:
            printed[0] += len(getattr(msg, "line", ""))

        before = rss_mb()
        code = f"import time\nend = time.time() + {flood_s}\nwhile time.time() < end:\n    print('x' * 200)"
        await box.run_code(code, on_stdout=count, timeout=flood_s + 60)
        flood_growth = rss_mb() - before

        await box.run_code("f = open('big.bin', 'wb'); f.truncate(4 << 30); f.close()")
        with tempfile.TemporaryDirectory() as dest:
            before = rss_mb()
            _head, size = await session.read_head("big.bin", 5_000_000)
            report = await session.download_all(Path(dest))
            sparse_growth = rss_mb() - before
            disk = await asyncio.to_thread(disk_mb, Path(dest))
    finally:
        await session.close()
    return [
        at_most(f"host RSS growth: {flood_s:g} s output flood", flood_growth, GOAL_MB, "MB",
                baseline=printed[0] / MB, goal=f"<{GOAL_MB:g} MB",
                note=f"baseline = MB the cell printed ({printed[0] / MB:,.0f} MB)"),
        at_most("host RSS growth: read + copy-out of a 4 GB sparse file", sparse_growth, GOAL_MB, "MB",
                baseline=size / MB, goal=f"<{GOAL_MB:g} MB",
                note=f"baseline = the file's size; copy-out wrote {disk:.1f} MB to disk, "
                     f"skipped: {'; '.join(why for _p, why in report.skipped) or 'nothing'}"),
    ]


def run(flood_s: float = 10.0) -> list[Row]:
    """Every row of this benchmark (runs its own event loop)."""
    return asyncio.run(measure(flood_s))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=float, default=10.0)
    args = parser.parse_args()
    emit(run(args.flood), f"bench_host_cost: python {sys.version.split()[0]}; flood {args.flood:g} s")
