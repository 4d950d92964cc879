"""Fixtures for the TUI tests: a fake controller over deterministic files,
halfcell images (snapshots must not depend on the terminal), no cursor blink."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from team.config import Settings
from tests.tui.fake_controller import FakeController, make_files
from tui.app import SbteamApp
from tui.widgets.images import set_renderer

SIZE = (160, 48)


@pytest.fixture(autouse=True)
def _halfcell_images():
    set_renderer("halfcell")
    yield
    set_renderer(None)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(demo=True, home=tmp_path / "home", sandbox="local")


@pytest.fixture
def files_dir(tmp_path: Path) -> Path:
    return make_files(tmp_path / "sandbox")


@pytest.fixture
def make_app(settings: Settings, files_dir: Path, tmp_path: Path) -> Callable[..., SbteamApp]:
    """`make_app(delay=..., **app_kwargs)` → app whose `fake` attribute is the controller."""

    def factory(*, task: str | None = None, autostart: bool = False, **fake_kwargs: Any) -> SbteamApp:
        holder: dict[str, FakeController] = {}

        def build(s: Settings) -> FakeController:
            holder["ctrl"] = FakeController(s, files_dir=files_dir, **fake_kwargs)
            return holder["ctrl"]

        app = SbteamApp(
            settings,
            task=task,
            autostart=autostart,
            controller_factory=build,
            output_dir=tmp_path / "out",
            cursor_blink=False,
        )
        app.fake_holder = holder  # type: ignore[attr-defined]
        return app

    return factory


async def wait_for(pilot, predicate: Callable[[], bool], limit: float = 10.0) -> None:
    """Pause the pilot until `predicate()` is true (fails after `limit` s). A widget not mounted
    yet (the file pane comes right after the first paint) is a condition not met yet."""
    import time

    from textual.css.query import NoMatches

    def met() -> bool:
        try:
            return predicate()
        except NoMatches:
            return False

    deadline = time.monotonic() + limit
    while not met():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)


def dialog_shown(app, cls: type) -> bool:
    """`cls` is the active screen and has its focus set: keys pressed now reach it
    (a screen is active as soon as it is pushed, before its widgets are mounted)."""
    screen = app.screen
    return isinstance(screen, cls) and app.focused is not None and app.focused.screen is screen
