"""The app with the real engine in DEMO mode: scripted agents, real code in the
local sandbox. One Pilot run driven by keys (then Ctrl+R, and Ctrl+Q during the second run:
no kernel may be left), and one `sbteam-tui --demo` in tmux."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from textual.widgets import DataTable

from team.config import Settings
from tests.tui.conftest import SIZE, wait_for
from tui.app import SbteamApp
from tui.widgets.transcript_items import MessageView

ENGINE = all(importlib.util.find_spec(name) for name in ("team.run", "team.demo"))  # no import at collection

pytestmark = pytest.mark.skipif(not ENGINE, reason="team.run / team.demo not importable")

DEMO_FILES = ("data_points.csv", "data_stats.json", "data_histogram.png", "outlier_analysis.json")


def _kernels(ignore: frozenset[int] = frozenset()) -> list[psutil.Process]:
    """Kernel processes of this test process, except those in `ignore` (already running
    when the test began: another module's sandbox fixture in the same xdist worker)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if ("ipykernel" in cmd or "bwrap" in cmd) and child.pid not in ignore:
            found.append(child)
    return found


def _no_kernels_within(seconds: float, ignore: frozenset[int]) -> bool:
    deadline = time.monotonic() + seconds
    while _kernels(ignore):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


async def test_demo_run_by_keys(tmp_path: Path, tmux_demo):
    settings = Settings(demo=True, home=tmp_path / "home", sandbox="local")
    others = frozenset(p.pid for p in _kernels())
    app = SbteamApp(settings, output_dir=tmp_path / "out", cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ctrl is not None, limit=30)
        await pilot.press("enter")  # the editor is pre-filled with the seed's example task
        await wait_for(pilot, lambda: app.run_state == "finished", limit=90)
        await app.transcript.flush_now()
        assert "finished: TERMINATE" in app.status.plain, app.status.plain
        assert "DEMO" in app.status.plain
        assert "Sandbox limits: memory=" in str(app.status.tooltip)
        agents = {w.agent for w in app.transcript.items if isinstance(w, MessageView)}
        assert {"Planner", "CodeAgent", "AnalystAgent"} <= agents
        handoffs = [e for e in app.transcript.record if e.type == "handoff"]
        assert {(h.source, h.target) for h in handoffs} >= {("Planner", "CodeAgent")}
        assert any(h.target == "AnalystAgent" for h in handoffs)
        await wait_for(pilot, lambda: set(DEMO_FILES) <= set(app.file_tree.entries), limit=10)
        assert _kernels(others), "the local sandbox should be running a kernel"

        def select(path: str) -> None:
            app.file_tree.select_path(path)

        select("data_points.csv")
        await wait_for(pilot, lambda: app.preview.path == "data_points.csv" and app.preview.query(DataTable))
        assert app.preview.query_one(DataTable).row_count >= 99

        select("data_stats.json")
        await wait_for(pilot, lambda: app.preview.path == "data_stats.json")
        code = app.preview.query_one("#preview-body").children[0].content.code
        assert '"mean"' in code and any(ch.isdigit() for ch in code)

        select("data_histogram.png")
        await wait_for(pilot, lambda: app.preview.path == "data_histogram.png")
        from textual_image.widget import HalfcellImage

        await wait_for(pilot, lambda: bool(app.preview.query(HalfcellImage)))

        if os.environ.get("SBTEAM_SCREENSHOT"):  # README picture: SBTEAM_SCREENSHOT=path.svg pytest -k by_keys
            app.clear_notifications()
            await pilot.pause()
            app.save_screenshot(os.environ["SBTEAM_SCREENSHOT"])
        # Ctrl+R: the same task again with a fresh team; Ctrl+Q while its code runs
        first = app.run_id
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.run_id not in (None, first), limit=30)
        second = app.run_id
        await wait_for(
            pilot,
            lambda: any(e.type == "tool_call" and e.run_id == second for e in app.transcript.record),
            limit=60,
        )
        assert app.run_state == "running" and _kernels(others)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: not app.is_running, limit=20)
    assert await asyncio.to_thread(_no_kernels_within, 10.0, others), "Ctrl+Q left a kernel behind"


def _tmux(*args: str, socket: str) -> str:
    return subprocess.run(
        ["tmux", "-L", socket, *args], capture_output=True, text=True, timeout=10
    ).stdout


