"""Opt-in: two sample questions end to end against a real model (`pytest -m realmodel`).

Skipped unless SBTEAM_TEST_MODEL_BASE names an OpenAI-compatible endpoint, e.g. llama.cpp's
server from ../shared/tools/real-model (`serve.sh 0.5b 8088`):

    SBTEAM_TEST_MODEL_BASE=http://127.0.0.1:8088/v1 python -m pytest -m realmodel tests/test_eval_realmodel.py

SBTEAM_TEST_MODEL_NAME picks the model name (default qwen2.5-coder), SBTEAM_TEST_MODEL_KEY
the key (default none). A small CPU model answers few questions right; what this checks is
that the whole path works with a real one: the questions ran, the model was called, the
answers were read and judged, and results, summary, report and run records are there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

BASE = os.environ.get("SBTEAM_TEST_MODEL_BASE", "")
pytestmark = [
    pytest.mark.realmodel,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not BASE, reason="set SBTEAM_TEST_MODEL_BASE to an OpenAI-compatible endpoint"),
]


def test_two_sample_questions_against_a_real_model(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "E2B_", "SBTEAM_", "JOB_"))}
    model = os.environ.get("SBTEAM_TEST_MODEL_NAME", "qwen2.5-coder")
    env.update(
        OPENAI_API_BASE=BASE,
        OPENAI_API_KEY=os.environ.get("SBTEAM_TEST_MODEL_KEY", "none"),
        OPENAI_MODEL=model,
        SBTEAM_HOME=str(tmp_path / "home"),
        SBTEAM_MAX_MESSAGES="12",  # a small model that never says TERMINATE ends sooner
        PYTHONUNBUFFERED="1",
    )
    out = tmp_path / "out"
    exe = shutil.which("sbteam-tui") or "sbteam-tui"
    args = [exe, "eval", "--sample", "--only", "1", "11", "--timeout", "180", "--concurrency", "1", "--out", str(out)]
    proc = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=850)
    assert proc.returncode in (0, 1), proc.stderr  # 1: a question failed to run (said in the output)
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records) == ["1", "11"]
    for record in records:
        assert record["model"] == model and record["run_id"]
        assert (tmp_path / "home" / "runs" / record["run_id"] / "events.jsonl").is_file()
        if record["status"] == "scored":
            assert record["tokens_in"] > 0  # the real model was asked
        else:
            assert record["verdict"]  # one line saying why
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == model and summary["questions_with_results"] == 2
    assert "ABQ" in (out / "report.md").read_text() and "ABQ" in proc.stdout
