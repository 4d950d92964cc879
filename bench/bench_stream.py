"""Streams the app reads: what scrubbing secrets costs the event path, and how fast a
huge tool-call argument arrives.

    python bench/bench_stream.py [--deltas N] [--argument-mb M]

Rows (issue 12):
- what scrubbing adds per token delta (the engine's event path with secrets
  configured minus without) against what the transcript spends per chunk
  (bench_tui's batched transcript, measured here in the same run): goal ≤ 0.05×,
  i.e. scrubbing adds < 5 % to transcript throughput;
- the event path itself with and without secrets (information);
- a tool call whose arguments are M MB streamed in 64-character deltas: our client
  (AutoGen's, with the deltas merged first) vs the openai SDK reading the same
  stream with nothing on top: goal ≤ 1.5× (AutoGen alone took 99 s for 3 MB).
Follows the bench/common.py protocol.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Row, emit, info, ratio_at_most  # noqa: E402
from team import events as ev  # noqa: E402
from team.config import Settings  # noqa: E402
from team.model import build_model_client  # noqa: E402
from team.run import RunController  # noqa: E402
from tests.openai_server import FakeOpenAIServer, Reply, ToolCall  # noqa: E402

WORDS = "the mean of the sample is skewed by a single outlier so we report the median as well".split()


def _deltas(n: int) -> list[str]:
    rng = random.Random(7)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4))) + " " for _ in range(n)]


def _event_path_seconds(settings: Settings, deltas: list[str], rounds: int = 5) -> float:
    controller = RunController(settings, record=False)
    best = float("inf")
    for _ in range(rounds):
        controller._reset_run_state()
        controller.run_id = "bench"
        controller._queue = asyncio.Queue()
        start = time.perf_counter()
        for i, text in enumerate(deltas):
            controller._emit(ev.TokenDelta(agent="Planner", text=text, message_id=f"m{i // 200}"), "bench")
        controller._emit(ev.Message(agent="Planner", text="done", message_id="end"), "bench")
        best = min(best, time.perf_counter() - start)
    return best


async def _argument_seconds(mb: float) -> tuple[float, float]:
    code = "x = 1\n" * int(mb * (1 << 20) / 6)
    args = json.dumps({"code": code})
    reply = Reply(tool_calls=[ToolCall("run_code", args, id="call_big")], arg_chunk=64)
    tool = {"name": "run_code", "description": "run", "parameters": {"type": "object", "properties": {}}}
    with FakeOpenAIServer(script=[reply, reply]) as srv:
        from openai import AsyncOpenAI

        raw = AsyncOpenAI(base_url=srv.base_url, api_key="x", timeout=600)
        start = time.perf_counter()
        stream = await raw.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True,
            tools=[{"type": "function", "function": tool}],
        )
        got = []
        async for chunk in stream:
            for call in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
                if call.function and call.function.arguments:
                    got.append(call.function.arguments)
        baseline = time.perf_counter() - start
        assert "".join(got) == args
        settings = Settings(openai_api_key="x", openai_api_base=srv.base_url, openai_model="m",
                            model_retries=0, model_timeout=600.0)
        client = build_model_client(settings)
        from autogen_core.models import UserMessage

        start = time.perf_counter()
        items = [x async for x in client.create_stream([UserMessage(content="hi", source="user")], tools=[tool])]  # type: ignore[list-item]
        ours = time.perf_counter() - start
        assert items[-1].content[0].arguments == args
        await client.close()
    return ours, baseline


def run(deltas: int = 20_000, argument_mb: float = 3.0) -> list[Row]:
    """Every row of this benchmark."""
    texts = _deltas(deltas)
    plain = Settings(openai_api_key=None, demo=True)
    secret = Settings(openai_api_key="sk-bench-0123456789abcdefghijklmn", e2b_api_key="e2b_bench_0123456789abcdef",
                      other_secrets=("ghp_benchToken0123456789abcdef",))
    without = _event_path_seconds(plain, texts)
    with_secrets = _event_path_seconds(secret, texts)
    from bench.bench_tui import _stream_transcript, _with_app

    transcript_us = 1e6 / asyncio.run(_with_app(_stream_transcript))
    added_us = max(0.0, (with_secrets - without) * 1e6 / deltas)
    ours, baseline = asyncio.run(_argument_seconds(argument_mb))
    return [
        ratio_at_most("scrubbing secrets: added per delta vs transcript per chunk", added_us, transcript_us, 0.05,
                      "µs", note="(event path with secrets − without) ÷ the batched transcript's time per chunk"),
        info("event path: token deltas with secrets scrubbed", with_secrets * 1e6 / deltas, "µs/delta",
             baseline=without * 1e6 / deltas, note=f"{deltas:,} deltas through RunController._emit, best of 5"),
        ratio_at_most(f"{argument_mb:g} MB tool argument in 64-char deltas: our client vs raw openai SDK", ours, baseline,
                      1.5, "s", note="the same local test server for both; AutoGen alone is quadratic (99 s for 3 MB)"),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=int, default=20_000)
    parser.add_argument("--argument-mb", type=float, default=3.0)
    args = parser.parse_args()
    emit(run(args.deltas, args.argument_mb), f"bench_stream: python {sys.version.split()[0]}")
