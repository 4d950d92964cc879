"""The full-screen app: task input, live transcript, sandbox file tree with
previews and the termination-status bar.

Start-up: this module imports only Textual and the light parts of `team`
(config, events, prompts). The run controller — and with it AutoGen, E2B and
jupyter_client — is imported in a thread after the first paint, then the
sandbox warms up in the background while the user reads or edits the task.

One async worker (`_drive_run`, group "run", exclusive) iterates the
controller's events; every other slow call (stop, list/read/save files) runs
in its own worker, so keys never wait on the engine. Events of an older run
(by run id) are dropped.

Beyond one run: F4 opens the history (screens/history.py: past runs, read-only
replay, resume, export), Ctrl+E exports the current run, F6 toggles approval
mode (screens/approval.py: the engine awaits the user's decision per tool call).

Small terminals: the screens get `-narrow` under `NARROW_WIDTH` columns and
`-short` under `SHORT_HEIGHT` rows (Textual breakpoints, styled in app.tcss).
Narrow, the file pane is collapsed and Ctrl+B / F2 shows it in the
transcript's place; the status bar and the footer leave out their
low-priority parts (widgets/status_bar.py).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.filter import LineFilter
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Header, Tree

from team.config import ConfigError, Settings
from team.events import (
    Event,
    FilesChanged,
    Message,
    Notice,
    Progress,
    RunFinished,
    RunStarted,
    SandboxStatus,
    TokenDelta,
    ToolCall,
)
from tui.inert import CONTROL_FILTER, inert
from tui.widgets.file_tree import FileTree
from tui.widgets.preview import MAX_PREVIEW_BYTES, Preview
from tui.widgets.status_bar import REASON_LABELS, PriorityFooter, StatusBar
from tui.widgets.task_input import TaskInput
from tui.widgets.transcript import Transcript

DEMO_HINT = (
    "DEMO — scripted agents, real code. "
    "Set OPENAI_API_KEY (or OPENAI_API_BASE) in .env to use a real model."
)
WELCOME = (
    "Enter sends the task below (ctrl+j: new line). While it runs: Esc stops (twice: at once), "
    "ctrl+r restarts, ctrl+n starts a new task. Files appear in the file pane (ctrl+b shows or hides it); "
    "Enter on one previews it."
)
SEED_TASK = """请帮我执行以下数据分析任务:
1. 生成一个包含100个随机数据点的数据集
2. 计算基本统计信息(均值、标准差、最大值、最小值等)
3. 绘制数据分布的直方图
4. 检测数据中的异常值并分析它们的影响"""
NARROW_WIDTH = 110  # under this many columns the file pane collapses
SHORT_HEIGHT = 30  # under this many rows the task editor is smaller
RESTART_NOTE = "Restarted with a fresh sandbox: the previous run's files are gone."
HEAVY_MODULES = (  # imported in a thread after the first paint so the engine starts warm
    "team.run",
    "autogen_agentchat.teams",
    "autogen_ext.models.openai",
    "jupyter_client",
)

ControllerFactory = Callable[[Settings], Any]


def default_task(settings: Settings | None) -> str:
    """The seed's example task in the configured prompt language."""
    try:
        from team.prompts import example_task

        return example_task(settings.prompts if settings else "zh")
    except Exception:
        return SEED_TASK


def _import_engine() -> None:
    import importlib

    for name in HEAVY_MODULES:
        try:
            importlib.import_module(name)
        except Exception:
            if name == "team.run":
                raise


def default_controller(settings: Settings, session: Any = None) -> Any:
    """Build the real `RunController` (imports the engine; call it off the event loop)."""
    _import_engine()
    from team.run import RunController

    return RunController(settings, session=session)


def one_line(exc: BaseException | str) -> str:
    """The first line of an error, for the status bar's tooltip and a toast."""
    text = str(exc).strip()
    line = text.splitlines()[0].strip() if text else ""
    if not line and isinstance(exc, BaseException):
        line = type(exc).__name__
    return line[:200]


def _new_session(settings: Settings) -> Any:
    """The sandbox session alone: it needs the sandbox SDKs (~1.3 s to import), not
    AutoGen (~2.3 s), so the kernel can start while the rest of the engine loads."""
    from team.session import CodeSession

    return CodeSession(settings)


class MainScreen(Screen):
    """The app's default screen (its widgets come from `SbteamApp.compose`)."""

    def on_resize(self) -> None:
        # Runs before Screen's own resize handler sets the breakpoint classes: look after it.
        self.call_after_refresh(self.app.update_files_hint)


