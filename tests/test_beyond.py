"""History, resume, export, cost, approval and batch — driven as a user would."""

from __future__ import annotations

import io
import json
import subprocess
import sys

from team import events as ev
from team.batch import run_batch, summary_table
from team.cost import format_cost, parse_prices, price_for
from team.export import export_run
from team.history import list_runs, load_events
from team.prompts import example_task
from team.run import RunController
from team.scripted import Call, Say, ScriptedChatCompletionClient, Turn
from tests.test_run import collect, finished


def scripted(responder):
    return lambda: ScriptedChatCompletionClient(responder)


async def demo_run(settings, task: str | None = None) -> tuple[RunController, str, list[ev.Event]]:
    controller = RunController(settings, demo_pace=0)
    run_id = controller.start(task or example_task("en"))
    return controller, run_id, await collect(controller)


async def test_history_lists_searches_and_replays_past_runs(settings):
    controller, run_id, events = await demo_run(settings, "histogram of 100 points")
    await controller.close()
    other = RunController(settings, model_factory=scripted(lambda t: Say("nothing to do. TERMINATE")))
    other_id = other.start("say hello")
    await collect(other)
    await other.close()
    runs = list_runs(settings.runs_dir)
    assert [r.run_id for r in runs] == sorted([run_id, other_id], reverse=True)
    found = list_runs(settings.runs_dir, "HISTOGRAM")
    assert [r.run_id for r in found] == [run_id]
    summary = found[0]
    assert summary.reason == "terminate" and summary.resumable
    assert {"data_points.csv", "data_stats.json", "data_histogram.png", "outlier_analysis.json"} <= set(summary.files)
    replay = load_events(settings.runs_dir, run_id)
    assert [e.type for e in replay] == [e.type for e in events]


async def test_export_markdown_and_notebook(settings, tmp_path):
    controller, run_id, _ = await demo_run(settings)
    await controller.close()
    md = export_run(settings.runs_dir, run_id, "md", tmp_path / "out" / "run.md")
    text = md.read_text(encoding="utf-8")
    assert "### CodeAgent" in text and "**🔧 run_code**" in text and "```python" in text
    assert "*↪ Planner → CodeAgent*" in text and "Finished: TERMINATE" in text
    image_link = next(line for line in text.splitlines() if line.startswith("![data_histogram.png]"))
    target = image_link.split("](", 1)[1].rstrip(")")
    assert (md.parent / target).is_file()  # the link resolves from where the Markdown lives
    nb_path = export_run(settings.runs_dir, run_id, "ipynb")
    notebook = json.loads(nb_path.read_text(encoding="utf-8"))
    code_cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    # the write_file step, then the run_code step that runs what it wrote
    assert len(code_cells) == 2 and "".join(code_cells[0]["source"]).startswith("%%writefile data_analysis.py")
    assert "exec(open(\"data_analysis.py\"" in "".join(code_cells[1]["source"])
    kinds = {o["output_type"] for o in code_cells[1]["outputs"]}
    assert {"stream", "display_data"} <= kinds
    assert notebook["nbformat"] == 4


