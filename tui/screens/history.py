"""History (F4): past runs from `SBTEAM_HOME/runs/`, searchable as you type.

Enter opens a run read-only: its transcript re-rendered from `events.jsonl`
with the same `Transcript` widget as a live run, and its saved files
(`runs/<id>/files/` on the host) in a tree with the same previews. From there
`r` resumes it with a new instruction (the app then drives it as a normal
run), `m` / `i` export it as Markdown / notebook. Esc goes back.

All file reading happens in threads; the records are plain files, so a run of
a crashed app shows up too (as "interrupted"). A record's texts (task, reason,
events, file names) are shown inert (tui/inert.py), as in a live run.

Just over the ~400-line guide: the list, the read-only replay and its file pane are one
screen's parts and share its record reader.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Static, Tree
from textual.widgets.data_table import ColumnKey

from team.events import TokenDelta
from team.history import plural
from team.session import FileEntry
from tui.format import cost_label, reason_label, tokens
from tui.inert import inert, inert_markup
from tui.screens.choice import ChoiceModal
from tui.widgets.file_tree import FileTree
from tui.widgets.preview import MAX_PREVIEW_BYTES, Preview
from tui.widgets.transcript import Transcript

TASK_WIDTH = 48  # at most; narrower on a narrow screen so Started, Reason and Task all show
TASK_MIN = 14
AROUND_TASK = 36  # cells the Started and Reason columns, paddings and the scrollbar take
INCOMPLETE_MARK = "⚠ record incomplete"


class HostFiles:
    """A run's saved files (`runs/<id>/files`), with the sandbox's list/read surface."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def list_entries(self) -> list[FileEntry]:
        if not self.root.is_dir():
            return []
        entries = []
        for path in sorted(self.root.rglob("*")):
            if path.name.startswith(".") and path.name.endswith(".partial"):
                continue  # a copy an app stopped mid-way left (the record says it is incomplete)
            stat = path.stat()
            rel = path.relative_to(self.root).as_posix()
            entries.append(FileEntry(rel, 0 if path.is_dir() else stat.st_size, path.is_dir(), stat.st_mtime))
        return entries

    def read(self, path: str, max_bytes: int = MAX_PREVIEW_BYTES) -> bytes:
        root = self.root.resolve()
        target = (root / path).resolve()
        if not target.is_relative_to(root):
            raise ValueError(f"{path} is outside the run's files")
        with target.open("rb") as fh:
            return fh.read(max_bytes)

    async def read_image(self, path: str) -> bytes:
        return await asyncio.to_thread(self.read, path, 5_000_000)


async def export_and_notify(app: Any, runs_dir: Path, run_id: str, fmt: str) -> Path | None:
    """Export a recorded run (in a thread) and tell the user where it went."""
    from team.export import export_run

    try:
        path = await asyncio.to_thread(export_run, runs_dir, run_id, fmt)
    except Exception as exc:  # a damaged record: said in a toast
        app.notify(f"Cannot export run {run_id}: {exc}", severity="error", timeout=10)
        return None
    kind = "Markdown" if fmt == "md" else "notebook"
    app.notify(f"{path}", title=f"Exported as {kind}", timeout=12)
    return path


def _started(iso: str) -> str:
    return iso.replace("T", " ")[:16] if iso else "?"


