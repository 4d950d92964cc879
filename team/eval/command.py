"""The `sbteam-tui eval` and `sbteam-tui batch merge` commands (parsed before anything heavy).

    sbteam-tui eval QUESTIONS.jsonl [--labels LABELS.jsonl] --data DIR [--out DIR] …
    sbteam-tui eval --sample                       # the bundled 20 questions
    sbteam-tui eval merge OUT… [--out DIR]         # shards → one summary
    sbteam-tui batch merge OUT… [--out DIR]

Exit status: 0 when every question (task) got a result, 1 when some failed, were
not run (a stop) or scored under `--min-accuracy`, 2 for bad input or
configuration, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..sandbox.kinds import SANDBOX_KINDS
from ..sanitize import inert


def eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sbteam-tui eval",
        description=(
            "Score the team on closed-form data-analysis questions in InfiAgent-DABench's format: "
            "one run (own sandbox, own record) per question, answers @name[value] judged against the labels, "
            "ABQ/PSAQ/UASQ overall, by level and by concept. 'sbteam-tui eval merge OUT…' combines shards."
        ),
        epilog="Resume: run the same command again (same --out) and finished questions are skipped.",
    )
    parser.add_argument("questions", nargs="?", type=Path, help="questions file (JSON lines, DABench format)")
    parser.add_argument("--sample", action="store_true", help="the bundled 20-question set over the example data")
    parser.add_argument("--labels", type=Path, help="labels file (default: …-labels.jsonl beside …-questions.jsonl)")
    parser.add_argument("--data", type=Path, metavar="DIR", help="folder holding the questions' data files (file_name)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="results folder (default: sbteam-eval/NAME)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    parser.add_argument("--only", nargs="+", metavar="ID", help="only these question ids")
    parser.add_argument("--timeout", type=float, metavar="S", help="seconds per question (default SBTEAM_TIMEOUT)")
    parser.add_argument("--concurrency", type=int, default=2, help="questions at once (local: capped by CPUs; E2B: by SBTEAM_E2B_CONCURRENCY)")
    parser.add_argument("--shard", metavar="I/N", help="run the I-th of N slices (0-based; default from JOB_COMPLETION_INDEX/JOB_COMPLETIONS)")
    parser.add_argument("--tolerance", type=float, default=None, metavar="X", help="numbers equal when |got − expected| ≤ X (default 1e-6)")
    parser.add_argument("--strict", action="store_true", help="DABench's own comparison (exact text, |a−b| < 1e-6)")
    parser.add_argument("--min-accuracy", type=float, metavar="ABQ", help="exit 1 when ABQ is below this (0–1)")
    parser.add_argument("--sandbox", choices=SANDBOX_KINDS, help="override SBTEAM_SANDBOX")
    parser.add_argument("--models", metavar="FILE", help="model file (YAML) for the agents, as SBTEAM_MODELS")
    parser.add_argument("--demo", action="store_true", help="scripted agents, real code (answers the --sample questions only)")
    return parser


def merge_parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"sbteam-tui {command} merge",
        description=f"Combine the results of {command} shards (or runs) into one results.jsonl and summary.",
    )
    parser.add_argument("folders", nargs="+", type=Path, metavar="OUT", help="result folders (their shard-* subfolders are found too)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="where to write (default: the folder, when one is given)")
    return parser


def _fail(text: str) -> int:
    print(inert(f"sbteam-tui: {text}"), file=sys.stderr)
    return 2


def eval_main(argv: list[str], load_settings: Callable[..., Any], config_error: Callable[[Any], None]) -> int:
    if argv and argv[0] == "merge":
        return merge_main("eval", argv[1:])
    args = eval_parser().parse_args(argv)
    from ..config import ConfigError
    from ..scale import ScaleError, output_dir, resolve_shard
    from .answers import DEFAULT_TOLERANCE
    from .dabench import (
        QuestionFileError,
        check_data,
        default_labels_path,
        read_labels,
        read_questions,
        with_labels,
    )

    if args.sample == bool(args.questions):
        return _fail("eval takes a questions file or --sample (one of them)")
    try:
        settings = load_settings(args.sandbox, args.demo, **({"models": args.models} if args.models else {}))
    except ConfigError as error:
        config_error(error)
        return 2
    if args.timeout is not None:
        if args.timeout <= 0:
            return _fail("--timeout must be more than 0 seconds")
        settings = settings.with_(timeout=args.timeout)
    if args.concurrency < 1:
        return _fail("--concurrency must be 1 or more")
    if args.tolerance is not None and args.tolerance < 0:
        return _fail("--tolerance must be 0 or more")
    if args.min_accuracy is not None and not 0 <= args.min_accuracy <= 1:
        return _fail("--min-accuracy is a fraction from 0 to 1 (0.8 for 80 %)")
    try:
        from .sample import SAMPLE_DATA, SAMPLE_LABELS, SAMPLE_QUESTIONS

        questions_path = SAMPLE_QUESTIONS if args.sample else args.questions
        questions = read_questions(questions_path)
        labels_path = args.labels or (SAMPLE_LABELS if args.sample else default_labels_path(args.questions))
        if labels_path is None:
            return _fail(f"no labels for {args.questions}: pass --labels LABELS.jsonl")
        data_dir = args.data or (SAMPLE_DATA if args.sample else _dabench_tables(args.questions))
        if data_dir is None:
            return _fail("--data DIR is needed: the folder holding the files the questions name (file_name)")
        planned = questions
        if args.only:
            wanted = {str(i) for i in args.only}
            unknown = sorted(wanted - {q.id for q in questions})
            if unknown:
                return _fail(f"no question with id {', '.join(unknown)} in {questions_path}")
            questions = [q for q in questions if q.id in wanted]
        if args.limit is not None:
            if args.limit < 1:
                return _fail("--limit must be 1 or more")
            questions = questions[: args.limit]
        questions = with_labels(questions, read_labels(labels_path))
        check_data(questions, data_dir)
        shard = resolve_shard(args.shard)
    except (QuestionFileError, ScaleError) as exc:
        return _fail(str(exc))
    planned_count = len(questions)
    if shard is not None:
        questions = shard.take(questions)
    if settings.is_demo and not args.sample:
        return _fail(
            "the scripted DEMO answers only the bundled questions (eval --sample); "
            "set OPENAI_API_KEY (or OPENAI_API_BASE for a local server) to evaluate a model"
        )
    if settings.sandbox == "e2b":
        from ..sandbox.e2b import scale_limits

        try:
            scale_limits()
        except ValueError as exc:
            return _fail(str(exc))
    name = "sample" if args.sample else questions_path.stem.replace("-questions", "").replace("questions", "") or "eval"
    out = output_dir(args.out or Path("sbteam-eval") / name, shard)
    from .runner import EvalOptions, run_eval

    options = EvalOptions(
        out=out,
        data_dir=data_dir,
        concurrency=args.concurrency,
        tolerance=DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance,
        strict=args.strict,
        shard=shard,
        planned=planned_count,
        meta={
            "title": "sbteam-tui eval --sample" if args.sample else f"sbteam-tui eval {questions_path.name}",
            "questions_file": str(questions_path),
            "labels_file": str(labels_path),
            "data_dir": str(data_dir),
            "selection": {"only": args.only, "limit": args.limit, "of": len(planned)},
        },
    )
    model_factory = None
    if settings.is_demo:
        from .sample import sample_client

        every = with_labels(planned, read_labels(labels_path))
        model_factory = lambda: sample_client(every)  # noqa: E731 - one fresh scripted model per question
    try:
        outcome = asyncio.run(run_eval(settings, questions, options, model_factory=model_factory))
    except KeyboardInterrupt:
        return 130
    _print_summary(outcome.summary, out)
    if outcome.stopped:
        print("eval: stopped; run the same command again to finish the rest", file=sys.stderr)
        return 130
    incomplete = outcome.summary["failed"] or outcome.summary["not_run"]
    if args.min_accuracy is not None and outcome.summary["overall"]["abq"] < args.min_accuracy:
        print(inert(f"eval: ABQ below --min-accuracy {args.min_accuracy:g}"), file=sys.stderr)
        return 1
    return 1 if incomplete else 0


def _dabench_tables(questions: Path) -> Path | None:
    """DABench's layout: data/da-dev-questions.jsonl beside data/da-dev-tables/."""
    for candidate in (questions.with_name(questions.name.replace("-questions.jsonl", "-tables")),
                      questions.parent / "da-dev-tables"):
        if candidate.is_dir():
            return candidate
    return None


