"""The pure translator (team/translate.py) on recorded AutoGen streams: real AutoGen message
objects in, our events and a typed end reason out; no controller, sandbox or model."""

from __future__ import annotations

import asyncio

from autogen_agentchat.base import TaskResult
from autogen_agentchat.conditions import (
    ExternalTermination,
    MaxMessageTermination,
    TextMentionTermination,
)
from autogen_agentchat.messages import (
    HandoffMessage,
    ModelClientStreamingChunkEvent,
    TextMessage,
    ThoughtEvent,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
)
from autogen_core import FunctionCall
from autogen_core.models import FunctionExecutionResult, RequestUsage

from team import events as ev
from team.api import EndReason
from team.run_ends import Tagged
from team.text_tools import TEXT_CALL_ID_PREFIX
from team.translate import NO_REASON, End, Translator, end_of_result


def translator(fired=(), **kw) -> Translator:
    return Translator(max_messages=kw.pop("max_messages", 30), loop_limit=kw.pop("loop_limit", 4), fired=fired, **kw)


def usage(i: int, o: int) -> RequestUsage:
    return RequestUsage(prompt_tokens=i, completion_tokens=o)


def seed_stream() -> list:
    """The shape of the seed's run: task, streamed Planner text, a handoff, a tool call and
    its result, a handoff back, TERMINATE, the TaskResult."""
    return [
        TextMessage(source="user", content="analyse the data"),
        ModelClientStreamingChunkEvent(source="Planner", content="Plan: ", full_message_id="m1"),
        ModelClientStreamingChunkEvent(source="Planner", content="compute.", full_message_id="m1"),
        ThoughtEvent(source="Planner", content="Plan: compute."),
        ToolCallRequestEvent(source="Planner", content=[FunctionCall(id="h1", name="transfer_to_codeagent", arguments="{}")],
                             models_usage=usage(100, 10)),
        ToolCallExecutionEvent(source="Planner", content=[FunctionExecutionResult(call_id="h1", name="transfer_to_codeagent",
                                                                                 content="Transferred", is_error=False)]),
        HandoffMessage(source="Planner", target="CodeAgent", content="Transferred to CodeAgent"),
        ToolCallRequestEvent(source="CodeAgent", content=[FunctionCall(id="c1", name="run_code",
                                                                       arguments='{"code": "print(1)"}')],
                             models_usage=usage(200, 20)),
        ToolCallExecutionEvent(source="CodeAgent", content=[FunctionExecutionResult(call_id="c1", name="run_code",
                                                                                   content="1", is_error=False)]),
        HandoffMessage(source="CodeAgent", target="Planner", content="Transferred to Planner"),
        TextMessage(source="Planner", content="All done. TERMINATE", models_usage=usage(300, 5)),
        TaskResult(messages=[], stop_reason="Text 'TERMINATE' mentioned"),
    ]


def test_the_seed_stream_becomes_our_events_and_ends_as_terminate() -> None:
    fired = [EndReason.TERMINATE]
    translate = translator(fired)
    steps = [translate(item) for item in seed_stream()]
    events = [e for s in steps for e in s.events]
    kinds = [e.type for e in events]
    assert kinds == ["message", "token_delta", "token_delta", "message", "handoff", "tool_call", "tool_result",
                     "handoff", "message"]
    assert [e.text for e in events if isinstance(e, ev.TokenDelta)] == ["Plan: ", "compute."]
    call = next(e for e in events if isinstance(e, ev.ToolCall))
    assert (call.agent, call.call_id, call.name, call.arguments) == ("CodeAgent", "c1", "run_code", {"code": "print(1)"})
    result = next(e for e in events if isinstance(e, ev.ToolResult))
    assert (result.call_id, result.content, result.is_error) == ("c1", "1", False)
    # handoff tool calls are requested (so the tool context can let them through) but never shown
    assert [s.requested for s in steps if s.requested] == [["h1"], ["c1"]]
    # progress after each chat message (task, 2 handoffs, the last text)
    assert sum(s.progress for s in steps) == 4
    assert steps[-1].end == End(EndReason.TERMINATE, "")
    tally = translate.tally
    assert (tally.messages, tally.tokens_in, tally.tokens_out) == (4, 600, 35)
    assert tally.agent_tokens == {"Planner": [400, 15], "CodeAgent": [200, 20]}
    assert tally.agent == "Planner"


