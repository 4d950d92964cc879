"""Soak: start/stop/restart cycles through one RunController, graceful and force stops
at random points (fixed seed), with the scripted model and the real local sandbox.

Afterwards: no hang, exactly one RunFinished per run, 0 kernel processes, 0 sandbox
temp folders, 0 leaked asyncio tasks, and file descriptors and RSS flat (slopes by
least squares are printed; run with `-s` to see them). 12 cycles by default, 100
with `pytest -m soak`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import time

import psutil
import pytest

from team import events as ev
from team.records import read_events
from team.run import RunController
from team.scripted import Call, Say, ScriptedChatCompletionClient, Turn

from .conftest import kernel_processes, sandbox_temp_dirs, wait_gone

SEED = 20240606


def talker(turn: Turn):
    """Streams forever (Planner talks, never says TERMINATE)."""
    return Say("word " * 400)


def busy(turn: Turn):
    if turn.agent == "Planner" and turn.index == 0:
        return Call("transfer_to_codeagent")
    if turn.agent == "CodeAgent":
        return Call("run_code", {"code": "import time\nprint('tick', flush=True)\nwhile True:\n    time.sleep(0.01)"})
    return Say("TERMINATE")


def flow(turn: Turn):
    if turn.agent == "Planner":
        return Call("transfer_to_codeagent", thought="go") if turn.index == 0 else Say("done. TERMINATE")
    if turn.agent == "CodeAgent" and turn.index == 0:
        return Call("run_code", {"code": "import random\nvalues = [random.random() for _ in range(1000)]\nprint(sum(values))"})
    if turn.agent == "CodeAgent" and turn.index == 1:
        return Call("write_file", {"file_path": "out.txt", "content": "ok"})
    return Call("transfer_to_planner")


SCRIPTS = {"talk": talker, "busy": busy, "flow": flow}


def slope(values: list[float]) -> float:
    """Least-squares slope of values against their index."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _consume(
    controller: RunController, run_id: str, seen: list[ev.Event], plan: dict
) -> tuple[bool, str | None]:
    """Read one run's events, acting (stop/force/restart) at the planned event, or after
    `max_quiet` seconds at the latest (a busy cell emits nothing more)."""
    state: dict = {"acted": False, "restarted": None}
    trigger = asyncio.Event()

    async def actor() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(trigger.wait(), plan["max_quiet"])
        state["acted"] = True  # set before any await: the reader knows we are acting
        if plan["delay"]:
            await asyncio.sleep(plan["delay"])
        if plan["action"] == "graceful":
            await controller.stop()
        elif plan["action"] == "force":
            await controller.stop(force=True)
        else:
            state["restarted"] = await controller.restart(keep_sandbox=plan["keep"])

    task = asyncio.create_task(actor()) if plan["action"] != "finish" else None
    async for event in controller.events():
        seen.append(event)
        assert event.run_id == run_id
        if len(seen) >= plan["trigger_at"]:
            trigger.set()
    if task is not None:
        if not state["acted"]:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return state["acted"], state["restarted"]


