"""Shown instead of the main screen when the settings are invalid: what is
wrong and how to fix it, never a traceback."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui.inert import inert

FIX_HINT = """\
Fix it in the `.env` file of the folder you start sbteam-tui from (or in the environment,
which wins over `.env`), then start the app again. The variables:

  OPENAI_API_KEY      key for the model endpoint (none → DEMO mode)
  OPENAI_API_BASE     any OpenAI-compatible endpoint, e.g. http://localhost:11434/v1
  OPENAI_MODEL        model name (default gpt-4o)
  E2B_API_KEY         E2B cloud sandbox key
  SBTEAM_SANDBOX      local or e2b
  SBTEAM_PROMPTS      zh or en
  SBTEAM_MAX_MESSAGES, SBTEAM_TIMEOUT   termination limits (30, 600 s)

`sbteam-tui doctor` checks the whole configuration."""


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
            yield Static(FIX_HINT, id="hint", markup=False)
        yield Footer()