class SbteamApp(App[int]):
    """sbteam-tui: watch a Swarm of three agents solve a data task in a sandbox."""

    CSS_PATH = "app.tcss"
    TITLE = "sbteam"
    ENABLE_COMMAND_PALETTE = True
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW_WIDTH, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (SHORT_HEIGHT, "-tall")]
    # Short descriptions (the footer drops what does not fit); the palette has the long ones.
    BINDINGS = [
        Binding("escape", "stop", "Stop", tooltip="Stop at the end of this turn; press again to stop at once",
                priority=True),
        Binding("ctrl+r", "restart", "Restart", priority=True),
        Binding("ctrl+n", "new_task", "New task", tooltip="A new conversation (keep or reset the sandbox)",
                priority=True),
        Binding("ctrl+o", "add_data", "Data", tooltip="Upload your files into /home/user/data/", priority=True),
        Binding("ctrl+b,f2", "toggle_files", "Files", tooltip="Show or hide the sandbox files", priority=True),
        Binding("ctrl+s", "save_file", "Save", tooltip="Save the selected file to ./sbteam-output", priority=True),
        Binding("f4", "history", "History", priority=True),
        Binding("ctrl+e", "export", "Export", tooltip="Export the run as Markdown or a notebook", priority=True),
        Binding("f6", "toggle_approve", "Approval", tooltip="Approve, edit or reject code before it runs",
                priority=True),
        Binding("tab", "app.focus_next", "Next pane", show=False),
        Binding("ctrl+end,f3", "scroll_bottom", "Follow", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        settings: Settings | ConfigError,
        *,
        task: str | None = None,
        autostart: bool = False,
        controller_factory: ControllerFactory | None = None,
        output_dir: Path | None = None,
        cursor_blink: bool = True,
        approve: bool = False,
        data: list[str] | None = None,
        data_consent: bool = False,
    ) -> None:
        super().__init__()
        self.initial_data = list(data or [])  # --data: uploaded once the sandbox is up
        self.data_consent = data_consent
        self.config_error = settings if isinstance(settings, ConfigError) else None
        self.settings: Settings | None = None if self.config_error else settings  # type: ignore[assignment]
        self.initial_task = task
        self.autostart = autostart and bool(task)
        self.controller_factory = controller_factory or default_controller
        self.output_dir = output_dir or Path.cwd() / "sbteam-output"
        self.cursor_blink = cursor_blink
        self.ctrl: Any = None
        self.run_id: str | None = None
        self.current_task: str | None = None
        self.run_state = "idle"  # idle | running | stopping | finished
        self.warming = False
        self.sandbox_starting = False  # a run is (re)starting the sandbox: a failure there is the sandbox's
        self.booted = asyncio.Event()
        self._quitting = False
        self.approve_mode = approve
        from tui.screens.approval import ApprovalBroker

        self.approvals = ApprovalBroker(self)

    # -- layout -----------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        return MainScreen(id="_default")

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◆")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield Transcript(image_loader=self._read_image, id="transcript")
                yield TaskInput(default_task(self.settings) if self.initial_task is None else self.initial_task, id="task")
            with Vertical(id="side"):
                yield FileTree(id="files")
                yield Preview(id="preview")
        yield StatusBar(id="status")
        yield PriorityFooter()

    def on_mount(self) -> None:
        if os.environ.get("SBTEAM_PAINT_FILE"):  # bench/bench_tui.py: time to first paint
            self.call_after_refresh(self._report_first_paint)
        if self.config_error is not None:
            from tui.screens.config_error import ConfigErrorScreen

            self.push_screen(ConfigErrorScreen(self.config_error.problems))
            return
        settings = self.settings
        assert settings is not None
        task_input = self.query_one(TaskInput)
        task_input.cursor_blink = self.cursor_blink
        task_input.border_title = "Task — enter: send · ctrl+j: newline · ↑↓: history"
        self.query_one("#files").border_title = "Sandbox files"
        self.query_one("#preview").border_title = "Preview"
        self.query_one(Transcript).border_title = "Transcript"
        demo = settings.is_demo
        # [models #14] each agent's model and the spend cap in the status bar
        from team.agent_models import agent_models, model_label

        self.sub_title = "DEMO" if demo else inert(model_label(settings))
        self.status.set(
            model="DEMO" if demo else model_label(settings),
            models=agent_models(settings),
            max_cost=settings.max_cost,
            demo=demo,
            sandbox_kind=settings.sandbox,
            max_messages=settings.max_messages,
            timeout=settings.timeout,
            approve=self.approve_mode,
        )
        if demo:
            self.transcript.add_note(DEMO_HINT, "bold yellow")
        self.transcript.add_note(WELCOME)
        task_input.focus()
        self.call_after_refresh(self._boot)

    def _report_first_paint(self) -> None:
        Path(os.environ["SBTEAM_PAINT_FILE"]).write_text(repr(time.time()))
        if not os.environ.get("SBTEAM_PAINT_STAY"):
            self.exit(0)

    # -- what reaches the terminal -------------------------------------------------

    def get_line_filters(self) -> Sequence[LineFilter]:
        """Textual's filters, then the last-resort control filter (tui/inert.py) on every line."""
        filters = list(super().get_line_filters())
        if CONTROL_FILTER.enabled:  # (tests turn it off to check that every path is inert by itself)
            filters.append(CONTROL_FILTER)
        return filters

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every toast is inert text: notifications quote error lines, file names and
        model text, so they are never read as markup or sent with control characters."""
        super().notify(inert(str(message)), title=inert(str(title)), severity=severity, timeout=timeout,
                       markup=False)

    # The main screen's panes, looked up there (not on `self.screen`, which is a
    # modal while Ctrl+N asks) so events keep rendering under a modal.
    def _pane(self, cls: type) -> Any:
        return self.screen_stack[0].query_one(cls)

    @property
    def transcript(self) -> Transcript:
        return self._pane(Transcript)

    @property
    def status(self) -> StatusBar:
        return self._pane(StatusBar)

    @property
    def file_tree(self) -> FileTree:
        return self._pane(FileTree)

    @property
    def preview(self) -> Preview:
        return self._pane(Preview)

    # -- controller life-cycle ---------------------------------------------------

    @work(exclusive=True, group="boot", exit_on_error=False)
    async def _boot(self) -> None:
        """Build the controller (heavy imports in a thread), then warm the sandbox up."""
        assert self.settings is not None
        self.warming = True
        self._show_state()
        try:
            if self.controller_factory is default_controller:
                session = await asyncio.to_thread(_new_session, self.settings)
                session.warm_up()  # starts the kernel now; ctrl.warm_up() below awaits the same task
                self.ctrl = await asyncio.to_thread(default_controller, self.settings, session)
            else:
                self.ctrl = await asyncio.to_thread(self.controller_factory, self.settings)
        except Exception as exc:
            self.warming = False
            self._show_state()
            self.notify(f"Cannot load the engine: {exc}", severity="error", timeout=30)
            return
        ctrl = self.ctrl
        ctrl.approve = self.approve_mode
        ctrl.approver = self.approvals
        from tui.widgets.images import load as load_images

        await asyncio.to_thread(load_images)  # numpy/PIL via textual-image, off the event loop
        self.sub_title = "DEMO" if ctrl.demo else inert(ctrl.model_label)
        self.status.set(
            model=ctrl.model_label, demo=ctrl.demo, sandbox_kind=ctrl.sandbox_kind, isolation=ctrl.isolation,
            models=getattr(ctrl, "agent_models", {}),  # [models #14] each agent's model
        )
        self.booted.set()
        if self.autostart and self.initial_task:
            self._send(self.initial_task)
        failed = ""
        try:
            await ctrl.warm_up()
        except Exception as exc:
            failed = one_line(exc)
            self.notify(f"Sandbox failed to start: {failed}\nThe next run tries again.", severity="error", timeout=30)
        finally:
            self.warming = False
            # A start that failed is shown in red (reason in the tooltip) until a start succeeds.
            self.status.set(
                sandbox_kind=ctrl.sandbox_kind, isolation=ctrl.isolation, sandbox_error=failed,
                limits=getattr(ctrl, "limits_text", ""),
            )
            self._show_state()
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

    async def _controller(self) -> Any:
        await self.booted.wait()
        return self.ctrl

    def _show_state(self) -> None:
        state = self.run_state
        if state == "idle" and self.warming:
            state = "starting sandbox"
        self.status.set(state=state)
        self.refresh_bindings()

    # -- the run ------------------------------------------------------------------

    @on(TaskInput.Submitted)
    def _task_submitted(self, event: TaskInput.Submitted) -> None:
        if self.run_state in ("running", "stopping"):
            self.notify("A run is going: Esc stops it, Ctrl+R restarts it.", severity="warning")
            return
        event.input.remember(event.text)
        event.input.load_text("")
        self._send(event.text)

    def _send(self, task: str) -> None:
        """Send a task: a follow-up in the current conversation when one has finished
        (its team remembers it, same sandbox and variables), else a new conversation."""
        follow = self.run_id is not None and bool(getattr(self.ctrl, "can_follow_up", False))
        self.current_task = task
        self.run_state = "running"
        self._reset_status()
        self._show_state()
        self._drive_run(task, follow_up=follow)

    def _reset_status(self) -> None:
        self.status.set(agent="", messages=0, elapsed=0.0, tokens_in=0, tokens_out=0, reason="", cost=None,
                        agent_tokens={}, resumed_from="", turn=1, conversation_messages=0, conversation_elapsed=0.0)

    @work(exclusive=True, group="run", exit_on_error=False)
    async def _drive_run(self, task: str, restart: bool = False, resume_from: str = "", follow_up: bool = False) -> None:
        """The one worker that starts (or restarts, resumes, follows up) a run and renders its events."""
        ctrl = await self._controller()
        restarts_turn = restart and getattr(ctrl, "turn", 1) > 1  # a follow-up turn keeps the sandbox
        if restart and not restarts_turn:  # ctrl.restart() replaces the sandbox: nothing more of the old one
            await self._forget_sandbox_files(RESTART_NOTE)
        try:
            if resume_from:
                run_id = await ctrl.resume(resume_from, task)
            elif follow_up:
                run_id = ctrl.follow_up(task)
            else:
                run_id = await ctrl.restart() if restart else ctrl.start(task)
        except (ValueError, RuntimeError) as exc:
            self.run_state = "idle" if ctrl.state != "running" else "running"
            self._show_state()
            self.notify(str(exc), severity="warning")
            return
        self.run_id = run_id
        if restart and not restarts_turn:
            self._refresh_files()  # the new sandbox's (empty) folder
        finished = False
        try:
            async for event in ctrl.events():
                if event.run_id and event.run_id != self.run_id:
                    continue  # a late event of an earlier run
                try:
                    self.handle_event(event)
                except Exception as exc:  # keep draining: the engine runs on regardless
                    self.log.error(f"cannot render {event.type}: {exc!r}")
                finished = isinstance(event, RunFinished)
        except Exception as exc:  # the engine should not raise here; stay usable if it does
            self.handle_event(RunFinished(run_id=run_id, reason="error", message=f"{type(exc).__name__}: {exc}"))
            finished = True
        if not finished and self.run_id == run_id:
            self.run_state = "finished"
            self.status.set(reason="stopped")
            self._show_state()

    def handle_event(self, event: Event) -> None:
        """Render one engine event: transcript, status bar, files, notifications."""
        try:
            self.transcript.add_event(event)
        except Exception as exc:  # a rendering bug must not end the run's view
            self.log.error(f"transcript failed on {event.type}: {exc!r}")
        status = self.status
        if isinstance(event, Progress):
            status.set(
                agent=event.agent,
                messages=event.messages,
                max_messages=event.max_messages,
                elapsed=event.elapsed,
                timeout=event.timeout,
                tokens_in=event.tokens_in,
                tokens_out=event.tokens_out,
                cost=event.cost,
                agent_tokens=event.agent_tokens,
                conversation_messages=event.conversation_messages,
                conversation_elapsed=event.conversation_elapsed,
            )
        elif isinstance(event, TokenDelta | Message | ToolCall):
            if event.agent != "user" and event.agent != status.agent:
                status.set(agent=event.agent)
        elif isinstance(event, FilesChanged):
            self.file_tree.mark_changed(event.added, event.changed, event.removed)
            self._refresh_files()
        elif isinstance(event, RunStarted):
            status.set(
                max_messages=event.max_messages,
                timeout=event.timeout,
                sandbox_kind=event.sandbox,
                isolation=event.isolation,
                model="DEMO" if event.demo else event.model,
                demo=event.demo,
                resumed_from=event.resumed_from,
                limits=event.limits,
                turn=event.turn,
            )
        elif isinstance(event, SandboxStatus):
            self.sandbox_starting = event.state == "starting"
            if event.state == "starting":
                status.set(sandbox_kind=event.kind, isolation="starting…", sandbox_error="")
            elif event.state == "error":
                status.set(sandbox_kind=event.kind, isolation=event.isolation,
                           sandbox_error=one_line(event.detail) or "sandbox error")
                self.notify(f"Sandbox error: {event.detail}", severity="error", timeout=15)
            else:
                status.set(sandbox_kind=event.kind, isolation=event.isolation, sandbox_error="",
                           limits=event.limits or status.limits)
        elif isinstance(event, Notice) and event.level != "info":
            self.notify(event.text, severity=event.level, timeout=10)
        elif isinstance(event, RunFinished):
            self.run_state = "finished"
            if self.sandbox_starting:  # the run ended while its sandbox was starting: the start failed
                self.sandbox_starting = False
                status.set(sandbox_error=one_line(event.message or "the sandbox did not start"))
            status.set(
                reason=event.reason,
                messages=event.messages or status.messages,
                elapsed=event.elapsed or status.elapsed,
                tokens_in=event.tokens_in or status.tokens_in,
                tokens_out=event.tokens_out or status.tokens_out,
                cost=event.cost if event.cost is not None else status.cost,
                agent_tokens=event.agent_tokens or status.agent_tokens,
            )
            self.approvals.close_all()
            self._show_state()
            label = REASON_LABELS.get(event.reason, event.reason.upper())
            if event.reason == "error":
                self.notify(event.message or "the run failed", title="Run failed", severity="error", timeout=20)
            else:
                self.notify(f"Finished: {label}", timeout=4)
            self._refresh_files()

    # -- actions ------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The run's keys in the command palette too (ctrl+p)."""
        yield from super().get_system_commands(screen)
        if self.config_error is not None:
            return
        yield SystemCommand("Send task", "Start a run with the task in the editor (enter)", self._send_from_editor)
        yield SystemCommand("Stop run", "Graceful stop; again to force (esc)", self.action_stop)
        yield SystemCommand("Restart run", "Run the same task again with a fresh team (ctrl+r)", self.action_restart)
        yield SystemCommand("New task", "Clear the transcript, keep or reset the sandbox (ctrl+n)", self.action_new_task)
        yield SystemCommand("Toggle files pane", "Show or hide the sandbox files (ctrl+b / f2)", self.action_toggle_files)
        yield SystemCommand("Save file", "Copy the selected sandbox file to ./sbteam-output (ctrl+s)", self.action_save_file)
        yield SystemCommand("Follow transcript", "Scroll to the end and keep following (ctrl+end / f3)", self.action_scroll_bottom)
        yield SystemCommand("History", "Past runs: search, open read-only, resume, export (f4)", self.action_history)
        yield SystemCommand("Export run as Markdown", "Transcript with code, outputs and images (ctrl+e, m)",
                            lambda: self._export("md"))
        yield SystemCommand("Export run as notebook", "The code cells that ran, with outputs, as .ipynb (ctrl+e, i)",
                            lambda: self._export("ipynb"))
        yield SystemCommand("Toggle approval mode", "Approve, edit or reject code before it runs (f6)",
                            self.action_toggle_approve)

    def _send_from_editor(self) -> None:
        self._pane(TaskInput).action_submit()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        main_only = ("stop", "restart", "new_task", "save_file", "toggle_files", "scroll_bottom", "history",
                     "export", "toggle_approve", "add_data")
        if action in main_only:
            from tui.screens.approval import ApprovalScreen

            if action == "stop" and isinstance(self.screen, ApprovalScreen) and self.screen.editing:
                return False  # Esc undoes the edit first (the dialog's own binding); a second Esc stops
            if action in ("stop", "toggle_approve") and isinstance(self.screen, ApprovalScreen):
                pass  # Esc stops the run while it waits for an approval; F6 turns the mode off
            elif self.config_error is not None or self.screen is not self.screen_stack[0]:
                return False  # let modals and the palette have their keys
        if action == "stop" and self.run_state not in ("running", "stopping"):
            return None
        if action == "restart" and not self.current_task:
            return None
        return True

    def action_stop(self) -> None:
        """Esc: graceful stop; a second Esc while stopping cancels at once."""
        if self.ctrl is None:
            return
        force = self.run_state == "stopping"
        self.run_state = "stopping"
        self._show_state()
        self.notify("Force stopping…" if force else "Stopping at the end of this turn (Esc again: force)", timeout=3)
        self.run_worker(self.ctrl.stop(force=force), group="stop", exit_on_error=False)

    def action_restart(self) -> None:
        """Ctrl+R: stop and run the same task again with a fresh team."""
        if not self.current_task:
            return
        if self.ctrl is None or self.ctrl.state == "idle":
            self._send(self.current_task)
            return
        self.transcript.add_note("↻ restarted with the same task", "bold")
        self.run_state = "running"
        self._reset_status()
        self._show_state()
        self._drive_run(self.current_task, restart=True)

    # -- the user's data ----------------------------------------------------------------

    def action_add_data(self) -> None:
        """Ctrl+O: pick host files or folders to upload (also while a run goes on)."""
        from tui.screens.data_picker import DataPickerScreen

        def chosen(paths: list[str] | None) -> None:
            if paths:
                self.upload_data(paths)

        self.push_screen(DataPickerScreen(), chosen)

    @on(TaskInput.PathsPasted)
    def _paths_pasted(self, event: TaskInput.PathsPasted) -> None:
        """A pasted or dropped path: offer to upload it instead of typing it into the task."""
        from tui.screens.data_picker import UploadPastedModal

        def answered(choice: str | None) -> None:
            if choice == "upload":
                self.upload_data(event.paths)
            elif choice == "text":
                event.input.insert(event.text)

        self.push_screen(UploadPastedModal(event.paths), answered)

    @work(group="upload", exit_on_error=False)
    async def upload_data(self, paths: list[str], consent: bool = False) -> None:
        """Upload host paths into /home/user/data/ (asks above 500 MB; a bar for large ones)."""
        import threading

        from team.uploads import ASK_ABOVE, UploadError, collect
        from tui.screens.data_picker import ConfirmUploadModal, UploadProgressScreen

        ctrl = await self._controller()
        try:
            plan = await asyncio.to_thread(collect, paths)
        except UploadError as exc:
            self.notify(f"Cannot upload: {exc}", severity="error", timeout=10)
            return
        if plan.total > ASK_ABOVE and not consent:
            answer = await self.push_screen_wait(
                ConfirmUploadModal(f"The upload is {plan.total / (1 << 20):,.0f} MB (over 500 MB). Upload it?")
            )
            if answer != "yes":
                return
            consent = True
        bar = UploadProgressScreen(plan.total) if plan.total > 50 << 20 else None
        if bar is not None:
            await self.push_screen(bar)
        main = threading.get_ident()

        def progress(done: int, total: int) -> None:
            if bar is None:
                return
            if threading.get_ident() == main:
                bar.advance_to(done)
            else:
                self.call_from_thread(bar.advance_to, done)

        try:
            done = await ctrl.add_data(paths, progress=progress, consent=consent)
        except Exception as exc:
            self.notify(f"Upload failed: {one_line(exc)}", severity="error", timeout=15)
            return
        finally:
            if bar is not None:
                bar.dismiss()
        names = ", ".join(d["path"] for d in done[:4]) + (" …" if len(done) > 4 else "")
        self.transcript.add_note(
            f"📥 uploaded {len(done)} file(s): {names} — the team is told about it with its next question", "bold"
        )
        self.file_tree.mark_changed([d["path"] for d in done], [], [])  # new in the tree, like the team's files
        self._refresh_files()

    def action_new_task(self) -> None:
        """Ctrl+N: ask keep/reset sandbox, then clear the transcript for a new task."""
        from tui.screens.new_task import NewTaskModal

        running = self.run_state in ("running", "stopping")
        self.push_screen(NewTaskModal(running), self._new_task_chosen)

    def _new_task_chosen(self, choice: str | None) -> None:
        if choice is not None:
            self._start_over(choice == "reset")

    @work(exclusive=True, group="new-task", exit_on_error=False)
    async def _start_over(self, reset: bool) -> None:
        ctrl = self.ctrl
        self.workers.cancel_group(self, "run")
        self.run_id = None
        if ctrl is not None and ctrl.state in ("running", "stopping"):
            await ctrl.stop(force=True)
        await self.transcript.clear()
        self.run_state = "idle"
        self.current_task = None
        self._reset_status()
        task_input = self._pane(TaskInput)
        task_input.load_text("")
        task_input.focus()
        if reset and ctrl is not None:
            self.warming = True
            self._show_state()
            failed = ""
            try:
                await ctrl.reset_sandbox()
            except Exception as exc:
                failed = one_line(exc)
                self.notify(f"Sandbox reset failed: {failed}", severity="error")
            finally:
                self.warming = False
            self.status.set(sandbox_kind=ctrl.sandbox_kind, isolation=ctrl.isolation, sandbox_error=failed)
            await self._forget_sandbox_files("A fresh, empty sandbox.")
        self._show_state()
        self._refresh_files()

    async def _forget_sandbox_files(self, note: str) -> None:
        """The sandbox is being replaced: empty the tree and the preview, and say why."""
        self.workers.cancel_group(self, "files")  # a listing of the old sandbox must not land
        self.workers.cancel_group(self, "preview")
        self.file_tree.unseen.clear()
        self.file_tree.set_entries([])
        await self.preview.clear(note)
        self.update_files_hint()

    # -- history, resume, export, approval mode ----------------------------------------

    def action_history(self) -> None:
        """F4: past runs (search, open read-only, resume, export)."""
        from tui.screens.history import HistoryScreen

        assert self.settings is not None
        self.push_screen(HistoryScreen(self.settings.runs_dir))

    def resume_run(self, run_id: str, instruction: str) -> None:
        """Called by the history's Resume: back to the main screen, then continue `run_id`."""
        self._resume_from_history(run_id, instruction)

    @work(exclusive=True, group="resume", exit_on_error=False)
    async def _resume_from_history(self, run_id: str, instruction: str) -> None:
        while len(self.screen_stack) > 1:
            await self.pop_screen()
        if self.run_state in ("running", "stopping"):
            self.notify("A run is going: stop it (Esc) before resuming another one.", severity="warning")
            return
        self.current_task = instruction
        self.transcript.add_note(f"↻ resuming run {run_id}: {instruction}", "bold")
        self.run_state = "running"
        self._reset_status()
        self._show_state()
        self._drive_run(instruction, resume_from=run_id)

    def action_export(self) -> None:
        """Ctrl+E: export the current (or last) run as Markdown or a notebook."""
        if not self.run_id:
            self.notify("No run yet: start one, or export a past run from the history (f4).", severity="warning")
            return
        from tui.screens.history import ExportModal

        self.push_screen(ExportModal(self.run_id), lambda fmt: self._export(fmt) if fmt else None)

    def _export(self, fmt: str) -> None:
        from tui.screens.history import export_and_notify

        if not self.run_id or self.settings is None:
            self.notify("No run to export yet.", severity="warning")
            return
        self.run_worker(export_and_notify(self, self.settings.runs_dir, self.run_id, fmt), group="export")

    def action_toggle_approve(self) -> None:
        """F6: approval mode on/off (on: each run_code/write_file/install_package waits for you)."""
        self.approve_mode = not self.approve_mode
        if self.ctrl is not None:
            self.ctrl.approve = self.approve_mode
        self.status.set(approve=self.approve_mode)
        running = self.run_state in ("running", "stopping")
        if self.approve_mode:
            when = " from the next run" if running else ""
            self.notify(f"Approval mode on{when}: code waits for approve / edit / reject.", timeout=5)
        else:
            self.approvals.approve_all()
            self.notify("Approval mode off: code runs without asking.", timeout=5)

    def action_toggle_files(self) -> None:
        """Ctrl+B / F2: hide or show the file pane; when narrow, show it instead of the transcript."""
        main = self.screen_stack[0]
        side = main.query_one("#side")
        if main.has_class("-narrow"):
            opening = not main.has_class("-files-open")
            main.set_class(opening, "-files-open")
        else:
            opening = main.has_class("-files-hidden")
            main.set_class(not opening, "-files-hidden")
        if opening:
            self.call_after_refresh(self.file_tree.focus)
        elif self.focused is not None and side in self.focused.ancestors_with_self:
            self._pane(TaskInput).focus()
        self.update_files_hint()

    @property
    def files_shown(self) -> bool:
        main = self.screen_stack[0]
        if main.has_class("-narrow"):
            return main.has_class("-files-open")
        return not main.has_class("-files-hidden")

    def update_files_hint(self) -> None:
        """While the file pane is hidden, the transcript's frame says how to show it (and what is new)."""
        if self.config_error is not None:
            return
        try:
            transcript, tree = self.transcript, self.file_tree
        except Exception:  # not composed yet
            return
        if self.files_shown:
            transcript.border_subtitle = ""
            return
        new = len(tree.unseen & set(tree.entries))
        files = f"{new} new file{'s' if new != 1 else ''}" if new else "files"
        transcript.border_subtitle = f"{files}: ctrl+b"

    def action_scroll_bottom(self) -> None:
        self.transcript.scroll_to_bottom()

    def action_save_file(self) -> None:
        path = self.file_tree.selected_path or self.preview.path
        entry = self.file_tree.entries.get(path or "")
        if not path or self.ctrl is None or (entry is not None and entry.is_dir):
            self.notify("Select a file in the sandbox tree first.", severity="warning")
            return
        self._save(path)

    @work(group="save", exit_on_error=False)
    async def _save(self, path: str) -> None:
        dest = self.output_dir / (self.run_id or self.ctrl.run_id or "sandbox")
        try:
            saved = await self.ctrl.save_file(path, dest)
        except Exception as exc:
            self.notify(f"Cannot save {path}: {exc}", severity="error")
            return
        self.notify(f"Saved {path} → {saved}", title="File saved", timeout=8)

    async def action_quit(self) -> None:
        """Ctrl+Q: force-stop the run at once, close the sandbox (no kernel left behind), exit."""
        if self._quitting:
            return
        self._quitting = True
        self.workers.cancel_group(self, "run")  # nothing more of the run is rendered
        self.approvals.close_all()
        if self.config_error is None:
            self.run_state = "quitting"
            self._show_state()
        self.notify("Quitting: stopping the run, closing the sandbox…", timeout=10)
        self.run_worker(self._close_and_exit(), group="quit", exit_on_error=False)

    async def _close_and_exit(self) -> None:
        ctrl = self.ctrl
        if ctrl is not None:
            if ctrl.state in ("running", "stopping"):
                try:  # no graceful turn end: the user wants out now
                    await asyncio.wait_for(ctrl.stop(force=True), timeout=5)
                except Exception:
                    pass
            try:
                await asyncio.wait_for(ctrl.close(), timeout=15)
            except Exception:
                pass
        self.exit(0)

    # -- files ----------------------------------------------------------------------

    @work(exclusive=True, group="files", exit_on_error=False)
    async def _refresh_files(self) -> None:
        """Re-list the sandbox folder; bursts of FilesChanged collapse into one call."""
        await asyncio.sleep(0.05)
        ctrl = await self._controller()
        try:
            entries = await ctrl.list_files()
        except Exception as exc:
            self.log.warning(f"list_files failed: {exc}")
            return
        self.file_tree.set_entries(entries)
        self.update_files_hint()

    @on(Tree.NodeSelected, "#files")
    def _file_selected(self, event: Tree.NodeSelected) -> None:
        entry = event.node.data
        if entry is None or entry.is_dir:
            return
        self.file_tree.mark_seen(entry.path)
        self.update_files_hint()
        self._show_preview(entry)

    @work(exclusive=True, group="preview", exit_on_error=False)
    async def _show_preview(self, entry: Any, sheet: str | int = 0, stats: bool = False) -> None:
        ctrl = await self._controller()
        if _sandbox_table(entry.path, entry.size) and hasattr(ctrl, "table_preview"):
            await self.preview.show_message(entry.path, "reading the table in the sandbox…", style="dim")
            try:
                result = await ctrl.table_preview(entry.path, sheet=sheet, stats=stats)
            except Exception as exc:
                await self.preview.show_message(entry.path, f"Cannot read {entry.path} as a table: {one_line(exc)}")
                return
            if "error" in result:
                await self.preview.show_message(entry.path, f"Cannot read {entry.path} as a table: {result['error']}")
                return
            await self.preview.show_table(entry.path, result, entry.size)
            return
        try:
            data = await ctrl.read_file(entry.path, max_bytes=MAX_PREVIEW_BYTES)
        except Exception as exc:
            await self.preview.show_message(entry.path, f"Cannot read {entry.path}: {exc}")
            return
        await self.preview.show(entry.path, data, size=max(entry.size, len(data)))

    def action_table_stats(self) -> None:
        """`s` on a table preview: column statistics, or back to the rows."""
        preview = self.preview
        entry = self.file_tree.entries.get(preview.path or "") if preview.kind == "table" else None
        if entry is not None:
            self._show_preview(entry, sheet=preview.table.get("sheet") or 0, stats="stats" not in preview.table)

    def action_table_sheet(self, step: int) -> None:
        """`[` / `]` on an Excel preview: the previous or next sheet."""
        preview = self.preview
        sheets = preview.table.get("sheets") or [] if preview.kind == "table" else []
        entry = self.file_tree.entries.get(preview.path or "")
        if entry is not None and len(sheets) > 1:
            current = sheets.index(preview.table.get("sheet")) if preview.table.get("sheet") in sheets else 0
            self._show_preview(entry, sheet=sheets[(current + step) % len(sheets)])

    async def _read_image(self, path: str) -> bytes:
        ctrl = await self._controller()
        return await ctrl.read_file(path, max_bytes=5_000_000)


def _sandbox_table(path: str, size: int) -> bool:
    """Read in the sandbox: formats the host does not parse, and CSV/TSV too large to read here."""
    from team.tables import is_table

    ext = path.rsplit(".", 1)[-1].lower()
    if not is_table(path) or ext == "json":  # JSON: shown as text (partially when large)
        return False
    return ext not in ("csv", "tsv") or size > MAX_PREVIEW_BYTES


def run_app(
    settings: Settings | ConfigError,
    *,
    task: str | None = None,
    autostart: bool = False,
    approve: bool = False,
    data: list[str] | None = None,
    data_consent: bool = False,
) -> int:
    """Build and run the app; returns the process exit code (2 for bad configuration)."""
    from tui.widgets.images import detect

    detect()  # image support must be asked before Textual owns the terminal
    app = SbteamApp(settings, task=task, autostart=autostart, approve=approve, data=data, data_consent=data_consent)
    result = app.run()
    if isinstance(settings, ConfigError):
        return 2
    return result if isinstance(result, int) else (app.return_code or 0)
