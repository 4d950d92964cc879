"""The app with the real engine and local sandbox (a scripted model): Ctrl+O uploads two
files, the Planner is told what they are, a pasted path offers an upload, and Enter after
TERMINATE asks the same team a follow-up (same kernel, history in the model's request)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from autogen_core.models import FunctionExecutionResultMessage
from textual import events

from team.config import Settings
from team.run import RunController
from team.scripted import Call, Say, ScriptedChatCompletionClient, Turn
from tui.app import SbteamApp
from tui.screens.data_picker import DataPickerScreen, UploadPastedModal
from tui.widgets.task_input import TaskInput

from .conftest import wait_for

SIZE = (160, 48)


class Model:
    """Planner → CodeAgent (x = 41, then x + 1 in a follow-up) → Planner: TERMINATE."""

    def __init__(self) -> None:
        self.planner_saw: list[list[str]] = []

    def __call__(self, turn: Turn):
        texts = turn.user_texts()
        if turn.agent == "Planner":
            self.planner_saw.append(texts)
            last_user = max(i for i, m in enumerate(turn.messages) if getattr(m, "source", "") == "user")
            if any(isinstance(m, FunctionExecutionResultMessage) for m in turn.messages[last_user + 1 :]):
                return Say("Done. TERMINATE")
            return Call("transfer_to_codeagent", thought="over to you")
        if turn.tool_results() and (turn.index % 2 == 1):
            return Call("transfer_to_planner")
        return Call("run_code", {"code": "x + 1" if len(texts) > 1 else "x = 41"})


@pytest.fixture
def data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "mydata"
    folder.mkdir()
    (folder / "a.csv").write_text("city,temp\nOslo,3\nRome,18\n")
    (folder / "b.csv").write_text("x;y\n1;2\n3;4\n5;6\n")
    monkeypatch.chdir(folder)
    return folder


def _app(tmp_path: Path, model: Model) -> SbteamApp:
    settings = Settings(demo=False, openai_api_base="http://127.0.0.1:9/v1", openai_model="scripted",
                        home=tmp_path / "home", sandbox="local", prompts="en")

    def factory(s: Settings) -> RunController:
        return RunController(s, model_factory=lambda: ScriptedChatCompletionClient(model))

    return SbteamApp(settings, controller_factory=factory, output_dir=tmp_path / "out", cursor_blink=False)


async def test_ctrl_o_uploads_two_files_and_the_planner_is_told(tmp_path: Path, data_folder: Path) -> None:
    model = Model()
    app = _app(tmp_path, model)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ctrl is not None and not app.warming, limit=30)
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, DataPickerScreen))
        picker = app.screen
        await wait_for(pilot, lambda: len(picker.browser.root.children) == 2)
        await pilot.press("down", "space", "down", "space")
        assert [p.name for p in picker.marked] == ["a.csv", "b.csv"]
        await pilot.press("enter")
        await wait_for(pilot, lambda: {"data/a.csv", "data/b.csv"} <= set(app.file_tree.entries), limit=30)
        assert {"data/a.csv", "data/b.csv"} <= app.file_tree.unseen  # marked new in the tree
        task = app.query_one(TaskInput)
        task.load_text("what is in my data?")
        task.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_state == "finished", limit=60)
    first_task = model.planner_saw[0][0]
    assert "data/a.csv: 2 rows × 2 columns" in first_task and "data/b.csv: 3 rows × 2 columns" in first_task
    assert "city (object), temp (int64)" in first_task  # b.csv's `;` was sniffed too: x, y
    assert "x (int64), y (int64)" in first_task


async def test_a_pasted_path_offers_an_upload(tmp_path: Path, data_folder: Path) -> None:
    app = _app(tmp_path, Model())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ctrl is not None and not app.warming, limit=30)
        task = app.query_one(TaskInput)
        task.load_text("")
        task.focus()
        task.post_message(events.Paste(str(data_folder / "a.csv")))
        await wait_for(pilot, lambda: isinstance(app.screen, UploadPastedModal))
        assert task.text == ""  # not typed into the task
        await pilot.press("u")
        await wait_for(pilot, lambda: "data/a.csv" in app.file_tree.entries, limit=30)
        task.post_message(events.Paste("just some words, not a path"))
        await pilot.pause()
        assert not isinstance(app.screen, UploadPastedModal) and "just some words" in task.text


async def test_enter_after_terminate_asks_the_same_team_again(tmp_path: Path) -> None:
    model = Model()
    app = _app(tmp_path, model)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ctrl is not None and not app.warming, limit=30)
        task = app.query_one(TaskInput)
        task.load_text("set x")
        task.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_state == "finished", limit=60)
        first_run = app.run_id
        task.load_text("now add one to x")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_state == "finished" and app.status.turn == 2, limit=60)
        await app.transcript.flush_now()
        assert app.run_id == first_run  # the same conversation
        assert "turn 2" in app.status.plain
        results = [e for e in app.transcript.record if e.type == "tool_result" and e.turn == 2]
        assert results and "42" in results[-1].content  # x from turn 1: the same kernel
        with contextlib.suppress(Exception):
            await app.ctrl.close()
    assert model.planner_saw[-1][:2] == ["set x", "now add one to x"]  # the history, then the question


async def test_parquet_and_excel_previews_are_read_in_the_sandbox(tmp_path: Path, data_folder: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"region": ["north", "south"] * 600, "units": range(1200)})
    frame.to_parquet(data_folder / "sales.parquet")
    with pd.ExcelWriter(data_folder / "book.xlsx") as writer:
        frame.head(5).to_excel(writer, sheet_name="first", index=False)
        pd.DataFrame({"other": [1, 2, 3]}).to_excel(writer, sheet_name="second", index=False)
    app = _app(tmp_path, Model())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ctrl is not None and not app.warming, limit=30)
        app.upload_data([str(data_folder / "sales.parquet"), str(data_folder / "book.xlsx")])
        await wait_for(pilot, lambda: "data/sales.parquet" in app.file_tree.entries, limit=30)

        def select(path: str) -> None:
            app.file_tree.select_path(path)

        select("data/sales.parquet")
        await wait_for(pilot, lambda: app.preview.kind == "table" and app.preview.path == "data/sales.parquet", limit=30)
        assert app.preview.table["total"] == 1200 and len(app.preview.table["rows"]) == 200
        app.preview.query_one("#preview-body").focus()
        await pilot.press("s")
        await wait_for(pilot, lambda: "stats" in app.preview.table, limit=30)
        assert [row[0] for row in app.preview.table["stats"]["rows"]] == ["region", "units"]
        select("data/book.xlsx")
        await wait_for(pilot, lambda: app.preview.kind == "table" and app.preview.path == "data/book.xlsx", limit=30)
        assert app.preview.table["sheets"] == ["first", "second"] and app.preview.table["sheet"] == "first"
        app.preview.query_one("#preview-body").focus()
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: app.preview.table.get("sheet") == "second", limit=30)
        assert app.preview.table["columns"] == ["other"]
