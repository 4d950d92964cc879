"""An honest DEMO (issue #10, point 5): it says it plays the example task whatever
is typed, says a resumed run replays it, and after a rejected or failed tool it
reports what happened and ends as an error, never with TERMINATE.

The runs go through the real RunController and the real local sandbox; the
script's reading of tool results is also checked directly, with made-up results."""

from __future__ import annotations

import json
import math
import re

import pytest
from autogen_core.models import FunctionExecutionResult, FunctionExecutionResultMessage, UserMessage

from team import events as ev
from team.demo import FILES, DemoScript, is_example_task, quote_task
from team.prompts import example_task
from team.run import RunController
from team.scripted import Call, Say, ScriptStopped, Turn, stop_message_of
from tests.test_run import collect, finished

CUSTOM = "Summarise my sales.csv by region and plot the monthly revenue trend for 2024"


async def demo_run(settings, task: str, approver=None) -> tuple[list[ev.Event], set[str]]:
    """One DEMO run to its end: its events and the files left in the sandbox."""
    controller = RunController(settings, demo_pace=0)
    if approver is not None:
        controller.approve = True
        controller.approver = approver
    try:
        controller.start(task)
        events = await collect(controller)
        return events, {entry.path for entry in await controller.list_files()}
    finally:
        await controller.close()


def rejecting(tool: str, reason: str = "not on my machine"):
    async def approver(agent, call_id, name, args):
        return ("reject", reason) if name == tool else ("approve", None)

    return approver


def editing(tool: str, arguments: dict):
    async def approver(agent, call_id, name, args):
        return ("edit", arguments) if name == tool else ("approve", None)

    return approver


def agent_texts(events) -> list[str]:
    return [e.text for e in events if isinstance(e, ev.Message) and e.agent != "user"]


CLAIMS = {  # what the DEMO says after each step succeeded
    "write_file": ("file is written", "文件已写入"),
    "run_code": ("ran successfully", "代码执行成功"),
    "list_files": ("Files produced", "生成的文件"),
    "summary": ("Summary of the whole task", "整体任务总结", "TERMINATE"),
}


def assert_no_success_claims(events, failed_at: str) -> None:
    """Nothing claims that the step which failed, or any later one, succeeded; no `nan` quoted."""
    said = "\n".join(agent_texts(events))
    assert not re.search(r"\bnan\b", said, re.I)
    steps = list(CLAIMS)
    for step in steps[steps.index(failed_at):]:
        for claim in CLAIMS[step]:
            assert claim.lower() not in said.lower(), claim


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_rejected_write_file_does_not_end_with_terminate(settings, lang):
    events, files = await demo_run(settings.with_(prompts=lang), CUSTOM, rejecting("write_file"))
    done = finished(events)
    assert len(done) == 1 and done[0].reason == "error"
    assert done[0].message == "DEMO stopped: the user rejected write_file; the scripted example cannot continue"
    # only the rejected call happened: nothing ran, nothing was read
    assert [e.name for e in events if isinstance(e, ev.ToolCall)] == ["write_file"]
    assert [e.decision for e in events if isinstance(e, ev.ApprovalDecided)] == ["reject"]
    assert not set(FILES) & files and "data_analysis.py" not in files
    # the CodeAgent says what happened, with the user's reason, and claims nothing
    report = [e.text for e in events if isinstance(e, ev.Message) and e.agent == "CodeAgent"][-1]
    assert "write_file" in report and "not on my machine" in report
    assert_no_success_claims(events, "write_file")
    assert [(h.source, h.target) for h in events if isinstance(h, ev.Handoff)] == [
        ("Planner", "CodeAgent"), ("CodeAgent", "Planner"),
    ]


async def test_custom_task_is_labelled_as_replaying_the_example(settings):
    events, _ = await demo_run(settings.with_(prompts="en"), CUSTOM)
    first = agent_texts(events)[0]
    assert first.startswith("> **DEMO**")
    assert "plays the example task whatever is typed" in first
    assert "“Summarise my sales.csv by region and plot the monthly reven…”" in first  # quoted, shortened
    assert first.index("whatever is typed") < first.index("Breaking down the request")  # up front
    assert finished(events)[0].reason == "terminate"  # and it does play the example


async def test_rejected_run_code_and_failed_run_code_are_reported(settings):
    events, files = await demo_run(settings.with_(prompts="en"), example_task("en"), rejecting("run_code", "no"))
    assert "data_analysis.py" in files and not set(FILES) & files
    assert finished(events)[0].message.startswith("DEMO stopped: the user rejected run_code")
    report = [e.text for e in events if isinstance(e, ev.Message) and e.agent == "CodeAgent"][-1]
    assert "rejected `run_code`" in report and "was not run" in report
    assert_no_success_claims(events, "run_code")

    events, _ = await demo_run(settings.with_(prompts="en"), example_task("en"),
                               editing("run_code", {"code": "raise ValueError('boom')"}))
    done = finished(events)[0]
    assert (done.reason, done.message) == (
        "error", "DEMO stopped: run_code failed; the scripted example cannot continue",
    )
    report = [e.text for e in events if isinstance(e, ev.Message) and e.agent == "CodeAgent"][-1]
    assert "`run_code` failed: ValueError: boom" in report
    assert_no_success_claims(events, "run_code")
    assert not any(isinstance(e, ev.ToolCall) and e.name == "read_file" for e in events)


