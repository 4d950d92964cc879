"""Pilot tests of history, resume, export, cost and approval mode in the app.

Mostly with the fake controller (fixed records written by `write_record`, or
the fake's own `record=True`); one test drives the real engine with a scripted
model: approve in the dialog, find the run in the history, resume it.
"""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import DataTable, Input, Static, TextArea

from team.config import Settings
from team.events import RunStarted, SandboxOutput, ToolCall, ToolResult
from tests.tui.conftest import SIZE, dialog_shown, wait_for
from tests.tui.fake_controller import demo_script, write_record
from tui.app import SbteamApp
from tui.screens.approval import ApprovalScreen
from tui.screens.history import ExportModal, HistoryScreen, ResumeModal, RunViewScreen
from tui.widgets.file_tree import FileTree
from tui.widgets.preview import Preview
from tui.widgets.transcript import Transcript
from tui.widgets.transcript_items import MessageView, ToolView

RUNS = (
    ("20250102-093000-abc123", "Plot a histogram of 100 random points"),
    ("20250103-101500-def456", "Summarise sales.csv by region"),
    ("20250104-120000-0a1b2c", "Find outliers in the sensor data"),
)


def _ready(app: SbteamApp) -> bool:
    return app.ctrl is not None and not app.warming


def _texts(transcript: Transcript) -> str:
    parts = []
    for item in transcript.items:
        if isinstance(item, MessageView):
            parts.append(f"[{item.agent}] {item.text}")
        elif isinstance(item, ToolView):
            parts.append(f"tool {item.call.name} {item.call.arguments} -> {item.result.content if item.result else ''}")
        elif isinstance(item, Static):
            parts.append(str(item.render()))
    return "\n".join(parts)


def _records(settings: Settings, files_dir: Path) -> None:
    for i, (run_id, task) in enumerate(RUNS):
        write_record(settings.runs_dir, run_id, task, files_dir=files_dir, started=f"2025-01-0{i + 2}T09:30:00",
                     reason=("terminate", "stopped", "max_messages")[i], cost=(None, 0.0123, 0.0)[i])


async def _open_history(app: SbteamApp, pilot) -> HistoryScreen:
    await wait_for(pilot, lambda: _ready(app))
    await pilot.press("f4")
    await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded)
    return app.screen  # type: ignore[return-value]


async def test_history_lists_searches_and_opens_a_run_read_only(make_app, settings, files_dir):
    _records(settings, files_dir)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        history = await _open_history(app, pilot)
        table = history.query_one(DataTable)
        assert table.row_count == 3
        first = [str(c) for c in table.get_row_at(0)]
        assert first[-1] == RUNS[2][0]  # newest first
        assert "2025-01-04 09:30" in first and "Find outliers in the sensor data" in first
        assert "MAX MESSAGES" in first and "$0" in first and "3" in first  # files count, DEMO cost
        assert "$0.0123" in [str(c) for c in table.get_row_at(1)]
        await pilot.press(*"HISTOGRAM")  # the search box has focus; filters as you type
        await pilot.pause()
        assert table.row_count == 1 and str(table.get_row_at(0)[-1]) == RUNS[0][0]
        assert "1 of 3 runs" in str(history.query_one("#history-count", Static).render())
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen) and app.screen.loaded)
        view = app.screen
        assert f"read-only: run {RUNS[0][0]}" in str(view.query_one("#run-label", Static).render())
        text = _texts(view.query_one(Transcript))
        assert RUNS[0][1] in text and "Plan: one step." in text and "print(1)" in text
        assert "finished: TERMINATE" in text and "tokens: Planner 800↑ 200↓" in text
        tree = view.query_one(FileTree)
        assert set(tree.entries) == {"data_points.csv", "data_stats.json", "analysis.py"}
        tree.select_path("data_stats.json")
        preview = view.query_one(Preview)
        await wait_for(pilot, lambda: preview.path == "data_stats.json")
        assert preview.kind == "json"
        assert app.transcript.record == []  # the live transcript is untouched
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is history
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
        assert "History" in [c.title for c in app.get_system_commands(app.screen)]


