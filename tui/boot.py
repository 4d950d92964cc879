"""The engine's life in the app: built off the event loop after the first paint,
its sandbox started as early as possible, closed on quit.

Start-up order (what the user waits for): the first paint needs Textual and the
light parts of `team` only. Right after it, the sandbox session (no AutoGen) is
created in a thread and its kernel started; meanwhile the AutoGen-based
`RunController` is built in another thread. A task sent while AutoGen still loads
waits for the controller, not for the kernel, which is already starting.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work

from team.api import ACTIVE
from team.config import Settings
from team.errors import one_line
from team.signals import can_take_signals
from tui.inert import inert
from tui.panes import Panes

if TYPE_CHECKING:
    from team.api import Controller
    from team.session import CodeSession

ControllerFactory = Callable[[Settings], "Controller"]
HEAVY_MODULES = (  # imported in a thread after the first paint so the engine starts warm
    "team.run",
    "autogen_agentchat.teams",
    "autogen_ext.models.openai",
    "e2b_code_interpreter.models",  # what the first run_code returns (not needed to start a kernel)
)
# What starting the sandbox imports, imported in the session's thread so the event loop never
# waits on it (the kernel's start would otherwise import them on the loop, blocking keys).
SANDBOX_MODULES = {
    "local": ("team.sandbox.local", "jupyter_client.asynchronous.client", "zmq"),
    "e2b": ("team.sandbox.e2b",),
}


def _import(names: tuple[str, ...]) -> None:
    """Import ahead of use; only `team.run` must succeed (a failure of another shows, in the
    open, when the engine itself imports it)."""
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            if name == "team.run":
                raise
            import logging

            logging.getLogger(__name__).debug("pre-import of %s failed: %s", name, exc)


def default_controller(settings: Settings, session: CodeSession | None = None) -> Controller:
    """Build the real `RunController` (imports AutoGen; call it off the event loop)."""
    _import(HEAVY_MODULES)
    from team.run import RunController

    return RunController(settings, session=session)


def new_session(settings: Settings) -> CodeSession:
    """The sandbox session alone: it needs the kernel client, not AutoGen (~2.3 s), so the
    kernel can start while the rest of the engine loads."""
    _import(SANDBOX_MODULES.get(settings.sandbox, ()))
    from team.session import CodeSession

    return CodeSession(settings)


def _report_ready(task: asyncio.Task[None]) -> None:
    ok = not task.cancelled() and task.exception() is None
    Path(os.environ["SBTEAM_READY_FILE"]).write_text(repr(time.time()) if ok else "failed")


def _detach_from_terminal() -> None:
    """The terminal is gone (SIGHUP): stdin, stdout and stderr now lead to /dev/null.

    Writes to a hung-up terminal fail (EIO); pointed at /dev/null, whatever the app draws
    while it closes the run and the sandbox succeeds at nothing instead.
    """
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)


class Boot(Panes):
    """Build the controller, warm its sandbox up, close it on quit (mixed into `SbteamApp`)."""

    _hung_up = False  # the terminal was closed (SIGHUP): quit without giving it back

    settings: Settings | None
    ctrl: Controller | None
    controller_factory: ControllerFactory
    booted: asyncio.Event
    warming: bool
    approve_mode: bool
    autostart: bool
    initial_task: str | None
    initial_data: list[str]
    data_consent: bool
    _quitting: bool

    def report_first_paint(self) -> None:
        """bench/bench_tui.py: the time of the first paint (and exit, unless told to stay)."""
        Path(os.environ["SBTEAM_PAINT_FILE"]).write_text(repr(time.time()))
        if not os.environ.get("SBTEAM_PAINT_STAY"):
            self.exit(0)

    async def _controller(self) -> Controller:
        await self.booted.wait()
        assert self.ctrl is not None
        return self.ctrl

    @work(exclusive=True, group="boot", exit_on_error=False)
    async def _boot(self) -> None:
        """Build the controller (heavy imports in a thread), then warm the sandbox up."""
        assert self.settings is not None
        self.warming = True
        self.render_state()
        try:
            if self.controller_factory is default_controller:
                session = await asyncio.to_thread(new_session, self.settings)
                session_warm = session.warm_up()  # the kernel starts now; ctrl.warm_up() awaits the same task
                if os.environ.get("SBTEAM_READY_FILE"):  # bench/bench_tui.py: when the kernel is up
                    session_warm.add_done_callback(_report_ready)
                ctrl = await asyncio.to_thread(default_controller, self.settings, session)
            else:
                ctrl = await asyncio.to_thread(self.controller_factory, self.settings)
        except Exception as exc:  # a broken install: say so, keep the app (history, export) usable
            self.warming = False
            self.render_state()
            self.notify(f"Cannot load the engine: {one_line(exc)}", severity="error", timeout=30)
            return
        self.ctrl = ctrl
        ctrl.approve = self.approve_mode
        ctrl.approver = self.approvals
        from tui.widgets.images import load as load_images

        await asyncio.to_thread(load_images)  # numpy/PIL via textual-image, off the event loop
        self.sub_title = inert(ctrl.model_label)  # "DEMO" in the DEMO
        self.status.set(
            model=ctrl.model_label, demo=ctrl.demo, sandbox_kind=ctrl.sandbox_kind, isolation=ctrl.isolation,
            models=ctrl.agent_models,  # [models #14] each agent's model
        )
        await self.side_ready.wait()  # the file tree is a run pane: mounted before the first event
        self.booted.set()
        if self.autostart and self.initial_task:
            self.send(self.initial_task)
        failed = ""
        try:
            await ctrl.warm_up()
        except Exception as exc:  # shown in red until a start succeeds; the next run tries again
            failed = one_line(exc)
            self.notify(f"Sandbox failed to start: {failed}\nThe next run tries again.", severity="error", timeout=30)
        finally:
            self.warming = False
            self.status.set(
                sandbox_kind=ctrl.sandbox_kind, isolation=ctrl.isolation, sandbox_error=failed,
                limits=ctrl.limits_text,
            )
            self.render_state()
        if failed:
            return  # listing files would quietly retry the start; the next run does it in the open
        if self.initial_data:
            self.upload_data(self.initial_data, consent=self.data_consent)
        if ctrl.isolation == "none":
            self.notify(
                "The local sandbox is NOT ISOLATED (bubblewrap not found): code runs as you.",
                severity="warning",
                timeout=8,
            )
        self._refresh_files()

    def quit_on_signals(self) -> None:
        """Closing the terminal (SIGHUP) or `kill` (SIGTERM) quits like Ctrl+Q: the run is
        stopped and the sandbox closed. Python's default for both ends the process at once,
        with no `atexit`: the kernel went with its parent (bwrap's --die-with-parent) but the
        sandbox's temp folder stayed. Where signals cannot be taken (not Unix, not the main
        thread) they are left as they are."""
        import signal

        if not can_take_signals():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM):
            loop.add_signal_handler(sig, self._quit_on_signal, sig == signal.SIGHUP)

    def _quit_on_signal(self, hung_up: bool) -> None:
        if hung_up:
            self._hung_up = True
            _detach_from_terminal()
        self.run_worker(self.action_quit(), group="quit", exit_on_error=False)

    async def action_quit(self) -> None:
        """Ctrl+Q: force-stop the run at once, close the sandbox (no kernel left behind), exit."""
        if self._quitting:
            return
        self._quitting = True
        self.workers.cancel_group(self, "run")  # nothing more of the run is rendered
        self.approvals.close_all()
        self.render_state()
        self.notify("Quitting: stopping the run, closing the sandbox…", timeout=10)
        self.run_worker(self._close_and_exit(), group="quit", exit_on_error=False)

    async def _close_and_exit(self) -> None:
        ctrl = self.ctrl
        if ctrl is not None:
            if ctrl.state in ACTIVE:
                try:  # no graceful turn end: the user wants out now
                    await asyncio.wait_for(ctrl.stop(force=True), timeout=5)
                except Exception as exc:  # exiting anyway: close() below kills what is left
                    self.log.warning(f"stop on quit failed: {exc!r}")
            try:
                await asyncio.wait_for(ctrl.close(), timeout=15)
            except Exception as exc:  # exiting anyway; the sandbox's own cleanup is the last resort
                self.log.warning(f"close on quit failed: {exc!r}")
        if self._hung_up:
            # No terminal to give back, and Textual's shutdown would wait for ever on its
            # writer thread's queue (seen with tmux's kill-server). The run is saved and the
            # sandbox closed (or, still booting, closed by its own exit hook, run here).
            atexit._run_exitfuncs()
            os._exit(0)
        self.exit(0)

    if TYPE_CHECKING:  # provided by the other parts of the app
        def render_state(self) -> None: ...
        def send(self, task: str) -> None: ...
        def upload_data(self, paths: list[str], consent: bool = False) -> Any: ...
        def _refresh_files(self) -> Any: ...
