"""The README's "Extending" section, run: a new pane is one widget with a handler, fed by the
run driver without another branch in the app (the pane's code is taken from the README)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import tui.app as tui_app
from tui.app import SbteamApp

from .conftest import wait_for

README = Path(__file__).resolve().parents[2] / "README.md"
SIZE = (160, 48)


def _pane_class() -> type:
    section = README.read_text(encoding="utf-8").split("**A new pane**", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "the README's pane example is gone"
    namespace: dict[str, Any] = {"__name__": "readme_pane"}
    exec(compile(code.group(1), "README.md", "exec"), namespace)  # noqa: S102  (our own README)
    return namespace["CallCounter"]


async def test_the_readmes_pane_counts_the_tool_calls_of_a_run(make_app) -> None:
    counter_class = _pane_class()

    class WithCounter(SbteamApp):
        CSS_PATH = str(Path(tui_app.__file__).parent / "app.tcss")  # relative to the app's own module

        def compose(self):  # the one line a new pane adds to the app
            yield from super().compose()
            yield counter_class(id="counter")

    plain = make_app()
    app = WithCounter(
        plain.settings, controller_factory=plain.controller_factory, output_dir=plain.output_dir, cursor_blink=False
    )
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ctrl is not None and not app.warming)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_state == "finished")
        counter = app.query_one("#counter")
        await wait_for(pilot, lambda: counter.calls > 0)
        shown = [item for item in app.transcript.items if type(item).__name__ == "ToolView"]
        assert counter.calls == len(shown) and "tool calls" in str(counter.render())