async def test_resume_from_history_runs_a_continuation(make_app, settings, files_dir):
    _records(settings, files_dir)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        history = await _open_history(app, pilot)
        history.query_one(DataTable).move_cursor(row=2)
        history.action_open()
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen) and app.screen.loaded)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ResumeModal))
        await pilot.press(*"finish", "space", *"it", "enter")
        await wait_for(pilot, lambda: app.screen is app.screen_stack[0] and app.run_state == "finished")
        assert app.ctrl.resumed == [(RUNS[0][0], "finish it")]
        started = next(e for e in app.transcript.record if isinstance(e, RunStarted))
        assert started.resumed_from == RUNS[0][0]
        assert "↻ continues 093000-abc123" in app.status.plain
        await app.transcript.flush_now()
        assert f"continues {RUNS[0][0]}" in _texts(app.transcript)


async def test_run_without_state_cannot_be_resumed(make_app, settings, files_dir):
    write_record(settings.runs_dir, RUNS[0][0], RUNS[0][1], resumable=False)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _open_history(app, pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen) and app.screen.loaded)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, RunViewScreen) and "resume" not in app.ctrl.calls
        assert any("cannot be resumed" in n.message for n in app._notifications)


async def test_export_keys_write_markdown_and_notebook(make_app, settings):
    app = make_app(record=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("ctrl+e")  # nothing to export yet
        assert not isinstance(app.screen, ExportModal)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_state == "finished")
        await pilot.press("ctrl+e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportModal))
        await pilot.press("m")
        md = settings.runs_dir / "run-001" / "transcript.md"
        await wait_for(pilot, md.exists)
        text = md.read_text(encoding="utf-8")
        assert "### CodeAgent" in text and "```python" in text and "Finished: TERMINATE" in text
        assert "![data_histogram.png](files/data_histogram.png)" in text
        await pilot.press("ctrl+e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportModal))
        await pilot.press("i")
        nb = settings.runs_dir / "run-001" / "notebook.ipynb"
        await wait_for(pilot, nb.exists)
        cells = [c for c in json.loads(nb.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
        assert len(cells) == 2 and "np.random.seed(42)" in "".join(cells[0]["source"])
        assert any(str(md) in n.message for n in app._notifications)
        # a past run exports from its read-only view too
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded)
        md.unlink()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen))
        await pilot.press("m")
        await wait_for(pilot, md.exists)


async def test_cost_and_per_agent_tokens(make_app):
    app = make_app(cost=0.0123)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        assert "$0" in app.status.plain  # DEMO costs nothing
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_state == "finished")
        assert "tok 480↑ 160↓ $0.0123" in app.status.plain
        assert "Planner 480↑ 160↓" in str(app.status.tooltip)
        await app.transcript.flush_now()
        assert "$0.0123" in _texts(app.transcript) and "tokens: Planner 480↑ 160↓" in _texts(app.transcript)
        app.status.set(demo=False, model="my-llama", cost=None)
        assert "160↓ —" in app.status.plain  # the model's price is unknown


def approval_script(run_id: str, task: str):
    events = []
    for i, word in enumerate(("one", "two", "three"), 1):
        cid = f"a{i}"
        events += [
            ToolCall(run_id=run_id, agent="CodeAgent", call_id=cid, name="run_code", arguments={"code": f"print('{word}')"}),
            SandboxOutput(run_id=run_id, stream="stdout", text=f"{word}\n", call_id=cid),
            ToolResult(run_id=run_id, agent="CodeAgent", call_id=cid, name="run_code", content=word),
        ]
    return events + demo_script(run_id, task)[-1:]


async def test_approval_dialog_approve_edit_reject(make_app):
    app = make_app(script=approval_script)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("f6")
        assert app.ctrl.approve and "APPROVE" in app.status.plain
        await pilot.press("enter")
        await wait_for(pilot, lambda: dialog_shown(app, ApprovalScreen))
        dialog = app.screen
        assert dialog.agent == "CodeAgent" and dialog.tool == "run_code" and dialog.original == "print('one')"
        await pilot.press("a")
        await wait_for(pilot, lambda: dialog_shown(app, ApprovalScreen) and app.screen is not dialog)
        dialog = app.screen
        await pilot.press("e")
        editor = dialog.query_one(TextArea)
        assert app.focused is editor
        editor.load_text("print('edited')")
        await pilot.press("ctrl+enter")
        await wait_for(pilot, lambda: dialog_shown(app, ApprovalScreen) and app.screen is not dialog)
        dialog = app.screen
        dialog.query_one(Input).focus()
        await pilot.press(*"not", "space", *"now", "enter")
        await wait_for(pilot, lambda: app.run_state == "finished")
        assert app.ctrl.decisions == [
            ("a1", "approve", None), ("a2", "edit", {"code": "print('edited')"}), ("a3", "reject", "not now"),
        ]
        await app.transcript.flush_now()
        text = _texts(app.transcript)
        assert "✓ approved by you\n" in text and "✓ approved by you (edited)" in text
        assert "✗ rejected by you: not now" in text
        assert "❌ the user rejected this run_code: not now" in text
        tools = [w for w in app.transcript.items if isinstance(w, ToolView)]
        assert tools[2].has_class("error") and tools[2].output == ""  # rejected code never ran
        assert "user edited" in tools[1].result.content


