"""`sbteam-tui run TASK`: the same run as the app, streamed to a terminal or as JSON lines.

Exit codes: 0 the Planner said TERMINATE; 1 a limit, a stop or an error ended
the run, or (with `--out`) a write failure left the copied files or the run
record incomplete; 2 bad configuration or input; 130 interrupted with Ctrl+C. The first
Ctrl+C stops gracefully, a second one forces.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from . import events as ev
from .config import Settings
from .cost import format_cost
from .sandbox.kinds import is_unisolated
from .sanitize import InertStream, inert

AGENT_COLOURS = {"Planner": "35", "CodeAgent": "36", "AnalystAgent": "33", "user": "32"}


class TranscriptPrinter:
    """Readable streamed transcript, in the spirit of AutoGen's Console.

    Everything it writes that came from outside (model text, code, sandbox
    output, file names, error lines) goes through `inert` first, so the only
    escape sequences the terminal receives are its own fixed SGR colours
    around already-inert text (the engine does not import Rich).
    """

    def __init__(self, out: TextIO, colour: bool) -> None:
        self.out = out
        self.colour = colour
        self.streaming: str | None = None  # message_id being streamed
        self.streamed: set[str] = set()
        self.speaker = ""
        self.tokens = InertStream()  # the streamed message's text, made inert chunk by chunk

    def _c(self, text: str, code: str) -> str:
        """`text` made inert, then coloured (SGR `code`) when the output is a terminal."""
        text = inert(text)
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def _header(self, agent: str) -> None:
        if agent != self.speaker:
            self.speaker = agent
            self._end_stream()
            self.out.write("\n" + self._c(f"---------- {agent} ----------", AGENT_COLOURS.get(agent, "1")) + "\n")

    def _end_stream(self) -> None:
        if self.streaming is not None:
            self.out.write(self.tokens.flush() + "\n")
            self.streaming = None

    def show(self, event: ev.Event) -> None:
        w = self.out.write
        if isinstance(event, ev.RunStarted):
            label = "DEMO (scripted agents, real code)" if event.demo else event.model
            w(self._c(f"🚀 run {event.run_id} · model {label} · sandbox {event.sandbox}", "1") + "\n")
            w(f"📝 termination: Planner says TERMINATE · {event.max_messages} messages · {event.timeout:.0f} s\n")
        elif isinstance(event, ev.SandboxStatus):
            if event.state == "ready" and is_unisolated(event.isolation):
                w(self._c("⚠ the local sandbox is NOT isolated (install bubblewrap)", "31") + "\n")
        elif isinstance(event, ev.TokenDelta):
            self._header(event.agent)
            if self.streaming != event.message_id:
                self._end_stream()
            self.streaming = event.message_id
            self.streamed.add(event.message_id)
            w(self.tokens.feed(event.text))
        elif isinstance(event, ev.Message):
            self._header(event.agent)
            if event.message_id not in self.streamed:
                w(inert(event.text) + "\n")
            self._end_stream()
        elif isinstance(event, ev.ToolCall):
            self._header(event.agent)
            self._end_stream()
            args = dict(event.arguments)
            code = args.pop("code", None) or (args.pop("content", None) if event.name == "write_file" else None)
            shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
            w(self._c(f"🔧 {event.name}({shown})", "34") + "\n")
            if code:
                w("\n".join("   │ " + line for line in inert(str(code)).splitlines()) + "\n")
        elif isinstance(event, ev.SandboxOutput):
            colour = "31" if event.stream == "stderr" else "2"
            w(self._c(event.text if event.text.endswith("\n") else event.text + "\n", colour))
        elif isinstance(event, ev.ToolResult):
            text = event.content if len(event.content) < 2000 else event.content[:2000] + " …"
            w(self._c(text, "31" if event.is_error else "32") + "\n")
        elif isinstance(event, ev.Handoff):
            self._end_stream()
            w(self._c(f"↪ {event.source} → {event.target}", "2") + "\n")
        elif isinstance(event, ev.Notice):
            w(self._c(f"ℹ {event.text}", "33") + "\n")
        elif isinstance(event, ev.RunFinished):
            self._end_stream()
            detail = f": {event.message}" if event.message else ""
            w(
                "\n"
                + self._c(
                    f"🏁 finished: {event.reason.upper()}{detail} · {event.messages} messages · "
                    f"{event.elapsed:.1f} s · tokens {event.tokens_in}/{event.tokens_out} · "
                    f"cost {format_cost(event.cost)}",
                    "1" if event.reason == "terminate" else "31",
                )
                + "\n"
            )
        self.out.flush()


class TerminalApprover:
    """`run --approve`: show the code on stderr, ask approve / edit / reject on the terminal.

    Closed input (EOF: a pipe that ended, Ctrl+D) is an answer too: the request is
    rejected with the reason "input closed", the user is told once, and every
    later request is rejected at once without asking (nobody is there to answer).
    """

    def __init__(self, read: Callable[[], str] | None = None, out: TextIO | None = None) -> None:
        self._read = read or sys.stdin.readline
        self._out = out
        self.closed = False

    @property
    def out(self) -> TextIO:
        return self._out or sys.stderr

    async def __call__(self, agent: str, call_id: str, name: str, args: dict) -> tuple[str, object]:
        from .tools import editable_arg  # the registry: which argument the user may edit

        key = editable_arg(name)
        if self.closed:
            return "reject", CLOSED_REASON
        shown = str(args.get(key, "")) if key else json.dumps(args, ensure_ascii=False, indent=2)
        print(f"\n🔐 {inert(agent)} wants to {inert(name)}:", file=self.out)
        print("\n".join("   │ " + line for line in inert(shown).splitlines()), file=self.out)
        while True:
            answer = await self._ask("[a]pprove, [e]dit, [r]eject? " if key else "[a]pprove, [r]eject? ")
            if answer is None:
                return self._eof()
            answer = answer.strip().lower()
            if answer in ("a", "approve", "y", "yes"):
                return "approve", None
            if answer in ("r", "reject", "n", "no"):
                reason = await self._ask("reason (told to the model): ")
                if reason is None:
                    return self._eof()
                return "reject", reason.strip() or "the user said no"
            if answer in ("e", "edit") and key:
                print("enter the replacement; end with a line holding only '.'", file=self.out)
                lines = []
                while (line := await self._ask("")) != ".":
                    if line is None:
                        return self._eof()
                    lines.append(line)
                return "edit", {key: "\n".join(lines)}

    def _eof(self) -> tuple[str, object]:
        self.closed = True
        print("\n(input closed: rejected, and so will be every later request)", file=self.out)
        return "reject", CLOSED_REASON

    async def _ask(self, prompt: str) -> str | None:
        """One line of input (without its newline), or None when the input is closed."""
        print(prompt, end="", file=self.out, flush=True)
        line = await asyncio.to_thread(self._read)
        return line.rstrip("\n") if line else None


CLOSED_REASON = "input closed"


def _newest_run(settings: Settings) -> str:
    """The id of the newest recorded run (what `run --continue` without an id follows up)."""
    from .history import list_runs

    runs = list_runs(settings.runs_dir)
    if not runs:
        raise ValueError(f"no runs in {settings.runs_dir} to continue")
    return runs[0].run_id


def _upload_progress() -> Callable[[int, int], None] | None:
    """A one-line progress display on stderr for uploads over 50 MB (when it is a terminal)."""
    if not sys.stderr.isatty():
        return None
    shown = [-1]

    def progress(done: int, total: int) -> None:
        if total < 50 << 20:
            return
        percent = done * 100 // max(total, 1)
        if percent != shown[0]:
            shown[0] = percent
            end = "\n" if done >= total else ""
            print(f"\r📥 uploading {done >> 20:,} / {total >> 20:,} MB ({percent}%)", end=end, file=sys.stderr, flush=True)

    return progress


def exit_code(reason: str | None) -> int:
    return 0 if reason == "terminate" else 1


async def run_headless(
    settings: Settings,
    task: str,
    *,
    out_dir: Path | None = None,
    json_lines: bool = False,
    stdout: TextIO | None = None,
    approve: bool = False,
    resume: str | None = None,
    data: list[str] | None = None,
    consent: bool = False,
    continue_run: str | None = None,
) -> int:
    """Run one task (or one follow-up turn) to its end; returns the process exit code.

    `data`: host files/folders/globs uploaded into /home/user/data/ before the team
    starts (`consent` allows more than 500 MB). `continue_run`: a run id ("" for the
    newest run) whose conversation `task` follows up on, in the same run folder.
    """
    stdout = stdout or sys.stdout
    if not task.strip():
        print("sbteam-tui: the task is empty", file=sys.stderr)
        return 2
    # heavy (AutoGen, the sandbox SDK): imported only once the input is known good
    from .run import RunController

    controller = RunController(settings)
    if approve:
        controller.approve = True
        controller.approver = TerminalApprover()
    if controller.demo:
        from .demo import DEMO_HINT

        print(DEMO_HINT, file=sys.stderr)
    printer = None if json_lines else TranscriptPrinter(stdout, colour=stdout.isatty())
    interrupted = 0
    loop = asyncio.get_running_loop()
    stoppers: set[asyncio.Task[None]] = set()

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted += 1
        print(
            "\n⏹ stopping… (Ctrl+C again to force)" if interrupted == 1 else "\n⏹ forcing stop…",
            file=sys.stderr,
        )
        task_ = loop.create_task(controller.stop(force=interrupted > 1))
        stoppers.add(task_)
        task_.add_done_callback(stoppers.discard)

    # asyncio signal handlers exist on POSIX and in the main thread only; elsewhere
    # Ctrl+C falls back to KeyboardInterrupt, which the CLI maps to exit 130.
    trap_sigint = os.name == "posix" and threading.current_thread() is threading.main_thread()
    if trap_sigint:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    reason: str | None = None
    incomplete: list[str] = []  # with --out: what a write failure left out (exit 1)
    try:
        try:
            await controller.warm_up()
        except Exception as exc:
            print(inert(f"sbteam-tui: the sandbox did not start: {exc}"), file=sys.stderr)
            return 1
        if data:
            from .uploads import UploadError

            try:
                done = await controller.add_data(data, consent=consent, progress=_upload_progress())
            except UploadError as exc:
                print(inert(f"sbteam-tui: cannot upload: {exc}{'' if 'confirm' not in str(exc) else ' (pass --yes)'}"), file=sys.stderr)
                return 2
            print(inert(f"📥 {len(done)} file(s) uploaded to /home/user/data/"), file=sys.stderr)
        if continue_run is not None:
            try:
                run_id = continue_run or _newest_run(settings)
                await controller.continue_run(run_id, task)
            except (ValueError, OSError) as exc:
                print(inert(f"sbteam-tui: cannot continue: {exc}"), file=sys.stderr)
                return 2
        elif resume:
            try:
                await controller.resume(resume, task)
            except (ValueError, OSError) as exc:
                print(inert(f"sbteam-tui: cannot resume: {exc}"), file=sys.stderr)
                return 2
        else:
            controller.start(task)
        async for event in controller.events():
            if json_lines:
                stdout.write(event.to_json() + "\n")
                stdout.flush()
            else:
                assert printer is not None
                printer.show(event)
            if isinstance(event, ev.RunFinished):
                reason = event.reason
        # the stream ends after OutputsSaved (files and state.json in the record); --out copies after that
        await controller.outputs_saved()
        if out_dir is not None:
            report = await controller.session.download_all(Path(out_dir))
            if report.saved:
                print(inert(f"📁 {len(report.saved)} file(s) saved to {out_dir}"), file=sys.stderr)
            else:
                print(inert(f"📁 the sandbox had no files: nothing written to {out_dir}"), file=sys.stderr)
            if report.summary():
                print(inert(f"⚠ {report.summary()}"), file=sys.stderr)  # names of skipped files
            # --out asks for the results: a copy or a record that a failure left incomplete fails the run
            if report.incomplete:
                incomplete.append(f"{out_dir}: {report.incomplete}")
            incomplete.extend(f"run record: {p}" for p in controller.record_problems)
    finally:
        # Keep our Ctrl+C handler through the clean-up: a second press that lands
        # after the run ended must not raise KeyboardInterrupt into close() (which
        # would skip killing the sandbox and saving its files).
        try:
            for stopper in list(stoppers):
                with contextlib.suppress(BaseException):
                    await stopper
            await controller.close()
            for stopper in list(stoppers):
                with contextlib.suppress(BaseException):
                    await stopper
        finally:
            if trap_sigint:
                loop.remove_signal_handler(signal.SIGINT)
    if interrupted:
        return 130
    if incomplete:
        print(inert(f"sbteam-tui: the output is incomplete: {'; '.join(incomplete)}"), file=sys.stderr)
        return 1
    return exit_code(reason)
