"""Follow-up questions and the user's data (issue 13), through the real RunController and
the real local sandbox: the same team (its history in the model's request), the same
kernel variables, one record with every turn; uploads described to the Planner."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

from autogen_core.models import FunctionExecutionResultMessage

from team import events as ev
from team.records import read_events
from team.run import RunController
from team.scripted import Call, Say, ScriptedChatCompletionClient, Turn

from .test_run import collect, finished


class Script:
    """Turn 1: x = 41. A follow-up: x + 1. Keeps every request's user texts."""

    def __init__(self) -> None:
        self.seen: list[list[str]] = []  # the user texts of each Planner request

    def __call__(self, turn: Turn):
        texts = turn.user_texts()
        if turn.agent == "Planner":
            self.seen.append(texts)
            # the CodeAgent came back after the newest question: this turn's work is done
            last_user = max(i for i, m in enumerate(turn.messages) if getattr(m, "source", "") == "user")
            if not any(isinstance(m, FunctionExecutionResultMessage) for m in turn.messages[last_user + 1 :]):
                return Call("transfer_to_codeagent", thought="over to you")
            return Say("All done. TERMINATE")
        code = "x + 1" if len(texts) > 1 else "x = 41\nprint('x is', x)"
        if turn.tool_results() and (len(texts) == 1 or any("42" in r for r in turn.tool_results())):
            return Call("transfer_to_planner")
        return Call("run_code", {"code": code})


def scripted(script: Script):
    return lambda: ScriptedChatCompletionClient(script)


async def test_a_follow_up_continues_the_same_team_sandbox_and_record(settings):
    script = Script()
    controller = RunController(settings, model_factory=scripted(script))
    try:
        run_id = controller.start("set x")
        first = await collect(controller)
        assert finished(first)[0].reason == "terminate"
        assert controller.can_follow_up()
        again = controller.follow_up("now add one to x")
        assert again == run_id  # the same conversation, the same record
        second = await collect(controller)
    finally:
        await controller.close()
    done = finished(second)[0]
    assert done.reason == "terminate" and done.turn == 2
    # the model's request in turn 2 carries turn 1 (the team's history), then the new question
    assert script.seen[-1][:2] == ["set x", "now add one to x"]
    # the same kernel: x from turn 1 is still there
    results = [e for e in second if isinstance(e, ev.ToolResult) and e.name == "run_code"]
    assert results and "42" in results[-1].content
    assert {e.turn for e in first} == {1} and {e.turn for e in second} == {2}
    record = settings.runs_dir / run_id
    recorded = read_events(record / "events.jsonl")
    assert [r["seq"] for r in recorded] == sorted(r["seq"] for r in recorded)
    assert {r["turn"] for r in recorded} == {1, 2}
    meta = json.loads((record / "run.json").read_text())
    assert [t["turn"] for t in meta["turns"]] == [1, 2]
    assert meta["turns"][1]["task"] == "now add one to x" and meta["task"] == "set x"
    assert meta["totals"]["messages"] == sum(t["messages"] for t in meta["turns"])


async def test_continue_a_recorded_conversation_in_a_new_process(settings):
    script = Script()
    first = RunController(settings, model_factory=scripted(script))
    try:
        run_id = first.start("set x")
        await collect(first)
    finally:
        await first.close()  # its sandbox is gone: variables too, files are in the record
    later = RunController(settings, model_factory=scripted(script))
    try:
        assert await later.continue_run(run_id, "now add one to x") == run_id
        events = await collect(later)
    finally:
        await later.close()
    started = [e for e in events if isinstance(e, ev.RunStarted)][0]
    assert started.turn == 2 and started.resumed_from == ""
    assert script.seen[-1][0] == "set x"  # the team's history came back from state.json
    assert "recreated" in script.seen[-1][-1]  # told that variables are gone (a new sandbox)
    recorded = read_events(settings.runs_dir / run_id / "events.jsonl")
    assert {r["turn"] for r in recorded} == {1, 2}


async def test_restart_in_a_follow_up_restarts_that_turn(settings):
    script = Script()
    controller = RunController(settings, model_factory=scripted(script))
    try:
        run_id = controller.start("set x")
        await collect(controller)
        controller.follow_up("now add one to x")
        await collect(controller)
        again = await controller.restart()
        events = await collect(controller)
    finally:
        await controller.close()
    assert again == run_id and finished(events)[0].turn == 2
    assert script.seen[-1][:2] == ["set x", "now add one to x"] and len(script.seen[-1]) == 2
    meta = json.loads((settings.runs_dir / run_id / "run.json").read_text())
    assert [t["turn"] for t in meta["turns"]] == [1, 2]


async def test_uploaded_data_is_described_to_the_planner(settings):
    seen: list[str] = []

    def responder(turn: Turn):
        seen.append(turn.last_user_text())
        return Say("Looked at it. TERMINATE")

    controller = RunController(settings.with_(prompts="en"), model_factory=lambda: ScriptedChatCompletionClient(responder))
    try:
        await controller.warm_up()
        done = await controller.add_data(["examples"])
        assert [d["path"] for d in done] == ["data/flowers.csv", "data/daily_sales.csv"]
        run_id = controller.start("what is in my data?")
        events = await collect(controller)
    finally:
        await controller.close()
    uploaded = [e for e in events if isinstance(e, ev.DataUploaded)]
    assert uploaded and uploaded[0].files[0]["path"] == "data/flowers.csv"
    # the record says exactly what the data was: the sha256 of the shipped file
    shipped = (resources.files("team.data") / "flowers.csv").read_bytes()
    assert uploaded[0].files[0]["sha256"] == hashlib.sha256(shipped).hexdigest()
    task = seen[0]
    assert "data/flowers.csv: 150 rows × 5 columns" in task and "data/daily_sales.csv: 2,193 rows × 5 columns" in task
    assert "species (object)" in task and "missing values: sepal_length: 2" in task
    assert task.rstrip().endswith("what is in my data?")
    meta = json.loads((settings.runs_dir / run_id / "run.json").read_text())
    assert [d["path"] for d in meta["data"]] == ["data/flowers.csv", "data/daily_sales.csv"]
    assert meta["data"][0]["sha256"] == uploaded[0].files[0]["sha256"]
    assert (settings.runs_dir / run_id / "files" / "data" / "flowers.csv").is_file()
