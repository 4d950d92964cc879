"""Run questions through the team and score them: `sbteam-tui eval`.

Each question is one normal run (`RunController`, its own sandbox and run record,
so `history` and `export` work on it): the data file is uploaded to
/home/user/data/ first (`attach_data`), then the task carries the question, its
constraints and the answer format. When the run ends the `@name[value]` answers
are read from the team's messages (the last value of each name; the run's code
output only when no message has any), judged, and one line goes to
`OUT/results.jsonl` at once. What `team.scale` gives every batch: resume,
shards, the concurrency pool and the E2B limits; the progress display.

A question *fails* (as opposed to being answered wrong) when its run could not
happen or was cut off before any answer: no sandbox, the data upload failed, the
model endpoint errors, a stop. Failures are listed with one line each, count as
wrong in the scores, and are run again by the next run into the same folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from .. import events as ev
from ..config import Settings
from ..errors import one_line
from ..scale import (
    SUMMARY,
    Progress,
    ResultLog,
    Shard,
    Stopper,
    at_scale,
    effective_concurrency,
    on_sigint,
    run_pool,
    write_json,
    write_text,
)
from .answers import DEFAULT_TOLERANCE, find_answers, judge
from .dabench import Question
from .report import markdown, summarize

RUN_GRACE = 120.0  # seconds past SBTEAM_TIMEOUT (sandbox start, upload, wind-down) before a question is cut off
REPORT = "report.md"


@dataclass
class EvalOptions:
    out: Path
    data_dir: Path
    concurrency: int = 2
    tolerance: float = DEFAULT_TOLERANCE
    strict: bool = False
    shard: Shard | None = None
    planned: int | None = None  # questions of the whole plan before sharding (for the summary)
    meta: dict[str, Any] = field(default_factory=dict)  # questions_file, labels_file, title …


@dataclass
class EvalOutcome:
    summary: dict[str, Any]
    records: list[dict[str, Any]]
    skipped: int  # already finished in OUT (resume)
    ran: int
    stopped: bool
    out: Path


async def attach_data(controller: Any, path: Path) -> None:
    """Put the question's data file into the sandbox at /home/user/data/<name>.

    Uses the run controller's data feature (`add_data`: recorded, described to the
    team) when it has one, else writes the file through the sandbox's files API."""
    add = getattr(controller, "add_data", None)
    if add is not None:
        await add([str(path)], consent=True)
        return
    await controller.warm_up()
    data = await asyncio.to_thread(path.read_bytes)
    await controller.session.sandbox.files.write(f"/home/user/data/{path.name}", data)


