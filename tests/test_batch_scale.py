"""Batch and eval at scale: E2B's limits kept, faults retried, resume, shards + merge.

The E2B side is the in-process stand-in (tests/e2b_standin.py) with its account
limits switched on; the model side is the real OpenAI client against the local
OpenAI-compatible server (tests/openai_server.py) answering 429/503 first.
"""

from __future__ import annotations

import os

# Fail fast on refused connections (the SDK reads this once, at import; as test_e2b_sandbox.py).
os.environ.setdefault("E2B_CONNECTION_RETRIES", "0")

import asyncio  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from team.batch import merge_batches, run_batch  # noqa: E402
from team.config import Settings  # noqa: E402
from team.eval.dabench import read_labels, read_questions, with_labels  # noqa: E402
from team.eval.runner import EvalOptions, run_eval  # noqa: E402
from team.run import RunController  # noqa: E402
from team.sandbox.base import SandboxError  # noqa: E402
from team.sandbox.e2b import RATE_LIMIT_MESSAGE, E2BSandbox, configure_gate, scale_limits  # noqa: E402
from team.scale import at_scale  # noqa: E402
from team.scripted import Say, ScriptedChatCompletionClient  # noqa: E402
from team.session import CodeSession  # noqa: E402
from tests.e2b_standin import E2BStandIn  # noqa: E402
from tests.openai_server import FakeOpenAIServer, Reply, error, text  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def standin(tmp_path):
    async with E2BStandIn(tmp_path / "e2b") as server:
        yield server


def e2b_create(standin: E2BStandIn):
    return lambda: E2BSandbox.create(**standin.sdk_kwargs(), create_retries=8, backoff=0.01)


def controllers(standin: E2BStandIn, model_factory=None, made: list | None = None):
    def make(settings: Settings) -> RunController:
        controller = RunController(settings, session=CodeSession(settings, factory=e2b_create(standin)),
                                   model_factory=model_factory)
        if made is not None:
            made.append(controller)
        return controller

    return make


def terminate_at_once() -> ScriptedChatCompletionClient:
    return ScriptedChatCompletionClient(lambda turn: Say("Nothing to compute.\n\nTERMINATE"))


class Quiet:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass


# -- the E2B account limits ------------------------------------------------------------------


async def test_gate_caps_sandboxes_alive_and_paces_creations(standin):
    gate = configure_gate(concurrency=3, rate=20)
    standin.max_alive = 3  # E2B would refuse a fourth

    async def hold() -> None:
        sandbox = await e2b_create(standin)()
        await asyncio.sleep(0.15)
        await sandbox.kill()

    await asyncio.gather(*(hold() for _ in range(7)))
    assert len(standin.created) == 7 and standin.peak_alive == 3 and gate.peak == 3
    assert all(status == 201 for _, status in standin.create_log)  # never refused: we kept the limit
    sent = list(gate.attempts)
    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    assert min(gaps) >= 1 / 20 - 0.005  # requests sent at most 20 a second
    arrived = [t for t, _ in standin.create_log]
    assert arrived[-1] - arrived[0] >= 6 / 20 - 0.02
    assert gate.alive == 0


async def test_refused_creations_are_retried_then_give_up_in_one_line(standin):
    configure_gate(concurrency=5, rate=0)
    standin.refuse_creates = 2
    standin.refuse_retry_after = "0"
    sandbox = await e2b_create(standin)()
    assert len(standin.created) == 1 and [s for _, s in standin.create_log] == [429, 429, 201]
    await sandbox.kill()
    standin.refuse_creates = 100
    with pytest.raises(SandboxError) as info:
        await E2BSandbox.create(**standin.sdk_kwargs(), create_retries=2, backoff=0.01)
    message = str(info.value)
    assert message.startswith(RATE_LIMIT_MESSAGE) and "gave up after 3 attempts" in message and "\n" not in message


async def test_a_lost_answer_never_makes_a_second_sandbox(standin):
    configure_gate(concurrency=5, rate=0)
    standin.lose_creates = 1  # E2B made it, the 502 hid it: the retry carries the same key
    sandbox = await e2b_create(standin)()
    assert [s for _, s in standin.create_log] == [502, 201]
    assert len(standin.created) == 1 and sandbox.sandbox_id == standin.created[0]
    await sandbox.kill()


def test_limits_from_the_environment():
    assert scale_limits({}) == (20, 1.0, 6)  # E2B Hobby
    assert scale_limits({"SBTEAM_E2B_CONCURRENCY": "100", "SBTEAM_E2B_RATE": "5", "SBTEAM_E2B_RETRIES": "0"}) == (100, 5.0, 0)
    for name, value in (("SBTEAM_E2B_RATE", "fast"), ("SBTEAM_E2B_CONCURRENCY", "-1"), ("SBTEAM_E2B_CONCURRENCY", "2.5")):
        with pytest.raises(ValueError, match=name):
            scale_limits({name: value})


# -- the fault test: E2B 429s and a model endpoint answering 429/503 ----------------------------


def _tiny_questions(folder: Path, count: int) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.csv").write_text("x,y\n1,2\n3,4\n", encoding="utf-8")
    questions = folder / "q.jsonl"
    labels = folder / "l.jsonl"
    questions.write_text("".join(
        json.dumps({"id": i, "question": f"Question {i}: what is 6 times 7?", "format": "@answer[value]",
                    "file_name": "tiny.csv", "level": "easy", "concepts": ["Summary Statistics"]}) + "\n"
        for i in range(count)), encoding="utf-8")
    labels.write_text("".join(json.dumps({"id": i, "common_answers": [["answer", "42"]]}) + "\n" for i in range(count)),
                      encoding="utf-8")
    return with_labels(read_questions(questions), read_labels(labels))


