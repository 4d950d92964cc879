"""Faults the app must survive: a killed kernel, a model endpoint that dies, an expired
E2B sandbox, the app itself SIGKILLed mid-run, and a full disk under the run records."""

from __future__ import annotations

import os

os.environ.setdefault("E2B_CONNECTION_RETRIES", "0")  # refused connections fail fast (read at import)

import asyncio  # noqa: E402
import errno  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import psutil  # noqa: E402
import pytest  # noqa: E402

from team import events as ev  # noqa: E402
from team import records  # noqa: E402
from team.records import read_events  # noqa: E402
from team.run import RunController  # noqa: E402
from team.scripted import Call  # noqa: E402
from team.session import CodeSession  # noqa: E402
from tests.openai_server import FakeOpenAIServer, die_mid_stream  # noqa: E402

from .conftest import (  # noqa: E402
    check_run,
    code_agent_does,
    collect,
    first_line,
    one_line,
    processes_mentioning,
    run_script,
    scripted,
    tool_results,
    wait_gone,
)

pytestmark = pytest.mark.timeout(60)


def _ipykernel_of(session: CodeSession) -> psutil.Process:
    """The real ipykernel process (inside bwrap it is a grandchild of the Popen'd bwrap)."""
    top = psutil.Process(session.sandbox.kernel_process().pid)  # type: ignore[attr-defined]
    for proc in [top, *top.children(recursive=True)]:
        cmd = proc.cmdline()
        if cmd and "bwrap" not in os.path.basename(cmd[0]) and "ipykernel_launcher" in cmd:
            return proc
    raise AssertionError("no ipykernel process found")


async def test_kernel_killed_mid_cell(settings) -> None:
    session = CodeSession(settings)
    killed: list[int] = []
    seen_by_model: list[str] = []
    script = code_agent_does(
        Call("run_code", {"code": "state = 1\nprint('busy', flush=True)\nimport time\ntime.sleep(30)"}),
        Call("run_code", {"code": "print(20 + 22)"}),
    )

    def responder(turn):
        if turn.agent == "CodeAgent" and turn.index == 1:
            seen_by_model.extend(turn.tool_results())
        return script(turn)

    async def kill_when_busy(event: ev.Event) -> None:
        if isinstance(event, ev.SandboxOutput) and "busy" in event.text and not killed:
            proc = _ipykernel_of(session)
            os.kill(proc.pid, signal.SIGKILL)
            killed.append(proc.pid)

    controller = RunController(settings, model_factory=scripted(responder), session=session)
    try:
        await controller.warm_up()
        t0 = time.monotonic()
        run_id = controller.start("survive a dead kernel")
        events = await asyncio.wait_for(collect(controller, kill_when_busy), 45)
        done = check_run(settings, run_id, events)
        assert killed and done.reason == "terminate"
        assert time.monotonic() - t0 < 20  # not the 30 s sleep
        died, after = tool_results(events)
        assert died.is_error and first_line(died.content).startswith("❌ KernelDied")
        assert "lost" in died.content
        assert seen_by_model and seen_by_model[-1] == died.content
        assert not after.is_error and "42" in after.content
        assert not psutil.pid_exists(killed[0]) or psutil.Process(killed[0]).status() == psutil.STATUS_ZOMBIE
    finally:
        await controller.close()


async def test_model_endpoint_dies_mid_stream(settings) -> None:
    with FakeOpenAIServer([die_mid_stream("I will now explain the plan in detail", after=3)]) as server:
        cfg = settings.with_(
            openai_api_key="sk-test-key", openai_api_base=server.base_url,
            openai_model="fake-model", model_retries=0, model_timeout=10,
        )
        controller = RunController(cfg)
        try:
            run_id = controller.start("explain")
            events = await asyncio.wait_for(collect(controller), 30)
            done = check_run(cfg, run_id, events)
            assert done.reason == "error"
            assert "dropped the connection" in one_line(done.message)
            assert server.base_url in done.message
            assert any(isinstance(e, ev.TokenDelta) for e in events)  # it was mid-answer
            # the app is usable: the next run goes through
            server.set_script(["All good now. TERMINATE"])
            run_id = controller.start("again")
            events = await asyncio.wait_for(collect(controller), 30)
            assert check_run(cfg, run_id, events).reason == "terminate"
            assert not controller._background
        finally:
            await controller.close()


# ---------------------------------------------------------------- E2B expiry (stand-in)


