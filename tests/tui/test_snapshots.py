"""Snapshot tests (pytest-textual-snapshot) made deterministic: the fake
controller's fixed run ids, times and files, no cursor blink, halfcell images,
notifications cleared, streams finished before the capture.

Baselines live in `__snapshots__/`; regenerate with `--snapshot-update` only
after looking at the report (Textual 8.2.8, Python 3.11).
"""

from __future__ import annotations

import pytest

from tests.tui.conftest import SIZE, wait_for
from tui.widgets.transcript_items import ToolView


async def _settle(pilot) -> None:
    app = pilot.app
    await app.transcript.flush_now()
    await pilot.pause()
    app.clear_notifications()
    await pilot.pause()


def test_idle_screen(snap_compare, make_app):
    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: app.ctrl is not None and not app.warming)
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_finished_demo_run(snap_compare, make_app):
    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: app.ctrl is not None and not app.warming)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_state == "finished")
        await wait_for(pilot, lambda: "outlier_analysis.json" in app.file_tree.entries)
        chart = [w for w in app.transcript.items if isinstance(w, ToolView)][1]
        await wait_for(pilot, lambda: bool(chart.query(".thumb")))
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize(
    "path",
    ["data_points.csv", "data_stats.json", "data_histogram.png", "analysis.py", "model.bin"],
    ids=["csv", "json", "png", "code", "binary"],
)
def test_preview(snap_compare, make_app, path: str):
    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: path in app.file_tree.entries)
        app.file_tree.select_path(path)
        await wait_for(pilot, lambda: app.preview.path == path)
        await _settle(pilot)

    assert snap_compare(make_app(all_files_visible=True), terminal_size=SIZE, run_before=run_before)


def _history_records(settings, files_dir) -> None:
    from tests.tui.fake_controller import write_record

    tasks = (
        ("20250102-093000-abc123", "Plot a histogram of 100 random points", "terminate", None),
        ("20250103-101500-def456", "Summarise sales.csv by region and month", "stopped", 0.0123),
        ("20250104-120000-0a1b2c", "Find outliers in the sensor data", "max_messages", 0.0),
    )
    for i, (run_id, task, reason, cost) in enumerate(tasks):
        write_record(settings.runs_dir, run_id, task, files_dir=files_dir, started=f"2025-01-0{i + 2}T09:30:00",
                     reason=reason, cost=cost, resumable=reason != "terminate")


def test_history_screen(snap_compare, make_app, settings, files_dir):
    from tui.screens.history import HistoryScreen

    _history_records(settings, files_dir)

    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: app.ctrl is not None and not app.warming)
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded)
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_history_run_view(snap_compare, make_app, settings, files_dir):
    from tui.screens.history import HistoryScreen, RunViewScreen

    _history_records(settings, files_dir)

    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: app.ctrl is not None and not app.warming)
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen) and app.screen.loaded)
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_approval_dialog(snap_compare, make_app):
    from tests.tui.fake_controller import RUN_CODE
    from tui.screens.approval import ApprovalScreen

    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: app.ctrl is not None and not app.warming)
        app.action_toggle_approve()
        app.push_screen(ApprovalScreen("CodeAgent", "run_code", {"code": RUN_CODE}))
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)