async def test_faults_every_question_finishes_once(tmp_path, standin):
    configure_gate(concurrency=2, rate=50)
    standin.max_alive = 2
    standin.refuse_creates = 3
    standin.refuse_retry_after = "0"
    standin.lose_creates = 1
    answers = iter([
        error(429, "Rate limit reached", type="requests", code="rate_limit_exceeded"),
        error(429, "Rate limit reached", type="requests", code="rate_limit_exceeded"),
        error(503, "The server is overloaded", type="server_error"),
        error(503, "The server is overloaded", type="server_error"),
    ])

    def respond(request: dict) -> Reply:
        reply = next(answers, None)
        if reply is None:
            return text("6 times 7: @answer[42]\n\nTERMINATE")
        reply.headers = {"retry-after-ms": "20"}
        return reply

    questions = _tiny_questions(tmp_path / "q", 5)
    with FakeOpenAIServer(respond) as server:
        settings = Settings.load(env={
            "SBTEAM_HOME": str(tmp_path / "home"), "OPENAI_API_KEY": "sk-test-123456",
            "OPENAI_API_BASE": server.base_url, "OPENAI_MODEL": "fake-model",
        }, env_file=None)
        options = EvalOptions(out=tmp_path / "out", data_dir=tmp_path / "q", concurrency=4)
        outcome = await run_eval(settings, questions, options, controller_factory=controllers(standin), progress=Quiet())
        statuses = [r["status"] for r in outcome.records]
        assert statuses == ["scored"] * 5, [r.get("verdict") for r in outcome.records]
        assert outcome.summary["overall"]["abq"] == 1.0 and outcome.summary["failed"] == 0
        assert len(server.requests) == 5 + 4  # one answer per question, plus the four refused
    assert len(standin.created) == 5  # no question got a second sandbox
    assert standin.peak_alive <= 2
    assert sorted(s for _, s in standin.create_log).count(429) >= 3 and [s for _, s in standin.create_log].count(502) == 1
    lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["key"] for line in lines) == sorted(q.key for q in questions)  # none twice
    assert len(list((tmp_path / "home" / "runs").iterdir())) == 5


def test_model_retry_after_is_honoured(tmp_path):
    """The OpenAI SDK under the team waits what the endpoint's Retry-After says."""
    from team.model import build_model_client

    slow = error(429, "Rate limit reached", type="requests", code="rate_limit_exceeded")
    slow.headers = {"retry-after": "1"}
    with FakeOpenAIServer([slow, "hello"]) as server:
        settings = at_scale(Settings.load(env={"OPENAI_API_KEY": "sk-test-123456", "OPENAI_API_BASE": server.base_url,
                                               "OPENAI_MODEL": "fake-model"}, env_file=None))
        assert settings.model_retries >= 6

        async def ask() -> str:
            from autogen_core.models import UserMessage

            client = build_model_client(settings)
            try:
                return (await client.create([UserMessage(content="hi", source="user")])).content
            finally:
                await client.close()

        start = time.monotonic()
        assert asyncio.run(ask()) == "hello"
        assert time.monotonic() - start >= 0.95 and len(server.requests) == 2


# -- batch: resume, shards, merge ----------------------------------------------------------------


async def test_batch_resume_and_two_shards_merge_to_one_run(tmp_path, settings, standin):
    configure_gate(concurrency=20, rate=0)
    tasks = ["count the rows", "plot nothing", "count the rows", "say hello", "sum 1 and 2"]  # a repeated line
    made: list = []
    factory = controllers(standin, terminate_at_once, made)
    whole = await run_batch(settings, tasks, concurrency=3, controller_factory=factory, progress=Quiet(),
                            out=tmp_path / "whole")
    assert [r.reason for r in whole] == ["terminate"] * 5 and len(made) == 5
    assert len({r.key for r in whole}) == 5
    # again: everything is finished, nothing runs
    made.clear()
    again = await run_batch(settings, tasks, concurrency=3, controller_factory=factory, progress=(log := Quiet()),
                            out=tmp_path / "whole")
    assert made == [] and all(r.skipped for r in again) and "5 task(s) already finished" in log.text
    # a failed task is run again
    results = tmp_path / "whole" / "results.jsonl"
    first = json.loads(results.read_text().splitlines()[0])
    with open(results, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(first | {"reason": "error", "status": "failed"}) + "\n")
    await run_batch(settings, tasks, concurrency=3, controller_factory=factory, progress=Quiet(), out=tmp_path / "whole")
    assert len(made) == 1
    # two shards, then merge
    from team.scale import Shard

    for index in (0, 1):
        await run_batch(settings, tasks, concurrency=2, controller_factory=factory, progress=Quiet(),
                        out=tmp_path / "sharded" / f"shard-{index}-of-2", shard=Shard(index, 2))
    summary, records, problems = merge_batches([tmp_path / "sharded"], tmp_path / "merged")
    assert problems == []
    whole_records = [json.loads(line) for line in (tmp_path / "whole" / "results.jsonl").read_text().splitlines()]
    latest = {r["key"]: r for r in whole_records}
    assert [(r["key"], r["index"], r["reason"]) for r in records] == sorted(
        ((r["key"], r["index"], r["reason"]) for r in latest.values()), key=lambda x: x[1])
    assert summary["finished"] == 5 and summary["reasons"] == {"terminate": 5} and summary["tasks_in_plan"] == 5