def _refusing_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_e2b_sandbox_expires_mid_run_and_is_recreated_once(settings, tmp_path, monkeypatch) -> None:
    from team.sandbox.e2b import E2BSandbox
    from tests.e2b_standin import E2BStandIn

    for name in ("E2B_API_KEY", "E2B_DOMAIN", "E2B_DEBUG", "E2B_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("E2B_API_URL", _refusing_url())
    monkeypatch.setenv("E2B_SANDBOX_URL", _refusing_url())
    async with E2BStandIn(tmp_path / "e2b") as standin:
        cfg = settings.with_(sandbox="e2b", e2b_api_key=standin.api_key)
        session = CodeSession(cfg, factory=lambda: E2BSandbox.create(**standin.sdk_kwargs()))
        script = code_agent_does(
            Call("run_code", {"code": "x = 41"}),
            Call("run_code", {"code": "print('after expiry')"}),
            Call("run_code", {"code": "print('and again')"}),
        )

        def responder(turn):
            if turn.agent == "CodeAgent" and turn.index == 1:
                standin.expire()  # E2B killed the idle sandbox between two tool calls
            return script(turn)

        try:
            events, done, _ = await run_script(cfg, session, responder)
            assert done.reason == "terminate"
            first, restarted, again = tool_results(events)
            assert not first.is_error
            assert restarted.is_error and "SandboxRestarted" in first_line(restarted.content)
            assert "recreated" in restarted.content and "lost" in restarted.content
            assert "after expiry" in restarted.content  # the cell was run again in the new one
            assert not again.is_error and "and again" in again.content
            assert len(standin.created) == 2  # recreated once, not per call
        finally:
            await session.close()


# ---------------------------------------------------------------- SIGKILL of the app


def _cli_command() -> list[str]:
    exe = shutil.which("sbteam-tui")
    return [exe] if exe else [sys.executable, "-m", "tui.cli"]


def test_app_sigkilled_mid_run_loses_nothing_and_leaves_no_kernel(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "E2B_", "SBTEAM_"))}
    env.update({"SBTEAM_HOME": str(home), "SBTEAM_SANDBOX": "local", "PYTHONUNBUFFERED": "1"})
    child = subprocess.Popen(
        [*_cli_command(), "run", "--demo", "--json", "分析100个随机数"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    printed: list[str] = []
    kernels: list[psutil.Process] = []
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            printed.append(line)
            event = json.loads(line)
            if event["type"] == "tool_call" and event["name"] == "run_code":
                # the kernel is busy with the seed's code right now
                kernels = [
                    p for p in psutil.Process(child.pid).children(recursive=True)
                    if "ipykernel" in " ".join(p.cmdline())
                ]
                child.send_signal(signal.SIGKILL)
                break
        assert child.wait(10) == -signal.SIGKILL, "the run ended before it could be killed"
        printed += child.stdout.readlines()  # lines already in the pipe were printed before the kill
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    assert kernels, "no kernel process was running"
    shown = [json.loads(line) for line in printed if line.strip()]
    assert len(shown) >= 5 and shown[-1]["type"] != "run_finished"
    [run_dir] = list((home / "runs").iterdir())
    recorded = read_events(run_dir / "events.jsonl")
    # everything shown before the kill is on disk, in order, byte for byte the same
    assert recorded[: len(shown)] == shown
    # the kernel died with the app (bwrap --die-with-parent / PR_SET_PDEATHSIG)
    assert wait_gone(kernels, 5) == []
    assert processes_mentioning(f"sbteam-sbx-{child.pid}-") == []


# ---------------------------------------------------------------- disk full


class _FullDisk:
    """A file that accepts `room` writes, then fails with ENOSPC like a full disk."""

    def __init__(self, fh, room: int) -> None:
        self._fh = fh
        self._room = room

    def write(self, data: str) -> int:
        if self._room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= 1
        return self._fh.write(data)

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


async def test_disk_full_for_run_records(settings, monkeypatch) -> None:
    real_open = open

    def full_open(path, mode="r", *args, **kw):
        fh = real_open(path, mode, *args, **kw)
        return _FullDisk(fh, room=4) if str(path).endswith("events.jsonl") else fh

    monkeypatch.setattr(records, "open", full_open, raising=False)
    session = CodeSession(settings)
    try:
        events, done, controller = await _run_without_record_check(
            settings, session, code_agent_does(Call("run_code", {"code": "print('still running')"}))
        )
        assert done.reason == "terminate"  # the run finished normally
        notices = [e for e in events if isinstance(e, ev.Notice)]
        assert len(notices) == 1 and notices[0].level == "warning"
        assert "No space left on device" in one_line(notices[0].text) and "in memory" in notices[0].text
        assert "still running" in tool_results(events)[0].content  # events kept flowing
        recorded = read_events(settings.runs_dir / controller.run_id / "events.jsonl")
        assert [r["seq"] for r in recorded] == [e.seq for e in events[: len(recorded)]]
        assert len(recorded) == 4
    finally:
        await session.close()


async def test_run_records_folder_not_writable(settings, tmp_path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where SBTEAM_HOME should be")
    cfg = settings.with_(home=blocker)
    session = CodeSession(cfg)
    try:
        events, done, _ = await _run_without_record_check(cfg, session, code_agent_does())
        assert done.reason == "terminate"
        notices = [e for e in events if isinstance(e, ev.Notice)]
        assert len(notices) == 1 and "cannot write the run record" in one_line(notices[0].text)
        assert "in memory" in notices[0].text
    finally:
        await session.close()


async def _run_without_record_check(settings, session, responder):
    controller = RunController(settings, model_factory=scripted(responder), session=session)
    controller.start("write while the disk is full")
    events = await asyncio.wait_for(collect(controller), 30)
    await controller._await_drive()
    done = [e for e in events if isinstance(e, ev.RunFinished)]
    assert len(done) == 1 and isinstance(events[-1], ev.OutputsSaved)  # the files are saved after RunFinished
    return events, done[0], controller
