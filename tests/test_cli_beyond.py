"""Loop guard, cost and history from the command line, against a local OpenAI-compatible server."""

from __future__ import annotations

import json

from tests.openai_server import FakeOpenAIServer, tool_call
from tests.test_cli import clean_env, new_workdir, run_cli


def bouncing(request: dict) -> object:
    """A model that only ever hands the task on: Planner → CodeAgent → Planner → …"""
    names = {t["function"]["name"] for t in request.get("tools", [])}
    if "transfer_to_codeagent" in names:
        return tool_call("transfer_to_codeagent")
    return tool_call("transfer_to_planner")


def test_loop_guard_cost_and_history_as_a_user_sees_them(tmp_path):
    env = clean_env(tmp_path)
    workdir = new_workdir(tmp_path)
    with FakeOpenAIServer(script=bouncing, api_key="sk-loop-test-key") as server:
        env.update(
            OPENAI_API_BASE=server.base_url,
            OPENAI_API_KEY="sk-loop-test-key",
            OPENAI_MODEL="gpt-4o-mini",
            SBTEAM_LOOP_LIMIT="3",
        )
        proc = run_cli(["run", "bounce the task around", "--json"], env, workdir)
        human = run_cli(["run", "bounce it again"], env, workdir)
    assert proc.returncode == 1, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    finished = [e for e in events if e["type"] == "run_finished"]
    assert len(finished) == 1 and finished[0]["reason"] == "loop"
    assert "3 times without any tool call" in finished[0]["message"]
    assert "SBTEAM_LOOP_LIMIT" in finished[0]["message"]
    assert [e["target"] for e in events if e["type"] == "handoff"][:2] == ["CodeAgent", "Planner"]
    assert finished[0]["cost"] > 0 and set(finished[0]["agent_tokens"]) == {"Planner", "CodeAgent"}
    assert "sk-loop-test-key" not in proc.stdout + proc.stderr
    # the readable transcript ends with the reason, the tokens and the cost
    last = human.stdout.strip().splitlines()[-1]
    assert "finished: LOOP" in last and "cost $" in last
    # and history lists both runs, newest first, with their reason and cost
    listing = run_cli(["history", "bounce"], env, workdir)
    lines = listing.stdout.strip().splitlines()
    assert len(lines) == 2 and all(" loop " in line and "$" in line for line in lines)
    assert "bounce it again" in lines[0]
