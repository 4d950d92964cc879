"""A runaway reply ends: each reply is capped (max_tokens), a reply that repeats itself is cut
where the repetition began, the model is told once, and the second time ends the run as
`degenerate`. Tokens of a stream a stop cut short are still counted."""

from __future__ import annotations

import asyncio
import time

import pytest
from autogen_core.models import UserMessage

from team import events as ev
from team.agent_client import CUT_DEGENERATE
from team.agent_models import build_agent_clients
from team.config import Settings
from team.cost import RunMeter
from team.demo import SEED_CODE
from team.model import DEGENERATE_NOTE
from team.prompts import prompts_for
from team.repetition import RepetitionDetector, loop_start
from team.run import RunController
from tests.openai_server import FakeOpenAIServer, Reply, split_text, text, tool_call
from tests.run_events import collect, the_finish
from tests.test_run_openai import asker

PREAMBLE = "Here is the plan. First I list the tools I will use, then the numbers to check: "
PHRASE = "the number list is 1, 2, 3, 4, 5 and again "
HI = [UserMessage(content="Plan the analysis", source="user")]


def runaway(tokens: int = 2000, **kw) -> Reply:
    """A reply that repeats one phrase for about `tokens` tokens (one word a chunk)."""
    words = len(split_text(PHRASE))
    return text(PREAMBLE + PHRASE * (tokens // words), **kw)


# --------------------------------------------------------------------------- the detector


def test_a_repeated_phrase_is_caught_within_300_tokens_of_the_loop_starting() -> None:
    detector = RepetitionDetector()
    pieces = split_text(PREAMBLE + PHRASE * 400)
    loop_at = len(split_text(PREAMBLE))
    fed = next(i for i, piece in enumerate(pieces, 1) if detector.feed(piece))
    assert fed - loop_at <= 300, (fed, loop_at)
    text_so_far = "".join(pieces[:fed])
    start = loop_start(text_so_far, detector.period)
    assert text_so_far[:start].startswith(PREAMBLE.rstrip()) and len(text_so_far[:start]) <= len(PREAMBLE)
    assert PHRASE.startswith(text_so_far[start : start + detector.period].strip()[:10])


@pytest.mark.parametrize(
    "sample",
    [
        SEED_CODE * 3,  # code, repeated whole three times is still not 150 tokens of one period
        prompts_for("en").planner + prompts_for("en").code_agent + prompts_for("en").analyst,
        prompts_for("zh").planner + prompts_for("zh").code_agent,
        "\n".join(f"{i},{i * 0.37:.3f},{(i * 7919) % 101}" for i in range(400)),  # a CSV
        "| a | b |\n|---|---|\n" + "".join(f"| {i} | {i * i} |\n" for i in range(200)),  # a table
    ],
)
def test_prose_code_and_data_are_not_repetition(sample: str) -> None:
    detector = RepetitionDetector()
    assert not any(detector.feed(piece) for piece in split_text(sample))


def test_a_long_repeated_block_is_caught_too() -> None:
    block = "".join(f"{(i * 37) % 1000}, " for i in range(120)) + "\n"  # a 120-number list
    detector = RepetitionDetector()
    pieces = split_text("Numbers:\n" + block * 12)
    assert any(detector.feed(piece) for piece in pieces)


def test_the_detector_is_cheap() -> None:
    pieces = split_text(SEED_CODE * 40)
    detector = RepetitionDetector()
    t0 = time.perf_counter()
    for piece in pieces:
        detector.feed(piece)
    assert (time.perf_counter() - t0) / len(pieces) < 0.0005  # well under a millisecond a token


# --------------------------------------------------------------------------- through the client


def _settings(server: FakeOpenAIServer, **kw) -> Settings:
    values = dict(openai_api_base=server.base_url, openai_model="qwen2.5-coder", model_retries=0, model_timeout=10.0)
    values.update(kw)
    return Settings(**values)  # type: ignore[arg-type]


async def test_a_server_streaming_one_phrase_for_2000_tokens_is_cut_within_300_tokens() -> None:
    reply = runaway(2000, pace=0.001)
    loop_at = len(split_text(PREAMBLE))
    with FakeOpenAIServer(script=[reply]) as srv:
        meter = RunMeter()
        clients = build_agent_clients(_settings(srv), meter)
        t0 = time.monotonic()
        items = [x async for x in clients["Planner"].create_stream(HI)]
        took = time.monotonic() - t0
        await clients.close()
        for _ in range(100):  # the server notices the closed connection at its next write
            if srv.streams_cut or srv.streams_sent:
                break
            await asyncio.sleep(0.02)
        cut, sent = list(srv.streams_cut), list(srv.streams_sent)
    result = items[-1]
    assert result.content.startswith(PREAMBLE) and result.content.endswith(CUT_DEGENERATE)
    kept = result.content[: -len(CUT_DEGENERATE)]
    assert kept.count("number list") == 1  # the loop is cut where it began, one copy kept
    assert result.usage.completion_tokens - loop_at <= 300  # the client read at most 300 tokens of the loop
    assert cut and not sent and cut[0] - loop_at <= 400  # the server stopped sending early, too
    assert took < 5
    assert meter.degenerate == 1


async def test_the_model_is_told_once_and_the_second_runaway_ends_the_run(settings) -> None:
    def responder(req: dict):
        return runaway(1000)

    with FakeOpenAIServer(script=responder) as server:
        settings = _settings(server, home=settings.home, sandbox="local")
        controller = RunController(settings)
        controller.start("Plan the analysis")
        events = await asyncio.wait_for(collect(controller), 60)
        await controller.close()
        requests = list(server.requests)
    done = the_finish(events)
    assert isinstance(done, ev.RunFinished) and done.reason == "degenerate", done
    assert "repeated itself again" in done.message and "Planner" in done.message
    assert len(requests) == 2
    told = requests[1]["messages"][-1]
    assert told["role"] == "user" and told["content"] == DEGENERATE_NOTE  # once, to the same agent
    first = [e for e in events if isinstance(e, ev.Message) and e.agent == "Planner"][0]
    assert first.text.endswith(CUT_DEGENERATE)
    assert done.tokens_out > 0  # the cut replies are counted


async def test_each_reply_is_capped_with_max_tokens(settings) -> None:
    with FakeOpenAIServer(script=[text("short"), text("short")]) as srv:
        clients = build_agent_clients(_settings(srv), RunMeter())
        [x async for x in clients["Planner"].create_stream(HI)]
        await clients.close()
        clients = build_agent_clients(_settings(srv, max_tokens=333), RunMeter())
        await clients["Planner"].create(HI)
        await clients.close()
        assert [r.get("max_tokens") for r in srv.requests] == [4096, 333]


async def test_a_stream_past_max_tokens_is_cut_even_if_the_server_ignores_it() -> None:
    words = " ".join(f"w{i}" for i in range(400))  # no repetition, just long
    with FakeOpenAIServer(script=[text(words)]) as srv:
        clients = build_agent_clients(_settings(srv, max_tokens=100), RunMeter())
        items = [x async for x in clients["Planner"].create_stream(HI)]
        await clients.close()
    result = items[-1]
    assert result.finish_reason == "length" and "reached max_tokens" in result.content
    assert result.usage.completion_tokens <= 100 + 65


async def test_tokens_of_a_stream_cut_by_a_stop_are_counted(settings) -> None:
    slow = text(" ".join(f"token{i}" for i in range(3000)), pace=0.005)

    def responder(req: dict):
        return slow if asker(req) == "Planner" else tool_call("transfer_to_planner", {})

    with FakeOpenAIServer(script=responder) as server:
        controller = RunController(_settings(server, home=settings.home, sandbox="local"))
        controller.start("Plan it")
        seen: list[ev.Event] = []

        async def collect() -> None:
            async for event in controller.events():
                seen.append(event)

        reader = asyncio.create_task(collect())
        for _ in range(500):
            if sum(isinstance(e, ev.TokenDelta) for e in seen) >= 50:
                break
            await asyncio.sleep(0.02)
        streamed = sum(isinstance(e, ev.TokenDelta) for e in seen)
        await controller.stop()
        await asyncio.wait_for(reader, 10)
        await controller.close()
    done = the_finish(seen)
    assert isinstance(done, ev.RunFinished) and done.reason == "stopped"
    assert done.tokens_out >= streamed >= 50  # "tokens 0/0" after a stop was the bug
    assert done.tokens_in > 0 and done.agent_tokens["Planner"][1] == done.tokens_out


def test_the_degenerate_reason_is_known_to_the_ui() -> None:
    from tui.format import REASON_LABELS

    assert REASON_LABELS["degenerate"] == "DEGENERATE" and REASON_LABELS["budget"] == "BUDGET"
