"""Bringing the user's data in: Ctrl+O's file picker, and the questions around an upload.

The picker is Textual's `DirectoryTree` starting in the current folder, with a
filter box (names containing the text; folders always shown) and marks: Space
marks or unmarks the highlighted file or folder, Enter uploads what is marked
(or the highlighted one when nothing is), Esc cancels. It returns host paths; the
app uploads them (team.uploads), asking first above 500 MB.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Footer, Input, ProgressBar, Static

from team.sanitize import inert
from tui.screens.choice import ChoiceModal


class FilteredTree(DirectoryTree):
    """A DirectoryTree that shows only entries whose name contains `needle` (folders always)."""

    needle = ""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        needle = self.needle.lower()
        return [p for p in paths if not needle or needle in p.name.lower() or _is_dir(p)]


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


class DataPickerScreen(ModalScreen[list[str] | None]):
    """Pick host files and folders to upload into /home/user/data/ (see module doc)."""

    DEFAULT_CSS = """
    DataPickerScreen { align: center middle; }
    DataPickerScreen > Vertical {
        width: 90%; max-width: 110; height: 85%; border: thick $primary; background: $surface; padding: 0 1;
    }
    DataPickerScreen #picker-title { height: auto; margin-bottom: 1; }
    DataPickerScreen FilteredTree { height: 1fr; }
    DataPickerScreen #picker-marked { height: auto; color: $text-muted; }
    """
    BINDINGS = [
        Binding("space", "mark", "Mark", priority=True),
        Binding("enter", "upload", "Upload", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, start: Path | None = None) -> None:
        super().__init__()
        self.start = Path(start or Path.cwd())
        self.marked: list[Path] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                inert(f"Add data from {self.start} — into /home/user/data/ of the sandbox"), id="picker-title"
            )
            yield Input(placeholder="filter: part of a file name", id="picker-filter")
            yield FilteredTree(self.start, id="picker-tree")
            yield Static("space: mark · enter: upload the marked (or the highlighted) · esc: cancel", id="picker-marked")
            yield Footer()

    def on_mount(self) -> None:
        self.query_one(FilteredTree).focus()

    @property
    def browser(self) -> FilteredTree:
        return self.query_one(FilteredTree)

    @on(Input.Changed, "#picker-filter")
    def _filter(self, event: Input.Changed) -> None:
        self.browser.needle = event.value.strip()
        self.browser.reload()

    @on(Input.Submitted, "#picker-filter")
    def _filter_done(self) -> None:
        self.browser.focus()

    def _highlighted(self) -> Path | None:
        node = self.browser.cursor_node
        data = getattr(node, "data", None) if node is not None else None
        return Path(data.path) if data is not None else None

    def action_mark(self) -> None:
        if self.focused is not self.browser:
            self.query_one(Input).insert_text_at_cursor(" ")
            return
        path = self._highlighted()
        if path is None:
            return
        if path in self.marked:
            self.marked.remove(path)
        else:
            self.marked.append(path)
        names = ", ".join(p.name for p in self.marked[:4]) + (" …" if len(self.marked) > 4 else "")
        note = f"{len(self.marked)} marked: {names}" if self.marked else "nothing marked"
        self.query_one("#picker-marked", Static).update(inert(note + " · enter: upload · esc: cancel"))

    def action_upload(self) -> None:
        if self.focused is not self.browser:
            self.browser.focus()
            return
        chosen = self.marked or ([p] if (p := self._highlighted()) is not None else [])
        if chosen:
            self.dismiss([str(p) for p in chosen])

    def action_cancel(self) -> None:
        self.dismiss(None)


class UploadPastedModal(ChoiceModal):
    """A pasted (or dropped) text that names existing files: upload them, or keep it as text."""

    BINDINGS = [
        Binding("u", "choose('upload')", "Upload"),
        Binding("t", "choose('text')", "Paste as text"),
        Binding("escape", "choose(None)", "Cancel"),
    ]
    CHOICES = [("u", "upload", "Upload", "primary"), ("t", "text", "As text", "default")]

    def __init__(self, paths: list[str]) -> None:
        super().__init__()
        self.paths = paths

    def question(self) -> str:
        names = "\n".join(f"  {p}" for p in self.paths[:6]) + ("\n  …" if len(self.paths) > 6 else "")
        return inert(f"You pasted the path of existing file(s):\n{names}\nUpload to /home/user/data/, or paste the text?")


class ConfirmUploadModal(ChoiceModal):
    """An upload over 500 MB: go on?"""

    BINDINGS = [
        Binding("y", "choose('yes')", "Upload"),
        Binding("escape", "choose(None)", "Cancel"),
    ]
    CHOICES = [("y", "yes", "Upload", "warning")]

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def question(self) -> str:
        return inert(self.message)


class UploadProgressScreen(ModalScreen[None]):
    """A progress bar while a large upload runs (dismissed by the app when it ends)."""

    DEFAULT_CSS = """
    UploadProgressScreen { align: center middle; }
    UploadProgressScreen > Vertical { width: 70; height: auto; border: thick $primary; background: $surface; padding: 1 2; }
    """

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Uploading {self.total / (1 << 20):,.0f} MB to /home/user/data/ …")
            yield ProgressBar(total=self.total, show_eta=True, id="upload-bar")

    def advance_to(self, done: int) -> None:
        self.query_one(ProgressBar).update(progress=done)
