"""A question answered with one key or one button (Ctrl+N's keep/reset, Ctrl+E's format)."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ChoiceModal(ModalScreen[str | None]):
    """Dismisses with the chosen id, or None on cancel.

    Subclasses set `CHOICES` (key, id, label, button variant), `BINDINGS` for the
    keys (so the footer shows them) and `question()`.
    """

    CHOICES: ClassVar[list[tuple[str, str, str, str]]] = []

    DEFAULT_CSS = """
    ChoiceModal { align: center middle; }
    ChoiceModal > Vertical {
        width: 64; height: auto; border: thick $primary; padding: 1 2; background: $surface;
    }
    ChoiceModal #question { margin-bottom: 1; }
    ChoiceModal Horizontal { height: auto; align-horizontal: center; }
    ChoiceModal Button { margin: 0 1; }
    """

    def question(self) -> str:
        return ""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question(), id="question")
            with Horizontal():
                for key, choice, label, variant in self.CHOICES:
                    yield Button(f"{label} [{key}]", id=choice, variant=variant)  # type: ignore[arg-type]  # the variants are Textual's literal names, given by the caller
                yield Button("Cancel [esc]", id="cancel")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)