class TmuxDemo:
    """`sbteam-tui --demo` in a detached tmux session, driven with send-keys.

    Started by a module fixture *before* the Pilot test so the two DEMO runs
    overlap (the TUI test budget is small); a thread types Enter as soon as
    the app shows "idle", exactly as a person would.
    """

    def __init__(self, folder: Path) -> None:
        exe = shutil.which("sbteam-tui")
        command = exe if exe else f"{sys.executable} -m tui"
        self.socket = f"sbteam-test-{os.getpid()}"
        # COLUMNS/LINES (set in some test workers) would override the tmux window's
        # size in Textual (shutil.get_terminal_size reads them first).
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OPENAI_", "E2B_")) and k not in ("COLUMNS", "LINES")
        }
        env.update(SBTEAM_HOME=str(folder / "home"), SBTEAM_SANDBOX="local", SBTEAM_IMAGE="halfcell")
        shell = f"cd {folder} && {command} --demo; echo EXITED; sleep 60"
        subprocess.run(
            ["tmux", "-L", self.socket, "new-session", "-d", "-x", "160", "-y", "48", "-s", "t", shell],
            env=env, check=True, timeout=10,
        )
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._send_task, daemon=True)
        self.thread.start()

    def screen(self) -> str:
        return _tmux("capture-pane", "-p", "-t", "t", socket=self.socket)

    def wait_screen(self, predicate, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(0.25)
        raise AssertionError(f"timed out; screen was:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        _tmux("send-keys", "-t", "t", *keys, socket=self.socket)

    def _send_task(self) -> None:
        try:
            self.wait_screen(lambda s: "Sandbox files" in s and "● idle" in s, 60)
            self.keys("Enter")  # the editor holds the seed's example task
        except BaseException as exc:  # reported by the test
            self.error = exc

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


@pytest.fixture(scope="module")
def tmux_demo(tmp_path_factory):
    if shutil.which("tmux") is None:
        yield None
        return
    demo = TmuxDemo(tmp_path_factory.mktemp("tmux-demo"))
    yield demo
    demo.close()


def test_sbteam_tui_demo_in_tmux(tmux_demo):
    if tmux_demo is None:
        pytest.skip("tmux not installed")
    tmux_demo.thread.join(70)
    assert tmux_demo.error is None, tmux_demo.error
    tmux_demo.wait_screen(lambda s: "finished: TERMINATE" in s, 90)
    text = tmux_demo.wait_screen(lambda s: all(name in s for name in DEMO_FILES), 15)
    assert "DEMO" in text
    tmux_demo.keys("C-q")
    tmux_demo.wait_screen(lambda s: "EXITED" in s, 30)


@pytest.mark.parametrize("how", ["SIGHUP", "SIGTERM"])
def test_closing_the_terminal_or_kill_leaves_no_kernel_or_temp_folder(tmp_path: Path, how: str):
    """The terminal window closed (SIGHUP) or `kill` (SIGTERM) during a run: the app quits
    as with Ctrl+Q. Python's default ended it at once, without `atexit` (the kernel died
    with its parent, the sandbox's temp folder stayed); handled like Ctrl+Q but with the
    terminal gone, Textual's shutdown then waited for ever on its writer thread."""
    import pty
    import signal

    ready = tmp_path / "ready"
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "E2B_", "SBTEAM_"))}
    env.update(SBTEAM_HOME=str(tmp_path / "home"), SBTEAM_READY_FILE=str(ready), SBTEAM_IMAGE="halfcell",
               SBTEAM_SANDBOX="local", TMPDIR=str(temp), TERM="xterm-256color", COLUMNS="100", LINES="30")
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    stop = threading.Event()

    def drain() -> None:  # the app blocks once the pty's buffer is full
        while not stop.is_set():
            try:
                os.read(master, 65536)
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    proc = subprocess.Popen([sys.executable, "-m", "tui", "--demo"], stdin=slave, stdout=slave, stderr=slave,
                            cwd=tmp_path, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (ready.exists() and ready.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, "the sandbox did not come up"
            time.sleep(0.05)
        assert ready.read_text() != "failed"
        assert list(temp.glob("sbteam-sbx-*")), "the sandbox's temp folder is where TMPDIR says"
        kernels = [p for p in psutil.Process(proc.pid).children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]
        assert kernels
        os.write(master, b"\r")  # the DEMO task: a run is going when the signal comes
        time.sleep(1.5)
        if how == "SIGHUP":  # the terminal really is gone: its writes fail from now on
            stop.set()
            reader.join()
            os.close(master)
            master = -1
        os.kill(proc.pid, getattr(signal, how))
        if how == "SIGHUP":
            os.kill(proc.pid, signal.SIGCONT)  # as the kernel does when a terminal hangs up
        assert proc.wait(timeout=30) is not None
        assert not list(temp.glob("sbteam-sbx-*")), "the temp folder was left behind"
        _, alive = psutil.wait_procs(kernels, timeout=10)
        assert not alive, "a kernel outlived the app"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stop.set()
        os.close(slave)
        if master >= 0:
            os.close(master)
