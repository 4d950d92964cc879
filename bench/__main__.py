"""`python -m bench`: run every bench/bench_*.py in its own process, print one table.

    python -m bench [NAME ...] [--strict] [--timeout S] [--json]

Each benchmark runs as `python bench/bench_NAME.py` (a fresh interpreter, so one
file's imports never flatter another's start-up) and reports its rows on a last
stdout line `BENCH_JSON: [...]` (see bench/common.py). A file that prints no such
line still contributes the rows of a plain `name  value  ratio×  unit` table, as
information. Exit status is 0 unless `--strict` and some row FAILs (or a
benchmark crashed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from bench.common import MARKER, Row, table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUDGET = 60.0  # seconds per benchmark on 2 cores
# `measure   1.234   1.05x  unit` (the plain table bench_tui.py printed before adopting the protocol)
PLAIN_ROW = re.compile(r"^(?P<name>\S.*?)\s{2,}(?P<value>-?[\d,]+(?:\.\d+)?)\s{2,}(?P<ratio>[\d.]+)x\s{2,}(?P<unit>.*)$")


def discover(names: list[str]) -> list[Path]:
    files = sorted(HERE.glob("bench_*.py"))
    if names:
        wanted = {n.removeprefix("bench_").removesuffix(".py") for n in names}
        files = [f for f in files if f.stem.removeprefix("bench_") in wanted]
    return files


def parse(stdout: str, source: str) -> list[Row]:
    """Rows from the BENCH_JSON line, else from a plain table (information only)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            rows = [Row.from_dict(d) for d in json.loads(line[len(MARKER):])]
            break
    else:
        rows = []
        for line in stdout.splitlines():
            match = PLAIN_ROW.match(line.rstrip())
            if match:
                value = float(match["value"].replace(",", ""))
                ratio = float(match["ratio"])
                unit, _, note = match["unit"].partition(" ")
                rows.append(Row(match["name"], value, None, unit, ratio=ratio, note=note.strip(" ()")))
    for row in rows:
        row.source = source
    return rows


def run_one(path: Path, timeout: float) -> tuple[list[Row], float, str]:
    """Run one benchmark file; returns its rows, its duration and a problem line (or "")."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=ROOT,
                              env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return parse(out, path.name), time.monotonic() - start, f"killed after {timeout:.0f} s"
    took = time.monotonic() - start
    rows = parse(proc.stdout, path.name)
    problem = ""
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        problem = f"exit {proc.returncode}: {tail[:200]}"
    elif not rows:
        problem = "printed no rows (no BENCH_JSON line, no table)"
    return rows, took, problem


def _load() -> str:
    """The 1-minute load average: numbers taken on a busy machine are worse."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="only these benchmarks (e.g. run sandbox)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any row FAILs")
    parser.add_argument("--timeout", type=float, default=180.0, help="kill a benchmark after S seconds")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = parser.parse_args(argv)

    files = discover(args.names)
    if not files:
        print("no benchmarks matched", file=sys.stderr)
        return 2
    rows: list[Row] = []
    timings: list[str] = []
    load_before = _load()
    for path in files:
        print(f"running {path.name} …", file=sys.stderr, flush=True)
        found, took, problem = run_one(path, args.timeout)
        rows += found
        over = f" (over the {BUDGET:.0f} s budget)" if took > BUDGET else ""
        timings.append(f"{path.name}: {took:.1f} s{over}" + (f" — {problem}" if problem else ""))
        print(f"  {timings[-1]}", file=sys.stderr, flush=True)
        if problem:
            rows.append(Row(f"{path.name} ran", math.nan, unit="", goal="completes", passed=False,
                            note=problem, source=path.name))
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], ensure_ascii=False, indent=1))
    else:
        cores = os.cpu_count() or 0
        print(f"sbteam-tui benchmarks — Python {sys.version.split()[0]}, {cores} cores, "
              f"load average {load_before} before / {_load()} after, {time.strftime('%Y-%m-%d %H:%M')}\n")
        print(table(rows))
        print("\n" + "\n".join(timings))
    failed = [r for r in rows if r.passed is False]
    if not args.json:
        passed = sum(r.passed is True for r in rows)
        print(f"\n{passed} PASS, {len(failed)} FAIL, {sum(r.passed is None for r in rows)} info")
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
