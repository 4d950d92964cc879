"""A seventh tool is one `ToolSpec` (issue 15): the README's own "Extending" snippet,
registered by a fixture and nothing else, is in the CodeAgent's workbench, the approval
rules, the written-call guard, the approval dialog and headless approval, and runs."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from autogen_core.models import ModelInfo
from autogen_ext.models.replay import ReplayChatCompletionClient
from textual.app import App
from textual.widgets import TextArea

from team import events as ev
from team import tools
from team.headless import TerminalApprover
from team.run import RunController
from team.scripted import Call, Say, ScriptedChatCompletionClient, Turn
from team.session import CodeSession
from team.swarm import build_team, offered_tool_names
from team.text_tools import looks_like_text_tool_call
from tests.tui import fake_controller
from tui.screens.approval import ApprovalScreen

README = Path(__file__).resolve().parents[1] / "README.md"
SIX = ("run_code", "install_package", "list_files", "read_file", "write_file", "generate_chart")
SEVENTH = "query_table"
CALL_ARGS = {"file_path": "prices.csv", "expression": "price > 100"}


def readme_snippet() -> str:
    """The python block of the README's "Extending" section."""
    section = README.read_text(encoding="utf-8").split("\n## Extending\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match, "the Extending section has no python example"
    return match.group(1)


@pytest.fixture
def seventh_tool():
    """Runs the README's snippet (which registers the tool); unregisters it afterwards."""
    namespace: dict = {"__name__": "readme_extending"}
    exec(compile(readme_snippet(), "README.md (Extending)", "exec"), namespace)
    try:
        yield tools.get(SEVENTH)
    finally:
        tools.unregister(SEVENTH)


def test_without_it_the_registry_holds_the_seeds_six():
    assert tools.tool_names() == SIX
    assert tools.tool_names("AnalystAgent") == ("read_file",)
    assert set(tools.NEEDS_APPROVAL) == {"run_code", "install_package", "write_file"}
    assert set(tools.READ_ONLY) == {"list_files", "read_file"}
    assert [tools.editable_arg(n) for n in SIX] == ["code", "package_name", "", "", "content", ""]


def test_the_readme_tool_is_registered_after_the_six(seventh_tool):
    assert seventh_tool is not None and seventh_tool.needs_approval and not seventh_tool.read_only
    assert tools.tool_names() == (*SIX, SEVENTH)
    assert tools.needs_approval(SEVENTH) and tools.editable_arg(SEVENTH) == "expression"
    assert SEVENTH in tools.NEEDS_APPROVAL and SEVENTH not in tools.READ_ONLY
    assert SEVENTH in fake_controller.NEEDS_APPROVAL  # the TUI tests' fake controller asks for it too


async def test_it_is_in_the_code_agents_workbench_only(seventh_tool):
    ctx = tools.ToolContext(CodeSession(factory=None))
    info = ModelInfo(vision=False, function_calling=True, json_output=False, family="unknown",
                     structured_output=False)
    team = build_team(
        ReplayChatCompletionClient(["TERMINATE"], model_info=info),
        tools.build_tools(ctx, "CodeAgent"),
        tools.build_tools(ctx, "AnalystAgent"),
    )
    offered = {}
    for agent in team.swarm._participants:
        listed = [t for wb in getattr(agent, "_workbench", []) for t in await wb.list_tools()]
        offered[agent.name] = {t["name"]: t for t in listed}
    assert tuple(offered["CodeAgent"]) == (*SIX, SEVENTH)
    assert tuple(offered["AnalystAgent"]) == ("read_file",)
    schema = offered["CodeAgent"][SEVENTH]
    assert schema["description"] == seventh_tool.description
    assert set(schema["parameters"]["properties"]) == {"file_path", "expression"}
    assert set(schema["parameters"]["required"]) == {"file_path", "expression"}


def test_the_written_call_guard_knows_it(seventh_tool):
    names = offered_tool_names("CodeAgent")
    assert names == (*SIX, SEVENTH, "transfer_to_planner")
    assert looks_like_text_tool_call("Action: query_table(file_path='prices.csv')", names)
    assert SEVENTH not in offered_tool_names("AnalystAgent")


async def test_headless_approval_edits_its_editable_argument(seventh_tool):
    feed = ["e\n", "price > 10\n", ".\n"]
    out = io.StringIO()
    ask = TerminalApprover(lambda: feed.pop(0) if feed else "", out)
    assert await ask("CodeAgent", "c1", SEVENTH, dict(CALL_ARGS)) == ("edit", {"expression": "price > 10"})
    assert "wants to query_table" in out.getvalue() and "│ price > 100" in out.getvalue()


class DialogHost(App[None]):
    """Just the approval dialog for one call of the seventh tool."""

    def __init__(self) -> None:
        super().__init__()
        self.decision: object = None

    def on_mount(self) -> None:
        self.push_screen(ApprovalScreen("CodeAgent", SEVENTH, dict(CALL_ARGS)), self._decided)

    def _decided(self, decision: object) -> None:
        self.decision = decision


async def test_the_approval_dialog_shows_its_editable_argument_as_code(seventh_tool):
    app = DialogHost()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ApprovalScreen)
        assert dialog.field == "expression" and dialog.original == "price > 100"
        editor = dialog.query_one("#approval-editor", TextArea)
        assert editor.show_line_numbers and not editor.soft_wrap  # a python expression: code
        await pilot.press("e")
        assert app.focused is editor and editor.text == "price > 100"
        editor.load_text("price > 10")
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert app.decision == ("edit", {"expression": "price > 10"})


def _script(turn: Turn):
    if turn.agent == "Planner":
        return Call("transfer_to_codeagent") if turn.index == 0 else Say("Done. TERMINATE")
    if turn.index == 0:
        return Call("write_file", {"file_path": "prices.csv", "content": "item,price\npen,2\nbook,12\nlamp,40\n"})
    if turn.index == 1:
        return Call(SEVENTH, dict(CALL_ARGS))
    return Call("transfer_to_planner")


async def test_it_runs_in_a_real_run_with_headless_approval(seventh_tool, settings):
    """The real engine and local sandbox: the CodeAgent calls it, `run --approve`'s
    approver edits the expression, and the edited query runs in the sandbox."""
    feed = ["a\n", "e\n", "price > 10\n", ".\n"]  # approve write_file, edit query_table
    out = io.StringIO()
    controller = RunController(settings, model_factory=lambda: ScriptedChatCompletionClient(_script))
    controller.approve = True
    controller.approver = TerminalApprover(lambda: feed.pop(0) if feed else "", out)
    try:
        controller.start("query the prices")
        events = [e async for e in controller.events()]
    finally:
        await controller.close()
    result = next(e for e in events if isinstance(e, ev.ToolResult) and e.name == SEVENTH)
    assert not result.is_error, result.content
    assert "book" in result.content and "lamp" in result.content and "pen" not in result.content
    assert "the user edited the arguments" in result.content
    assert "wants to query_table" in out.getvalue()
    assert [e.reason for e in events if isinstance(e, ev.RunFinished)] == ["terminate"]
