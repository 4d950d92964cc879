"""Shown instead of the main screen when the settings are invalid: what is
wrong and how to fix it, never a traceback."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from team.config_docs import fix_hints
from tui.inert import inert

FIX_HINT = """\
Fix it in the `.env` file of the folder you start sbteam-tui from (or in the environment,
which wins over `.env`), then start the app again. The variables:

{variables}

`.env.example` lists every variable; `sbteam-tui doctor` checks the whole configuration."""


class ConfigErrorScreen(Screen[None]):
    """Lists each configuration problem; q or Esc quits."""

    BINDINGS = [
        Binding("q", "app.quit", "Quit"),
        Binding("escape", "app.quit", "Quit", show=False),
    ]

    DEFAULT_CSS = """
    ConfigErrorScreen { align: center middle; }
    ConfigErrorScreen > Vertical {
        width: 100; max-width: 95%; height: auto; max-height: 90%;
        border: thick $error; padding: 1 2; background: $surface;
    }
    ConfigErrorScreen #title { text-style: bold; color: $error; margin-bottom: 1; }
    ConfigErrorScreen #problems { height: auto; max-height: 20; margin-bottom: 1; }
    ConfigErrorScreen #hint { color: $text-muted; }
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__()
        self.problems = problems

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("sbteam-tui cannot start: the configuration has problems", id="title")
            with VerticalScroll(id="problems"):
                for problem in self.problems:
                    yield Static(Text.assemble(("✗ ", "bold red"), inert(problem)), classes="problem")
            yield Static(FIX_HINT.format(variables="\n".join(fix_hints(self.problems))), id="hint", markup=False)
        yield Footer()
