"""What the user's data costs: uploading a 100 MB CSV into the local sandbox, and
describing a 1,000,000-row CSV for the Planner.

    python bench/bench_data.py [--mb 100] [--rows 1000000]

Baselines, measured in the same run: a plain copy of the same file on the same
disk (`shutil.copyfile`) for the upload; pandas reading the same CSV on the host
for the description. Goals (issue 13): upload ≤ 1.5× the plain copy (through the
sandbox's no-follow file API, copied in the kernel); description < 3 s. The sha256
the record keeps is its own row: it is computed after the copy, while the
description runs, since hashing costs more than a kernel copy. Follows the bench/common.py protocol.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Row, at_most, emit, info, median, ratio_at_most  # noqa: E402
from team import tables, uploads  # noqa: E402
from team.sandbox.local import LocalSandbox  # noqa: E402
from team.session import CodeSession  # noqa: E402

UPLOAD_GOAL = 1.5
DESCRIBE_GOAL_S = 3.0


def make_csv(path: Path, *, mb: float = 0, rows: int = 0) -> int:
    """A realistic numeric/text CSV of about `mb` megabytes or exactly `rows` rows."""
    line = "2024-03-01,north,{i},{v:.3f},{w:.2f},promo\n"
    with path.open("w", encoding="utf-8") as out:
        out.write("date,region,id,value,price,tag\n")
        i = 0
        while (rows and i < rows) or (mb and out.tell() < mb * (1 << 20)):
            out.write("".join(line.format(i=i + k, v=(i + k) * 0.37 % 100, w=9.5 + k % 7) for k in range(1000)))
            i += 1000
    return i


async def timed_uploads(session: CodeSession, source: Path, scratch: Path, repeat: int = 7) -> tuple[float, float, float]:
    """Medians of (a plain copy, the copy into the sandbox, the sha256 that follows it).

    Interleaved, each to a new file, so both see the same page cache and writeback.
    """
    plain, copies, hashes = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await asyncio.to_thread(shutil.copyfile, source, scratch / "copy.csv")
        plain.append(time.perf_counter() - t0)
        (scratch / "copy.csv").unlink()
        plan = uploads.collect([source])
        t0 = time.perf_counter()
        copied = await uploads.copy_in(session, plan)
        t1 = time.perf_counter()
        await uploads.fingerprint(copied)
        copies.append(t1 - t0)
        hashes.append(time.perf_counter() - t1)
        await session.sandbox.files.remove(f"{uploads.DATA_DIR}/{source.name}")
    return median(plain), median(copies), median(hashes)


async def measure(mb: float, rows: int) -> list[Row]:
    box = await LocalSandbox.create()
    session = CodeSession(factory=lambda: asyncio.sleep(0, box))
    await session.initialize()
    try:
        await box.run_code("import pandas")  # warm, as after the app's warm-up
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            big = folder / "big.csv"
            await asyncio.to_thread(make_csv, big, mb=mb)
            size_mb = big.stat().st_size / (1 << 20)
            copy_s, upload_s, hash_s = await timed_uploads(session, big, folder)
            big.unlink()

            many = folder / "rows.csv"
            await asyncio.to_thread(make_csv, many, rows=rows)
            await uploads.upload(session, uploads.collect([many]))
            t0 = time.perf_counter()
            import pandas as pd

            await asyncio.to_thread(pd.read_csv, many)
            host_read_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            facts = await tables.describe(box, ["data/rows.csv"])
            describe_s = time.perf_counter() - t0
    finally:
        await session.close()
    counted = facts[0].get("rows") if facts else None
    return [
        ratio_at_most(f"upload a {size_mb:.0f} MB CSV into the local sandbox", upload_s, copy_s, UPLOAD_GOAL, "s",
                      note="baseline = shutil.copyfile of the same file on the same disk; "
                           "ours = until the agents can read it"),
        info("  its sha256 for the record (overlaps the description)", hash_s, "s", baseline=copy_s,
             note="computed after the copy, awaited before the next turn starts"),
        at_most(f"describe a {rows:,}-row CSV for the Planner", describe_s, DESCRIBE_GOAL_S, "s",
                baseline=host_read_s, goal=f"<{DESCRIBE_GOAL_S:g} s",
                note=f"baseline = pandas.read_csv of it on the host; rows counted: {counted}"),
    ]


def run(mb: float = 100, rows: int = 1_000_000) -> list[Row]:
    """Every row of this benchmark (runs its own event loop)."""
    return asyncio.run(measure(mb, rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    emit(run(args.mb, args.rows), f"bench_data: python {sys.version.split()[0]}; {args.mb:g} MB, {args.rows:,} rows")