async def test_files_that_were_not_made_are_not_listed(settings):
    # the user edits the script's run into something harmless: it succeeds, makes no file
    events, files = await demo_run(settings.with_(prompts="en"), example_task("en"),
                                   editing("run_code", {"code": "print('hello')"}))
    assert not set(FILES) & files
    done = finished(events)[0]
    assert done.reason == "error" and "did not produce data_points.csv" in done.message
    report = [e.text for e in events if isinstance(e, ev.Message) and e.agent == "CodeAgent"][-1]
    assert "not in the sandbox" in report and all(f"`{name}`" in report for name in FILES)
    assert_no_success_claims(events, "list_files")


async def test_resume_in_demo_says_it_replays(settings):
    controller = RunController(settings.with_(prompts="en", max_messages=3), demo_pace=0)
    try:
        first = controller.start(example_task("en"))
        events = await collect(controller)
        assert finished(events)[0].reason == "max_messages"
        intro = agent_texts(events)[0]
        assert "whatever is typed" not in intro and "replay" not in intro  # the example itself: no warning
        await controller.resume(first, "now also compute the median")
        events = await collect(controller)
    finally:
        await controller.close()
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    assert started.resumed_from == first
    said = agent_texts(events)[0]
    assert said.startswith("> **DEMO**") and "DEMO replay" in said
    assert "cannot follow the new instruction “now also compute the median”" in said
    assert "replay the example task from the start" in said


# -- the script's reading of what it is shown --------------------------------------------


def turn(agent: str, index: int, *texts: str, results: tuple[tuple[str, str], ...] = ()) -> Turn:
    messages: list = [UserMessage(content=t, source="user") for t in texts]
    if results:
        messages.append(FunctionExecutionResultMessage(content=[
            FunctionExecutionResult(content=content, name=name, call_id=f"c{i}", is_error=False)
            for i, (name, content) in enumerate(results)
        ]))
    return Turn(agent=agent, index=index, messages=messages, tool_names=[])


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_unreadable_or_missing_numbers_are_never_quoted(lang):
    script = DemoScript(lang)
    task = example_task(lang)
    assert isinstance(script(turn("Planner", 0, task)), Call)
    script.code_done = True  # as if the CodeAgent had finished
    script(turn("AnalystAgent", 0, task))
    script(turn("AnalystAgent", 1, task))
    stats = json.dumps({"mean": math.nan, "std": 1.0, "max": 2.0, "min": -2.0})  # json.dump writes NaN
    reply = script(turn("AnalystAgent", 2, task, results=(
        ("read_file", f"📄 data_stats.json:\n{stats}"),
        ("read_file", "❌ cannot read 'outlier_analysis.json': no such file (use list_files to see what exists)"),
    )))
    assert isinstance(reply, Call) and reply.name == "transfer_to_planner"
    assert not re.search(r"\bnan\b|\d\.\d{4}", reply.thought, re.I)  # no number it could not read
    assert "data_stats.json" in reply.thought and "outlier_analysis.json" in reply.thought
    assert "no such file" in reply.thought
    with pytest.raises(ScriptStopped) as stopped:
        script(turn("Planner", 1, task))
    assert str(stopped.value) == (
        "DEMO stopped: the analyst could not read data_stats.json, outlier_analysis.json; "
        "the scripted example cannot continue"
    )


def test_the_first_words_say_what_the_demo_plays():
    for lang in ("en", "zh"):
        plain = DemoScript(lang)(turn("Planner", 0, example_task(lang)))
        assert "whatever is typed" not in plain.thought and "replay" not in plain.thought
        custom = DemoScript(lang)(turn("Planner", 0, "plot *my* data"))
        assert "whatever is typed" in custom.thought and "“plot \\*my\\* data”" in custom.thought
        resumed = DemoScript(lang)(turn("Planner", 0, example_task(lang), "now also compute the median"))
        assert "DEMO replay" in resumed.thought and "now also compute the median" in resumed.thought
    # the example task is recognised whatever its spacing or width of punctuation
    assert is_example_task("  " + example_task("zh").replace(":", "：").replace("\n", " \n") + " ")
    assert not is_example_task("plot my data")
    long = quote_task("word " * 40)
    assert len(long) == 60 and long.endswith("…")
    assert quote_task("(Continuing run 1-2: the sandbox was recreated …)\n\nnow the median") == "now the median"


def test_a_scripted_stop_reaches_the_run_as_its_reason():
    relayed = RuntimeError("ScriptStopped: DEMO stopped: x; y\nTraceback:\n  File …\nScriptStopped: DEMO stopped: x; y")
    assert stop_message_of(relayed) == "DEMO stopped: x; y"
    assert stop_message_of(ScriptStopped("why")) == "why"
    assert stop_message_of(RuntimeError("AuthenticationError: Error code: 401")) is None
    assert isinstance(DemoScript("en")(turn("unknown", 0, "x")), Say)