async def test_escape_stops_a_run_waiting_for_approval(make_app):
    app = make_app(script=approval_script)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        app.action_toggle_approve()
        await pilot.press("enter")
        await wait_for(pilot, lambda: dialog_shown(app, ApprovalScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.run_state == "finished")
        await wait_for(pilot, lambda: not isinstance(app.screen, ApprovalScreen))
        assert "finished: STOPPED" in app.status.plain
        assert app.screen is app.screen_stack[0] and not app.approvals.open


async def test_approval_mode_off_mid_run_approves_without_asking(make_app):
    app = make_app(script=approval_script)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("f6")
        await pilot.press("enter")
        await wait_for(pilot, lambda: dialog_shown(app, ApprovalScreen))
        await pilot.press("a")
        await wait_for(pilot, lambda: len(app.ctrl.decisions) == 1 and dialog_shown(app, ApprovalScreen))
        await pilot.press("f6")  # off, in the dialog: this call and the next are approved
        await wait_for(pilot, lambda: app.run_state == "finished")
        assert not isinstance(app.screen, ApprovalScreen)
        assert [d[1] for d in app.ctrl.decisions] == ["approve"] * 3
        assert "APPROVE" not in app.status.plain


# -- the real engine (scripted model, local sandbox): approve, history, resume ----------


def _engine_script(turn):
    from team.scripted import Call, Say

    if turn.agent == "Planner":
        if "finish" in turn.last_user_text():
            return Say("Continuing as asked. TERMINATE")
        return Call("transfer_to_codeagent") if turn.index == 0 else Say("All done. TERMINATE")
    if turn.agent == "CodeAgent" and turn.index == 0:
        return Call("run_code", {"code": "open('note.txt', 'w').write('hi')\nprint('wrote note')"})
    return Call("transfer_to_planner")


async def test_real_engine_approve_then_history_and_resume(tmp_path: Path):
    from team.run import RunController
    from team.scripted import ScriptedChatCompletionClient

    settings = Settings(demo=True, home=tmp_path / "home", sandbox="local")

    def factory(s: Settings) -> RunController:
        return RunController(s, model_factory=lambda: ScriptedChatCompletionClient(_engine_script), demo_pace=0)

    app = SbteamApp(settings, task="write a note", controller_factory=factory, output_dir=tmp_path / "out",
                    cursor_blink=False, approve=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ctrl is not None, limit=30)
        assert app.ctrl.approve and "APPROVE" in app.status.plain
        await pilot.press("enter")
        await wait_for(pilot, lambda: dialog_shown(app, ApprovalScreen), limit=30)
        assert "note.txt" in app.screen.original
        await pilot.press("a")
        await wait_for(pilot, lambda: app.run_state == "finished", limit=30)
        assert "finished: TERMINATE" in app.status.plain and "$0" in app.status.plain
        first = app.run_id
        outputs = "".join(e.text for e in app.transcript.record if isinstance(e, SandboxOutput))
        assert "wrote note" in outputs
        # the run is in the history, with its file
        history = await _open_history(app, pilot)
        assert history.query_one(DataTable).row_count == 1
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen) and app.screen.loaded, limit=10)
        assert "note.txt" in app.screen.query_one(FileTree).entries
        assert "wrote note" in _texts(app.screen.query_one(Transcript)) or "note.txt" in _texts(
            app.screen.query_one(Transcript)
        )
        # resume it with a new instruction
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ResumeModal))
        await pilot.press(*"finish", "enter")
        await wait_for(pilot, lambda: app.run_id != first and app.run_state == "finished", limit=30)
        started = next(e for e in app.transcript.record if isinstance(e, RunStarted) and e.run_id == app.run_id)
        assert started.resumed_from == first
        assert "↻ continues" in app.status.plain and "finished: TERMINATE" in app.status.plain
        ctrl = app.ctrl
        await pilot.press("ctrl+q")  # closes the sandbox: no kernel may outlive the test
        await wait_for(pilot, lambda: not app.is_running, limit=20)
    assert ctrl.state == "finished" and not ctrl.session.initialized
