"""The app at 80×24 and 100×30: what a user sees must be on screen, not cut.

Pilot tests check regions against the screen (a widget counts as shown only
when all of it is inside the screen and not clipped by a container), the
keyboard-only approval flow (e, type, ctrl+s) and the history screen; snapshot
tests record each of those screens at both sizes.
"""

from __future__ import annotations

import pytest
from rich.cells import cell_len
from textual.css.query import NoMatches
from textual.errors import NoWidget
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, Static, TextArea
from textual.widgets._footer import FooterKey

from tests.tui.conftest import dialog_shown, wait_for
from tests.tui.fake_controller import RUN_CODE, write_record
from tests.tui.test_beyond_ui import approval_script
from tui.app import SbteamApp
from tui.screens.approval import EDIT_HINT, VIEW_HINT, ApprovalScreen
from tui.screens.history import HistoryScreen
from tui.widgets.status_bar import PriorityFooter, StatusBar, fit
from tui.widgets.task_input import TaskInput

SMALL = [(80, 24), (100, 30)]
SMALL_IDS = ["80x24", "100x30"]

# A cell long enough to need scrolling at both sizes (the dialog must scroll it, not its buttons).
LONG_CODE = RUN_CODE + "\n" + "\n".join(
    f"stat_{i} = float(np.percentile(data, {i * 4}))  # percentile {i * 4}" for i in range(1, 25)
)


def _ready(app: SbteamApp) -> bool:
    return app.ctrl is not None and not app.warming


def shown(widget: Widget) -> bool:
    """All of `widget` is on its screen: inside the terminal and not clipped by a container."""
    screen = widget.screen
    try:
        geometry = screen.find_widget(widget)
    except NoWidget:
        return False
    region = geometry.region
    return bool(region) and geometry.visible_region == region and screen.region.contains_region(region)


def footer_keys(screen) -> dict[str, FooterKey]:
    """The footer's keys as shown (key display → widget)."""
    return {key.key_display: key for key in screen.query_one(PriorityFooter).query(FooterKey)}


def assert_footer_fits(screen, width: int) -> None:
    keys = list(screen.query_one(PriorityFooter).query(FooterKey))
    assert keys, "the footer shows no key"
    for key in keys:
        assert shown(key), f"footer key {key.key_display} {key.description} is cut"
    assert sum(key.region.width for key in keys) <= width


# -- the main screen --------------------------------------------------------------------


@pytest.mark.parametrize("size", SMALL, ids=SMALL_IDS)
async def test_main_screen_fits(make_app, size):
    width, height = size
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.pause()
        for selector in ("#transcript", "#task", "#status"):
            assert shown(app.query_one(selector)), selector
        # under 110 columns the file pane is collapsed and the transcript says how to show it
        assert not app.query_one("#side").display
        assert app.transcript.border_subtitle == "files: ctrl+b"
        status = app.query_one(StatusBar)
        assert cell_len(status.plain) <= width - 2
        assert "● idle" in status.plain and "local·bwrap" in status.plain
        assert_footer_fits(app.screen, width)
        keys = footer_keys(app.screen)
        assert {"⏎", "^b", "^q", "^p"} <= set(keys), keys.keys()
        assert (app.query_one(TaskInput).region.height == 5) == (height < 30)  # short: a smaller editor


@pytest.mark.parametrize("size", SMALL, ids=SMALL_IDS)
async def test_file_pane_takes_the_transcripts_place(make_app, size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_state == "finished")
        await wait_for(pilot, lambda: "outlier_analysis.json" in app.file_tree.entries)
        await pilot.pause()
        assert app.transcript.border_subtitle == "4 new files: ctrl+b"
        await pilot.press("ctrl+b")
        await pilot.pause()
        for selector in ("#files", "#preview"):
            assert shown(app.query_one(selector)), selector
        assert not app.query_one("#left").display
        assert app.focused is app.file_tree
        await pilot.press("down", "enter")  # the first file: data_histogram.png
        await wait_for(pilot, lambda: app.preview.path == "data_histogram.png")
        await pilot.pause()
        assert app.transcript.border_subtitle == ""
        await pilot.press("f2")  # back: the transcript and the editor
        await pilot.pause()
        assert shown(app.query_one("#transcript")) and shown(app.query_one("#task"))
        assert not app.query_one("#side").display
        assert app.focused is app.query_one(TaskInput)
        assert app.transcript.border_subtitle == "3 new files: ctrl+b"  # the viewed one is no longer new


