"""Benchmark `eval` and its scale machinery.

    python bench/bench_eval.py [--questions N] [--concurrency C] [--cell S] [--no-sample]

1. `eval --sample` with the scripted model (pace 0) on the real local sandbox,
   all 20 questions at concurrency 2: ABQ (must be 100 %) and wall time; and the
   eval harness's own overhead per question beyond the model and the code: the
   question's wall time minus its run (`start()` → `RunFinished`: model, AutoGen,
   code) and minus starting and closing its sandbox, over the question's wall
   time. What is left is ours: making the controller, uploading the data file,
   reading the answers, judging, the results line (fsync'd), progress.
2. N scripted questions (default 200) at concurrency C (20, the E2B Hobby cap)
   against the E2B stand-in: each question's code runs `--cell` seconds (a sleep,
   standing for the model and the code) and prints its answer. Goal: the whole
   batch finishes within 1.2 × (slowest question × number of waves), waves =
   ceil(N / C): the pool keeps C questions running, never waits for a wave to
   drain, and adds nothing per question. The creation rate limit is set to
   100/s here (the stand-in is local; E2B's is 1/s on Hobby, 5/s on Pro, where
   N/rate is the floor of any batch), the cap to C. The stand-in must see at
   most C sandboxes alive at once and exactly N created.

Prints a table (see bench/common.py) and the BENCH_JSON line for `python -m bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Row, at_least, at_most, emit, info  # noqa: E402

OVERHEAD_GOAL = 5.0  # % of the question's wall time
WAVE_GOAL = 1.2


class Quiet:
    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def overhead(records: list[dict]) -> tuple[float, float]:
    """(median %, total %) of the question wall time spent outside run, sandbox start and close."""
    shares, ours, walls = [], 0.0, 0.0
    for r in records:
        t = r.get("timings") or {}
        wall = float(r["seconds"])
        rest = wall - t.get("run", 0.0) - t.get("sandbox", 0.0) - t.get("close", 0.0)
        shares.append(100 * rest / wall)
        ours += rest
        walls += wall
    return statistics.median(shares), 100 * ours / walls


async def sample_rows(tmp: Path) -> list[Row]:
    from team.config import Settings
    from team.eval.runner import EvalOptions, run_eval
    from team.eval.sample import SAMPLE_DATA, sample_client, sample_questions

    questions = sample_questions()
    settings = Settings.load(env={"SBTEAM_HOME": str(tmp / "home-sample")}, env_file=None)
    start = time.perf_counter()
    outcome = await run_eval(settings, questions, EvalOptions(out=tmp / "sample", data_dir=SAMPLE_DATA, concurrency=2),
                             model_factory=lambda: sample_client(questions), progress=Quiet())
    wall = time.perf_counter() - start
    abq = outcome.summary["overall"]["abq"] * 100
    median, total = overhead(outcome.records)
    runs = [r["timings"].get("run", 0) for r in outcome.records]
    starts = [r["timings"].get("sandbox", 0) for r in outcome.records]
    return [
        at_least("eval --sample, scripted (pace 0), local sandbox: ABQ", abq, 100, "%"),
        info("eval --sample: wall time, 20 questions at concurrency 2", wall, "s",
             note=f"per question: run {statistics.median(runs):.2f} s, sandbox start {statistics.median(starts):.2f} s (medians)"),
        at_most("eval harness overhead per question beyond model, code and sandbox (median)", median, OVERHEAD_GOAL, "%",
                note="question wall − run (start→RunFinished) − sandbox start − sandbox close, / question wall; "
                     "data upload, answer parsing, judging, the fsync'd results line and progress"),
        info("eval harness overhead, all questions together", total, "%"),
    ]


def waves_questions(folder: Path, count: int) -> list:
    from team.eval.dabench import read_labels, read_questions, with_labels

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.csv").write_text("x\n1\n", encoding="utf-8")
    (folder / "q.jsonl").write_text("".join(
        json.dumps({"id": i, "question": f"Bench question {i}.", "format": "@answer[value]", "file_name": "tiny.csv",
                    "level": "easy", "concepts": ["Summary Statistics"]}) + "\n" for i in range(count)), encoding="utf-8")
    (folder / "l.jsonl").write_text("".join(
        json.dumps({"id": i, "common_answers": [["answer", str(i)]]}) + "\n" for i in range(count)), encoding="utf-8")
    return with_labels(read_questions(folder / "q.jsonl"), read_labels(folder / "l.jsonl"))


def sleeper(cell: float):
    """Planner → CodeAgent runs a cell of `cell` seconds printing the answer → Planner quotes it."""
    import re

    from team.scripted import Call, Say, ScriptedChatCompletionClient

    state: dict[str, str] = {}

    def respond(turn):
        task = "\n".join(turn.user_texts())
        number = re.search(r"Bench question (\d+)\.", task).group(1)  # type: ignore[union-attr]
        if turn.agent == "CodeAgent":
            outcomes = [o for o in turn.tool_outcomes() if o.name == "run_code"]
            if not outcomes:
                return Call("run_code", {"code": f"import time\ntime.sleep({cell})\nprint('@answer[{number}]')"})
            state["answer"] = next(line for line in outcomes[-1].content.splitlines() if line.startswith("@answer["))
            return Call("transfer_to_planner")
        if "answer" in state:
            return Say(f"{state['answer']}\n\nTERMINATE")
        return Call("transfer_to_codeagent")

    return ScriptedChatCompletionClient(respond)


async def waves_rows(tmp: Path, count: int, concurrency: int, cell: float) -> list[Row]:
    from team.config import Settings
    from team.eval.runner import EvalOptions, run_eval
    from team.run import RunController
    from team.sandbox.e2b import E2BSandbox, configure_gate
    from team.session import CodeSession
    from tests.e2b_standin import E2BStandIn

    questions = waves_questions(tmp / "waves-q", count)
    settings = Settings.load(env={"SBTEAM_HOME": str(tmp / "home-waves")}, env_file=None)
    async with E2BStandIn(tmp / "e2b") as standin:
        gate = configure_gate(concurrency=concurrency, rate=100)

        def make(s):
            session = CodeSession(s, factory=lambda: E2BSandbox.create(**standin.sdk_kwargs(), backoff=0.05))
            return RunController(s, session=session, model_factory=lambda: sleeper(cell))

        options = EvalOptions(out=tmp / "waves", data_dir=tmp / "waves-q", concurrency=concurrency)
        start = time.perf_counter()
        outcome = await run_eval(settings.with_(sandbox="e2b"), questions, options, controller_factory=make,
                                 progress=Quiet())
        wall = time.perf_counter() - start
    records = outcome.records
    slowest = max(float(r["seconds"]) for r in records)
    waves = math.ceil(count / concurrency)
    bound = slowest * waves
    ok = outcome.summary["overall"]["correct"]
    median, _ = overhead(records)
    return [
        at_most(f"{count} scripted questions at concurrency {concurrency}, E2B stand-in: wall / (slowest × {waves} waves)",
                wall / bound, WAVE_GOAL, "×",
                note=f"wall {wall:.1f} s; slowest question {slowest:.2f} s; cell {cell:g} s; "
                     f"{ok}/{count} right; creation rate 100/s, cap {concurrency}"),
        at_most("sandboxes alive at once (stand-in's count)", standin.peak_alive, concurrency, "",
                note=f"{len(standin.created)} created for {count} questions; gate peak {gate.peak}"),
        at_least(f"{count} questions: answered right", ok, count, ""),
        info(f"{count} questions: harness overhead per question (median)", median, "%"),
    ]


async def main(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        if not args.no_sample:
            rows += await sample_rows(Path(tmp))
        rows += await waves_rows(Path(tmp), args.questions, args.concurrency, args.cell)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--cell", type=float, default=1.0, help="seconds each question's code runs")
    parser.add_argument("--no-sample", action="store_true", help="skip the local-sandbox sample")
    emit(asyncio.run(main(parser.parse_args())), "eval: harness overhead and waves")