async def soak(settings, cycles: int) -> dict[str, float]:
    rng = random.Random(SEED)
    current = {"script": "flow"}
    controller = RunController(
        settings, model_factory=lambda: ScriptedChatCompletionClient(SCRIPTS[current["script"]], pace=0.002)
    )
    before_tasks = set(asyncio.all_tasks())
    # another module's sandbox fixture may live in this xdist worker: only ours count
    other_kernels = {p.pid for p in kernel_processes()}
    other_dirs = set(sandbox_temp_dirs())
    fds: list[int] = []
    rss: list[float] = []
    runs: dict[str, list[ev.RunFinished]] = {}
    actions: dict[str, int] = {}
    t0 = time.monotonic()
    try:
        await controller.warm_up()
        pending_run: str | None = None  # a run started by restart(), consumed next cycle
        for cycle in range(cycles):
            if pending_run is None:
                current["script"] = rng.choice(list(SCRIPTS))
                pending_run = controller.start(f"cycle {cycle}")
            run_id = pending_run
            pending_run = None
            script = current["script"]
            action = "finish" if script == "flow" and rng.random() < 0.5 else rng.choice(["graceful", "force", "restart"])
            actions[action] = actions.get(action, 0) + 1
            trigger_at = rng.randint(1, 12)  # the event count at which to act
            delay = rng.choice([0.0, 0.0, rng.uniform(0, 0.05)])
            keep = rng.random() < 0.6
            if action == "restart":
                current["script"] = rng.choice(list(SCRIPTS))
            seen: list[ev.Event] = []
            plan = {
                "action": action, "trigger_at": trigger_at, "delay": delay, "keep": keep,
                "max_quiet": rng.uniform(0.1, 0.6),
            }
            try:
                acted, restarted = await asyncio.wait_for(
                    _consume(controller, run_id, seen, plan), 30
                )  # a hang fails here
            except TimeoutError:
                raise AssertionError(
                    f"hang in cycle {cycle}: {script}/{plan}, state {controller.state}, "
                    f"events {[e.type for e in seen][-8:]}"
                ) from None
            pending_run = restarted
            if not acted and action == "restart":
                # the run ended before the trigger: restart the idle controller instead
                pending_run = await controller.restart(keep_sandbox=keep)
            done = [e for e in seen if isinstance(e, ev.RunFinished)]
            runs[run_id] = done
            assert len(done) == 1 and isinstance(seen[-1], ev.OutputsSaved), (cycle, action, [d.reason for d in done])
            if action == "finish":
                assert done[0].reason == "terminate", (cycle, done[0])
            elif acted:
                assert done[0].reason in ("stopped", "terminate"), (cycle, action, done[0])
            recorded = read_events(settings.runs_dir / run_id / "events.jsonl")
            assert [r["seq"] for r in recorded] == [e.seq for e in seen if not isinstance(e, ev.Notice)]
            if pending_run is None:
                await controller._await_drive()
            gc.collect()
            if os.environ.get("SOAK_DEBUG"):
                live = [t for t in asyncio.all_tasks() if "_run" in repr(t.get_coro()) and not t.done()]
                print(f"cycle {cycle} {script} {plan} acted={acted} reason={done[0].reason} live_runtime_tasks={len(live)} bg={len(controller._background)}")
            fds.append(fd_count())
            rss.append(psutil.Process().memory_info().rss / 2**20)
        if pending_run is not None:  # the last restart's run: stop it
            t1 = time.monotonic()
            await controller.stop(force=True)
            async for _ in controller.events():
                pass
            if os.environ.get("SOAK_DEBUG"):
                print("final stop", time.monotonic() - t1, controller._abandoned, len(controller._background), controller._drive_task)
    finally:
        t1 = time.monotonic()
        await controller.close()
        if os.environ.get("SOAK_DEBUG"):
            print("close", time.monotonic() - t1)
    elapsed = time.monotonic() - t0
    assert all(len(v) == 1 for v in runs.values())
    # nothing left behind
    assert wait_gone([p for p in kernel_processes() if p.pid not in other_kernels], 5) == []
    assert [d for d in sandbox_temp_dirs() if d not in other_dirs] == []
    await asyncio.sleep(0)
    if os.environ.get("SOAK_DEBUG"):
        for wait in (0, 1, 3):
            await asyncio.sleep(wait)
            live = [t for t in asyncio.all_tasks() - before_tasks if t is not asyncio.current_task() and not t.done()]
            print("after close +", wait, [repr(t.get_coro())[:70] for t in live])
    leaked = [t for t in asyncio.all_tasks() - before_tasks if t is not asyncio.current_task() and not t.done()]
    assert leaked == [], [repr(t.get_coro()) + repr(t.get_stack(limit=3)) for t in leaked]
    skip = min(3, len(fds) // 4)  # warm-up: imports, first kernel, caches
    result = {
        "cycles": cycles,
        "runs": len(runs),
        "seconds": round(elapsed, 1),
        "fd_slope": round(slope(fds[skip:]), 3),
        "rss_slope_mb": round(slope(rss[skip:]), 3),
        "fd_first_last": (fds[skip], fds[-1]),
        "rss_first_last_mb": (round(rss[skip]), round(rss[-1])),
        **{f"action_{k}": v for k, v in sorted(actions.items())},
    }
    print(f"\nSOAK {result}")
    return result


@pytest.mark.timeout(120)
async def test_soak_small(settings) -> None:
    result = await soak(settings, 12)
    assert result["fd_slope"] < 1.0
    assert result["fd_first_last"][1] - result["fd_first_last"][0] <= 10
    assert result["rss_slope_mb"] < 5.0


@pytest.mark.soak
@pytest.mark.timeout(900)
async def test_soak_100_cycles(settings) -> None:
    result = await soak(settings, 100)
    assert result["fd_slope"] < 0.1
    assert result["fd_first_last"][1] - result["fd_first_last"][0] <= 10
    assert result["rss_slope_mb"] < 1.0