async def test_file_pane_follows_the_width(make_app):
    app = make_app()
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        side = app.query_one("#side")
        assert side.display and shown(side) and app.transcript.border_subtitle == ""
        await pilot.resize_terminal(90, 30)
        await pilot.pause()
        assert not side.display and app.transcript.border_subtitle == "files: ctrl+b"
        await pilot.resize_terminal(160, 40)
        await pilot.pause()
        assert side.display and shown(side)


def test_status_bar_drops_low_priority_parts():
    bar = StatusBar()
    fields = dict(state="running", agent="CodeAgent", messages=12, elapsed=75, tokens_in=12345, tokens_out=678,
                  model="gpt-4o", sandbox_kind="local", isolation="none", approve=True)
    for name, value in fields.items():
        setattr(bar, name, value)
    full = fit(bar.parts(), 0).plain
    assert "▰" in full and "gpt-4o" in full and "tok 12.3k↑" in full
    for width in (118, 100, 78, 60):
        text = fit(bar.parts(), width).plain
        assert cell_len(text) <= width and "…" not in text, (width, text)
        assert text.startswith("● running") and "APPROVE" in text
        assert "NOT ISOLATED" in text  # a security warning is never left out
    assert "gpt-4o" not in fit(bar.parts(), 78).plain and "▰" not in fit(bar.parts(), 78).plain
    assert "msgs 12/30" in fit(bar.parts(), 78).plain and "CodeAgent" in fit(bar.parts(), 78).plain


# -- the approval dialog ------------------------------------------------------------------


def _dialog_parts(dialog: ApprovalScreen) -> list[Widget]:
    return [dialog.query_one(selector) for selector in
            ("#approval-title", "#approval-reason", "#approve", "#edit", "#reject", "#approval-hint")]


@pytest.mark.parametrize("size", SMALL, ids=SMALL_IDS)
async def test_approval_dialog_shows_its_actions(make_app, size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        app.push_screen(ApprovalScreen("CodeAgent", "run_code", {"code": LONG_CODE}))
        await wait_for(pilot, lambda: dialog_shown(app, ApprovalScreen))
        await pilot.pause()
        dialog = app.screen
        for widget in _dialog_parts(dialog):
            assert shown(widget), widget
        assert str(dialog.query_one("#approval-hint", Static).render()) == VIEW_HINT
        assert {"a", "e", "r", "esc", "^q"} <= set(footer_keys(dialog))
        assert_footer_fits(dialog, size[0])
        # the code scrolls between the docked title and actions; the buttons stay put
        frame = dialog.query_one("#approval-dialog")
        assert frame.max_scroll_y > 0
        approve_at = dialog.query_one("#approve").region
        await pilot.press("pagedown")
        await pilot.pause()
        assert frame.scroll_y > 0
        assert dialog.query_one("#approve").region == approve_at
        assert app.focused is dialog.query_one("#approve", Button)


@pytest.mark.parametrize("size", SMALL, ids=SMALL_IDS)
async def test_approval_edit_and_confirm_by_keyboard_only(make_app, size):
    app = make_app(script=approval_script)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("f6", "enter")
        await wait_for(pilot, lambda: dialog_shown(app, ApprovalScreen))
        dialog = app.screen
        await pilot.press("e")
        await pilot.pause()
        editor = dialog.query_one(TextArea)
        assert app.focused is editor and shown(editor)
        for widget in _dialog_parts(dialog):
            assert shown(widget), widget
        assert str(dialog.query_one("#approval-hint", Static).render()) == EDIT_HINT
        approve = dialog.query_one("#approve", Button)
        assert "ctrl+s" in str(approve.label)
        assert approve.region.width >= cell_len(str(approve.label)) + 2  # the whole label, not cut
        assert "^s" in footer_keys(dialog)
        await pilot.press("end", "a", "r")  # a and r type into the editor now
        assert editor.text == "print('one')ar"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: dialog_shown(app, ApprovalScreen) and app.screen is not dialog)
        assert app.ctrl.decisions == [("a1", "edit", {"code": "print('one')ar"})]
        # Esc undoes an edit (the run goes on); a second Esc stops the run
        dialog = app.screen
        await pilot.press("e", "x", "escape")
        await pilot.pause()
        assert app.screen is dialog and not dialog.editing and app.run_state == "running"
        assert dialog.query_one(TextArea).text == "print('two')"
        await pilot.press("a")
        await wait_for(pilot, lambda: dialog_shown(app, ApprovalScreen) and app.screen is not dialog)
        await pilot.press("shift+tab")  # from Approve back to the reason
        assert isinstance(app.focused, Input)
        await pilot.press(*"no", "enter")
        await wait_for(pilot, lambda: app.run_state == "finished")
        assert [d[1:] for d in app.ctrl.decisions] == [
            ("edit", {"code": "print('one')ar"}), ("approve", None), ("reject", "no"),
        ]


