"""Helpers shared by the reliability suite: scripted runs, one-line checks, process probes."""

from __future__ import annotations

import asyncio
import glob
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil
import pytest_asyncio

from team import events as ev
from team.config import Settings
from team.records import read_events
from team.run import RunController
from team.scripted import Call, Reply, Say, Turn
from team.session import CodeSession
from tests.run_events import after_finish, collect, finished, scripted  # noqa: F401  (the suite imports them from here)


def one_line(text: str) -> str:
    """Assert `text` is a clear one-line message (no traceback, no newline)."""
    assert text and text.strip(), "empty message"
    assert "\n" not in text and "\r" not in text, f"not one line: {text!r}"
    assert "Traceback" not in text, text
    assert len(text) < 400, f"too long for one line: {text!r}"
    return text


def first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def code_agent_does(*calls: Reply, final: str = "All done. TERMINATE") -> Callable[[Turn], Reply]:
    """Planner hands over, the CodeAgent makes `calls` one per turn, hands back, Planner ends."""

    def responder(turn: Turn) -> Reply:
        if turn.agent == "Planner":
            return Call("transfer_to_codeagent", thought="over to you") if turn.index == 0 else Say(final)
        if turn.agent == "CodeAgent" and turn.index < len(calls):
            return calls[turn.index]
        return Call("transfer_to_planner")

    return responder


def tool_results(events: Sequence[ev.Event], name: str | None = None) -> list[ev.ToolResult]:
    return [e for e in events if isinstance(e, ev.ToolResult) and (name is None or e.name == name)]


def check_run(settings: Settings, run_id: str, events: Sequence[ev.Event]) -> ev.RunFinished:
    """Exactly one RunFinished, then only its FINISHED state, record notices and OutputsSaved
    (last); the record holds every shown event in order."""
    done = finished(events)
    assert len(done) == 1, [d.reason for d in done]
    after_finish(list(events))
    recorded = [r for r in read_events(settings.runs_dir / run_id / "events.jsonl") if r["type"] != "notice"]
    shown = [e for e in events if not isinstance(e, ev.Notice)]
    assert [r["seq"] for r in recorded] == [e.seq for e in shown]
    assert [r["type"] for r in recorded] == [e.type for e in shown]
    return done[0]


async def run_script(
    settings: Settings,
    session: CodeSession | None,
    responder: Callable[[Turn], Reply] | None = None,
    task: str = "a task",
    *,
    model_factory=None,
    timeout: float = 60,
) -> tuple[list[ev.Event], ev.RunFinished, RunController]:
    """One whole run on `session` (kept open for the next test); checks the invariants."""
    controller = RunController(
        settings, model_factory=model_factory or scripted(responder), session=session
    )
    run_id = controller.start(task)
    events = await asyncio.wait_for(collect(controller), timeout)
    await controller._await_drive()
    assert controller._drive_task is not None and controller._drive_task.done()
    assert not controller._background
    done = check_run(settings, run_id, events)
    return events, done, controller


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def shared_session():
    """One local sandbox for a whole module (a kernel start costs ~1.3 s)."""
    session = CodeSession(Settings.load(env={}, env_file=None))
    await session.initialize()
    yield session
    await session.close()


# -- processes and temp folders ------------------------------------------------------


def kernel_processes(root_pid: int | None = None) -> list[psutil.Process]:
    """Live ipykernel/bwrap processes below `root_pid` (default: this process)."""
    try:
        children = psutil.Process(root_pid or os.getpid()).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in children if _is_kernelish(p)]


def _is_kernelish(proc: psutil.Process) -> bool:
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmd = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "ipykernel" in cmd or "bwrap" in cmd or "sbteam-sbx-" in cmd


def processes_mentioning(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if marker in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def alive(procs: Sequence[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def wait_gone(procs: Sequence[psutil.Process], seconds: float) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    while True:
        left = alive(procs)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def sandbox_temp_dirs(pid: int | None = None) -> list[str]:
    pattern = f"sbteam-sbx-{pid or os.getpid()}-*"
    return glob.glob(os.path.join(tempfile.gettempdir(), pattern))


def host_root(session: CodeSession) -> Path:
    """The host folder that is /home/user for a local sandbox."""
    return Path(session.sandbox.root)  # type: ignore[attr-defined]
