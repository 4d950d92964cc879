"""Ctrl+N: start over with a new task — keep the sandbox's files and variables, or reset it?"""

from __future__ import annotations

from textual.binding import Binding

from tui.screens.choice import ChoiceModal


class NewTaskModal(ChoiceModal):
    """Dismisses with "keep", "reset" or None (cancel)."""

    BINDINGS = [
        Binding("k", "choose('keep')", "Keep sandbox"),
        Binding("r", "choose('reset')", "Reset sandbox"),
        Binding("escape", "choose(None)", "Cancel"),
    ]
    CHOICES = [("k", "keep", "Keep", "primary"), ("r", "reset", "Reset", "warning")]

    def __init__(self, running: bool = False) -> None:
        super().__init__()
        self.running = running

    def question(self) -> str:
        question = "New task: the transcript is cleared."
        if self.running:
            question += " The current run is stopped."
        return question + "\nKeep the sandbox (files and variables) or reset it to an empty one?"