# -- the history screen (tui/screens/history.py) ---------------------------------------------


def _history_records(settings, files_dir) -> None:
    tasks = (
        ("20250102-093000-abc123", "Plot a histogram of 100 random points", "terminate", None),
        ("20250103-101500-def456", "Summarise sales.csv by region and month", "stopped", 0.0123),
        ("20250104-120000-0a1b2c", "Find outliers in the sensor data", "max_messages", 0.0),
    )
    for i, (run_id, task, reason, cost) in enumerate(tasks):
        write_record(settings.runs_dir, run_id, task, files_dir=files_dir, started=f"2025-01-0{i + 2}T09:30:00",
                     reason=reason, cost=cost, resumable=reason != "terminate")


@pytest.mark.parametrize("size", SMALL, ids=SMALL_IDS)
async def test_history_screen_small(make_app, settings, files_dir, size):
    _history_records(settings, files_dir)
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded)
        await pilot.pause()
        history = app.screen
        for selector in ("#history-search", "#history-table", "#history-count"):
            assert shown(history.query_one(selector)), selector
        table = history.query_one(DataTable)
        assert table.row_count == 3
        await pilot.press(*"sales")
        await pilot.pause()
        assert table.row_count == 1
        await pilot.press("enter")
        from tui.screens.history import RunViewScreen

        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen) and app.screen.loaded)
        view = app.screen
        for selector in ("#run-transcript", "#run-files", "#run-preview"):
            try:
                assert shown(view.query_one(selector)), selector
            except NoMatches:  # the layout is history.py's: only what it has
                pass
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: app.screen is app.screen_stack[0])


# -- snapshots at both sizes --------------------------------------------------------------------


async def _settle(pilot) -> None:
    from tui.widgets.transcript_items import ToolView

    app = pilot.app
    for view in app.screen_stack[0].query(ToolView):  # charts load on their own: a snapshot waits for them
        if getattr(view, "result", None) is not None and view.result.images:
            await wait_for(pilot, lambda v=view: bool(v.query_one(".images").children))
    for screen in app.screen_stack:
        for transcript in screen.query("Transcript"):
            await transcript.flush_now()
    await pilot.pause()
    app.clear_notifications()
    await pilot.pause()


@pytest.mark.parametrize("size", SMALL, ids=SMALL_IDS)
def test_snapshot_main_after_run(snap_compare, make_app, size):
    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_state == "finished")
        await wait_for(pilot, lambda: "outlier_analysis.json" in app.file_tree.entries)
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SMALL, ids=SMALL_IDS)
def test_snapshot_files_pane(snap_compare, make_app, size):
    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: "data_stats.json" in app.file_tree.entries)
        await pilot.press("ctrl+b")
        app.file_tree.select_path("data_stats.json")
        await wait_for(pilot, lambda: app.preview.path == "data_stats.json")
        await _settle(pilot)

    assert snap_compare(make_app(all_files_visible=True), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SMALL, ids=SMALL_IDS)
def test_snapshot_approval_dialog(snap_compare, make_app, size):
    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: _ready(app))
        app.action_toggle_approve()
        app.push_screen(ApprovalScreen("CodeAgent", "run_code", {"code": LONG_CODE}))
        await wait_for(pilot, lambda: dialog_shown(app, ApprovalScreen))
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SMALL, ids=SMALL_IDS)
def test_snapshot_approval_editing(snap_compare, make_app, size):
    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: _ready(app))
        app.action_toggle_approve()
        app.push_screen(ApprovalScreen("CodeAgent", "run_code", {"code": RUN_CODE}))
        await wait_for(pilot, lambda: dialog_shown(app, ApprovalScreen))
        await pilot.press("e")
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SMALL, ids=SMALL_IDS)
def test_snapshot_history(snap_compare, make_app, settings, files_dir, size):
    _history_records(settings, files_dir)

    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded)
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


async def test_ctrl_b_before_the_file_pane_is_mounted_focuses_it_once_it_is(make_app):
    """The file tree and the preview are mounted a frame after the first paint: Ctrl+B typed
    ahead (narrow: it shows the pane) must neither fail nor be lost."""
    app = make_app()
    async with app.run_test(size=SMALL[0]) as pilot:
        mounted_before = app.side_ready.is_set()
        app.action_toggle_files()  # as the key would, at once
        await wait_for(pilot, lambda: app.focused is app.file_tree)
        assert not mounted_before, "the pane was already mounted: this test no longer tests the early key"
        assert shown(app.query_one("#files")) and not app.query_one("#left").display
