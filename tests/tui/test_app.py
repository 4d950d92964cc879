"""Pilot tests of the app's layout and keys, driven by the scripted fake controller."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Markdown, Static
from textual.widgets._footer import FooterKey

from team.config import ConfigError, Settings
from team.events import Handoff, Message, RunFinished, ToolCall, ToolResult
from tests.tui.conftest import SIZE, wait_for
from tests.tui.fake_controller import SANDBOX_FAILURE, short_script
from tui.app import DEMO_HINT, SbteamApp, default_task
from tui.screens.config_error import ConfigErrorScreen
from tui.screens.new_task import NewTaskModal
from tui.widgets.preview import Preview
from tui.widgets.status_bar import PriorityFooter
from tui.widgets.task_input import TaskInput
from tui.widgets.transcript_items import MessageView, ToolView


def _ready(app: SbteamApp) -> bool:
    return app.ctrl is not None and not app.warming


def _texts(app: SbteamApp) -> str:
    """Visible text of every mounted transcript item (Markdown source included)."""
    parts = []
    for item in app.transcript.items:
        if isinstance(item, MessageView):
            parts.append(f"[{item.agent}] {item.text}")
        elif isinstance(item, Static):
            parts.append(str(item.render()))
    return "\n".join(parts)


async def test_idle_screen(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        task_input = app.query_one(TaskInput)
        assert task_input.text == default_task(app.settings)
        assert app.focused is task_input
        assert app.sub_title == "DEMO"
        await app.transcript.flush_now()
        assert DEMO_HINT in _texts(app)
        status = app.status.plain
        assert "idle" in status and "DEMO" in status and "local·bwrap" in status
        assert "msgs 0/30" in status and "0s/600s" in status


async def test_sandbox_warm_up_is_shown(make_app):
    app = make_app(warm_delay=1.0)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ctrl is not None)
        assert "starting sandbox" in app.status.plain
        await wait_for(pilot, lambda: "idle" in app.status.plain)
        commands = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Stop run", "Restart run", "New task", "Save file"} <= set(commands)


async def test_sandbox_that_failed_to_start_is_shown_and_retried(make_app):
    app = make_app(sandbox_failures=2)  # the warm-up and the first run's start fail
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.pause()
        status = app.status
        assert "local·FAILED" in status.plain and "unknown" not in status.plain
        first_line = SANDBOX_FAILURE.splitlines()[0]
        assert first_line in str(status.tooltip) and SANDBOX_FAILURE.splitlines()[1] not in str(status.tooltip)
        assert any(first_line in n.message and n.severity == "error" for n in app._notifications)
        await pilot.press("enter")  # the run tries to start it again, and fails again
        await wait_for(pilot, lambda: app.run_state == "finished")
        assert "finished: ERROR" in status.plain and "local·FAILED" in status.plain
        assert first_line in str(status.tooltip)
        app.query_one(TaskInput).load_text("again")
        await pilot.press("enter")  # the app still works: this start succeeds
        await wait_for(pilot, lambda: "finished: TERMINATE" in status.plain)
        assert "local·bwrap" in status.plain and "FAILED" not in status.plain and not status.tooltip
        assert app.ctrl.calls.count("start") == 2


async def test_tab_moves_between_panes_not_into_tool_calls(make_app):
    app = make_app(all_files_visible=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_state == "finished")
        await app.transcript.flush_now()
        await pilot.pause()
        assert len([w for w in app.transcript.items if isinstance(w, ToolView)]) == 3
        chain = app.screen.focus_chain
        assert not [w for w in chain if app.transcript in w.ancestors], chain
        stops = []
        for _ in range(4):
            await pilot.press("tab")
            stops.append(app.focused.id)
        assert stops == ["files", "preview-body", "transcript", "task"]


async def test_footer_shows_every_main_key(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.pause()
        keys = {k.key_display: k.description for k in app.query_one(PriorityFooter).query(FooterKey)}
        for key in ("⏎", "^r", "^n", "^b", "^s", "f4", "^e", "f6", "^q", "^p"):
            assert key in keys, (key, keys)
        assert keys["f6"] == "Approval" and keys["^e"] == "Export"


async def test_ctrl_r_forgets_the_old_sandboxs_files(make_app):
    app = make_app(delay=0.3, script=short_script, all_files_visible=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("enter")
        preview = await _select(app, pilot, "data_stats.json")
        assert app.file_tree.entries
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.run_id == "run-002")
        await pilot.pause()
        assert preview.path is None
        assert "fresh sandbox" in str(preview.query_one("#preview-title", Static).render())
        assert not preview.query_one("#preview-body").children


async def test_toasts_leave_the_status_bar_readable(make_app):
    from textual.widgets._toast import Toast

    app = make_app()
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        app.notify("a long enough message to cover the right end of the status bar", timeout=30)
        await wait_for(pilot, lambda: bool(app.screen.query(Toast)))
        await pilot.pause()
        status, footer = app.status.region, app.query_one(PriorityFooter).region
        for toast in app.screen.query(Toast):
            assert not toast.region.overlaps(status) and not toast.region.overlaps(footer)


async def test_not_isolated_warning(make_app):
    app = make_app(isolation="none")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        assert "NOT ISOLATED" in app.status.plain


async def test_whole_run_renders_transcript_tree_and_status(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_state == "finished")
        await app.transcript.flush_now()
        await pilot.pause(0.1)
        assert "finished: TERMINATE" in app.status.plain
        agents = [w.agent for w in app.transcript.items if isinstance(w, MessageView)]
        assert {"user", "Planner", "CodeAgent", "AnalystAgent"} <= set(agents)
        text = _texts(app)
        assert "Planner → CodeAgent" in text and "CodeAgent → AnalystAgent" in text
        streamed = next(w for w in app.transcript.items if isinstance(w, MessageView) and w.agent == "Planner")
        assert streamed.done and "3. 异常值分析" in streamed.text
        analyst = next(w for w in app.transcript.items if isinstance(w, MessageView) and w.agent == "AnalystAgent")
        assert analyst.markdown.source == "均值约为 **50.12**，标准差 9.88。\n\n发现 2 个异常值。"  # no doubled tokens
        tools = [w for w in app.transcript.items if isinstance(w, ToolView)]
        assert len(tools) == 3
        assert tools[0].output == "saved 100\n"
        assert tools[2].has_class("error")
        await wait_for(pilot, lambda: len(tools[1].query(".thumb")) == 1)
        await wait_for(pilot, lambda: "outlier_analysis.json" in app.file_tree.entries)
        assert {"data_points.csv", "data_stats.json", "data_histogram.png"} <= set(app.file_tree.entries)
        assert "data_points.csv" in app.file_tree.unseen
        assert sum(isinstance(e, Handoff) for e in app.transcript.record) == 3
        # the task went to the history and the editor is empty for the next one
        task_input = app.query_one(TaskInput)
        assert task_input.text == ""
        await pilot.press("up")
        assert task_input.text == default_task(app.settings)
        await pilot.press("down")
        assert task_input.text == ""
        # viewing a file clears its "new" mark, the others keep it
        await _select(app, pilot, "data_points.csv")
        assert "data_points.csv" not in app.file_tree.unseen
        assert "data_stats.json" in app.file_tree.unseen


async def test_escape_stops_gracefully_and_keys_still_work(make_app):
    app = make_app(delay=0.5, script=short_script)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.transcript.record) >= 3)
        shown: list[str] = []  # what the status bar said after each state change (load-independent)
        set_state = app.set_run_state

        def record(state: str) -> None:
            set_state(state)
            shown.append(app.status.plain)

        app.set_run_state = record
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.run_state == "finished", limit=10)
        assert "stopping" in shown[0] and "STOPPED" not in shown[0]
        assert "finished: STOPPED" in app.status.plain
        assert app.ctrl.calls.count("stop") == 1
        await pilot.press("h", "i")
        assert app.query_one(TaskInput).text == "hi"


async def test_second_escape_forces(make_app):
    app = make_app(delay=2.0, script=short_script)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.ctrl.state == "running")
        await pilot.press("escape", "escape")  # the second one before the engine has said "stopping"
        await wait_for(pilot, lambda: app.run_state == "finished", limit=3)
        assert "stop(force)" in app.ctrl.calls
        assert "STOPPED" in app.status.plain


async def test_ctrl_r_restarts_the_same_task(make_app):
    app = make_app(delay=0.05, script=short_script)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.transcript.record) >= 3)
        first = app.run_id
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.run_id not in (None, first))
        await wait_for(pilot, lambda: app.run_state == "finished", limit=10)
        assert app.run_id == "run-002" and "restart" in app.ctrl.calls
        assert app.ctrl.task == default_task(app.settings)
        assert "finished: TERMINATE" in app.status.plain


async def test_ctrl_n_asks_then_resets(make_app):
    app = make_app(script=short_script)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_state == "finished")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, NewTaskModal)
        await pilot.press("escape")  # cancel keeps everything
        await pilot.pause()
        assert not isinstance(app.screen, NewTaskModal) and app.transcript.record
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press("r")
        await wait_for(pilot, lambda: "reset_sandbox" in app.ctrl.calls and app.run_state == "idle")
        await wait_for(pilot, lambda: not app.transcript.items)
        assert app.transcript.record == []
        assert app.focused is app.query_one(TaskInput)
        assert "idle" in app.status.plain


async def test_events_of_a_run_left_while_they_were_queued_are_not_shown(make_app):
    """Ctrl+N while a run's events are still queued at the panes: none of them reaches the
    new conversation (the transcript, the status bar), whatever pane they were posted to."""
    app = make_app(script=short_script)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        app.run_id = "run-old"
        # Posted to the panes, then (before any of them ran) the user started over:
        app.handle_event(Message(run_id="run-old", agent="Planner", text="from the run the user left"))
        app.run_id = None
        await pilot.pause()
        await pilot.pause()
        assert not any(isinstance(e, Message) for e in app.transcript.record)
        assert "Planner" not in app.status.plain
        app.handle_event(Message(run_id="", agent="Planner", text="an event of no run is always shown"))
        await wait_for(pilot, lambda: any(isinstance(e, Message) for e in app.transcript.record))


async def test_ctrl_n_keep_during_run_stops_it(make_app):
    app = make_app(delay=1.0, script=short_script)  # ~11 s of events; stopped early
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.ctrl.state == "running")
        await pilot.press("ctrl+n")
        await pilot.pause()
        seen = len(app.transcript.record)
        await wait_for(pilot, lambda: len(app.transcript.record) > seen)  # still rendering under the modal
        await pilot.press("k")
        await wait_for(pilot, lambda: app.run_state == "idle" and app.ctrl.state == "finished")
        assert "stop(force)" in app.ctrl.calls and "reset_sandbox" not in app.ctrl.calls


async def test_newline_key_and_empty_task(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        task_input = app.query_one(TaskInput)
        task_input.load_text("first")
        task_input.move_cursor(task_input.document.end)
        await pilot.press("ctrl+j", "x")
        assert task_input.text == "first\nx"
        task_input.load_text("   ")
        await pilot.press("enter")  # nothing to send
        assert app.run_state == "idle" and "start" not in app.ctrl.calls


async def test_toggle_file_pane(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        side = app.query_one("#side")
        await pilot.press("ctrl+b")
        assert not side.display
        await pilot.press("f2")
        assert side.display


async def test_config_error_screen():
    problems = ["SBTEAM_SANDBOX must be 'local' or 'e2b' (got 'docker')", "SBTEAM_TIMEOUT must be a number"]
    app = SbteamApp(ConfigError(problems))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ConfigErrorScreen)
        shown = " ".join(str(w.render()) for w in app.screen.query(".problem"))
        assert "SBTEAM_SANDBOX" in shown and "SBTEAM_TIMEOUT" in shown
        assert ".env" in str(app.screen.query_one("#hint", Static).render())
        await pilot.press("q")
        await pilot.pause()
    assert app.ctrl is None


async def test_run_error_notifies_and_app_stays_usable(make_app):
    def failing(run_id: str, task: str):
        return [RunFinished(run_id=run_id, reason="error", message="AuthenticationError: 401 invalid key")]

    app = make_app(script=failing)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_state == "finished")
        assert "finished: ERROR" in app.status.plain
        errors = [n for n in app._notifications if n.severity == "error"]
        assert errors and "401" in errors[0].message
        app.ctrl.script = lambda run_id, task: [RunFinished(run_id=run_id, reason="terminate")]
        app.query_one(TaskInput).load_text("again")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "TERMINATE" in app.status.plain)


async def test_ctrl_q_force_stops_at_once_and_closes(make_app):
    import time

    app = make_app(delay=3.0, script=short_script)  # a graceful stop would wait for the next turn
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.ctrl.state == "running" and len(app.transcript.record) >= 2)
        ctrl = app.ctrl
        started = time.monotonic()
        await pilot.press("ctrl+q")
        assert "quitting" in app.status.plain
        await wait_for(pilot, lambda: ctrl.closed)
        took = time.monotonic() - started
    assert ctrl.closed and ctrl.calls[-2:] == ["stop(force)", "close"]
    assert took < 1.0, took


async def test_many_messages_stay_capped(make_app, monkeypatch):
    import tui.widgets.transcript as transcript_module

    monkeypatch.setattr(transcript_module, "MAX_MOUNTED", 40)
    monkeypatch.setattr(transcript_module, "KEEP_RICH", 10)
    MAX_MOUNTED, KEEP_RICH = 40, 10  # noqa: N806 - the patched values
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        app.run_id = "x"  # the run the app shows (events of any other are dropped)
        for i in range(100):  # one burst: only the last MAX_MOUNTED get mounted
            app.handle_event(Message(run_id="x", agent="Planner", text=f"message {i}", message_id=f"m{i}"))
        await app.transcript.flush_now()
        await pilot.pause()
        items = app.transcript.items
        assert len(items) == MAX_MOUNTED
        assert len(app.transcript.record) == 100
        assert app.transcript.hidden == 100 - MAX_MOUNTED + 2  # + the DEMO hint and welcome lines
        note = app.transcript.query_one("#hidden-note", Static)
        assert note.display and "earlier items hidden" in str(note.render())
        assert items[-1].text == "message 99"
        compact = [w for w in items if isinstance(w, MessageView) and w.compact]
        assert len(compact) == MAX_MOUNTED - KEEP_RICH  # only the newest keep a Markdown widget


async def _select(app: SbteamApp, pilot, path: str) -> Preview:
    await wait_for(pilot, lambda: path in app.file_tree.entries)
    app.file_tree.select_path(path)
    preview = app.preview
    await wait_for(pilot, lambda: preview.path == path)
    await pilot.pause()
    return preview


async def test_previews_of_each_kind(make_app):
    app = make_app(all_files_visible=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        preview = await _select(app, pilot, "data_points.csv")
        assert preview.kind == "csv"
        table = preview.query_one(DataTable)
        assert table.row_count == 100 and len(table.columns) == 2

        preview = await _select(app, pilot, "reports/big.csv")
        assert preview.query_one(DataTable).row_count == 1000
        assert "500 more rows" in str(preview.query_one("#preview-note", Static).render())

        preview = await _select(app, pilot, "data_stats.json")
        assert preview.kind == "json"
        body = preview.query_one("#preview-body").children[0]
        assert "50.1234" in body.content.code  # pretty-printed Syntax

        preview = await _select(app, pilot, "data_histogram.png")
        from textual_image.widget import HalfcellImage

        assert preview.kind == "image" and preview.query(HalfcellImage)

        preview = await _select(app, pilot, "model.bin")
        assert preview.kind == "binary"
        assert "NumPy array" in str(preview.query_one("#preview-body Static").render())

        preview = await _select(app, pilot, "notes.md")
        assert preview.kind == "markdown" and preview.query(Markdown)

        preview = await _select(app, pilot, "analysis.py")
        assert preview.kind == "text"
        assert preview.query_one("#preview-body").children[0].content.lexer is not None


async def test_large_file_is_read_partially(make_app, files_dir: Path, monkeypatch):
    import tui.widgets.preview as preview_module

    monkeypatch.setattr(preview_module, "MAX_PREVIEW_BYTES", 2_000)  # the cap the app reads (tui/files.py)
    (files_dir / "reports" / "run.log").write_text("".join(f"step {i}: ok\n" for i in range(1500)))
    app = make_app(all_files_visible=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        preview = await _select(app, pilot, "reports/run.log")
        title = str(preview.query_one("#preview-title", Static).render())
        assert "first" in title and "shown" in title
        # a table over the cap is read in the sandbox instead: its first rows, and how many there are
        preview = await _select(app, pilot, "reports/big.csv")
        await wait_for(pilot, lambda: preview.kind == "table")
        assert "1,500" in str(preview.query_one("#preview-note", Static).render())
        # where a CSV is read on the host in part (a past run's files, in history), the pane says so
        data = (files_dir / "reports" / "big.csv").read_bytes()
        await preview.show("reports/big.csv", data[:2_000], size=len(data))
        await pilot.pause()
        assert "read partially" in str(preview.query_one("#preview-note", Static).render())


async def test_save_selected_file(make_app, tmp_path: Path):
    app = make_app(all_files_visible=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await _select(app, pilot, "data_stats.json")
        await pilot.press("ctrl+s")
        saved = tmp_path / "out" / "sandbox" / "data_stats.json"
        await wait_for(pilot, saved.exists)
        assert any("Saved data_stats.json" in n.message for n in app._notifications)


def test_settings_fixture_is_demo(settings: Settings):
    assert settings.is_demo


async def test_autoscroll_pauses_when_scrolled_up(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        app.run_id = "x"  # the run the app shows (events of any other are dropped)

        async def add(start: int, count: int) -> None:
            for i in range(start, start + count):
                app.handle_event(Message(run_id="x", agent="Planner", text=f"line {i}", message_id=f"a{i}"))
            await app.transcript.flush_now()
            await pilot.pause(0.1)

        transcript = app.transcript
        await add(0, 20)
        assert transcript.scroll_y == transcript.max_scroll_y > 0  # anchored at the bottom
        transcript.focus()
        await pilot.press("pageup", "pageup")
        held = transcript.scroll_y
        assert held < transcript.max_scroll_y
        await add(20, 3)
        assert transcript.scroll_y == held  # the reader's place is kept
        await pilot.press("end")  # back at the bottom: following again
        await add(23, 3)
        assert transcript.scroll_y == transcript.max_scroll_y


async def test_a_streaming_message_without_its_markdown_keeps_its_tokens():
    """The flush timer can tick while a message view has no Markdown child (not composed
    yet, or removed as the app shuts down): no crash, and the tokens wait for the next flush."""
    from textual.app import App

    class Host(App):
        def compose(self):
            yield MessageView("Planner", streaming=True)

    app = Host()
    async with app.run_test() as pilot:
        view = app.query_one(MessageView)
        await view.query_one(Markdown).remove()
        view.add_token("half of ")
        view.finish("half of it")
        await view.flush()
        assert view.buffer == ["half of "] and not view.done
        await view.mount(Markdown(""))
        await view.flush()
        await pilot.pause()
        assert view.done and view.buffer == []
        assert view.query_one(Markdown).source.strip() == "half of it"


async def test_a_tool_view_whose_children_are_gone_takes_output_quietly():
    """As the app shuts down a tool view's children go first; output or a result arriving
    then (or its first mount in that moment) must not raise NoMatches."""
    from textual.app import App

    call = ToolCall(run_id="r", agent="CodeAgent", call_id="c1", name="run_code", arguments={"code": "print(1)"})

    class Host(App):
        def compose(self):
            yield ToolView(call)

    app = Host()
    async with app.run_test() as pilot:
        view = app.query_one(ToolView)
        await view.remove_children()
        view.add_output("1\n")
        view.set_result(ToolResult(run_id="r", agent="CodeAgent", call_id="c1", name="run_code", content="1"))
        await pilot.pause()
        assert view.output == "1\n" and view.result is not None


async def test_the_file_trees_cursor_stays_on_its_file_when_the_listing_is_rebuilt(make_app):
    """A new file in the sandbox rebuilds the tree; the cursor stayed on the file the user
    was on only if the tree had laid its new lines out first, else it went to the top."""
    from tui.widgets.file_tree import FileTree

    app = make_app(all_files_visible=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "data_stats.json" in app.file_tree.entries)
        tree = app.file_tree
        tree.select_path("data_stats.json")
        await wait_for(pilot, lambda: tree.selected_path == "data_stats.json")
        (app.ctrl.files_dir / "0-new.txt").write_text("new")  # sorts first: every line below moves
        tree.post_message(FileTree.Stale())
        await wait_for(pilot, lambda: "0-new.txt" in tree.entries)
        await pilot.pause()
        assert tree.selected_path == "data_stats.json"
