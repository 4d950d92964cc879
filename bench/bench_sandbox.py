"""Benchmark LocalSandbox against a raw jupyter_client kernel, measured in the same run.

    python bench/bench_sandbox.py [--cold N] [--warm N]

Prints the cold start (create to ready) and the warm `1+1` round trip (median)
for both, the interrupt latency of a busy loop, and the ratios. The raw kernel is
the floor: what remains is the cost of isolation, setup code and our bookkeeping.
Then, in fresh processes (as the app starts a kernel right after its first paint):
the import of `team.sandbox.local`, import → kernel ready, and which heavy
libraries (the E2B SDK, AutoGen, Textual) that loaded: none is the goal.
Follows the bench/common.py protocol (`run()` → rows; a BENCH_JSON line last).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_client.manager import start_new_async_kernel  # noqa: E402

from bench.common import Row, at_most, emit, info, ratio_at_most  # noqa: E402
from team.sandbox.local import LocalSandbox  # noqa: E402

WARM_GOAL = 1.2  # warm run_code / raw jupyter_client
HEAVY = ("e2b", "e2b_code_interpreter", "autogen_agentchat", "autogen_core", "textual")
FRESH_START = f"""
import asyncio, json, sys, time
start = time.perf_counter()
from team.sandbox.local import LocalSandbox
imported = time.perf_counter() - start
async def main():
    sbx = await LocalSandbox.create()
    ready = time.perf_counter() - start
    await sbx.kill()
    return ready
ready = asyncio.run(main())
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))
print(json.dumps({{"import": imported, "ready": ready, "heavy": heavy}}))
"""


async def raw_cold() -> tuple[float, object, object]:
    start = time.perf_counter()
    km, kc = await start_new_async_kernel(kernel_name="python3")
    return time.perf_counter() - start, km, kc


async def raw_execute(kc: object) -> None:
    reply = await kc.execute_interactive(  # type: ignore[attr-defined]
        "1+1", store_history=False, timeout=10, output_hook=lambda msg: None
    )
    assert reply["content"]["status"] == "ok"


async def measure(cold_n: int, warm_n: int) -> list[Row]:
    local_cold: list[float] = []
    raw_cold_s: list[float] = []
    isolation = "?"
    for _ in range(cold_n):
        start = time.perf_counter()
        sbx = await LocalSandbox.create()
        local_cold.append(time.perf_counter() - start)
        isolation = sbx.isolation
        await sbx.kill()
        elapsed, km, kc = await raw_cold()
        raw_cold_s.append(elapsed)
        kc.stop_channels()  # type: ignore[attr-defined]
        await km.shutdown_kernel(now=True)  # type: ignore[attr-defined]

    sbx = await LocalSandbox.create()
    _, km, kc = await raw_cold()
    try:
        for _ in range(5):  # warm up both
            await sbx.run_code("1+1")
            await raw_execute(kc)
        local_warm, raw_warm = [], []
        for _ in range(warm_n):
            start = time.perf_counter()
            ex = await sbx.run_code("1+1")
            local_warm.append(time.perf_counter() - start)
            assert ex.text == "2"
            start = time.perf_counter()
            await raw_execute(kc)
            raw_warm.append(time.perf_counter() - start)

        interrupts = []
        for _ in range(5):
            task = asyncio.ensure_future(sbx.run_code("while True: pass"))
            await asyncio.sleep(0.2)
            start = time.perf_counter()
            await sbx.interrupt()
            await task
            interrupts.append(time.perf_counter() - start)
    finally:
        await sbx.kill()
        kc.stop_channels()  # type: ignore[attr-defined]
        await km.shutdown_kernel(now=True)  # type: ignore[attr-defined]

    fresh = [fresh_start() for _ in range(max(1, cold_n))]
    heavy = sorted({name for sample in fresh for name in sample["heavy"]})
    lc, rc = statistics.median(local_cold), statistics.median(raw_cold_s)
    lw, rw = statistics.median(local_warm), statistics.median(raw_warm)
    return [
        info("sandbox cold start: LocalSandbox vs raw jupyter_client", lc, "s", baseline=rc,
             note=f"create → ready, median of {cold_n}; isolation: {isolation}"),
        ratio_at_most("warm run_code `1+1`: LocalSandbox vs raw jupyter_client", lw * 1000, rw * 1000,
                      WARM_GOAL, "ms", note=f"median of {warm_n} round trips each, interleaved"),
        info("interrupt a busy cell → run_code returns", statistics.median(interrupts) * 1000, "ms",
             note="median of 5"),
        info("fresh process: import team.sandbox.local", statistics.median(s["import"] for s in fresh) * 1000,
             "ms", note=f"median of {len(fresh)}"),
        info("fresh process: import → local kernel ready", statistics.median(s["ready"] for s in fresh), "s",
             note=f"median of {len(fresh)}"),
        at_most("heavy libraries loaded when the local kernel is ready", len(heavy), 0, "",
                note=", ".join(heavy) or f"none of {', '.join(HEAVY)}"),
    ]


def fresh_start() -> dict:
    """Import the local sandbox and start a kernel in a new interpreter (this repo first on the path)."""
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", FRESH_START], capture_output=True, text=True, env=env,
                          timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(cold_n: int = 5, warm_n: int = 100) -> list[Row]:
    """Every row of this benchmark (runs its own event loop)."""
    return asyncio.run(measure(cold_n, warm_n))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=5)
    parser.add_argument("--warm", type=int, default=100)
    args = parser.parse_args()
    emit(run(args.cold, args.warm),
         f"bench_sandbox: python {sys.version.split()[0]}; {args.cold} cold starts, {args.warm} warm runs each")
