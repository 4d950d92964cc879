"""The run controller end to end: scripted model, real local sandbox."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

from team import events as ev
from team.demo import FILES
from team.prompts import example_task
from team.records import read_events
from team.run import RunController
from team.scripted import Call, Say, Turn
from tests.run_events import after_finish, collect, finished, scripted  # noqa: F401  (other tests import them from here too)


async def test_demo_runs_the_seed_flow_and_records_everything(settings):
    controller = RunController(settings, demo_pace=0)
    try:
        await controller.warm_up()
        run_id = controller.start(example_task("en"))
        events = await collect(controller)
        handoffs = [(e.source, e.target) for e in events if isinstance(e, ev.Handoff)]
        assert handoffs == [
            ("Planner", "CodeAgent"),
            ("CodeAgent", "Planner"),
            ("Planner", "AnalystAgent"),
            ("AnalystAgent", "Planner"),
        ]
        done = finished(events)
        assert len(done) == 1 and done[0].reason == "terminate"
        assert after_finish(events)[-1].files >= len(FILES)
        # the four files exist in the sandbox ...
        names = {e.path for e in await controller.list_files()}
        assert set(FILES) <= names
        stats = json.loads(await controller.read_file("data_stats.json"))
        assert set(stats) == {"mean", "std", "max", "min"}
        # ... and the analyst's text quotes the numbers it really read
        analysis = next(
            e.text for e in events if isinstance(e, ev.Message) and e.agent == "AnalystAgent" and "###" in e.text
        )
        assert f"{stats['mean']:.4f}" in analysis and f"{stats['std']:.4f}" in analysis
        assert re.findall(r"-?\d+\.\d+", analysis)  # real numbers, not placeholders
        # ... and in the run record, with every event that was shown
        record = settings.runs_dir / run_id
        assert all((record / "files" / name).is_file() for name in FILES)
        recorded = read_events(record / "events.jsonl")
        assert [r["seq"] for r in recorded] == [e.seq for e in events]
        assert [r["type"] for r in recorded] == [e.type for e in events]
        assert (record / "state.json").is_file()
        # tool calls and results pair up, and live stdout arrived
        calls = {e.call_id for e in events if isinstance(e, ev.ToolCall)}
        results = {e.call_id for e in events if isinstance(e, ev.ToolResult)}
        assert calls == results and len(calls) == 5
        assert any(isinstance(e, ev.SandboxOutput) and "data points: 100" in e.text for e in events)
        deltas = [e for e in events if isinstance(e, ev.TokenDelta)]
        messages = {e.message_id: e.text for e in events if isinstance(e, ev.Message)}
        joined: dict[str, str] = {}
        for d in deltas:
            joined[d.message_id] = joined.get(d.message_id, "") + d.text
        assert joined and all(messages[mid] == text for mid, text in joined.items())
    finally:
        await controller.close()


def ping_pong(turn: Turn):
    """A team that never finishes: Planner and CodeAgent hand over forever."""
    if turn.agent == "Planner":
        return Call("transfer_to_codeagent", thought="again")
    return Call("transfer_to_planner")


def busy_but_endless(turn: Turn):
    """Works (a tool call each time) but the Planner never says TERMINATE."""
    if turn.agent == "Planner":
        return Call("transfer_to_codeagent", thought="Check the files again.")
    if turn.index % 2 == 0:
        return Call("list_files", {"path": "/"})
    return Call("transfer_to_planner")


async def test_handing_over_without_progress_ends_as_a_loop(settings):
    controller = RunController(settings, model_factory=scripted(ping_pong))
    try:
        controller.start("loop forever")
        events = await collect(controller)
        done = finished(events)
        assert [d.reason for d in done] == ["loop"]
        assert "Planner handed the task to CodeAgent 4 times" in done[0].message
        assert len([e for e in events if isinstance(e, ev.Handoff)]) == 7
    finally:
        await controller.close()


async def test_never_terminating_model_ends_at_max_messages(settings):
    controller = RunController(settings, model_factory=scripted(busy_but_endless))
    try:
        controller.start("loop forever")
        events = await collect(controller)
        done = finished(events)
        assert [d.reason for d in done] == ["max_messages"]
        assert done[0].messages == 30
        progress = [e for e in events if isinstance(e, ev.Progress)]
        assert progress[-1].messages == 30 and progress[-1].max_messages == 30
    finally:
        await controller.close()


def sleeper(turn: Turn):
    if turn.agent == "Planner" and turn.index == 0:
        return Call("transfer_to_codeagent")
    if turn.agent == "CodeAgent" and turn.index == 0:
        return Call("run_code", {"code": "import time\nx = 41\ntime.sleep(30)"})
    if turn.agent == "CodeAgent":
        return Call("transfer_to_planner")
    return Say("TERMINATE")


async def test_timeout_ends_the_run_once_even_inside_a_long_cell(settings):
    controller = RunController(settings.with_(timeout=2.0), model_factory=scripted(sleeper))
    try:
        await controller.warm_up()
        t0 = time.monotonic()
        controller.start("sleep")
        events = await collect(controller)
        assert [d.reason for d in finished(events)] == ["timeout"]
        assert time.monotonic() - t0 < 8
        # the kernel was interrupted, not killed: state is still there
        execution = await controller.session.sandbox.run_code("x + 1")
        assert execution.text == "42"
    finally:
        await controller.close()


def slow_talker(turn: Turn):
    return Say("word " * 5000)


def busy_loop(turn: Turn):
    if turn.agent == "Planner" and turn.index == 0:
        return Call("transfer_to_codeagent")
    if turn.agent == "CodeAgent" and turn.index == 0:
        return Call("run_code", {"code": "y = 7\nprint('spinning', flush=True)\nwhile True:\n    pass"})
    if turn.agent == "CodeAgent":
        return Call("transfer_to_planner")
    return Say("TERMINATE")


async def _stop_at(
    controller: RunController, predicate, force: bool, ready: asyncio.Event | None = None
) -> tuple[list[ev.Event], float]:
    """Stop when `predicate(event)` (and `ready`, if given); returns events and stop latency."""
    stopped_at: list[float] = []

    async def stop():
        if ready is not None:
            await ready.wait()
        stopped_at.append(time.monotonic())
        await controller.stop(force=force)

    async def until(event):
        if not stopped_at and predicate(event):
            stopped_at.append(0.0)
            asyncio.get_running_loop().create_task(stop())

    events = await collect(controller, until)
    return events, time.monotonic() - stopped_at[-1]


@pytest.mark.parametrize("force", [False, True], ids=["graceful", "force"])
async def test_stop_while_the_model_streams(settings, force):
    controller = RunController(settings, model_factory=scripted(slow_talker, pace=0.01))
    try:
        await controller.warm_up()
        controller.start("talk")
        events, latency = await _stop_at(controller, lambda e: isinstance(e, ev.TokenDelta), force)
        assert [d.reason for d in finished(events)] == ["stopped"]
        assert latency < 3
        # a following run works
        controller._model_factory = scripted(lambda t: Say("done. TERMINATE"))
        controller.start("again")
        assert [d.reason for d in finished(await collect(controller))] == ["terminate"]
    finally:
        await controller.close()


@pytest.mark.parametrize("force", [False, True], ids=["graceful", "force"])
async def test_stop_while_code_runs_a_busy_loop(settings, force):
    controller = RunController(settings, model_factory=scripted(busy_loop))
    try:
        await controller.warm_up()
        controller.start("spin")
        events, latency = await _stop_at(
            controller, lambda e: isinstance(e, ev.SandboxOutput) and "spinning" in e.text, force
        )
        assert [d.reason for d in finished(events)] == ["stopped"]
        assert latency < 3
        execution = await controller.session.sandbox.run_code("y * 6")
        assert execution.text == "42"  # interrupted, state kept, kernel idle and usable
    finally:
        await controller.close()


def installer(turn: Turn):
    if turn.agent == "Planner" and turn.index == 0:
        return Call("transfer_to_codeagent")
    if turn.agent == "CodeAgent" and turn.index == 0:
        return Call("install_package", {"package_name": "slowpkg"})
    if turn.agent == "CodeAgent":
        return Call("transfer_to_planner")
    return Say("TERMINATE")


@pytest.mark.parametrize("force", [False, True], ids=["graceful", "force"])
async def test_stop_while_install_package_runs(settings, force):
    controller = RunController(settings, model_factory=scripted(installer))
    try:
        await controller.warm_up()
        sandbox = controller.session.sandbox
        started = asyncio.Event()
        cancelled = asyncio.Event()

        async def slow_install(name, timeout=600):
            # stands in for a pip download that takes minutes
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return True, "installed"

        sandbox.install_package = slow_install  # type: ignore[method-assign]
        controller.start("install")
        events, latency = await _stop_at(
            controller, lambda e: isinstance(e, ev.ToolCall), force, ready=started
        )
        assert [d.reason for d in finished(events)] == ["stopped"]
        assert latency < 3
    finally:
        await controller.close()


async def test_ten_stop_start_cycles_then_a_full_run(settings):
    controller = RunController(settings, model_factory=scripted(slow_talker, pace=0.005))
    try:
        await controller.warm_up()
        for i in range(10):
            controller.start(f"cycle {i}")
            events, _ = await _stop_at(controller, lambda e: isinstance(e, ev.TokenDelta), force=i % 2 == 1)
            assert [d.reason for d in finished(events)] == ["stopped"]
        controller._model_factory = scripted(lambda t: Say("TERMINATE"))
        controller.start("last")
        assert [d.reason for d in finished(await collect(controller))] == ["terminate"]
        assert not controller._background
    finally:
        await controller.close()


async def test_restart_runs_the_same_task_with_a_fresh_sandbox(settings):
    controller = RunController(settings, demo_pace=0)
    try:
        await controller.warm_up()
        first = controller.start(example_task("zh"))
        await collect(controller)
        assert "data_points.csv" in {e.path for e in await controller.list_files()}
        await controller.session.sandbox.files.write("/home/user/marker.txt", "x")
        second = await controller.restart()
        assert second != first and controller.task == example_task("zh")
        events = await collect(controller)
        assert [d.reason for d in finished(events)] == ["terminate"]
        names = {e.path for e in await controller.list_files()}
        assert "marker.txt" not in names and "data_points.csv" in names
    finally:
        await controller.close()


async def test_empty_task_and_double_start_are_refused(settings):
    controller = RunController(settings, model_factory=scripted(slow_talker, pace=0.01))
    try:
        with pytest.raises(ValueError, match="empty"):
            controller.start("   ")
        controller.start("talk")
        with pytest.raises(RuntimeError):
            controller.start("again")
        await controller.stop(force=True)
        assert [d.reason for d in finished(await collect(controller))] == ["stopped"]
    finally:
        await controller.close()


async def test_terminate_in_task_or_tool_output_does_not_end_the_run(settings):
    def echo(turn: Turn):
        if turn.agent == "Planner" and turn.index == 0:
            return Call("transfer_to_codeagent", thought="Handing over.")
        if turn.agent == "CodeAgent" and turn.index == 0:
            return Call("run_code", {"code": "print('TERMINATE')"})
        if turn.agent == "CodeAgent":
            return Call("transfer_to_planner", thought="CodeAgent says TERMINATE but is not the Planner")
        return Say("All done. TERMINATE")

    controller = RunController(settings, model_factory=scripted(echo))
    try:
        controller.start("Please print TERMINATE")
        events = await collect(controller)
        assert [d.reason for d in finished(events)] == ["terminate"]
        last_planner = [e for e in events if isinstance(e, ev.Message) and e.agent == "Planner"][-1]
        assert "TERMINATE" in last_planner.text and last_planner.text.startswith("All done")
    finally:
        await controller.close()


async def test_a_sandbox_that_does_not_start_ends_the_run_saying_so(settings):
    """Not a model error: the end line and a sandbox event name the sandbox and why."""
    from team.sandbox.base import SandboxError
    from team.session import CodeSession

    async def broken():
        raise SandboxError("bwrap: execvp /tmp/x/venv/bin/python: No such file or directory")

    controller = RunController(settings, session=CodeSession(settings, factory=broken), demo_pace=0)
    try:
        controller.start(example_task("en"))
        events = await collect(controller)
    finally:
        await controller.close()
    done = finished(events)[0]
    assert done.reason == "error"
    assert done.message == "the local sandbox did not start: bwrap: execvp /tmp/x/venv/bin/python: No such file or directory"
    status = [e for e in events if isinstance(e, ev.SandboxStatus) and e.state == "error"]
    assert status and "execvp" in status[0].detail


def states(events: list[ev.Event]) -> list[tuple[str, str]]:
    return [(e.state, e.reason) for e in events if isinstance(e, ev.RunStateChanged)]


async def test_run_state_is_told_on_every_transition_and_a_timeout_stop_shows_at_once(settings):
    from team.api import TRANSITIONS, Controller, RunState

    controller = RunController(settings.with_(timeout=2.0), model_factory=scripted(sleeper))
    assert isinstance(controller, Controller) and controller.state is RunState.IDLE
    try:
        controller.start("sleep")
        events = await collect(controller)
    finally:
        await controller.close()
    told = states(events)
    assert told == [("starting", ""), ("running", ""), ("stopping", "timeout"), ("finished", "timeout")]
    path = [RunState.IDLE] + [RunState(s) for s, _ in told]
    assert all(b in TRANSITIONS[a] for a, b in zip(path, path[1:], strict=False))
    # STOPPING is told when the watchdog fires, not when the run ends
    running, stopping = (next(e for e in events if isinstance(e, ev.RunStateChanged) and e.state == s)
                         for s in ("running", "stopping"))
    assert stopping.ts < finished(events)[0].ts and 1.9 < stopping.ts - running.ts < 3
    assert events[0].type == "run_started"  # RunStarted stays first


async def test_run_finished_comes_before_the_copy_and_a_second_stop_starts_no_second_copy(settings):
    controller = RunController(settings, model_factory=scripted(lambda t: Say("done. TERMINATE")))
    copies: list[float] = []
    release = asyncio.Event()
    original = controller.session.download_all

    async def slow_copy(dest, **kw):
        copies.append(time.monotonic())
        await release.wait()  # a sandbox full of files
        return await original(dest, **kw)

    controller.session.download_all = slow_copy  # type: ignore[method-assign]
    try:
        await controller.warm_up()
        controller.start("finish")
        seen: list[ev.Event] = []
        async for event in controller.events():
            seen.append(event)
            if isinstance(event, ev.RunFinished):
                assert controller.state == "finished"
                await controller.stop()  # the user presses Esc twice while the files are copied
                await controller.stop(force=True)
                await asyncio.sleep(0.3)
                assert len(copies) == 1 and not any(isinstance(e, ev.OutputsSaved) for e in seen)
                with pytest.raises(ValueError, match="empty"):
                    controller.follow_up(" ")
                release.set()
        assert isinstance(seen[-1], ev.OutputsSaved) and len(copies) == 1
        assert [r for r in states(seen)][-1] == ("finished", "terminate")
        # a follow-up asked right away waits for the save: one record, one numbering
        copies.clear()
        controller.follow_up("and again")
        again = await collect(controller)
        assert again[0].seq == seen[-1].seq + 1 and finished(again)[0].turn == 2
    finally:
        await controller.close()


async def test_close_during_the_copy_cancels_it_and_the_record_says_so(settings):
    controller = RunController(settings, model_factory=scripted(lambda t: Say("done. TERMINATE")))

    async def endless_copy(dest, **kw):
        await asyncio.sleep(3600)

    controller.session.download_all = endless_copy  # type: ignore[method-assign]
    run_id = controller.start("finish")
    async for event in controller.events():
        if isinstance(event, ev.RunFinished):
            break
    t0 = time.monotonic()
    await controller.close()
    assert time.monotonic() - t0 < 5
    meta = json.loads((settings.runs_dir / run_id / "run.json").read_text())
    assert any("cut short: the app closed" in p for p in meta["record_incomplete"])
    recorded = read_events(settings.runs_dir / run_id / "events.jsonl")
    assert recorded[-1]["type"] == "outputs_saved" and "cut short" in recorded[-1]["problem"]
