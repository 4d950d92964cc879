"""SBTEAM_MAX_COST: a run ends with reason `budget` when its next model call would pass the
cap (the prices table, each agent at its own model's price), headless and in the app, and
the status bar shows `$spent/$cap` like the other limits."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from team import events as ev
from team.config import ConfigError, Settings
from team.cost import BudgetExceeded, RunMeter, SpendPool, cost_for_agents
from team.run import RunController
from tests.openai_server import FakeOpenAIServer, text, tool_call
from tests.run_events import the_finish
from tests.test_run_openai import asker

# gpt-4o is $2.50 in / $10 out per 1M tokens; each fake answer reports 1000 in / 100 out:
# $0.0035 a call. With a $0.005 cap the second call would pass it.
CAP = 0.005
USAGE = (1000, 100)


def flow(req: dict):
    if asker(req) == "Planner":
        return tool_call("transfer_to_codeagent", {}) if not _called(req) else text("Done. TERMINATE", usage=USAGE)
    return tool_call("run_code", {"code": "print(1)"})


def _called(req: dict) -> bool:
    return any(m.get("tool_calls") for m in req["messages"] if m.get("role") == "assistant")


def _with_usage(responder):
    def answer(req: dict):
        reply = responder(req)
        reply.usage = USAGE
        return reply

    return answer


def _settings(server: FakeOpenAIServer, tmp_path: Path, **kw) -> Settings:
    values = dict(
        openai_api_key="sk-budget-0123456789abcdef", openai_api_base=server.base_url, openai_model="gpt-4o",
        model_retries=0, model_timeout=10.0, sandbox="local", home=tmp_path / "home", max_cost=CAP,
    )
    values.update(kw)
    return Settings(**values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the meter


def test_the_meter_refuses_the_call_that_would_pass_the_cap() -> None:
    meter = RunMeter(1.0, {"Planner": (2.5, 10.0), "CodeAgent": (0.0, 0.0)})
    meter.check("Planner", 10_000)  # $0.025 + 100 tokens out: fine
    meter.record("Planner", 300_000, 10_000)  # $0.75 + $0.10
    assert meter.spent == pytest.approx(0.85)
    meter.check("CodeAgent", 10_000_000)  # a free local model never passes a cap
    with pytest.raises(BudgetExceeded, match=r"Planner's next model call .* past SBTEAM_MAX_COST=\$1\.00"):
        meter.check("Planner", 60_000)  # $0.15 + the longest reply so far ($0.10)


def test_a_batch_shares_one_cap() -> None:
    pool = SpendPool(0.01)
    first, second = RunMeter(1.0, {"Planner": (2.5, 10.0)}, pool), RunMeter(1.0, {"Planner": (2.5, 10.0)}, pool)
    first.record("Planner", 2000, 400)  # $0.009
    assert pool.spent == pytest.approx(0.009)
    with pytest.raises(BudgetExceeded, match="the batch's cost"):
        second.check("Planner", 100)  # its own run spent nothing, the batch did


def test_cost_is_per_agent_at_each_price() -> None:
    prices = {"Planner": (2.5, 10.0), "CodeAgent": (0.0, 0.0), "AnalystAgent": (0.15, 0.6)}
    tokens = {"Planner": [1_000_000, 100_000], "CodeAgent": [5_000_000, 1_000_000], "AnalystAgent": [1_000_000, 0]}
    assert cost_for_agents(tokens, prices) == pytest.approx(2.5 + 1.0 + 0.15)
    assert cost_for_agents({"Planner": [10, 1]}, {"Planner": None}) is None


def test_max_cost_settings() -> None:
    env = {"OPENAI_API_KEY": "sk-0123456789abcdef", "SBTEAM_MAX_COST": "$1.50"}
    assert Settings.load(env=env, env_file=None).max_cost == 1.5
    for bad in ("cheap", "0", "-1", "nan"):
        with pytest.raises(ConfigError, match="SBTEAM_MAX_COST must be an amount"):
            Settings.load(env={**env, "SBTEAM_MAX_COST": bad}, env_file=None)
    unknown = {**env, "OPENAI_MODEL": "my-model", "OPENAI_API_BASE": "https://llm.example.com/v1"}
    with pytest.raises(ConfigError) as caught:
        Settings.load(env=unknown, env_file=None)
    assert caught.value.problems == [
        "SBTEAM_MAX_COST is set but Planner's model 'my-model' has no known price — add "
        "SBTEAM_PRICES=my-model=input/output (USD per 1M tokens)",
        "SBTEAM_MAX_COST is set but CodeAgent's model 'my-model' has no known price — add "
        "SBTEAM_PRICES=my-model=input/output (USD per 1M tokens)",
        "SBTEAM_MAX_COST is set but AnalystAgent's model 'my-model' has no known price — add "
        "SBTEAM_PRICES=my-model=input/output (USD per 1M tokens)",
    ]
    priced = Settings.load(env={**unknown, "SBTEAM_PRICES": "my-model=1/2"}, env_file=None)
    assert priced.max_cost == 1.5
    local = Settings.load(env={**env, "OPENAI_API_BASE": "http://127.0.0.1:8080/v1", "OPENAI_MODEL": "qwen"},
                          env_file=None)
    assert local.max_cost == 1.5  # a local server costs nothing


# --------------------------------------------------------------------------- headless


async def test_budget_ends_the_run_headless(tmp_path: Path) -> None:
    with FakeOpenAIServer(script=_with_usage(flow)) as server:
        controller = RunController(_settings(server, tmp_path))
        controller.start("task")
        events = [e async for e in controller.events()]
        await controller.close()
        requests = len(server.requests)
    done = the_finish(events)
    assert isinstance(done, ev.RunFinished) and done.reason == "budget", done
    assert "past SBTEAM_MAX_COST=$0.0050" in done.message and "CodeAgent's next model call" in done.message
    assert requests == 1  # the call that would pass the cap was never sent
    assert done.cost == pytest.approx(0.0035) and done.cost <= CAP
    assert done.agent_tokens == {"Planner": [1000, 100]}


def test_budget_ends_the_run_from_the_command_line(tmp_path: Path) -> None:
    with FakeOpenAIServer(script=_with_usage(flow)) as server:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SBTEAM_", "E2B_"))
        } | {
            "OPENAI_API_KEY": "sk-budget-0123456789abcdef", "OPENAI_API_BASE": server.base_url,
            "OPENAI_MODEL": "gpt-4o", "SBTEAM_MAX_COST": str(CAP), "SBTEAM_SANDBOX": "local",
            "SBTEAM_HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
        }
        proc = subprocess.run(
            [sys.executable, "-m", "tui", "run", "task"], capture_output=True, text=True, env=env,
            cwd=tmp_path, timeout=100,
        )
    assert proc.returncode == 1, proc.stderr
    assert "finished: BUDGET: CodeAgent's next model call" in proc.stdout
    assert "past SBTEAM_MAX_COST=$0.0050" in proc.stdout and "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- the app


async def test_budget_ends_the_run_in_the_app(tmp_path: Path) -> None:
    from tests.tui.conftest import SIZE, wait_for
    from tui.app import SbteamApp

    with FakeOpenAIServer(script=_with_usage(flow)) as server:
        app = SbteamApp(_settings(server, tmp_path), task="task", autostart=True, output_dir=tmp_path / "out",
                        cursor_blink=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.run_state == "finished", limit=60)
            await asyncio.sleep(0.2)
            bar = app.status.plain
            assert "finished: BUDGET" in bar, bar
            assert "$0.0035/$0.0050" in bar, bar
            await app.transcript.flush_now()
            finished = [e for e in app.transcript.record if e.type == "run_finished"]
            assert finished and finished[-1].reason == "budget"


def test_the_status_bar_shows_the_budget_like_a_limit() -> None:
    from tui.format import budget_label
    from tui.widgets.status_bar import StatusBar

    assert budget_label(0.12, 1.0) == "$0.12/$1.00"
    assert budget_label(None, 1.0) == "$?/$1.00"
    bar = StatusBar()
    for name, value in dict(state="running", model="gpt-4o", max_cost=1.0, cost=0.12, messages=3).items():
        setattr(bar, name, value)
    assert "$0.12/$1.00" in bar.build(width=0).plain
    narrow = bar.build(width=60).plain
    assert "$0.12/$1.00" in narrow or "msgs" not in narrow  # a limit, kept before tokens and the model


async def test_the_runs_of_a_batch_share_one_cap(tmp_path: Path) -> None:
    """`load_settings` gives the runs of a batch (or an eval) one SpendPool besides each run's cap."""
    import io

    from team.batch import run_batch

    with FakeOpenAIServer(script=_with_usage(flow)) as server:
        settings = _settings(server, tmp_path, max_cost=0.004)
        settings = settings.with_(spend_pool=SpendPool(0.004))
        results = await run_batch(settings, ["first task", "second task"], concurrency=1, progress=io.StringIO())
        requests = len(server.requests)
    assert [r.reason for r in results] == ["budget", "budget"]
    assert "the run's cost" in results[0].message and "the batch's cost" in results[1].message
    assert requests == 1  # the second task never reached the model: the batch had spent its cap


def test_the_command_line_gives_batches_a_shared_cap_and_the_app_none(monkeypatch) -> None:
    from tui.cli import load_settings

    monkeypatch.setenv("OPENAI_API_KEY", "sk-0123456789abcdef")
    monkeypatch.setenv("SBTEAM_MAX_COST", "2")
    shared = load_settings()
    assert shared.spend_pool is not None and shared.spend_pool.cap == 2.0
    assert shared.with_(timeout=5).spend_pool is shared.spend_pool  # kept by every copy of the settings
    assert load_settings(shared_cap=False).spend_pool is None
