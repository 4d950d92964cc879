"""Your data and follow-ups from the command line (issue 13), against a local
OpenAI-compatible server and the real local sandbox: `run --data a.csv b.parquet`,
then `run --continue` in a new process; the record, history and both exports hold
every turn."""

from __future__ import annotations

import json

import pandas as pd

from tests.openai_server import FakeOpenAIServer, text, tool_call
from tests.test_cli import clean_env, new_workdir, no_traceback, run_cli
from tests.test_run_openai import asker

FIRST = "How many rows are in each table?"
SECOND = "What is the sum of v in b.parquet?"


def _contents(req: dict) -> list[str]:
    return [m.get("content") or "" for m in req["messages"] if isinstance(m.get("content"), str)]


def analyst(req: dict) -> object:
    """Planner hands over; CodeAgent reads the uploaded files; Planner ends the turn."""
    texts = _contents(req)
    second = any(SECOND in t for t in texts)
    # what the code printed: a tool result (CodeAgent) or its summary, handed on (Planner)
    done = any(("SUM= " if second else "ROWS= ") in t for t in texts)
    if asker(req) == "Planner":
        return text("Answered. TERMINATE") if done else tool_call("transfer_to_codeagent")
    if done:
        return tool_call("transfer_to_planner")
    if second:
        code = "import pandas as pd\nprint('SUM=', int(pd.read_parquet('data/b.parquet').v.sum()))"
    else:
        code = (
            "import pandas as pd\n"
            "print('ROWS=', len(pd.read_csv('data/a.csv')), len(pd.read_parquet('data/b.parquet')))"
        )
    return tool_call("run_code", {"code": code})


def test_data_then_continue_then_history_and_exports(tmp_path):
    env = clean_env(tmp_path)
    workdir = new_workdir(tmp_path)
    pd.DataFrame({"city": ["Oslo", "Lima", "Pune"], "n": [1, 2, 3]}).to_csv(workdir / "a.csv", index=False)
    pd.DataFrame({"v": list(range(10))}).to_parquet(workdir / "b.parquet")
    with FakeOpenAIServer(script=analyst, api_key="sk-data-test-key") as server:
        env.update(OPENAI_API_BASE=server.base_url, OPENAI_API_KEY="sk-data-test-key", OPENAI_MODEL="gpt-4o-mini",
                   SBTEAM_PROMPTS="en")
        first = run_cli(["run", "--data", "a.csv", "b.parquet", FIRST], env, workdir, timeout=120)
        no_traceback(first.stderr)
        assert first.returncode == 0, first.stdout + first.stderr
        second = run_cli(["run", "--continue", SECOND], env, workdir, timeout=120)
        requests = list(server.requests)
    no_traceback(second.stderr)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "ROWS= 3 10" in first.stdout and "SUM= 45" in second.stdout
    # The Planner's first request was told what the data is, before the question
    task = next(t for t in _contents(requests[0]) if FIRST in t)
    assert "data/a.csv: 3 rows × 2 columns" in task and "data/b.parquet: 10 rows × 1 column\n" in task
    assert task.index("data/a.csv") < task.index(FIRST)
    # The follow-up, in a new process, sent turn 1's conversation back to the model
    later = next(r for r in requests if any(SECOND in t for t in _contents(r)))
    assert any(FIRST in t for t in _contents(later)) and any("ROWS= 3 10" in t for t in _contents(later))
    # One record, two turns; history says so; both exports have both turns
    listing = run_cli(["history"], env, workdir)
    lines = listing.stdout.strip().splitlines()
    assert len(lines) == 1 and "(2 turns)" in lines[0], listing.stdout
    run_id = lines[0].split()[0]
    md = run_cli(["export", run_id, "--out", "t.md"], env, workdir)
    assert md.returncode == 0, md.stderr
    markdown = (workdir / "t.md").read_text()
    assert f"## Turn 1: {FIRST}" in markdown and f"## Turn 2: {SECOND}" in markdown
    assert markdown.index("ROWS= 3 10") < markdown.index("## Turn 2") < markdown.index("SUM= 45")
    nb = run_cli(["export", run_id, "--format", "ipynb", "--out", "t.ipynb"], env, workdir)
    assert nb.returncode == 0, nb.stderr
    cells = json.loads((workdir / "t.ipynb").read_text())["cells"]
    headings = ["".join(c["source"]) for c in cells if "".join(c["source"]).startswith("## Turn")]
    assert headings == [f"## Turn 1: {FIRST}", f"## Turn 2: {SECOND}"]
    assert sum(c["cell_type"] == "code" for c in cells) == 2
    assert "sk-data-test-key" not in first.stdout + second.stdout + markdown
