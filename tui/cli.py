"""The `sbteam-tui` console script.

`sbteam-tui [--task TEXT] [--demo]` opens the app; `run` and `doctor` are
headless and never import Textual. Arguments are parsed before anything heavy
is imported so `--help` and bad input answer at once. What they print from a
record, a file or the environment (tasks, reasons, paths, errors) is inert
(team/sanitize.py): control characters are shown, never sent to the terminal.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from team.config import ConfigError, Settings
from team.sandbox.kinds import SANDBOX_KINDS
from team.sanitize import inert

SUBCOMMANDS = ("run", "doctor", "export", "batch", "history", "eval", "models")

# What the top-level --help lists (every subcommand; each has its own --help).
COMMAND_HELP = (
    ("run TASK", "run one task headless, transcript on stdout (--json, --out, --resume)"),
    ("doctor", "check configuration, model, tool calling, sandbox and isolation"),
    ("history [TEXT]", "list past runs: task, reason, duration, files, cost"),
    ("export RUN_ID", "export a recorded run as Markdown or a notebook (--format md|ipynb)"),
    ("batch FILE", "run many tasks, one per line, each with its own sandbox (--out, --shard; batch merge OUT…)"),
    ("models", "each agent's model, endpoint, price and options, keys masked (--models FILE)"),
    ("eval QUESTIONS", "score the team on DABench-format questions (--sample: the bundled set; eval merge OUT…)"),
)


MODELS_HELP = "model file (YAML: a default and per-agent AutoGen model clients); default SBTEAM_MODELS, else sbteam.yaml or models.yaml here or in ~/.config/sbteam"


def _commands_epilog() -> str:
    width = max(len(usage) for usage, _ in COMMAND_HELP)
    lines = ["headless commands (see 'sbteam-tui COMMAND --help'):"]
    lines += [f"  sbteam-tui {usage:<{width}}  {text}" for usage, text in COMMAND_HELP]
    return "\n".join(lines)


def _app_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sbteam-tui",
        description="A Swarm of three AutoGen agents solving data tasks in a sandbox, live in your terminal.",
        epilog=_commands_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--task", help="pre-fill the task and start it at once")
    parser.add_argument("--demo", action="store_true", help="scripted agents, real code; no key needed")
    parser.add_argument("--sandbox", choices=SANDBOX_KINDS, help="override SBTEAM_SANDBOX")
    parser.add_argument("--approve", action="store_true", help="approve each run_code/install/write (F6 toggles)")
    parser.add_argument("--models", metavar="FILE", help=MODELS_HELP)
    parser.add_argument("--data", nargs="+", metavar="PATH", help="upload files/folders/globs ('examples' for the bundled data) to /home/user/data/")
    parser.add_argument("--yes", action="store_true", help="upload more than 500 MB without asking")
    return parser


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sbteam-tui run", description="Run one task headless.")
    parser.add_argument("task", nargs="?", help="the task text ('-' reads it from standard input)")
    parser.add_argument("--out", type=Path, help="download the sandbox's files to this folder")
    parser.add_argument("--json", action="store_true", help="one JSON event per line on stdout")
    parser.add_argument("--sandbox", choices=SANDBOX_KINDS, help="override SBTEAM_SANDBOX")
    parser.add_argument("--demo", action="store_true", help="scripted agents, real code; no key needed")
    parser.add_argument("--approve", action="store_true", help="ask before each run_code/install/write")
    parser.add_argument("--models", metavar="FILE", help=MODELS_HELP)
    parser.add_argument("--resume", metavar="RUN_ID", help="a new run continuing this earlier run; TASK is the new instruction")
    parser.add_argument("--continue", dest="continue_run", nargs="?", const="", metavar="RUN_ID",
                        help="ask a follow-up in the same conversation (the newest run when no id)")
    parser.add_argument("--data", nargs="+", metavar="PATH", help="upload files/folders/globs ('examples' for the bundled data) to /home/user/data/ first")
    parser.add_argument("--yes", action="store_true", help="upload more than 500 MB without asking")
    return parser


def _export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sbteam-tui export", description="Export a recorded run.")
    parser.add_argument("run_id", help="the run's id (see 'sbteam-tui history')")
    parser.add_argument("--format", choices=("md", "ipynb"), default="md")
    parser.add_argument("--out", type=Path, help="output file (default: in the run's folder)")
    return parser


def _batch_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sbteam-tui batch", description="Run many tasks, one per line, each with its own sandbox."
    )
    parser.add_argument("tasks_file", type=Path)
    parser.add_argument("--concurrency", type=int, default=2, help="runs at once (local: capped by CPUs; E2B: by SBTEAM_E2B_CONCURRENCY)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="results.jsonl + summary.json here; the same command again skips finished tasks")
    parser.add_argument("--shard", metavar="I/N", help="run the I-th of N slices (0-based; default from JOB_COMPLETION_INDEX/JOB_COMPLETIONS)")
    parser.add_argument("--timeout", type=float, metavar="S", help="seconds per task (default SBTEAM_TIMEOUT)")
    parser.add_argument("--sandbox", choices=SANDBOX_KINDS, help="override SBTEAM_SANDBOX")
    parser.add_argument("--models", metavar="FILE", help=MODELS_HELP)
    parser.add_argument("--demo", action="store_true", help="scripted agents, real code; no key needed")
    return parser


def _models_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sbteam-tui models", description="Print the resolved model configuration of each agent, keys masked."
    )
    parser.add_argument("--models", metavar="FILE", help=MODELS_HELP)
    return parser


def _history_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sbteam-tui history", description="List past runs.")
    parser.add_argument("search", nargs="?", default="", help="only runs whose task/id/reason contains this")
    return parser


def _doctor_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sbteam-tui doctor", description="Check configuration, model, sandbox and isolation."
    )
    parser.add_argument("--sandbox", choices=SANDBOX_KINDS, help="override SBTEAM_SANDBOX")
    parser.add_argument("--models", metavar="FILE", help=MODELS_HELP)
    return parser


def load_settings(
    sandbox: str | None = None, demo: bool = False, models: str | None = None, *, shared_cap: bool = True
) -> Settings:
    """Settings from the environment and ./.env, with command-line overrides.

    `shared_cap`: every run started from these settings (a batch, an eval) shares one
    SBTEAM_MAX_COST besides its own; the app asks for none (each run has its cap).
    """
    import os

    env = dict(os.environ)
    if sandbox:
        env["SBTEAM_SANDBOX"] = sandbox
    if models:
        env["SBTEAM_MODELS"] = models
    settings = Settings.load(env=env)
    if shared_cap and settings.max_cost is not None:
        from team.cost import SpendPool

        settings = settings.with_(spend_pool=SpendPool(settings.max_cost))
    return settings.with_(demo=True) if demo else settings


def _print_config_error(error: ConfigError) -> None:
    print("sbteam-tui: configuration problem:", file=sys.stderr)
    for line in error.problems:
        print(inert(f"  • {line}"), file=sys.stderr)
    print("  Fix it in .env or the environment (see .env.example); 'sbteam-tui doctor' checks it.", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "run":
        parser = _run_parser()
        args = parser.parse_args(argv[1:])
        if args.task is None and args.data and len(args.data) > 1:
            args.task = args.data.pop()  # `--data a.csv b.csv "the task"`: the greedy list took it
        if args.task is None and args.continue_run:
            args.task, args.continue_run = args.continue_run, ""  # `--continue "follow-up"`: the newest run
        if args.task is None:
            parser.error("the following arguments are required: task")
        task = sys.stdin.read() if args.task == "-" else args.task
        try:
            settings = load_settings(args.sandbox, args.demo, args.models)
        except ConfigError as error:
            _print_config_error(error)
            return 2
        import asyncio

        from team.headless import run_headless

        try:
            return asyncio.run(
                run_headless(
                    settings, task, out_dir=args.out, json_lines=args.json,
                    approve=args.approve, resume=args.resume, data=args.data, consent=args.yes,
                    continue_run=args.continue_run,
                )
            )
        except KeyboardInterrupt:
            return 130
    if argv and argv[0] == "eval":
        from team.eval.command import eval_main

        return eval_main(argv[1:], load_settings, _print_config_error)
    if argv[:2] == ["batch", "merge"]:
        from team.eval.command import merge_main

        return merge_main("batch", argv[2:])
    if argv and argv[0] in ("export", "batch", "history"):
        return _offline_command(argv)
    if argv and argv[0] == "doctor":
        args = _doctor_parser().parse_args(argv[1:])
        import asyncio
        import os

        from team.doctor import doctor_main, variables_table
        from team.envfile import merged_env

        try:
            settings_or_error: Settings | ConfigError = load_settings(args.sandbox, models=args.models)
        except ConfigError as error:
            settings_or_error = error
        options = {k: v for k, v in (("SBTEAM_SANDBOX", args.sandbox), ("SBTEAM_MODELS", args.models)) if v}
        variables = variables_table(os.environ, merged_env({}), options)
        return asyncio.run(doctor_main(settings_or_error, variables=variables))
    if argv and argv[0] == "models":
        return _models_command(argv[1:])
    args = _app_parser().parse_args(argv)
    import gc

    # Start-up allocates ~a million objects (Textual, the app's modules, the first layout);
    # the cyclic GC would walk them ~170 times (~50 ms) before the first paint, to find
    # next to no garbage. It is off until the first paint is out (`SbteamApp.after_first_paint`).
    gc.disable()
    from tui.widgets.images import ask_terminal

    ask_terminal()  # the image-support query; its answer is read after the imports below (run_app)
    try:
        settings_or_error = load_settings(args.sandbox, args.demo, args.models, shared_cap=False)
    except ConfigError as error:
        settings_or_error = error
    from tui.app import run_app

    try:
        code = run_app(
            settings_or_error, task=args.task, autostart=bool(args.task), approve=args.approve,
            data=args.data, data_consent=args.yes,
        )
    finally:
        gc.enable()  # (the app turns it on after its first paint; this if it never painted)
    # Everything is closed by now. The interpreter's final garbage collection walks
    # every object of AutoGen, the SDKs and Textual (~1 s on 2 cores) only to free
    # memory the OS reclaims anyway; freezing them skips that and quits at once.
    gc.freeze()
    return code


def _offline_command(argv: list[str]) -> int:
    """export / batch / history: headless, no Textual."""
    command = argv[0]
    parser = {"export": _export_parser, "batch": _batch_parser, "history": _history_parser}[command]()
    args = parser.parse_args(argv[1:])
    try:
        settings = load_settings(getattr(args, "sandbox", None), getattr(args, "demo", False), getattr(args, "models", None))
    except ConfigError as error:
        _print_config_error(error)
        return 2
    if command == "export":
        from team.export import export_run

        try:
            path = export_run(settings.runs_dir, args.run_id, args.format, args.out)
        except (FileNotFoundError, ValueError, OSError) as exc:
            print(inert(f"sbteam-tui: {exc}"), file=sys.stderr)
            return 2
        print(inert(str(path)))
        return 0
    if command == "history":
        from team.cost import format_cost
        from team.history import list_runs, plural

        runs = list_runs(settings.runs_dir, args.search)
        if not runs:
            print(inert(f"no runs in {settings.runs_dir}"), file=sys.stderr)
            return 0
        for run in runs:
            task = " ".join(run.task.split())[:60]
            cost = format_cost(run.cost)
            count, noun = plural(len(run.files), "file").split(" ")  # "1 file", "12 files"
            mark = f"  ⚠ record incomplete: {run.incomplete}" if run.incomplete else ""
            if run.turns > 1:
                task = f"{task}  ({run.turns} turns)"
            print(inert(f"{run.run_id}  {run.reason:<12} {run.duration:7.1f} s  {count:>3} {noun:<5}  {cost:>8}  {task}{mark}"))
        return 0
    from team.batch import read_tasks, run_batch, summary_table

    try:
        tasks = read_tasks(args.tasks_file)
    except OSError as exc:
        print(inert(f"sbteam-tui: cannot read {args.tasks_file}: {exc.strerror or exc}"), file=sys.stderr)
        return 2
    if not tasks:
        print(inert(f"sbteam-tui: {args.tasks_file} holds no tasks (one per line)"), file=sys.stderr)
        return 2
    from team.eval.command import batch_options
    from team.scale import ScaleError

    try:
        out, shard = batch_options(args)
    except ScaleError as exc:
        print(inert(f"sbteam-tui: {exc}"), file=sys.stderr)
        return 2
    if args.timeout is not None:
        settings = settings.with_(timeout=args.timeout)
    import asyncio

    try:
        results = asyncio.run(run_batch(settings, tasks, concurrency=args.concurrency, out=out, shard=shard))
    except KeyboardInterrupt:
        return 130
    print(inert(summary_table(results)))
    return 0 if all(r.reason == "terminate" for r in results) else 1


def _models_command(argv: list[str]) -> int:
    """`sbteam-tui models`: the resolved configuration of each agent's model, keys masked."""
    args = _models_parser().parse_args(argv)
    try:
        settings = load_settings(models=args.models)
    except ConfigError as error:
        _print_config_error(error)
        return 2
    from team.agent_models import describe

    print(inert(describe(settings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