def test_end_reasons_are_typed_from_the_condition_that_fired() -> None:
    assert end_of_result([EndReason.MAX_MESSAGES], "Maximum number of messages 30 reached", 30) == End(
        EndReason.MAX_MESSAGES, "reached 30 messages"
    )
    assert end_of_result([EndReason.TIMEOUT], "anything", 30).reason is EndReason.TIMEOUT
    assert end_of_result([EndReason.STOPPED], "External termination requested", 30).reason is EndReason.STOPPED
    # TERMINATE in the last allowed message: the task is done
    assert end_of_result([EndReason.MAX_MESSAGES, EndReason.TERMINATE], "", 30).reason is EndReason.TERMINATE
    # English text alone means nothing: no condition of ours fired
    assert end_of_result([], "Text 'TERMINATE' mentioned", 30) == End(EndReason.ERROR, "Text 'TERMINATE' mentioned")
    assert end_of_result([], None, 30) == End(EndReason.ERROR, NO_REASON)


def test_tagged_conditions_note_which_fired_even_after_autogen_resets_them() -> None:
    async def go() -> list[EndReason]:
        fired: list[EndReason] = []
        external = ExternalTermination()
        condition = (
            Tagged(TextMentionTermination("TERMINATE", sources=["Planner"]), EndReason.TERMINATE, fired)
            | Tagged(MaxMessageTermination(3), EndReason.MAX_MESSAGES, fired)
            | Tagged(external, EndReason.STOPPED, fired)
        )
        assert await condition([TextMessage(source="CodeAgent", content="TERMINATE")]) is None
        assert fired == []
        external.set()
        assert await condition([TextMessage(source="Planner", content="going on")]) is not None
        await condition.reset()  # what AutoGen does right after a condition fires
        return fired

    assert asyncio.run(go()) == [EndReason.STOPPED]


def test_handing_over_without_a_tool_call_ends_as_a_loop_we_end() -> None:
    translate = translator(loop_limit=2)
    ping = HandoffMessage(source="Planner", target="CodeAgent", content="go")
    pong = HandoffMessage(source="CodeAgent", target="Planner", content="back")
    assert translate(ping).end is None and translate(pong).end is None
    step = translate(ping)
    assert step.end is not None and step.end.reason is EndReason.LOOP and not step.end.by_team
    assert "Planner handed the task to CodeAgent 2 times" in step.end.message
    assert step.progress and isinstance(step.events[0], ev.Handoff)
    # a real tool call in between is progress: the count starts again
    translate = translator(loop_limit=2)
    translate(ping)
    translate(ToolCallRequestEvent(source="CodeAgent", content=[FunctionCall(id="c", name="list_files", arguments="{}")]))
    assert translate(ping).end is None
    assert translator(loop_limit=0)(ping).end is None  # 0 turns the guard off


def test_a_tool_call_written_as_text_that_was_not_used_ends_as_an_error() -> None:
    translate = translator(text_tool_guard=lambda agent, text: f"{agent} wrote a call" if "```json" in text else None)
    step = translate(TextMessage(source="CodeAgent", content='```json\n{"name": "nope"}\n```'))
    assert step.end == End(EndReason.ERROR, "CodeAgent wrote a call", by_team=False)
    assert not step.progress and step.events[0].type == "message"
    assert translate(TextMessage(source="user", content="```json")).end is None  # never the user's text


def test_a_call_parsed_from_text_is_marked_and_bad_arguments_are_kept_raw() -> None:
    call_id = f"{TEXT_CALL_ID_PREFIX}fenced_json_1"
    step = translator()(
        ToolCallRequestEvent(source="CodeAgent", content=[FunctionCall(id=call_id, name="run_code", arguments="{oops")])
    )
    notice, call = step.events
    assert isinstance(notice, ev.Notice) and "parsed from text" in notice.text
    assert isinstance(call, ev.ToolCall) and call.arguments == {"raw": "{oops"}


def test_the_translator_touches_nothing_but_its_tally() -> None:
    """Pure: the same stream gives the same events, and an error result stays an error."""
    stream = seed_stream()
    first, second = translator([EndReason.TERMINATE]), translator([EndReason.TERMINATE])
    assert [first(item) for item in stream] == [second(item) for item in stream]
    assert first.tally == second.tally
    failed = translator()(ToolCallExecutionEvent(source="CodeAgent", content=[
        FunctionExecutionResult(call_id="c", name="run_code", content="Traceback", is_error=True)]))
    assert isinstance(failed.events[0], ev.ToolResult) and failed.events[0].is_error