def test_export_cli_refuses_unknown_run(tmp_path):
    env = {"SBTEAM_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "tui", "export", "nope", "--format", "md"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no run 'nope'" in proc.stderr


async def test_tokens_and_cost_per_agent(settings):
    paid = settings.with_(openai_api_key="sk-test-key-123456", prices={"scripted-model": (1.0, 2.0)},
                          openai_model="scripted-model")
    controller = RunController(paid, model_factory=scripted(_two_agents))
    try:
        controller.start("count")
        events = await collect(controller)
    finally:
        await controller.close()
    done = finished(events)[0]
    assert set(done.agent_tokens) == {"Planner", "CodeAgent"}
    assert sum(v[0] for v in done.agent_tokens.values()) == done.tokens_in > 0
    assert done.cost == (done.tokens_in * 1.0 + done.tokens_out * 2.0) / 1_000_000
    assert format_cost(done.cost).startswith("$")


def _two_agents(turn: Turn):
    if turn.agent == "Planner" and turn.index == 0:
        return Call("transfer_to_codeagent", thought="Over to you.")
    if turn.agent == "CodeAgent":
        return Call("transfer_to_planner", thought="Done.")
    return Say("TERMINATE")


def test_price_table_and_overrides():
    assert price_for("gpt-4o-2024-08-06") == (2.50, 10.00)
    assert price_for("gpt-4o-mini") == (0.15, 0.60)
    assert price_for("my-llama") is None
    prices, problems = parse_prices("my-llama=0.1/0.2, bad")
    assert prices == {"my-llama": (0.1, 0.2)} and len(problems) == 1 and "SBTEAM_PRICES" in problems[0]
    assert price_for("my-llama", prices) == (0.1, 0.2)


def _coder(turn: Turn):
    if turn.agent == "Planner" and turn.index == 0:
        return Call("transfer_to_codeagent")
    if turn.agent == "CodeAgent" and turn.index == 0:
        return Call("run_code", {"code": "print('original')"})
    if turn.agent == "CodeAgent":
        return Call("transfer_to_planner")
    return Say("TERMINATE")


async def _approval_run(settings, decision):
    controller = RunController(settings, model_factory=scripted(_coder))
    asked = []

    async def approver(agent, call_id, name, args):
        asked.append((agent, name, args))
        return decision

    controller.approve = True
    controller.approver = approver
    try:
        controller.start("print something")
        return asked, await collect(controller)
    finally:
        await controller.close()


async def test_approval_approve_edit_reject(settings):
    asked, events = await _approval_run(settings, ("approve", None))
    assert asked == [("CodeAgent", "run_code", {"code": "print('original')"})]
    assert any(isinstance(e, ev.SandboxOutput) and "original" in e.text for e in events)
    assert [e.decision for e in events if isinstance(e, ev.ApprovalDecided)] == ["approve"]

    _, events = await _approval_run(settings, ("edit", {"code": "print('edited')"}))
    outputs = "".join(e.text for e in events if isinstance(e, ev.SandboxOutput))
    assert "edited" in outputs and "original" not in outputs
    result = next(e for e in events if isinstance(e, ev.ToolResult))
    assert "the user edited" in result.content

    _, events = await _approval_run(settings, ("reject", "not on my machine"))
    assert not any(isinstance(e, ev.SandboxOutput) for e in events)
    result = next(e for e in events if isinstance(e, ev.ToolResult))
    assert result.is_error and "rejected" in result.content and "not on my machine" in result.content
    assert finished(events)[0].reason == "terminate"  # the model was told and the run went on


def _resumable(turn: Turn):
    """First run: CodeAgent writes a file; the Planner stalls until it is told 'finish'."""
    if turn.agent == "Planner":
        if "finish" in turn.last_user_text():
            return Say("Continuing as asked. TERMINATE")
        if turn.index == 0:
            return Call("transfer_to_codeagent")
        return Say("Waiting for instructions.")
    if turn.agent == "CodeAgent" and turn.index == 0:
        return Call("write_file", {"file_path": "notes.txt", "content": "kept"})
    return Call("transfer_to_planner")


async def test_resume_a_limit_ended_run_with_a_new_instruction(settings):
    limited = settings.with_(max_messages=5)
    controller = RunController(limited, model_factory=scripted(_resumable))
    try:
        first = controller.start("write notes")
        events = await collect(controller)
        assert finished(events)[0].reason == "max_messages"
    finally:
        await controller.close()
    # a new app session: a different controller and sandbox
    again = RunController(settings, model_factory=scripted(_resumable))
    try:
        second = await again.resume(first, "finish now")
        events = await collect(again)
        started = next(e for e in events if isinstance(e, ev.RunStarted))
        assert started.resumed_from == first and second != first
        assert finished(events)[0].reason == "terminate"
        assert (await again.read_file("notes.txt")) == b"kept"  # files came back
        task_message = next(e for e in events if isinstance(e, ev.Message) and e.agent == "user")
        assert "sandbox was recreated" in task_message.text
    finally:
        await again.close()


async def test_batch_runs_each_task_with_its_own_sandbox_and_record(settings):
    out = io.StringIO()
    results = await run_batch(settings, ["first task", "second task", "third task"], concurrency=8, progress=out)
    assert [r.reason for r in results] == ["terminate"] * 3
    assert len({r.run_id for r in results}) == 3
    assert all((settings.runs_dir / r.run_id / "files" / "data_stats.json").is_file() for r in results)
    assert "batch: 3 task(s)" in out.getvalue() and out.getvalue().count("TERMINATE") == 3
    table = summary_table(results)
    assert "3/3 finished with TERMINATE" in table
