"""Tool calls that a model writes as text (team/text_tools.py and the client in team/model.py).

Every format is fed through the real OpenAI client from a local OpenAI-compatible server
and ends with the tool executed; the server's `calls_as_text` mode (every tool call of the
seed flow written as text) then finishes the seed task.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import pytest_asyncio
from autogen_core import FunctionCall
from autogen_core.models import UserMessage

from team import events as ev
from team.agent_models import build_agent_clients
from team.config import Settings
from team.cost import RunMeter
from team.demo import FILES
from team.run import RunController
from team.session import CodeSession
from team.text_tools import (
    TEXT_CALL_ID_PREFIX,
    TextCallHolder,
    describe_text_tool_call,
    looks_like_text_tool_call,
    parse_text_tool_calls,
)
from tests.openai_server import TEXT_CALL_FORMATS, FakeOpenAIServer, text, tool_call, written_call
from tests.test_run_openai import asker, seed_flow

RUN_CODE = {
    "name": "run_code",
    "description": "Run Python code in the sandbox",
    "parameters": {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]},
}
HANDOFF = {"name": "transfer_to_planner", "description": "hand back", "parameters": {"type": "object", "properties": {}}}
SPECS = {"run_code": RUN_CODE["parameters"], "transfer_to_planner": HANDOFF["parameters"]}
HI = [UserMessage(content="Compute the mean of 3, 7, 11 and 19", source="user")]


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("fmt", TEXT_CALL_FORMATS)
def test_every_format_parses_to_the_call(fmt: str) -> None:
    written = written_call("run_code", {"code": "print((3 + 7 + 11 + 19) / 4)"}, fmt)
    parsed = parse_text_tool_calls(f"I will compute it.\n{written}", SPECS)
    assert parsed is not None and parsed.problem is None, parsed
    assert [(c.name, c.arguments) for c in parsed.calls] == [("run_code", {"code": "print((3 + 7 + 11 + 19) / 4)"})]
    assert parsed.text == "I will compute it."  # the call is stripped from the text


@pytest.mark.parametrize(
    "answer",
    [
        # Qwen2.5-Coder via llama.cpp, as measured (shared/tools/real-model/README.md)
        '```json {"name": "run_code", "arguments": {"code": "print((3 + 7 + 11 + 19) / 4)"}} ```',
        # raw newlines inside the JSON string (strict JSON refuses them; small models write them)
        '{"name": "run_code", "arguments": {"code": "x = 1\nprint(x)"}}',
        # Python literals and single quotes
        "{'name': 'run_code', 'arguments': {'code': 'print(True)'}}",
        # arguments as a JSON string, as the OpenAI wire format has them
        '{"name": "run_code", "arguments": "{\\"code\\": \\"print(1)\\"}"}',
        # the one required parameter given as a bare string
        '{"name": "run_code", "arguments": "print(1)"}',
        # OpenAI's own shape, wrapped
        '{"type": "function", "function": {"name": "run_code", "arguments": {"code": "1"}}}',
        # an unclosed Hermes tag at the end of the reply
        '<tool_call>\n{"name": "run_code", "arguments": {"code": "1"}}',
        # Llama 3's built-in tool syntax
        '<|python_tag|>run_code.call(code="print(1)")',
        "functions.run_code is called as:\n```\n{\"name\": \"functions.run_code\", \"arguments\": {\"code\": \"1\"}}\n```",
        # seen from Qwen2.5-Coder 0.5B: a comment in the JSON, and two calls on two lines
        '```json\n{\n "name": "run_code",\n "arguments": {\n  "code": "print(1)", // the code\n }\n}\n```',
        '```json\n{"name": "run_code", "arguments": {"code": "1"}}\n{"name": "run_code", "arguments": {"code": "2"}}\n```',
        # the last brace left out, and the name with its own separators
        '{"name": "Run_Code", "arguments": {"code": "print(1)"}',
        # doubled braces, as a template escapes them (seen from Qwen2.5-Coder 1.5B)
        '{{"name": "run_code", "arguments": {"code": "print(1)"}}}',
    ],
)
def test_lenient_shapes_small_models_write(answer: str) -> None:
    parsed = parse_text_tool_calls(answer, SPECS)
    assert parsed is not None and parsed.calls and parsed.calls[0].name == "run_code", parsed
    assert isinstance(parsed.calls[0].arguments.get("code"), str)


@pytest.mark.parametrize(
    "answer",
    [
        "The mean is 10.",
        "I will use run_code to compute the mean, then hand off.",
        '{"mean": 10, "name": "sample"}',
        '```json\n{"name": "Alice", "age": 31}\n```',
        "```python\nprint((3 + 7 + 11 + 19) / 4)\n```",
        "Result: [1, 2, 3] TERMINATE",
        "Use `run_code(code)` next.",
        # a small model listing tools it imagines (seen from Qwen2.5-Coder 0.5B): definitions, not calls
        '<tools>\n{"type": "function", "function": {"name": "run_code", "description": "Run code.", '
        '"parameters": {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}}}',
        '{"type": "function", "function": {"name": "stats", "description": "Stats.", '
        '"parameters": {"type": "object", "properties": {"data": [float]}, "required": []}}}',
    ],
)
def test_prose_code_and_data_are_not_calls(answer: str) -> None:
    assert parse_text_tool_calls(answer, SPECS) is None
    assert not looks_like_text_tool_call(answer, list(SPECS))


def test_junk_arguments_to_a_handoff_are_dropped() -> None:
    parsed = parse_text_tool_calls(
        '{"name": "transfer_to_planner", "arguments": {"type": "object", "properties": {"x": []}}}', SPECS
    )
    assert parsed is not None and parsed.calls[0].arguments == {}


def test_unknown_tool_and_broken_json_are_problems_the_model_can_fix() -> None:
    unknown = parse_text_tool_calls('```json\n{"name": "compute_mean", "arguments": {"code": "1"}}\n```', SPECS)
    assert unknown is not None and not unknown.calls and unknown.problem == "there is no tool named 'compute_mean'"
    broken = parse_text_tool_calls('```json\n{"name": "run_code", "arguments": {"code": print(1)}}\n```', SPECS)
    assert broken is not None and broken.problem and broken.problem.startswith("the call's JSON is broken")
    missing = parse_text_tool_calls('{"name": "run_code", "arguments": {}}', SPECS)
    assert missing is not None and missing.problem == "'run_code' needs 'code'"
    # a handoff takes no arguments: broken ones do not matter (seen from Qwen2.5-Coder 0.5B)
    handoff = parse_text_tool_calls('{"name": "transfer_to_planner", "arguments": {"data": gen(100)}}', SPECS)
    assert handoff is not None and handoff.calls[0].name == "transfer_to_planner" and handoff.calls[0].arguments == {}


@pytest.mark.parametrize("fmt", TEXT_CALL_FORMATS)
@pytest.mark.parametrize("step", [1, 3, 64])
def test_the_stream_holder_strips_the_call_and_stops_at_it(fmt: str, step: int) -> None:
    written = written_call("run_code", {"code": "print(1)"}, fmt)
    reply = f"Running it:\n{written}\nand then a lot more text that is never needed"
    holder = TextCallHolder(SPECS)
    shown = ""
    for i in range(0, len(reply), step):
        shown += holder.feed(reply[i : i + step])
        if holder.found:
            break
    if not holder.found:
        shown += holder.finish()  # formats without a closing mark end with the stream
    assert holder.found is not None and holder.found.calls[0].name == "run_code"
    assert shown == "Running it:\n"


@pytest.mark.parametrize("step", [1, 5, 1000])
def test_the_stream_holder_releases_everything_that_is_not_a_call(step: int) -> None:
    reply = (
        "Here is the plan:\n```python\nimport pandas as pd\n```\n"
        '{"mean": 1.5}\n[1, 2] and <b>bold</b>, f(x) for fun `code` [link](x)\n```json\n{"a": 1}\n``` done'
    )
    holder = TextCallHolder(SPECS)
    shown = "".join(holder.feed(reply[i : i + step]) for i in range(0, len(reply), step)) + holder.finish()
    assert holder.found is None and shown == reply


def test_one_wording_for_a_call_that_was_not_used() -> None:
    call = '```json\n{"name": "run_code", "arguments": {"code": "1"}}\n```'
    off = describe_text_tool_call(call, SPECS, text_tools=False, model="qwen", agent="CodeAgent")
    assert off is not None and off.startswith("CodeAgent's model 'qwen' wrote a tool call as plain text")
    assert 'received: ```json {"name": "run_code"' in off and "SBTEAM_TEXT_TOOLS=on" in off
    assert "choose a model with function/tool calling" not in off  # it has a tool template: only the format is off
    on = describe_text_tool_call('{"name": "nope", "arguments": {}}', SPECS, text_tools=True)
    assert on is not None and "could not be used: there is no tool named 'nope'" in on
    assert describe_text_tool_call("The mean is 10.", SPECS, text_tools=True) is None
    assert looks_like_text_tool_call('<tool_call>{"name": broken', ["run_code"])


# --------------------------------------------------------------------------- through the real client


def _settings(server: FakeOpenAIServer, tmp_path=None, **kw) -> Settings:
    values = dict(openai_api_base=server.base_url, openai_model="qwen2.5-coder", model_retries=0, model_timeout=10.0)
    if tmp_path is not None:
        values.update(sandbox="local", home=tmp_path / "home")
    values.update(kw)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", TEXT_CALL_FORMATS)
async def test_each_format_through_the_openai_client_becomes_a_function_call(fmt: str) -> None:
    written = written_call("run_code", {"code": "print(1)"}, fmt)
    with FakeOpenAIServer(script=[text(f"Sure.\n{written}\nThis part is not needed.")]) as srv:
        clients = build_agent_clients(_settings(srv), RunMeter())
        items = [x async for x in clients["CodeAgent"].create_stream(HI, tools=[RUN_CODE, HANDOFF])]
        await clients.close()
    result = items[-1]
    assert isinstance(result.content, list) and isinstance(result.content[0], FunctionCall)
    call = result.content[0]
    assert (call.name, json.loads(call.arguments)) == ("run_code", {"code": "print(1)"})
    assert call.id.startswith(TEXT_CALL_ID_PREFIX) and result.finish_reason == "function_calls"
    assert result.thought == "Sure."  # the words around the call, without it
    streamed = "".join(x for x in items if isinstance(x, str))
    assert "run_code" not in streamed  # the call never showed as text
    assert result.usage.completion_tokens > 0


async def test_a_call_naming_no_tool_goes_back_to_the_model_which_corrects_it() -> None:
    script = [
        text('```json\n{"name": "compute_mean", "arguments": {"code": "print(10)"}}\n```'),
        text('```json\n{"name": "run_code", "arguments": {"code": "print(10)"}}\n```'),
    ]
    with FakeOpenAIServer(script=script) as srv:
        clients = build_agent_clients(_settings(srv), RunMeter())
        items = [x async for x in clients["CodeAgent"].create_stream(HI, tools=[RUN_CODE, HANDOFF])]
        await clients.close()
        second = srv.requests[1]["messages"]
    result = items[-1]
    assert result.content[0].name == "run_code"
    told = second[-1]["content"]
    assert second[-1]["role"] == "user" and "there is no tool named 'compute_mean'" in told
    assert "run_code(code)" in told  # the tools it can call
    assert second[-2]["role"] == "assistant" and "compute_mean" in second[-2]["content"]
    streamed = "".join(x for x in items if isinstance(x, str))
    assert "asked the model to correct it" in streamed  # the user sees it too
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0  # both attempts counted


async def test_text_tools_off_passes_the_text_through() -> None:
    written = written_call("run_code", {"code": "1"}, "fenced-json")
    with FakeOpenAIServer(script=[text(written)]) as srv:
        clients = build_agent_clients(_settings(srv, text_tools="off"), RunMeter())
        items = [x async for x in clients["CodeAgent"].create_stream(HI, tools=[RUN_CODE])]
        await clients.close()
    assert items[-1].content == written


def test_auto_is_on_for_other_endpoints_and_off_for_openai() -> None:
    from team.agent_models import agent_specs

    local = agent_specs(Settings(openai_api_base="http://127.0.0.1:8080/v1", openai_model="m"))
    assert all(spec.text_tools_on for spec in local.values())
    openai = agent_specs(Settings(openai_api_key="sk-x" * 4, openai_model="gpt-4o"))
    assert not any(spec.text_tools_on for spec in openai.values())
    forced = agent_specs(Settings(openai_api_key="sk-x" * 4, openai_model="gpt-4o", text_tools="on"))
    assert all(spec.text_tools_on for spec in forced.values())


# --------------------------------------------------------------------------- whole runs

pytestmark_runs = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def session():
    shared = CodeSession(Settings(sandbox="local"))
    await shared.initialize()
    yield shared
    await shared.close()


async def _run(settings: Settings, session: CodeSession, task: str) -> tuple[RunController, list[ev.Event]]:
    controller = RunController(settings, session=session)
    controller.start(task)

    async def collect() -> list[ev.Event]:
        return [e async for e in controller.events()]

    events = await asyncio.wait_for(collect(), 90)
    await asyncio.wait_for(controller._drive_task, 10)  # type: ignore[arg-type]
    return controller, events


@pytest_asyncio.fixture(loop_scope="module")
async def clean(session):
    await session.reset()
    yield session


@pytestmark_runs
@pytest.mark.parametrize("fmt", TEXT_CALL_FORMATS)
async def test_the_seed_task_finishes_when_every_call_is_written_as_text(clean, tmp_path, fmt) -> None:
    """The fake model's text-tools mode: every handoff and tool call of the seed flow is
    written as text in `fmt`; the tools run and the Planner says TERMINATE."""
    with FakeOpenAIServer(script=seed_flow, calls_as_text=fmt) as server:
        controller, events = await _run(_settings(server, tmp_path), clean, "Analyse 100 random points")
        requests = list(server.requests)
    done = [e for e in events if isinstance(e, ev.RunFinished)][-1]  # then FINISHED and OutputsSaved
    assert isinstance(done, ev.RunFinished) and (done.reason, done.message) == ("terminate", ""), done
    results = [e for e in events if isinstance(e, ev.ToolResult)]
    assert [r.name for r in results] == ["write_file", "run_code", "read_file"]
    assert not any(r.is_error for r in results) and "points: 100" in results[1].content
    handoffs = [(e.source, e.target) for e in events if isinstance(e, ev.Handoff)]
    assert handoffs[0] == ("Planner", "CodeAgent") and handoffs[-1] == ("AnalystAgent", "Planner")
    notes = [e.text for e in events if isinstance(e, ev.Notice) and "parsed from text" in e.text]
    assert len(notes) == 3 + 4  # three tools and four handoffs, each marked in the transcript
    assert all(not e.text.lstrip().startswith(("```", "{", "<", "functools", "[TOOL")) for e in events
               if isinstance(e, ev.Message) and e.agent != "user")  # no call shown as text
    assert set(FILES) <= {e.path for e in await controller.list_files()}
    # the calls went back to the server as real tool_calls: the flow's own bookkeeping saw them
    assert [asker(r) for r in requests].count("CodeAgent") == 3
    assert any(m.get("tool_calls") for r in requests for m in r["messages"] if m.get("role") == "assistant")


@pytestmark_runs
async def test_a_call_that_stays_unusable_ends_the_run_saying_what_arrived(clean, tmp_path) -> None:
    def responder(req: dict):
        if asker(req) == "Planner":
            return tool_call("transfer_to_codeagent", {})
        return text('```json\n{"name": "compute_mean", "arguments": {"numbers": [3, 7]}}\n```')

    with FakeOpenAIServer(script=responder) as server:
        _, events = await _run(_settings(server, tmp_path), clean, "task")
        code_requests = [r for r in server.requests if asker(r) == "CodeAgent"]
    done = [e for e in events if isinstance(e, ev.RunFinished)][-1]  # then FINISHED and OutputsSaved
    assert isinstance(done, ev.RunFinished) and done.reason == "error"
    assert "CodeAgent's model 'qwen2.5-coder' wrote a tool call as plain text that could not be used" in done.message
    assert "there is no tool named 'compute_mean'" in done.message and "received: ```json" in done.message
    assert len(code_requests) == 3  # the first answer and two corrections
    assert not any(isinstance(e, ev.ToolResult) for e in events)


def test_the_guard_judges_the_models_last_attempt_only() -> None:
    """Seen from Qwen2.5-Coder 1.5B: a call naming no tool, sent back, then a plain answer.
    The reply keeps both (the transcript shows them); the run's guard judges the answer."""
    from team.agent_models import text_tool_problem
    from team.text_tools import correction_note

    settings = Settings(openai_api_base="http://127.0.0.1:9/v1", openai_model="qwen")
    written = '{"name": "transfer_to_planner", "arguments": {}}'
    reply = written + correction_note("there is no tool named 'transfer_to_planner'") + "The data is ready."
    assert text_tool_problem(settings, "Planner", reply, ["transfer_to_codeagent"]) is None
    again = written + correction_note("there is no tool named 'transfer_to_planner'") + written
    line = text_tool_problem(settings, "Planner", again, ["transfer_to_codeagent"])
    assert line is not None and "there is no tool named 'transfer_to_planner'" in line