def _pct(x: float) -> str:
    return f"{x * 100:.1f} %"


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    overall = summary["overall"]
    lines = [
        f"ABQ {_pct(overall['abq'])} ({overall['correct']}/{overall['questions']} questions) · "
        f"PSAQ {_pct(overall['psaq'])} · UASQ {_pct(overall['uasq'])} "
        f"({overall['sub_correct']}/{overall['sub_answers']} sub-answers) · model {summary.get('model')}",
        "by level: " + ", ".join(f"{k} {_pct(v['abq'])} ({v['correct']}/{v['questions']})"
                                 for k, v in summary.get("by_level", {}).items()),
    ]
    if summary.get("failed"):
        lines.append(f"{summary['failed']} question(s) failed to run (counted as wrong):")
        lines += [f"  {f['id']}: {f['reason']}" for f in summary.get("failures", [])[:20]]
    for problem in summary.get("problems", []):
        lines.append(f"⚠ {problem}")
    lines.append(f"results: {out / 'results.jsonl'}, {out / 'summary.json'}, {out / 'report.md'}")
    print(inert("\n".join(lines)))


def merge_main(command: str, argv: list[str]) -> int:
    """`eval merge` / `batch merge`."""
    from ..scale import ScaleError

    args = merge_parser(command).parse_args(argv)
    if args.out is None and len(args.folders) > 1:
        return _fail(f"{command} merge of several folders needs --out DIR")
    out = args.out or args.folders[0]
    try:
        if command == "eval":
            from .runner import merge

            summary, _, problems = merge(args.folders, out)
            _print_summary(summary, out)
        else:
            from ..batch import merge_batches

            summary, records, problems = merge_batches(args.folders, out)
            print(inert(
                f"{summary['finished']}/{summary['tasks_with_results']} task(s) finished "
                f"({', '.join(f'{k} {v}' for k, v in summary['reasons'].items())}); "
                f"results: {out / 'results.jsonl'}, {out / 'summary.json'}"
            ))
            for problem in problems:
                print(inert(f"⚠ {problem}"))
    except ScaleError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot write {out}: {exc.strerror or exc}")
    return 1 if problems else 0


def batch_options(args: argparse.Namespace) -> tuple[Path | None, Any]:
    """(output folder, shard) of `batch` from its arguments and the environment; ScaleError when bad."""
    from ..scale import output_dir, resolve_shard

    shard = resolve_shard(getattr(args, "shard", None), os.environ)
    out = getattr(args, "out", None)
    if shard is not None and out is None:
        out = Path("sbteam-batch") / Path(args.tasks_file).stem
    return (output_dir(out, shard) if out is not None else None), shard
