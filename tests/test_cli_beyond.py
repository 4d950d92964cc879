"""Loop guard, cost and history from the command line, against a local OpenAI-compatible server."""

from __future__ import annotations

import json

from tests.openai_server import FakeOpenAIServer, tool_call
from tests.test_cli import clean_env, new_workdir, no_traceback, run_cli


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


def test_demo_rejected_write_file_exits_1_and_resume_says_it_replays(tmp_path):
    """Issue #10.5 headless: `run --demo --approve` with the user rejecting write_file on
    stdin does not end with TERMINATE and exits 1; a custom task is labelled as the
    example being played; `--resume` in DEMO says it replays the example."""
    env = clean_env(tmp_path)
    workdir = new_workdir(tmp_path)
    task = "Summarise my sales.csv by region"
    proc = run_cli(["run", "--demo", "--approve", task], env, workdir, stdin="r\nnot now\n")
    no_traceback(proc.stderr)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "CodeAgent wants to write_file" in proc.stderr  # it was asked, and answered 'r'
    out = proc.stdout
    last = out.strip().splitlines()[-1]
    assert "finished: ERROR: DEMO stopped: the user rejected write_file" in last
    assert "finished: TERMINATE" not in out and "**TERMINATE**" not in out
    assert "The DEMO plays the example task whatever is typed" in out  # the default (zh) DEMO says it in English too
    assert f"“{task}”" in out and f"「{task}」" in out
    assert out.index("whatever is typed") < out.index("🔧 write_file")  # up front
    assert "not now" in out.split("🔧 write_file", 1)[1]  # the rejection and its reason are reported
    assert "run_code" not in out and "文件已写入" not in out and "nan" not in out.lower().split()
    run_id = out.split("🚀 run ", 1)[1].split()[0]

    resumed = run_cli(["run", "--demo", "--json", "--resume", run_id, "now also compute the median"], env, workdir)
    no_traceback(resumed.stderr)
    events = [json.loads(line) for line in resumed.stdout.splitlines()]
    started = next(e for e in events if e["type"] == "run_started")
    assert started["resumed_from"] == run_id
    first = next(e["text"] for e in events if e["type"] == "message" and e["agent"] != "user")
    assert "DEMO replay" in first and "“now also compute the median”" in first
    finished = [e for e in events if e["type"] == "run_finished"]
    assert len(finished) == 1 and finished[0]["reason"] == "terminate" and resumed.returncode == 0
