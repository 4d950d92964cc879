"""`sbteam-tui eval`: the bundled sample scored by the scripted team, resume, shards + merge.

The whole sample runs in-process against the E2B stand-in (the code really runs:
pandas in the stand-in's kernel thread), which keeps the suite quick; the command
line runs a slice of it on the real local sandbox, as two shard processes too.
"""

from __future__ import annotations

import os

# Fail fast on refused connections (the SDK reads this once, at import; as test_e2b_sandbox.py).
os.environ.setdefault("E2B_CONNECTION_RETRIES", "0")

import json  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from team.config import Settings  # noqa: E402
from team.eval.runner import EvalOptions, Evaluation, merge, run_eval  # noqa: E402
from team.eval.sample import (  # noqa: E402
    SAMPLE_DATA,
    SAMPLE_LABELS,
    SAMPLE_QUESTIONS,
    sample_client,
    sample_questions,
)
from team.history import list_runs  # noqa: E402
from team.run import RunController  # noqa: E402
from team.sandbox.e2b import E2BSandbox, configure_gate  # noqa: E402
from team.session import CodeSession  # noqa: E402
from tests.e2b_standin import E2BStandIn  # noqa: E402

pytestmark = pytest.mark.timeout(120)
EXE = shutil.which("sbteam-tui") or "sbteam-tui"


@pytest.fixture
async def standin(tmp_path):
    async with E2BStandIn(tmp_path / "e2b") as server:
        yield server


def standin_controllers(standin: E2BStandIn, model_factory):
    """Run controllers whose sandboxes are E2B sandboxes of the stand-in."""

    def make(settings: Settings) -> RunController:
        session = CodeSession(
            settings, factory=lambda: E2BSandbox.create(**standin.sdk_kwargs(), create_retries=5, backoff=0.01)
        )
        return RunController(settings, session=session, model_factory=model_factory)

    return make


def options(tmp_path: Path, **kw) -> EvalOptions:
    return EvalOptions(out=tmp_path / "out", data_dir=SAMPLE_DATA, **kw)


def test_bundled_labels_are_what_the_script_computes():
    """The answers come from team/data/eval/make_sample.py (plain Python, not pandas)."""
    from team.data.eval.make_sample import build

    questions, labels = build()
    assert SAMPLE_QUESTIONS.read_text(encoding="utf-8") == questions
    assert SAMPLE_LABELS.read_text(encoding="utf-8") == labels
    assert len(sample_questions()) == 20
    assert {q.level for q in sample_questions()} == {"easy", "medium", "hard"}


async def test_whole_sample_scripted_scores_100_percent(tmp_path, settings, standin):
    configure_gate(concurrency=20, rate=0)
    questions = sample_questions()
    factory = standin_controllers(standin, lambda: sample_client(questions))
    out = tmp_path / "out"
    outcome = await run_eval(settings, questions, options(tmp_path, concurrency=5), controller_factory=factory,
                             progress=(log := _Log()))
    summary = outcome.summary
    assert summary["overall"]["abq"] == 1.0 and summary["overall"]["questions"] == 20, log.text
    assert summary["overall"]["psaq"] == summary["overall"]["uasq"] == 1.0
    assert set(summary["by_level"]) == {"easy", "medium", "hard"} and summary["failed"] == 0
    assert "Machine Learning" in summary["by_concept"]
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == 20 and all(r["answers_from"] == "message" for r in records)
    assert {r["key"] for r in records} == {q.key for q in questions}
    assert all(r["run_id"] and r["finish"] == "terminate" and r["tokens_in"] > 0 for r in records)
    assert len(standin.created) == 20  # one sandbox per question
    assert "ABQ 100.0 %" in (out / "report.md").read_text()
    assert json.loads((out / "summary.json").read_text())["overall"]["abq"] == 1.0
    # every question is a normal run record: history lists it, export works
    runs = {run.run_id for run in list_runs(settings.runs_dir, "")}
    assert {r["run_id"] for r in records} <= runs
    from team.export import export_run

    assert export_run(settings.runs_dir, records[0]["run_id"], "md", None).read_text(encoding="utf-8")
    assert "[20/20]" in log.text and "accuracy 100% (20/20)" in log.text