def _task_line(task: str, width: int = TASK_WIDTH) -> str:
    line = next((ln.strip() for ln in task.splitlines() if ln.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def task_width(screen_width: int) -> int:
    """The Task column's width for a screen this wide (the columns after it may scroll)."""
    return max(TASK_MIN, min(TASK_WIDTH, screen_width - AROUND_TASK))


class HistoryScreen(Screen[None]):
    """A table of past runs and a search box that filters it live."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("enter", "open", "Open run"),
        Binding("down", "focus_table", "Runs", show=False),
    ]

    DEFAULT_CSS = """
    HistoryScreen #history-search { margin: 0 1; }
    HistoryScreen #history-table { height: 1fr; margin: 0 1; }
    HistoryScreen #history-count { height: 1; padding: 0 2; color: $text-muted; }
    """

    def __init__(self, runs_dir: Path) -> None:
        super().__init__()
        self.runs_dir = Path(runs_dir)
        self.runs: list[Any] = []
        self.shown: list[Any] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◆")
        yield Input(placeholder="search: task, run id or reason (filters as you type)", id="history-search")
        yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="history-count")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "History"
        self.sub_title = "past runs · enter: open read-only"
        table = self.query_one(DataTable)
        self.task_width = task_width(self.app.size.width)
        table.add_column("Started", key="started")
        table.add_column("Reason", key="reason")
        table.add_column("Task", key="task", width=self.task_width)
        for label in ("Duration", "Files", "Msgs", "Tokens", "Cost", "Run"):
            table.add_column(label, key=label.lower())
        search = self.query_one(Input)
        search.cursor_blink = getattr(self.app, "cursor_blink", True)
        search.focus()
        self._load()

    @work(exclusive=True, group="history-load", exit_on_error=False)
    async def _load(self) -> None:
        from team.history import list_runs

        try:
            self.runs = await asyncio.to_thread(list_runs, self.runs_dir)
        except Exception as exc:  # an unreadable runs folder: said, and an empty list
            self.notify(f"Cannot read the run history: {exc}", severity="error")
            self.runs = []
        self.loaded = True
        self.apply_filter(self.query_one(Input).value)

    def on_resize(self) -> None:
        width = task_width(self.app.size.width)
        if self.loaded and width != getattr(self, "task_width", width):
            self.task_width = width
            table = self.query_one(DataTable)
            table.columns[ColumnKey("task")].width = width
            self.apply_filter(self.query_one(Input).value)  # rows again, cut to the new width

    @on(Input.Changed, "#history-search")
    def _search_changed(self, event: Input.Changed) -> None:
        if self.loaded:
            self.apply_filter(event.value)

    def apply_filter(self, text: str) -> None:
        """Show the runs whose task, id or reason contains `text` (newest first)."""
        self.shown = [r for r in self.runs if r.matches(text)]
        table = self.query_one(DataTable)
        table.clear()
        for run in self.shown:
            reason = reason_label(run.reason)
            style = "red" if run.reason in ("error", "interrupted") else ""
            reason_cell = Text(inert(reason), style=style)
            if run.incomplete:  # the record lacks something (full disk, I/O error): see the run's view
                reason_cell.append(f" {INCOMPLETE_MARK}", "bold yellow")
            table.add_row(  # str cells are read as markup: escaped, and inert
                inert_markup(_started(run.started)),
                reason_cell,
                inert_markup(_task_line(run.task if run.turns <= 1 else f"({run.turns} turns) {run.task}", self.task_width)),
                f"{run.duration:.0f} s",
                str(len(run.files)),
                str(run.messages),
                f"{tokens(run.tokens_in)}↑ {tokens(run.tokens_out)}↓",
                cost_label(run.cost, run.model == "DEMO"),
                inert_markup(run.run_id),
                key=run.run_id,
            )
        total = len(self.runs)
        note = f"{len(self.shown)} of {plural(total, 'run')}" if text.strip() else plural(total, "run")
        if not total:
            note = "no runs recorded yet"
        self.query_one("#history-count", Static).update(note)

    def action_back(self) -> None:
        self.dismiss()

    def action_focus_table(self) -> None:
        self.query_one(DataTable).focus()

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if self.shown:
            self.open_run(self.shown[min(max(table.cursor_row, 0), len(self.shown) - 1)].run_id)

    @on(Input.Submitted, "#history-search")
    def _search_submitted(self) -> None:
        self.action_open()

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.open_run(str(event.row_key.value))

    def open_run(self, run_id: str) -> None:
        summary = next((r for r in self.runs if r.run_id == run_id), None)
        if summary is not None:
            self.app.push_screen(RunViewScreen(self.runs_dir, summary))


class RunViewScreen(Screen[None]):
    """One past run, read-only: transcript from the record, saved files with previews."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("r", "resume", "Resume"),
        Binding("m", "export('md')", "Export .md"),
        Binding("i", "export('ipynb')", "Export .ipynb"),
    ]

    DEFAULT_CSS = """
    RunViewScreen #run-label { height: auto; padding: 0 1; background: $warning 25%; text-style: bold; }
    RunViewScreen #run-main { height: 1fr; }
    RunViewScreen #run-side { width: 42%; min-width: 32; max-width: 90; }
    RunViewScreen #run-files { height: 2fr; min-height: 6; border: round $secondary 40%;
        border-title-color: $text-muted; background: $surface; }
    RunViewScreen #run-files:focus { border: round $secondary; }
    RunViewScreen #run-preview { height: 3fr; border: round $secondary 40%; border-title-color: $text-muted; }
    """

    def __init__(self, runs_dir: Path, summary: Any) -> None:
        super().__init__()
        self.runs_dir = Path(runs_dir)
        self.summary = summary
        self.run_id: str = summary.run_id
        self.files = HostFiles(self.runs_dir / self.run_id / "files")
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◆")
        s = self.summary
        label = Text(f"read-only: run {self.run_id}", style="bold")
        reason = reason_label(s.reason)
        files = plural(len(s.files), "file")
        label.append(inert(f"  ·  {_started(s.started)} · {reason} · {s.duration:.0f} s · {files}"), "")
        if not s.resumable:
            label.append("  ·  cannot be resumed (no saved team state)", "dim")
        if s.incomplete:
            label.append(inert(f"\n{INCOMPLETE_MARK}: {s.incomplete}"), "bold yellow")
        yield Static(label, id="run-label")
        with Horizontal(id="run-main"):
            yield Transcript(image_loader=self.files.read_image, id="run-transcript")
            with Vertical(id="run-side"):
                yield FileTree(id="run-files")
                yield Preview(id="run-preview")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"Run {self.run_id}"
        self.sub_title = "read-only"
        self.query_one(Transcript).border_title = f"Transcript (read-only: run {self.run_id})"
        tree = self.query_one(FileTree)
        tree.border_title = "Saved files"
        tree.root.set_label(f"runs/{self.run_id}/files")
        self.query_one(Preview).border_title = "Preview"
        self._load()

    @property
    def transcript(self) -> Transcript:
        return self.query_one(Transcript)

    @work(exclusive=True, group="run-view", exit_on_error=False)
    async def _load(self) -> None:
        from team.history import load_events

        try:
            events = await asyncio.to_thread(load_events, self.runs_dir, self.run_id)
            entries = await asyncio.to_thread(self.files.list_entries)
        except Exception as exc:  # a damaged record: said in the transcript
            self.transcript.add_note(f"✗ cannot read run {self.run_id}: {exc}", "bold red")
            await self.transcript.flush_now()
            self.loaded = True
            return
        transcript = self.transcript
        for event in events:
            if not isinstance(event, TokenDelta):  # each Message holds its final text
                transcript.add_event(event)
        if not events:
            transcript.add_note("(the record holds no events)")
        await transcript.flush_now()
        self.query_one(FileTree).set_entries(entries)
        self.loaded = True

    @on(Tree.NodeSelected, "#run-files")
    def _file_selected(self, event: Tree.NodeSelected) -> None:
        event.stop()
        entry = event.node.data
        if entry is not None and not entry.is_dir:
            self._show_preview(entry)

    @work(exclusive=True, group="run-preview", exit_on_error=False)
    async def _show_preview(self, entry: FileEntry) -> None:
        preview = self.query_one(Preview)
        try:
            data = await asyncio.to_thread(self.files.read, entry.path, MAX_PREVIEW_BYTES)
        except Exception as exc:  # said in the preview pane
            await preview.show_message(entry.path, f"Cannot read {entry.path}: {exc}")
            return
        await preview.show(entry.path, data, size=max(entry.size, len(data)))

    def action_back(self) -> None:
        self.dismiss()

    def action_resume(self) -> None:
        if not self.summary.resumable:
            from team.history import resume_problem  # says exactly what is missing

            why = resume_problem(self.runs_dir, self.run_id) or f"Run {self.run_id} cannot be resumed."
            self.notify(inert(why), severity="warning")
            return
        self.app.push_screen(ResumeModal(self.run_id), self._resume_chosen)

    def _resume_chosen(self, instruction: str | None) -> None:
        if instruction:
            from tui.driver import RunDriver

            if isinstance(self.app, RunDriver):
                self.app.resume_run(self.run_id, instruction)

    def action_export(self, fmt: str) -> None:
        self.run_worker(export_and_notify(self.app, self.runs_dir, self.run_id, fmt), group="export")


class ResumeModal(ModalScreen[str | None]):
    """Asks for the instruction the resumed run goes on with."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    ResumeModal { align: center middle; }
    ResumeModal > Vertical {
        width: 80; max-width: 95%; height: auto; border: thick $primary; padding: 1 2; background: $surface;
    }
    ResumeModal #resume-question { margin-bottom: 1; }
    ResumeModal Horizontal { height: auto; align-horizontal: center; margin-top: 1; }
    ResumeModal Button { margin: 0 1; }
    """

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                f"Resume run {self.run_id}: the team goes on from where it stopped, with its files.\n"
                "What should it do next?",
                id="resume-question",
            )
            yield Input(placeholder="the new instruction, e.g. 'finish the analysis'", id="resume-instruction")
            with Horizontal():
                yield Button("Resume · enter", id="resume", variant="primary")
                yield Button("Cancel · esc", id="cancel")

    def on_mount(self) -> None:
        field = self.query_one(Input)
        field.cursor_blink = getattr(self.app, "cursor_blink", True)
        field.focus()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self._resume()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "resume":
            self._resume()
        else:
            self.dismiss(None)

    def _resume(self) -> None:
        text = self.query_one(Input).value.strip()
        if not text:
            self.notify("Type what the team should do next.", severity="warning")
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ExportModal(ChoiceModal):
    """Ctrl+E: export the current (or last) run as Markdown or a notebook."""

    BINDINGS = [
        Binding("m", "choose('md')", "Markdown"),
        Binding("i", "choose('ipynb')", "Notebook"),
        Binding("escape", "choose(None)", "Cancel"),
    ]
    CHOICES = [("m", "md", "Markdown", "primary"), ("i", "ipynb", "Notebook", "primary")]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def question(self) -> str:
        return f"Export run {self.run_id} (written next to its record)"
