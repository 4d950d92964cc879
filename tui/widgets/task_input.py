"""Multi-line task editor: Enter sends, Ctrl+J / Shift+Enter insert a newline,
Up/Down walk the task history while the editor is empty (or shows a history entry).

A `TextArea` inserts a newline on Enter inside its own `_on_key`, before
non-priority bindings run, so the keys are intercepted there; the bindings
are still declared so the footer and the command palette show them.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

from tui.inert import inert


class TaskInput(TextArea):
    """The task editor with send-on-Enter and a history."""

    BINDINGS = [
        Binding("enter", "submit", "Send", priority=False),
        Binding("ctrl+j", "newline", "Newline", key_display="^j/⇧⏎"),
    ]

    DEFAULT_CSS = """
    TaskInput {
        height: 7;
        border: round $primary 50%;
        border-title-color: $text-muted;
    }
    TaskInput:focus {
        border: round $primary;
    }
    """

    @dataclass
    class PathsPasted(Message):
        """A paste (or a dropped file) named existing host files: the app offers to upload them."""

        input: TaskInput
        paths: list[str]
        text: str

    @dataclass
    class Submitted(Message):
        """The user sent `text` (already stripped, never empty)."""

        input: TaskInput
        text: str

    def __init__(self, text: str = "", **kwargs) -> None:
        # A task given on the command line (--task) is shown inert (tui/inert.py):
        # its control characters appear as ␛, \x9b… and are sent as shown if edited.
        super().__init__(inert(text), soft_wrap=True, tab_behavior="focus", **kwargs)
        self.task_history: list[str] = []
        self._history_index: int | None = None

    def remember(self, task: str) -> None:
        """Add a sent task to the history (no consecutive duplicates)."""
        if task and (not self.task_history or self.task_history[-1] != task):
            self.task_history.append(task)
        self._history_index = None

    def action_submit(self) -> None:
        task = self.text.strip()
        if task:
            self.post_message(self.Submitted(self, task))

    def action_newline(self) -> None:
        start, end = self.selection
        self._replace_via_keyboard("\n", start, end)

    def _browsing(self) -> bool:
        if not self.text.strip():
            return True
        return self._history_index is not None and self.text == self.task_history[self._history_index]

    def _recall(self, step: int) -> bool:
        if not self.task_history or not self._browsing():
            return False
        if self._history_index is None:
            index = len(self.task_history) - 1 if step < 0 else None
        else:
            index = self._history_index + step
            if index < 0:
                index = 0
            elif index >= len(self.task_history):
                index = None
        self._history_index = index
        self.load_text("" if index is None else self.task_history[index])
        if index is not None:
            self.move_cursor(self.document.end)
        return True

    async def _on_paste(self, event: events.Paste) -> None:
        from team.uploads import pasted_paths

        paths = pasted_paths(event.text)
        if paths:  # not typed into the task: the app asks (upload, or paste as text)
            event.stop()
            event.prevent_default()
            self.post_message(self.PathsPasted(self, paths, event.text))
        # otherwise Textual's TextArea._on_paste inserts it as usual

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        if key == "enter":
            event.stop()
            event.prevent_default()
            self.action_submit()
            return
        if key in ("shift+enter", "ctrl+j"):
            event.stop()
            event.prevent_default()
            self.action_newline()
            return
        if key in ("up", "down") and self._recall(-1 if key == "up" else 1):
            event.stop()
            event.prevent_default()
            return
        # Not calling super(): Textual runs TextArea._on_key itself (MRO dispatch)
        # unless prevent_default() was called above.