async def test_deliberately_wrong_answer_is_scored_wrong(tmp_path, settings, standin):
    configure_gate(concurrency=20, rate=0)
    questions = [q for q in sample_questions() if q.id in ("5", "9", "13")]
    factory = standin_controllers(standin, lambda: sample_client(questions, wrong={"9"}))
    outcome = await run_eval(settings, questions, options(tmp_path, concurrency=3), controller_factory=factory,
                             progress=_Log())
    by_id = {r["id"]: r for r in outcome.records}
    assert by_id["5"]["all_correct"] and by_id["13"]["all_correct"]
    wrong = by_id["9"]
    assert wrong["status"] == "scored" and not wrong["all_correct"]
    assert wrong["answers"]["slope"] == "1.403"  # what the (wrong) code printed, read back
    assert "slope: got '1.403', expected '0.403'" in wrong["verdict"]
    assert outcome.summary["overall"]["correct"] == 2 and outcome.summary["overall"]["abq"] == round(2 / 3, 4)
    assert outcome.summary["overall"]["uasq"] == round(4 / 7, 4)  # 2 + 2 sub-answers right, 3 wrong
    assert outcome.summary["overall"]["psaq"] == round(2 / 3, 4)


async def test_resume_skips_finished_and_reruns_failed_and_stopped(tmp_path, settings, standin):
    configure_gate(concurrency=20, rate=0)
    questions = [q for q in sample_questions() if q.id in ("1", "2", "3", "11", "12", "14")]
    made = []

    def factory(s):
        controller = standin_controllers(standin, lambda: sample_client(questions))(s)
        made.append(controller)
        return controller

    evaluation = Evaluation(settings, questions, options(tmp_path, concurrency=1), controller_factory=factory,
                            progress=_Log())
    # Ctrl+C after the second question finished: the rest do not start
    real_append = evaluation.log.append

    def append(record):
        real_append(record)
        if len(made) == 2:
            evaluation.request_stop()

    evaluation.log.append = append  # type: ignore[method-assign]
    first = await evaluation.run()
    assert first.stopped and first.summary["questions_with_results"] == 2 and first.summary["not_run"] == 4
    # a crash tore the last line; one earlier result is a failure (its sandbox never started)
    results = tmp_path / "out" / "results.jsonl"
    lines = results.read_text().splitlines()
    failed = json.loads(lines[0]) | {"status": "failed", "verdict": "the e2b sandbox did not start: boom"}
    results.write_text("\n".join([json.dumps(failed), lines[1]]) + '\n{"key": "id:3", "sta', encoding="utf-8")
    made.clear()
    log = _Log()
    second = await run_eval(settings, questions, options(tmp_path, concurrency=2), controller_factory=factory, progress=log)
    assert not second.stopped and second.skipped == 1 and second.ran == 5 and len(made) == 5
    assert second.summary["overall"]["abq"] == 1.0 and second.summary["questions_with_results"] == 6
    assert "1 torn line(s)" in log.text and "1 question(s) already finished" in log.text
    # a third run has nothing left to do
    made.clear()
    third = await run_eval(settings, questions, options(tmp_path, concurrency=2), controller_factory=factory, progress=_Log())
    assert third.ran == 0 and made == [] and third.summary["overall"]["abq"] == 1.0


def _cli(args: list[str], home: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "E2B_", "SBTEAM_", "JOB_"))}
    env.update(SBTEAM_HOME=str(home), PYTHONUNBUFFERED="1", **(extra_env or {}))
    return subprocess.Popen([EXE, *args], env=env, cwd=home.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=100)
    return proc.returncode, out, err


