"""The `sbteam-tui` console script.

`sbteam-tui [--task TEXT] [--demo]` opens the app; `run` and `doctor` are
headless and never import Textual. Arguments are parsed before anything heavy
is imported so `--help` and bad input answer at once. What they print from a
record, a file or the environment (tasks, reasons, paths, errors) is inert
(team/sanitize.py): control characters are shown, never sent to the terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from team.config import ConfigError, Settings
from team.sanitize import inert

SUBCOMMANDS = ("run", "doctor", "export", "batch", "history")

# What the top-level --help lists (every subcommand; each has its own --help).
COMMAND_HELP = (
    ("run TASK", "run one task headless, transcript on stdout (--json, --out, --resume)"),
    ("doctor", "check configuration, model, tool calling, sandbox and isolation"),
    ("history [TEXT]", "list past runs: task, reason, duration, files, cost"),
    ("export RUN_ID", "export a recorded run as Markdown or a notebook (--format md|ipynb)"),
    ("batch FILE", "run many tasks, one per line, each with its own sandbox"),
)


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
    parser.add_argument("--sandbox", choices=("local", "e2b"), help="override SBTEAM_SANDBOX")
    parser.add_argument("--approve", action="store_true", help="approve each run_code/install/write (F6 toggles)")
    return parser


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sbteam-tui run", description="Run one task headless.")
    parser.add_argument("task", help="the task text ('-' reads it from standard input)")
    parser.add_argument("--out", type=Path, help="download the sandbox's files to this folder")
    parser.add_argument("--json", action="store_true", help="one JSON event per line on stdout")
    parser.add_argument("--sandbox", choices=("local", "e2b"), help="override SBTEAM_SANDBOX")
    parser.add_argument("--demo", action="store_true", help="scripted agents, real code; no key needed")
    parser.add_argument("--approve", action="store_true", help="ask before each run_code/install/write")
    parser.add_argument("--resume", metavar="RUN_ID", help="continue this earlier run; TASK is the new instruction")
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
    parser.add_argument("--concurrency", type=int, default=2, help="runs at once (local: capped by CPUs)")
    parser.add_argument("--sandbox", choices=("local", "e2b"), help="override SBTEAM_SANDBOX")
    parser.add_argument("--demo", action="store_true", help="scripted agents, real code; no key needed")
    return parser


def _history_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sbteam-tui history", description="List past runs.")
    parser.add_argument("search", nargs="?", default="", help="only runs whose task/id/reason contains this")
    return parser


def _doctor_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sbteam-tui doctor", description="Check configuration, model, sandbox and isolation."
    )
    parser.add_argument("--sandbox", choices=("local", "e2b"), help="override SBTEAM_SANDBOX")
    return parser


def load_settings(sandbox: str | None = None, demo: bool = False) -> Settings:
    """Settings from the environment and ./.env, with command-line overrides."""
    import os

    env = dict(os.environ)
    if sandbox:
        env["SBTEAM_SANDBOX"] = sandbox
    settings = Settings.load(env=env)
    return settings.with_(demo=True) if demo else settings


def _print_config_error(error: ConfigError) -> None:
    print("sbteam-tui: configuration problem:", file=sys.stderr)
    for line in error.problems:
        print(inert(f"  • {line}"), file=sys.stderr)
    print("  Fix it in .env or the environment (see .env.example); 'sbteam-tui doctor' checks it.", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "run":
        args = _run_parser().parse_args(argv[1:])
        task = sys.stdin.read() if args.task == "-" else args.task
        try:
            settings = load_settings(args.sandbox, args.demo)
        except ConfigError as error:
            _print_config_error(error)
            return 2
        from team.headless import run_headless

        try:
            return asyncio.run(
                run_headless(
                    settings, task, out_dir=args.out, json_lines=args.json,
                    approve=args.approve, resume=args.resume,
                )
            )
        except KeyboardInterrupt:
            return 130
    if argv and argv[0] in ("export", "batch", "history"):
        return _offline_command(argv)
    if argv and argv[0] == "doctor":
        args = _doctor_parser().parse_args(argv[1:])
        from team.doctor import doctor_main

        try:
            settings_or_error: Settings | ConfigError = load_settings(args.sandbox)
        except ConfigError as error:
            settings_or_error = error
        return asyncio.run(doctor_main(settings_or_error))
    args = _app_parser().parse_args(argv)
    try:
        settings_or_error = load_settings(args.sandbox, args.demo)
    except ConfigError as error:
        settings_or_error = error
    from tui.app import run_app

    code = run_app(settings_or_error, task=args.task, autostart=bool(args.task), approve=args.approve)
    # Everything is closed by now. The interpreter's final garbage collection walks
    # every object of AutoGen, the SDKs and Textual (~1 s on 2 cores) only to free
    # memory the OS reclaims anyway; freezing them skips that and quits at once.
    import gc

    gc.freeze()
    return code


def _offline_command(argv: list[str]) -> int:
    """export / batch / history: headless, no Textual."""
    command = argv[0]
    parser = {"export": _export_parser, "batch": _batch_parser, "history": _history_parser}[command]()
    args = parser.parse_args(argv[1:])
    try:
        settings = load_settings(getattr(args, "sandbox", None), getattr(args, "demo", False))
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
    results = asyncio.run(run_batch(settings, tasks, concurrency=args.concurrency))
    print(inert(summary_table(results)))
    return 0 if all(r.reason == "terminate" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