class Evaluation:
    """One `eval` invocation over a list of questions (already sharded and filtered)."""

    def __init__(
        self,
        settings: Settings,
        questions: Sequence[Question],
        options: EvalOptions,
        *,
        controller_factory: Callable[[Settings], Any] | None = None,
        model_factory: Callable[[], Any] | None = None,
        demo_pace: float = 0.0,
        progress: IO[str] | None = None,
    ) -> None:
        self.settings = at_scale(settings)
        self.questions = list(questions)
        self.options = options
        self.log = ResultLog(options.out)
        self._stopper = Stopper()
        self.stop = self._stopper.event
        self._progress_out = progress
        self._model_factory = model_factory
        self._demo_pace = demo_pace
        self._factory = controller_factory or self._controller
        self._active = self._stopper.active
        from ..agent_models import model_label  # DEMO, one model, or each agent's

        self.model_label = model_label(self.settings)

    def _controller(self, settings: Settings) -> Any:
        from ..run import RunController

        return RunController(settings, model_factory=self._model_factory, demo_pace=self._demo_pace)

    def request_stop(self) -> None:
        """First Ctrl+C: no new question starts; the running ones stop gracefully (second: force)."""
        self._stopper()

    async def run(self) -> EvalOutcome:
        t0 = time.monotonic()
        done = self.log.load()
        todo = [q for q in self.questions if not _finished(done.get(q.key), q)]
        skipped = len(self.questions) - len(todo)
        limit, why = effective_concurrency(self.options.concurrency, self.settings.sandbox)
        progress = Progress(len(self.questions), self._progress_out, what="question", score_label="accuracy")
        progress.done = progress.skipped = skipped
        for q in self.questions:
            record = done.get(q.key)
            if record is not None and _finished(record, q):
                progress.scored += 1
                progress.good += bool(judge(q.expected_dict(), record.get("answers") or {},
                                            self.options.tolerance, self.options.strict).all_correct)
        out = progress.out
        head = f"eval: {len(self.questions)} question(s)"
        if self.options.shard is not None:
            head += f" (shard {self.options.shard.label})"
        head += f", {limit} at a time, sandbox {self.settings.sandbox}, model {self.model_label}, results in {self.options.out}"
        out.write(head + (f" ({why})" if why else "") + "\n")
        if self.log.torn:
            out.write(f"eval: {self.log.torn} torn line(s) in {self.log.path} ignored (a crash mid-write)\n")
        if skipped:
            out.write(f"eval: {skipped} question(s) already finished in {self.options.out}: skipped (resume)\n")
        out.flush()

        async def worker(question: Question) -> None:
            if self.stop.is_set():
                return
            progress.started()
            record = await self._one(question)
            self.log.append(record)
            good = None if record["status"] == "failed" else record["all_correct"]
            progress.finished(_line(record), good=good, failed=record["status"] == "failed")

        with on_sigint(self.request_stop):
            await run_pool(todo, worker, limit, self.stop)
        progress.close()
        records = list(self.log.load().values())
        keys = {q.key for q in self.questions}
        mine = [r for r in records if r.get("key") in keys]
        summary, judged = self.write_summary(mine, wall=time.monotonic() - t0)
        return EvalOutcome(summary, judged, skipped, len(todo), self.stop.is_set(), self.options.out)

    def write_summary(self, records: list[dict[str, Any]], wall: float | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        meta = {
            "title": self.options.meta.get("title", "Evaluation"),
            "model": self.model_label,
            "sandbox": self.settings.sandbox,
            "shard": self.options.shard.label if self.options.shard else None,
            "concurrency": self.options.concurrency,
            "timeout": self.settings.timeout,
            **{k: v for k, v in self.options.meta.items() if k != "title"},
        }
        summary, judged = summarize(
            records, meta, tolerance=self.options.tolerance, strict=self.options.strict,
            planned=len(self.questions), wall_seconds=wall,
        )
        summary["questions_in_plan"] = self.options.planned or len(self.questions)
        write_json(self.options.out / SUMMARY, summary)
        write_text(self.options.out / REPORT, markdown(summary, judged))
        return summary, judged

    async def _one(self, question: Question) -> dict[str, Any]:
        """Run one question; never raises (a failure is a record)."""
        record: dict[str, Any] = {
            "key": question.key,
            "id": question.id,
            "order": question.order,
            "task_hash": question.task_hash,
            "level": question.level,
            "concepts": list(question.concepts),
            "file_name": question.file_name,
            "expected": question.expected_dict(),
            "answers": {},
            "answers_from": "",
            "status": "failed",
            "finish": "",
            "verdict": "",
            "run_id": "",
            "seconds": 0.0,
            "tokens_in": 0,
            "tokens_out": 0,
            "cost": None,
            "model": self.model_label,
        }
        timings: dict[str, float] = {}
        t0 = time.monotonic()
        controller = None
        try:
            controller = self._factory(self.settings)
            self._active.add(controller)
            self.model_label = getattr(controller, "model_label", self.model_label)
            record["model"] = self.model_label
            step = time.monotonic()
            try:
                await controller.warm_up()
            except Exception as exc:
                record["verdict"] = f"the {self.settings.sandbox} sandbox did not start: {one_line(exc, 300)}"
                return record
            timings["sandbox"] = time.monotonic() - step
            step = time.monotonic()
            try:
                await attach_data(controller, self.options.data_dir / question.file_name)
            except Exception as exc:
                record["verdict"] = f"uploading {question.file_name} failed: {one_line(exc, 300)}"
                return record
            timings["data"] = time.monotonic() - step
            if self.stop.is_set():
                record["finish"], record["verdict"] = "stopped", "stopped before it started"
                return record
            step = time.monotonic()
            record["run_id"] = controller.start(question.prompt())
            texts, outputs, finished = await self._drain(controller)
            timings["run"] = time.monotonic() - step
            self._score(record, question, texts, outputs, finished)
        except Exception as exc:  # noqa: BLE001 - one question must not sink the evaluation
            record["verdict"] = f"eval error: {one_line(exc, 300)}"
        finally:
            if controller is not None:
                step = time.monotonic()
                with contextlib.suppress(Exception):
                    await asyncio.shield(controller.close())
                timings["close"] = time.monotonic() - step
                self._active.discard(controller)
            record["seconds"] = round(time.monotonic() - t0, 3)
            record["timings"] = {k: round(v, 4) for k, v in timings.items()}
            record["finished"] = datetime.now().isoformat(timespec="milliseconds")
        return record

    async def _drain(self, controller: Any) -> tuple[list[str], list[str], ev.RunFinished | None]:
        texts: list[str] = []
        outputs: list[str] = []
        finished: ev.RunFinished | None = None

        async def read() -> None:
            nonlocal finished
            async for event in controller.events():
                if isinstance(event, ev.Message) and event.agent not in ("user", ""):
                    texts.append(event.text)
                elif isinstance(event, ev.ToolResult) and event.name == "run_code" and not event.is_error:
                    outputs.append(event.content)
                elif isinstance(event, ev.RunFinished):
                    finished = event

        try:
            await asyncio.wait_for(read(), self.settings.timeout + RUN_GRACE)
        except TimeoutError:
            with contextlib.suppress(Exception):
                await controller.stop(force=True)
        return texts, outputs, finished

    def _score(
        self, record: dict[str, Any], question: Question, texts: list[str], outputs: list[str],
        finished: ev.RunFinished | None,
    ) -> None:
        answers = find_answers("\n\n".join(texts))
        source = "message" if answers else ""
        if not answers:
            answers = find_answers("\n\n".join(outputs))
            source = "code output" if answers else ""
        record["answers"], record["answers_from"] = answers, source
        if finished is None:
            record["finish"] = "error"
            record["verdict"] = f"the run did not finish within {self.settings.timeout + RUN_GRACE:.0f} s"
            return
        record.update(
            finish=finished.reason, tokens_in=finished.tokens_in, tokens_out=finished.tokens_out,
            cost=finished.cost, run_seconds=finished.elapsed,
        )
        if finished.reason in ("error", "stopped") and not answers:
            why = finished.message or finished.reason
            record["verdict"] = f"the run ended ({finished.reason}) before any answer: {why}"
            return
        verdict = judge(question.expected_dict(), answers, self.options.tolerance, self.options.strict)
        record["status"] = "scored"
        record["correct"] = verdict.correct
        record["all_correct"] = verdict.all_correct
        record["verdict"] = verdict.reason(question.expected_dict())
        if finished.reason != "terminate":
            record["verdict"] += f" (run ended: {finished.reason})"


def _finished(record: dict[str, Any] | None, question: Question) -> bool:
    return record is not None and record.get("status") != "failed" and record.get("task_hash") == question.task_hash


def _line(record: dict[str, Any]) -> str:
    qid, level = record.get("id"), record.get("level", "")
    if record["status"] == "failed":
        return f"⚠ {qid} ({level}) FAILED: {record.get('verdict', '')}"
    marks = record.get("correct") or {}
    mark = "✓" if record.get("all_correct") else "✗"
    tokens = int(record.get("tokens_in") or 0) + int(record.get("tokens_out") or 0)
    text = f"{mark} {qid} ({level}) {sum(marks.values())}/{len(marks)} · {record['seconds']:.1f} s · {tokens:,} tokens"
    if not record.get("all_correct"):
        text += f" · {record.get('verdict', '')}"
    return text


async def run_eval(settings: Settings, questions: Sequence[Question], options: EvalOptions, **kw: Any) -> EvalOutcome:
    return await Evaluation(settings, questions, options, **kw).run()


def merge(folders: Sequence[Path], out: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """Combine the results of shards (or of several runs) into one summary in `out`."""
    from ..scale import merge_results, read_summary, result_dirs

    dirs = result_dirs(folders)
    records, problems = merge_results(dirs)
    first = next((s for s in (read_summary(d) for d in dirs) if s), {})
    meta: dict[str, Any] = {k: first[k] for k in ("title", "model", "sandbox", "questions_file", "labels_file", "data_dir") if k in first}
    meta["shard"] = None
    meta["merged_from"] = [str(d) for d in dirs]
    planned = first.get("questions_in_plan")
    tolerance = float(first.get("tolerance", DEFAULT_TOLERANCE))
    strict = bool(first.get("strict", False))
    summary, judged = summarize(list(records.values()), meta, tolerance=tolerance, strict=strict,
                                planned=planned if isinstance(planned, int) else None)
    summary["questions_in_plan"] = planned
    summary["problems"] = problems
    out.mkdir(parents=True, exist_ok=True)
    from ..events import json_text

    write_text(ResultLog(out).path, "".join(json_text(r) + "\n" for r in judged))  # atomic: inputs may include out
    write_json(out / SUMMARY, summary)
    write_text(out / REPORT, markdown(summary, judged))
    return summary, judged, problems