def test_cli_sample_local_then_two_shard_processes_merge_to_the_same(tmp_path):
    """`eval --sample` on the local sandbox; the same questions as two shard processes
    (one from --shard, one from an Indexed Job's variables), merged: equal scores."""
    picked = ["1", "4", "12", "17"]
    common = ["eval", "--sample", "--demo", "--only", *picked]
    home = tmp_path / "home"
    code, out, err = _finish(_cli([*common, "--out", str(tmp_path / "whole"), "--concurrency", "2"], home))
    assert code == 0, err
    assert "ABQ 100.0 % (4/4 questions)" in out and "[4/4]" in err
    shard0 = _cli([*common, "--out", str(tmp_path / "sharded"), "--shard", "0/2", "--concurrency", "1"], home)
    shard1 = _cli([*common, "--out", str(tmp_path / "sharded"), "--concurrency", "1"], home,
                  {"JOB_COMPLETION_INDEX": "1", "JOB_COMPLETIONS": "2"})
    for proc in (shard0, shard1):
        code, out, err = _finish(proc)
        assert code == 0, err
        assert "(2/2 questions)" in out
    assert sorted(p.name for p in (tmp_path / "sharded").iterdir()) == ["shard-0-of-2", "shard-1-of-2"]
    code, out, err = _finish(_cli(["eval", "merge", str(tmp_path / "sharded")], home))
    assert code == 0, err + out
    whole = json.loads((tmp_path / "whole" / "summary.json").read_text())
    merged = json.loads((tmp_path / "sharded" / "summary.json").read_text())
    for field in ("overall", "by_level", "by_concept", "questions_with_results", "failed", "not_run"):
        assert merged[field] == whole[field], field

    def rows(folder: Path) -> list[tuple]:
        records = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
        return sorted((r["id"], r["answers"], r["correct"], r["status"]) for r in records)

    assert rows(tmp_path / "sharded") == rows(tmp_path / "whole")
    # the same command again: everything is finished, nothing runs
    runs_before = len(list((home / "runs").iterdir()))
    code, out, err = _finish(_cli([*common, "--out", str(tmp_path / "whole")], home))
    assert code == 0 and "4 question(s) already finished" in err
    assert len(list((home / "runs").iterdir())) == runs_before


def test_cli_sigterm_keeps_what_finished_and_the_rerun_completes(tmp_path):
    """A pod deleted (SIGTERM) or Ctrl+C mid-evaluation: finished questions stay, the
    running one is stopped (its sandbox closed), the same command finishes the rest."""
    home = tmp_path / "home"
    out = tmp_path / "out"
    args = ["eval", "--sample", "--demo", "--only", "1", "3", "11", "--concurrency", "1", "--out", str(out)]
    proc = _cli(args, home)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (results.is_file() and results.read_text().count("\n") >= 1):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    code, out_text, err = _finish(proc)
    assert code == 130, err
    assert "stopped; run the same command again" in err
    first = [json.loads(line) for line in results.read_text().splitlines()]
    scored = {r["id"] for r in first if r["status"] == "scored"}
    assert 1 <= len(scored) < 3
    code, out_text, err = _finish(_cli(args, home))
    assert code == 0 and "ABQ 100.0 % (3/3 questions)" in out_text, err
    assert f"{len(scored)} question(s) already finished" in err
    final = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted(r["id"] for r in final if r["status"] == "scored") == ["1", "11", "3"]  # each scored once


def test_cli_refuses_what_it_cannot_do(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    questions = tmp_path / "mine-questions.jsonl"
    questions.write_text(json.dumps({"id": 1, "question": "q", "format": "@a[x]", "file_name": "a.csv"}) + "\n")
    (tmp_path / "mine-labels.jsonl").write_text(json.dumps({"id": 1, "common_answers": [["a", "1"]]}) + "\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("x\n1\n")
    cases = [
        (["eval"], "a questions file or --sample"),
        (["eval", "--sample", "--only", "999"], "no question with id 999"),
        (["eval", "--sample", "--shard", "2/2"], "not in 0..1"),
        (["eval", str(questions)], "--data DIR is needed"),
        (["eval", str(questions), "--data", str(tmp_path)], "not in"),
        (["eval", str(questions), "--data", str(tmp_path / "data")], "the scripted DEMO answers only the bundled"),
        (["eval", "merge", str(tmp_path / "nothing-here")], "is not a folder"),
    ]
    for args, message in cases:
        code, out, err = _finish(_cli(args, home))
        assert code == 2 and message in err, (args, err)


def test_merge_reports_missing_shards(tmp_path):
    folder = tmp_path / "out" / "shard-0-of-3"
    folder.mkdir(parents=True)
    record = {"key": "id:1", "id": "1", "order": 0, "status": "scored", "expected": {"a": "1"}, "answers": {"a": "1"},
              "level": "easy", "concepts": ["X"]}
    (folder / "results.jsonl").write_text(json.dumps(record) + "\n")
    (folder / "summary.json").write_text(json.dumps({"shard": "0/3", "questions_in_plan": 3}))
    summary, records, problems = merge([tmp_path / "out"], tmp_path / "out")
    assert summary["overall"]["abq"] == 1.0 and len(records) == 1
    assert any("shard(s) 1/3, 2/3 of 3 not among the folders" in p for p in problems)
    assert summary["not_run"] == 2


class _Log:
    """A progress stream that is not a terminal."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    @property
    def text(self) -> str:
        return "".join(self.parts)
