"""The whole seed flow through the real OpenAIChatCompletionClient, against a local
OpenAI-compatible server (127.0.0.1) that streams SSE with tool-call deltas.

The fake model decides *who* is asking from the request's `tools` (Planner offers
transfer_to_codeagent, CodeAgent run_code, AnalystAgent read_file but not run_code)
and *what step* it is from the tool calls already in the conversation.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import pytest_asyncio

from team import events as ev
from team.config import Settings
from team.demo import FILES, SEED_CODE
from team.records import read_events
from team.run import RunController
from team.session import CodeSession
from tests.openai_server import (
    FakeOpenAIServer,
    Reply,
    die_mid_stream,
    error,
    garbage,
    text,
    tool_call,
    unused_port,
)
from tests.run_events import collect, the_finish

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY = "sk-test-SECRET-0123456789abcdefghijkl"
FINAL = (
    "CodeAgent produced the four files and AnalystAgent read the statistics. All done. TERMINATE"
)


def tool_names(req: dict) -> set[str]:
    return {t["function"]["name"] for t in req.get("tools") or []}


def asker(req: dict) -> str:
    names = tool_names(req)
    if "transfer_to_codeagent" in names:
        return "Planner"
    if "run_code" in names:
        return "CodeAgent"
    if "read_file" in names:
        return "AnalystAgent"
    raise AssertionError(f"a request from no known agent: tools {sorted(names)}")


def calls_so_far(req: dict) -> list[str]:
    """Names of the tool calls in the conversation the agent sent, oldest first."""
    return [
        call["function"]["name"]
        for message in req["messages"]
        if message.get("role") == "assistant"
        for call in message.get("tool_calls") or []
    ]


def seed_flow(req: dict) -> Reply | str:
    """Planner → CodeAgent (write_file, run_code) → Planner → AnalystAgent (read_file) → Planner."""
    agent, done = asker(req), calls_so_far(req)
    if agent == "Planner":
        if "transfer_to_analystagent" in done:
            return text(FINAL)
        if "transfer_to_codeagent" in done:
            return tool_call("transfer_to_analystagent", {})
        return tool_call("transfer_to_codeagent", {})
    if agent == "CodeAgent":
        if "run_code" in done:
            return tool_call("transfer_to_planner", {})
        if "write_file" in done:
            code = "exec(open('data_analysis.py').read())\nprint('points:', len(data))"
            return tool_call("run_code", {"code": code})
        return tool_call("write_file", {"file_path": "data_analysis.py", "content": SEED_CODE})
    if "read_file" in done:
        return tool_call("transfer_to_planner", {})
    return tool_call("read_file", {"file_path": "data_stats.json"})


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def session():
    """One local sandbox for every run in this file (a run never owns it here)."""
    shared = CodeSession(Settings(sandbox="local"))
    await shared.initialize()
    yield shared
    await shared.close()


def settings_for(base_url: str, tmp_path, **kw) -> Settings:
    values = dict(
        openai_api_key=KEY,
        openai_api_base=base_url,
        openai_model="test-model",
        model_retries=0,
        model_timeout=10.0,
        sandbox="local",
        home=tmp_path / "home",
    )
    values.update(kw)
    return Settings(**values)  # type: ignore[arg-type]


async def run_once(
    settings: Settings, session: CodeSession, task: str
) -> tuple[RunController, list[ev.Event]]:
    """Start a run with the default model factory and collect every event to its end."""
    controller = RunController(settings, session=session)
    assert not controller.demo
    controller.start(task)

    events = await asyncio.wait_for(collect(controller), 60)
    assert controller._drive_task is not None
    await asyncio.wait_for(controller._drive_task, 10)  # the run wound down completely
    return controller, events


async def test_seed_flow_through_the_real_openai_client(session, tmp_path):
    with FakeOpenAIServer(script=seed_flow, api_key=KEY) as server:
        settings = settings_for(server.base_url, tmp_path)
        controller, events = await run_once(settings, session, "Analyse 100 random points")

    done = the_finish(events)
    assert (done.reason, done.message) == ("terminate", "")
    assert done.tokens_in > 0 and done.tokens_out > 0  # usage came in the stream

    started = events[0]
    assert isinstance(started, ev.RunStarted)
    assert (started.model, started.demo) == ("test-model", False)

    handoffs = [(e.source, e.target) for e in events if isinstance(e, ev.Handoff)]
    assert handoffs == [
        ("Planner", "CodeAgent"),
        ("CodeAgent", "Planner"),
        ("Planner", "AnalystAgent"),
        ("AnalystAgent", "Planner"),
    ]
    calls = [(e.agent, e.name) for e in events if isinstance(e, ev.ToolCall)]
    assert calls == [
        ("CodeAgent", "write_file"),
        ("CodeAgent", "run_code"),
        ("AnalystAgent", "read_file"),
    ]
    results = {e.name: e for e in events if isinstance(e, ev.ToolResult)}
    assert not any(r.is_error for r in results.values())
    # the arguments streamed as deltas arrived whole: the code ran and the file was read back
    assert "points: 100" in results["run_code"].content
    stats = json.loads(await controller.read_file("data_stats.json"))
    assert set(stats) == {"mean", "std", "max", "min"}
    assert str(stats["mean"])[:6] in results["read_file"].content

    # the Planner's last words streamed token by token and became one message
    last = [e for e in events if isinstance(e, ev.Message) and e.agent == "Planner"][-1]
    assert last.text == FINAL
    deltas = "".join(
        e.text for e in events if isinstance(e, ev.TokenDelta) and e.message_id == last.message_id
    )
    assert deltas == FINAL

    # the four files exist in the sandbox and in the run record
    names = {e.path for e in await controller.list_files()}
    assert set(FILES) <= names
    record = settings.runs_dir / controller.run_id
    assert all((record / "files" / name).is_file() for name in FILES)
    recorded = read_events(record / "events.jsonl")
    assert [r["seq"] for r in recorded] == [e.seq for e in events]
    assert KEY not in (record / "events.jsonl").read_text()

    # what went over the wire: streamed, usage asked for, one tool call at a time
    assert all(r.get("stream") is True for r in server.requests)
    assert all((r.get("stream_options") or {}).get("include_usage") for r in server.requests)
    assert all(r.get("parallel_tool_calls") is False for r in server.requests if r.get("tools"))
    assert all(r["model"] == "test-model" for r in server.requests)
    assert [asker(r) for r in server.requests] == [
        "Planner",
        "CodeAgent",
        "CodeAgent",
        "CodeAgent",
        "Planner",
        "AnalystAgent",
        "AnalystAgent",
        "Planner",
    ]


def assert_one_line_error(done: ev.RunFinished, *needles: str) -> None:
    assert done.reason == "error"
    assert done.message and "\n" not in done.message and "\r" not in done.message
    assert KEY not in done.message and "SECRET" not in done.message
    assert "Traceback" not in done.message
    for needle in needles:
        assert needle in done.message, done.message


async def test_wrong_key_ends_with_one_line(session, tmp_path):
    with FakeOpenAIServer(script=seed_flow, api_key="the-right-key") as server:
        settings = settings_for(server.base_url, tmp_path)
        t0 = time.monotonic()
        controller, events = await run_once(settings, session, "task")
    assert_one_line_error(the_finish(events), "API key", "OPENAI_API_KEY")
    assert time.monotonic() - t0 < 20
    assert KEY not in (settings.runs_dir / controller.run_id / "events.jsonl").read_text()


async def test_http_500_ends_with_one_line(session, tmp_path):
    with FakeOpenAIServer(script=error(500, "upstream exploded", type="server_error")) as server:
        _, events = await run_once(settings_for(server.base_url, tmp_path), session, "task")
    assert_one_line_error(the_finish(events), "500")


@pytest.mark.parametrize(
    ("reply", "needle"),
    [
        (
            die_mid_stream("this answer will be cut off right here", after=3),
            "dropped the connection",
        ),
        (garbage("<html><body>502 Bad Gateway</body></html>"), "not OpenAI-compatible"),
        (error(400, f"invalid request\nfor key {KEY}\nsee docs"), "HTTP 400"),
    ],
    ids=["broken-stream", "html-page", "400-echoing-the-key"],
)
async def test_other_endpoint_failures_end_with_one_line(session, tmp_path, reply, needle):
    with FakeOpenAIServer(script=reply) as server:
        settings = settings_for(server.base_url, tmp_path)
        controller, events = await run_once(settings, session, "task")
    assert_one_line_error(the_finish(events), needle)
    assert KEY not in (settings.runs_dir / controller.run_id / "events.jsonl").read_text()


async def test_refused_connection_ends_with_one_line(session, tmp_path):
    base = f"http://127.0.0.1:{unused_port()}/v1"
    _, events = await run_once(settings_for(base, tmp_path), session, "task")
    done = the_finish(events)
    assert_one_line_error(done, "cannot reach", base)
    # nothing reached a server: no tokens and no spend are shown for it (honest, and the cap unused)
    assert done.tokens_in == 0 and done.tokens_out == 0 and not done.cost


PLANNER_WRITES_A_CALL = '{"name": "run_code", "arguments": {"code": "1+1"}}'


def planner_writes_call(req: dict) -> str:
    return PLANNER_WRITES_A_CALL


def code_agent_writes_call(req: dict) -> Reply | str:
    if asker(req) == "Planner":
        return tool_call("transfer_to_codeagent", {})
    return '<tool_call>{"name": "run_code", "arguments": {"code": "print(1)"}}</tool_call>'


@pytest.mark.parametrize(
    "responder", [planner_writes_call, code_agent_writes_call], ids=["planner", "codeagent"]
)
async def test_tool_call_written_as_text_is_detected(session, tmp_path, responder):
    # With SBTEAM_TEXT_TOOLS=off (tests/test_text_tools.py has them on): the run's guard ends it,
    # saying what arrived and that such calls can be turned into real ones.
    with FakeOpenAIServer(script=responder) as server:
        _, events = await run_once(settings_for(server.base_url, tmp_path, text_tools="off"), session, "task")
    done = the_finish(events)
    assert done.reason == "error" and "wrote a tool call as plain text" in done.message
    assert "SBTEAM_TEXT_TOOLS=on" in done.message and "received: " in done.message
    assert "\n" not in done.message
    assert not any(isinstance(e, ev.ToolResult) for e in events)  # nothing was run


async def test_plain_json_data_is_not_mistaken_for_a_tool_call(session, tmp_path):
    """A Planner that answers with ordinary JSON and TERMINATE is fine."""
    answer = 'Result: {"mean": 0.1, "std": 1.0}\nTERMINATE'
    with FakeOpenAIServer(script=lambda req: answer) as server:
        _, events = await run_once(settings_for(server.base_url, tmp_path), session, "task")
    assert the_finish(events).reason == "terminate"


async def test_stop_while_waiting_for_the_model(session, tmp_path):
    """A model that takes its time: stop() still ends the run promptly with `stopped`,
    and the next run works while the abandoned request is still open."""
    script = [text("too late", delay=30), text("Done. TERMINATE")]
    with FakeOpenAIServer(script=script) as server:
        controller = RunController(settings_for(server.base_url, tmp_path), session=session)
        controller.start("task")
        seen: list[ev.Event] = []

        async def read_all():
            async for event in controller.events():
                seen.append(event)

        reader = asyncio.create_task(read_all())
        for _ in range(250):  # until the Planner's request is at the server
            if server.requests:
                break
            await asyncio.sleep(0.02)
        assert server.requests
        t0 = time.monotonic()
        await controller.stop()
        await asyncio.wait_for(reader, 5)
        latency = time.monotonic() - t0
        done = the_finish(seen)
        assert done.reason == "stopped" and done.message == ""
        assert latency < 3
        # the next run does not wait for the abandoned request
        controller.start("again")
        again = await asyncio.wait_for(collect(controller), 15)
        assert the_finish(again).reason == "terminate"
    # the server is gone: the abandoned request fails and every task of the controller ends
    for task in [controller._drive_task, *controller._background]:
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 15)
