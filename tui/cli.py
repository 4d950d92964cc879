"""The `sbteam-tui` console script.

`sbteam-tui [--task TEXT] [--demo]` opens the app; `run` and `doctor` are
headless and never import Textual. Arguments are parsed before anything heavy
is imported so `--help` and bad input answer at once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from team.config import ConfigError, Settings

SUBCOMMANDS = ("run", "doctor")


def _app_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sbteam-tui",
        description="A Swarm of three AutoGen agents solving data tasks in a sandbox, live in your terminal.",
        epilog="Headless: 'sbteam-tui run TASK' and 'sbteam-tui doctor' (see --help of each).",
    )
    parser.add_argument("--task", help="pre-fill the task and start it at once")
    parser.add_argument("--demo", action="store_true", help="scripted agents, real code; no key needed")
    parser.add_argument("--sandbox", choices=("local", "e2b"), help="override SBTEAM_SANDBOX")
    return parser


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sbteam-tui run", description="Run one task headless.")
    parser.add_argument("task", help="the task text ('-' reads it from standard input)")
    parser.add_argument("--out", type=Path, help="download the sandbox's files to this folder")
    parser.add_argument("--json", action="store_true", help="one JSON event per line on stdout")
    parser.add_argument("--sandbox", choices=("local", "e2b"), help="override SBTEAM_SANDBOX")
    parser.add_argument("--demo", action="store_true", help="scripted agents, real code; no key needed")
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
        print(f"  • {line}", file=sys.stderr)
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
            return asyncio.run(run_headless(settings, task, out_dir=args.out, json_lines=args.json))
        except KeyboardInterrupt:
            return 130
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

    return run_app(settings_or_error, task=args.task, autostart=bool(args.task))


if __name__ == "__main__":
    sys.exit(main())
