"""The full-screen app: task input, live transcript, sandbox file tree with
previews and the termination-status bar.

This module is the composition root: the layout, the keys and the start-up.
What happens after is in modules named after it, mixed into `SbteamApp`:
`tui/driver.py` (the one run worker; each engine event becomes one `EngineEvent`
message that each pane handles itself), `tui/boot.py` (the engine built off the
event loop after the first paint, the sandbox started at once, quit),
`tui/files.py` (the file pane), `tui/data.py` (the user's uploads),
`tui/past_runs.py` (history, export, approval mode) and `tui/commands.py` (the
one table behind the bindings and the command palette).

Start-up: this module imports only Textual and the light parts of `team` (not even the
engine's events); the file pane is mounted a frame after the first paint, and the preview's
DataTable, Pygments and textual-image are imported on first use.

Small terminals: the screens get `-narrow` under `NARROW_WIDTH` columns and
`-short` under `SHORT_HEIGHT` rows (Textual breakpoints, styled in app.tcss).
Narrow, the file pane is collapsed and Ctrl+B / F2 shows it in the
transcript's place; the status bar and the footer leave out their
low-priority parts (widgets/status_bar.py).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events, on
from textual.app import ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.filter import LineFilter
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Header
from textual.worker import Worker, WorkerState

from team.api import ACTIVE
from team.config import ConfigError, Settings
from team.errors import one_line
from team.prompts import DEMO_HINT, example_task
from tui import commands
from tui.boot import Boot, ControllerFactory, default_controller
from tui.data import DataUpload
from tui.driver import RunDriver
from tui.files import SandboxFiles
from tui.inert import CONTROL_FILTER, inert
from tui.past_runs import PastRuns
from tui.widgets.status_bar import PriorityFooter, StatusBar
from tui.widgets.task_input import TaskInput
from tui.widgets.transcript import Transcript

if TYPE_CHECKING:
    from tui.screens.approval import ApprovalScreen

__all__ = ["DEMO_HINT", "SbteamApp", "default_controller", "default_task", "run_app"]

WELCOME = (
    "Enter sends the task below (ctrl+j: new line). While it runs: Esc stops (twice: at once), "
    "ctrl+r restarts, ctrl+n starts a new task. Files appear in the file pane (ctrl+b shows or hides it); "
    "Enter on one previews it."
)
NARROW_WIDTH = 110  # under this many columns the file pane collapses
SHORT_HEIGHT = 30  # under this many rows the task editor is smaller


def _gc_after_first_paint() -> None:
    """The CLI turns the cyclic GC off until the first paint (tui/cli.py). What start-up
    allocated (Textual, the modules, the first DOM: ~0.5 M objects) is moved to the permanent
    generation before it goes back on, so the first collection does not walk all of it
    (~100 ms on the event loop as the engine boots) and no later full collection does either."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def default_task(settings: Settings | None) -> str:
    """The seed's example task in the configured prompt language (the engine's own)."""
    return example_task(settings.prompts if settings else "zh")


class MainScreen(Screen):
    """The app's default screen (its widgets come from `SbteamApp.compose`).

    Before the first paint it is laid out and styled once. Textual would lay it out again
    for each same-size Resize that follows its first layout (the app's, which sets the
    breakpoint classes, and the one that layout sends the screen itself), restyle every
    widget as the screen resumes, and restyle again as focus moves from the first
    focusable widget to the task editor; each cost 10-20 ms of the first paint. So the
    breakpoint classes are given as the screen is made, focus goes straight to the editor,
    and until the first paint a same-size Resize and the resume's restyle are skipped.
    Afterwards Textual's own handling applies (a same-size Resize redraws after a suspend).
    """

    AUTO_FOCUS = "#task"  # straight to the task editor: each change of focus restyles

    def __init__(self, app: SbteamApp) -> None:
        size = app.size  # the breakpoint reached in each direction, as Screen's resize handler picks it
        width = max(b for b in app.HORIZONTAL_BREAKPOINTS if size.width >= b[0])[1]
        height = max(b for b in app.VERTICAL_BREAKPOINTS if size.height >= b[0])[1]
        super().__init__(id="_default", classes=f"{width} {height}")

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        if not self.sbteam.painted:
            event.refresh_styles = False  # styled as its widgets mounted, a moment ago

    @property
    def sbteam(self) -> SbteamApp:
        app = self.app
        assert isinstance(app, SbteamApp)
        return app

    def on_resize(self, event: events.Resize) -> None:
        app = self.sbteam
        if not app.painted and event.size == self.size and not app._background_screens:
            event.prevent_default()  # a same-size layout before the first paint: nothing would change
            event.stop()
        # Runs before Screen's own resize handler sets the breakpoint classes: look after it.
        self.call_after_refresh(app.update_files_hint)


