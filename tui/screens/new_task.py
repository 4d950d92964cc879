"""Ctrl+N: start over with a new task — keep the sandbox's files and variables, or reset it?"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class NewTaskModal(ModalScreen[str | None]):
    """Dismisses with "keep", "reset" or None (cancel)."""

    BINDINGS = [
        Binding("k", "choose('keep')", "Keep sandbox"),
        Binding("r", "choose('reset')", "Reset sandbox"),
        Binding("escape", "choose(None)", "Cancel"),
    ]

    DEFAULT_CSS = """
    NewTaskModal { align: center middle; }
    NewTaskModal > Vertical {
        width: 64; height: auto; border: thick $primary; padding: 1 2; background: $surface;
    }
    NewTaskModal #question { margin-bottom: 1; }
    NewTaskModal Horizontal { height: auto; align-horizontal: center; }
    NewTaskModal Button { margin: 0 1; }
    """

    def __init__(self, running: bool = False) -> None:
        super().__init__()
        self.running = running

    def compose(self) -> ComposeResult:
        question = "New task: the transcript is cleared."
        if self.running:
            question += " The current run is stopped."
        question += "\nKeep the sandbox (files and variables) or reset it to an empty one?"
        with Vertical():
            yield Static(question, id="question")
            with Horizontal():
                yield Button("Keep [k]", id="keep", variant="primary")
                yield Button("Reset [r]", id="reset", variant="warning")
                yield Button("Cancel [esc]", id="cancel")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)