class SbteamApp(RunDriver, SandboxFiles, DataUpload, PastRuns, Boot):
    """sbteam-tui: watch a Swarm of three agents solve a data task in a sandbox."""

    CSS_PATH = "app.tcss"
    TITLE = "sbteam"
    ENABLE_COMMAND_PALETTE = True
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW_WIDTH, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (SHORT_HEIGHT, "-tall")]
    BINDINGS = commands.bindings()  # short descriptions (the footer drops what does not fit); the palette has the long ones

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
        self.settings = None if isinstance(settings, ConfigError) else settings
        self.initial_task = task
        self.autostart = autostart and bool(task)
        self.controller_factory = controller_factory or default_controller
        self.output_dir = output_dir or Path.cwd() / "sbteam-output"
        self.cursor_blink = cursor_blink
        self.ctrl = None
        self.run_id = None
        self.current_task = None
        self.run_state = "idle"  # as the controller last told it (RunStateChanged)
        self._state_told = False
        self._stop_asked: str | None = None
        self._sending = False
        self.warming = False
        self.booted = asyncio.Event()
        self._quitting = False
        self.approve_mode = approve
        self.run_panes = []
        self.painted = False  # the first paint is out (until then start-up skips redundant work)
        self.side_ready = asyncio.Event()  # the file tree and the preview are mounted (after the first paint)

    # -- layout -----------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        return MainScreen(self)

    def compose(self) -> ComposeResult:
        task = default_task(self.settings) if self.initial_task is None else self.initial_task
        yield Header(show_clock=False, icon="◆")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield Transcript(image_loader=self._read_image, notes=self._welcome(), id="transcript",
                                 classes="run-pane")
                yield TaskInput(task, id="task")
            yield Vertical(id="side")  # the file tree and the preview come right after the first paint
        yield StatusBar(id="status", classes="run-pane")
        yield PriorityFooter()

    def on_mount(self) -> None:
        if os.environ.get("SBTEAM_PAINT_FILE"):  # bench/bench_tui.py: time to first paint
            self.call_after_refresh(self.report_first_paint)
        self.call_after_refresh(self._after_first_paint)
        self.quit_on_signals()
        if self.config_error is not None:
            from tui.screens.config_error import ConfigErrorScreen

            self.push_screen(ConfigErrorScreen(self.config_error.problems))
            return
        settings = self.settings
        assert settings is not None
        self._collect_run_panes()
        task_input = self.query_one(TaskInput)
        task_input.cursor_blink = self.cursor_blink
        task_input.border_title = "Task — enter: send · ctrl+j: newline · ↑↓: history"
        self.query_one(Transcript).border_title = "Transcript"
        # [models #14] each agent's model and the spend cap in the status bar
        from team.agent_models import agent_models, model_label

        model = model_label(settings)  # "DEMO" in the DEMO
        self.sub_title = inert(model)
        self.status.set(
            model=model, models=agent_models(settings), max_cost=settings.max_cost, demo=settings.is_demo,
            sandbox_kind=settings.sandbox, max_messages=settings.max_messages, timeout=settings.timeout,
            approve=self.approve_mode,
        )
        task_input.focus()
        self.call_after_refresh(self.call_after_refresh, self._boot)  # after the first paint is out

    async def _after_first_paint(self) -> None:
        self.painted = True
        _gc_after_first_paint()
        await self._mount_side()

    async def _mount_side(self) -> None:
        """The file tree and the preview, mounted right after the first paint.

        At start both are empty (the sandbox has no files yet), and their five widgets and
        four style sheets cost ~10 ms of the first paint, so the first frame shows the side
        pane's place (its width is the layout's, nothing moves) and its contents follow in the
        next frame, before any event can reach them: the engine boots after this frame.
        Textual's `Lazy` does the same, but says nowhere when it is done, and the run panes
        must be known before the first event."""
        from tui.widgets.file_tree import FileTree
        from tui.widgets.preview import Preview

        tree = FileTree(id="files", classes="run-pane")
        tree.border_title = "Sandbox files"
        preview = Preview(id="preview")
        preview.border_title = "Preview"
        await self.screen_stack[0].query_one("#side").mount(tree, preview)
        if self.settings is not None:
            self._collect_run_panes()
        self.side_ready.set()

    def _collect_run_panes(self) -> None:
        """The panes the driver posts engine events to, the app last: its toasts follow."""
        self.run_panes = [*self.screen_stack[0].query(".run-pane"), self]

    def _welcome(self) -> list[tuple[str, str]]:
        """The transcript's first lines (in the first paint): the DEMO hint and how to use it."""
        if self.settings is None:
            return []
        return ([(DEMO_HINT, "bold yellow")] if self.settings.is_demo else []) + [(WELCOME, "dim")]

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

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        """Any worker that fails (all run with exit_on_error=False): one line, never a traceback."""
        if event.state is WorkerState.ERROR and not self._quitting:
            worker = event.worker
            self.log.error(f"worker {worker.name!r} failed: {worker.error!r}")
            what = (worker.group if worker.group != "default" else worker.name).strip("_").replace("_", " ")
            self.notify(f"{what} failed: {one_line(worker.error or 'unknown error')}", severity="error", timeout=15)

    # -- keys ---------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The app's commands in the palette too (ctrl+p), from the same table as the keys."""
        yield from super().get_system_commands(screen)
        if self.config_error is None:
            yield from commands.system_commands(self)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in commands.MAIN_ONLY:
            approval = self._approval_screen()
            if action == "stop" and approval is not None and approval.editing:
                return False  # Esc undoes the edit first (the dialog's own binding); a second Esc stops
            if action in ("stop", "toggle_approve") and approval is not None:
                pass  # Esc stops the run while it waits for an approval; F6 turns the mode off
            elif self.config_error is not None or self.screen is not self.screen_stack[0]:
                return False  # let modals and the palette have their keys
        if action == "stop" and self.run_state not in ACTIVE:
            return None
        if action == "restart" and not self.current_task:
            return None
        return True

    def _approval_screen(self) -> ApprovalScreen | None:
        """The approval dialog when it is the active screen. Its module is imported with the
        first dialog: until then no screen can be one (the footer asks at the first paint)."""
        module = sys.modules.get("tui.screens.approval")
        if module is None or not isinstance(self.screen, module.ApprovalScreen):
            return None
        return self.screen

    def action_scroll_bottom(self) -> None:
        self.transcript.scroll_to_bottom()


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
