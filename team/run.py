"""`RunController`: one task at a time through the seed's Swarm, as typed events.

The UI and the headless CLI use only this: `start(task)`, `async for e in
events()`, `stop()`, `stop(force=True)`, `restart()`, `close()`. What it does
about AutoGen's known behaviour (DESIGN.md, "Stop and restart"):

- A fresh team per run. AutoGen teams are not reliably reusable after a
  cancel, and building one costs ~2 ms.
- The timeout clock starts when the team is built, right before the run, and
  a watchdog of our own ends a run whose cell or model call outlives it
  (`TimeoutTermination` only looks when a message arrives).
- Stop is graceful first: `ExternalTermination.set()` (takes effect at the end
  of the agent's turn) plus an interrupt of running code. If the turn is still
  going after `STOP_GRACE` seconds (a model still streaming), the run's
  `CancellationToken` is cancelled. A second stop, or `force=True`, cancels at
  once. Either way the run reports `stopped` within about a second.
- The `run_stream` generator is always closed. A cancelled team may take a
  while to wind down (issue #7100), so after a force stop the run is reported
  finished at once and the old stream is drained in the background by a task
  this controller owns and awaits in `close()`; its late events are dropped.
- Counters (messages, tokens, elapsed) are our own: AutoGen's termination
  conditions reset themselves after firing.
- Exactly one `RunFinished` per run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from . import events as ev
from .config import Settings
from .records import RunRecord, load_team_state, read_events, run_dir, why
from .redact import StreamScrub, scrub
from .session import CodeSession, FileEntry

STOP_GRACE = 0.5
FORCE_WAIT = 1.0
FINISH_COPY_TIMEOUT = 20.0
CLOSE_DRAIN = 5.0  # close(): how long abandoned runs may take to wind down before cancel

ModelFactory = Callable[[], Any]
# (agent, call_id, tool name, arguments) -> ("approve"|"edit"|"reject", new arguments or reason)
Approver = Callable[[str, str, str, dict[str, Any]], Awaitable[tuple[str, Any]]]


class SandboxStartError(RuntimeError):
    """The run's sandbox could not be started (its message is the run's end line)."""


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]


def new_run_id() -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def quiet_autogen_logs() -> None:
    """AutoGen logs tracebacks ("Unhandled message in agent container") to stderr,
    which would tear the TUI; errors reach the user as RunFinished instead."""
    for name in ("autogen_core", "autogen_agentchat", "autogen_ext", "httpx", "openai"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.CRITICAL + 1)
        logger.propagate = False
    import warnings

    # autogen_core warns (to stderr) when a model's answer is empty; the run reports it.
    warnings.filterwarnings("ignore", message="No text content or tool calls", category=UserWarning)


class RunController:
    """Owns the session, the current run's team and every task it starts."""

    def __init__(
        self,
        settings: Settings,
        *,
        model_factory: ModelFactory | None = None,
        session: CodeSession | None = None,
        run_id_factory: Callable[[], str] = new_run_id,
        demo_pace: float = 0.004,
        code_timeout: float | None = None,
        record: bool = True,
    ) -> None:
        quiet_autogen_logs()
        self.settings = settings
        self.demo = settings.is_demo
        # [models #14] the model of each agent (a model file may give each its own): one name, or
        # "Planner=…, CodeAgent=…, AnalystAgent=…"; `agent_models` for the status bar and run.json
        from .models_config import agent_models, model_label

        self.model_label = model_label(settings)
        self.agent_models = agent_models(settings)
        self.session = session or CodeSession(settings)
        self._model_factory = model_factory
        self._run_id_factory = run_id_factory
        self._demo_pace = demo_pace
        self._code_timeout = code_timeout
        self._record_enabled = record
        self._secrets = [s for s in settings.secrets() if len(s) >= 4]
        # open streams: (type, message id or call/stream) -> (scrubber, the stream's last event)
        self._streams: dict[tuple[str, str], tuple[StreamScrub, Any]] = {}
        self.state = "idle"
        self.run_id: str | None = None
        self.task: str | None = None
        self.last_finished: ev.RunFinished | None = None
        self.record: RunRecord | None = None
        self._queue: asyncio.Queue[ev.Event] = asyncio.Queue()
        self._drive_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._finished = asyncio.Event()
        self.approve = False
        self.approver: Approver | None = None
        self._resume: tuple[str, dict[str, Any] | None, Path | None] | None = None
        # The conversation: turns share one run id, record, team history and sandbox.
        self.turn = 1
        self._continuing = False  # this launch is a follow-up turn of the current conversation
        self._state: dict[str, Any] | None = None  # the team's state after the last turn
        self._turns: list[dict[str, Any]] = []  # one entry per finished turn (run.json)
        self._totals = {"messages": 0, "elapsed": 0.0, "tokens_in": 0, "tokens_out": 0}
        self.uploads: list[dict[str, Any]] = []  # the user's data in the sandbox: {path, size, sha256}
        self._undescribed: list[str] = []  # uploaded paths the team has not been told about yet
        self._pending_events: list[ev.Event] = []  # happened between turns; shown at the next
        self._fingerprints: set[asyncio.Task[None]] = set()  # uploads' sha256 still being computed
        self._state_at_turn_start: dict[str, Any] | None = None  # for restarting a follow-up turn
        self.turn_task: str | None = None  # this turn's question (the first turn's is `task`)
        self._reset_run_state()

    # -- public properties -------------------------------------------------------
    @property
    def sandbox_kind(self) -> str:
        return self.session.kind

    @property
    def isolation(self) -> str:
        return self.session.isolation

    @property
    def limits_text(self) -> str:
        """The sandbox's limits and how they are enforced, one line (status bar tooltip)."""
        return self.session.limits_text

    # -- sandbox ---------------------------------------------------------------------
    async def warm_up(self) -> None:
        """Start the sandbox now so the first tool call doesn't wait for it."""
        await self.session.warm_up()

    async def reset_sandbox(self) -> None:
        await self.session.reset()
        self.uploads, self._undescribed = [], []

    async def add_data(self, paths: list[str], *, progress: Any = None, consent: bool = False) -> list[dict[str, Any]]:
        """Upload the user's files into /home/user/data/ (any time, also during a run).

        The upload is recorded (DataUploaded: names, sizes, sha256) and the team is
        told what the data is at the start of its next turn. `consent` must be True
        for more than uploads.ASK_ABOVE bytes; uploads.UploadError says why not.
        """
        from . import uploads

        plan = await asyncio.to_thread(uploads.collect, paths)
        if plan.needs_consent and not consent:
            raise uploads.UploadError(
                f"the upload is {uploads._size(plan.total)}, over {uploads._size(uploads.ASK_ABOVE)}: confirm to go on"
            )
        copies = await uploads.copy_in(self.session, plan, progress)
        done = [c.entry for c in copies]
        known = {u["path"] for u in done}
        self.uploads = [u for u in self.uploads if u["path"] not in known] + done
        self._undescribed = [p for p in self._undescribed if p not in known] + [u["path"] for u in done]
        # The sha256 for the record follows the copy (hashing costs more than a kernel
        # copy); the next turn awaits it before it starts (`_recorded_uploads`).
        skipped = [{"path": p, "reason": r} for p, r in plan.skipped]
        task = asyncio.create_task(self._record_upload(copies, skipped))
        self._fingerprints.add(task)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(self._fingerprints.discard)
        return done

    async def _record_upload(self, copies: list[Any], skipped: list[dict[str, str]]) -> None:
        from . import uploads

        await uploads.fingerprint(copies)
        event = ev.DataUploaded(files=[c.entry for c in copies], skipped=skipped)
        if self.state == "running" and not self._finished.is_set():
            self._emit(event)
        else:
            self._pending_events.append(event)

    async def recorded_uploads(self) -> None:
        """Wait until every upload so far has its sha256 and its DataUploaded event."""
        pending = list(self._fingerprints)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def list_files(self) -> list[FileEntry]:
        return await self.session.list_entries()

    async def read_file(self, path: str, max_bytes: int = 1_000_000) -> bytes:
        return await self.session.read_bytes(path, max_bytes)

    async def table_preview(self, path: str, *, sheet: str | int = 0, stats: bool = False) -> dict[str, Any]:
        """The first rows (or column statistics) of a table in the sandbox, read there."""
        from . import tables

        await self.session.initialize()
        return await tables.preview(self.session.sandbox, path, sheet=sheet, stats=stats)

    async def save_file(self, path: str, dest_dir: Path) -> Path:
        return await self.session.save_file(path, dest_dir)

    # -- run life-cycle -------------------------------------------------------------
    def _reset_run_state(self) -> None:
        self._team: Any = None
        self._token: Any = None
        self._ctx: Any = None
        self._seq = 0
        self._streams = {}
        self._t0 = time.monotonic()
        self._messages = 0
        self._tokens_in = 0
        self._tokens_out = 0
        self._agent = "Planner"
        self._stop_requested: str | None = None  # reason to report: "stopped" | "timeout"
        self._error: str | None = None
        self._abandoned = False
        self._finished = asyncio.Event()
        self._agent_tokens: dict[str, list[int]] = {}
        self._handoffs_since_progress: dict[tuple[str, str], int] = {}
        self._meter: Any = None  # [models #14] the clients' RunMeter (spend cap, tokens of cut streams)

    def start(self, task: str) -> str:
        """Begin a new conversation with `task`; returns its run id. Events via `events()`.

        Data still in the sandbox from before is described to the new team again.
        """
        self._resume = None
        self._continuing = False
        self._undescribed = [u["path"] for u in self.uploads]
        return self._launch(task)

    def follow_up(self, text: str) -> str:
        """Ask the same team again (turn 2, 3, …): its history, sandbox and variables are kept.

        Needs a finished (or stopped) turn in this process; `continue_run` picks up a
        conversation from its record instead.
        """
        if self.run_id is None or self._state is None:
            raise ValueError("there is no finished conversation to follow up; start one")
        self._resume = (self.run_id, self._state, None)
        self._continuing = True
        return self._launch(text)

    async def continue_run(self, run_id: str, text: str) -> str:
        """Follow up on a recorded conversation (`run --continue`): the same run folder,
        its team state, and its files in the sandbox when it is not the one still running."""
        if not text or not text.strip():
            raise ValueError("the follow-up is empty")
        if run_id == self.run_id and self._state is not None and self.session.initialized:
            return self.follow_up(text)
        record = run_dir(self.settings.runs_dir, run_id)
        state = await asyncio.to_thread(load_team_state, record, run_id)
        meta = await asyncio.to_thread(_read_json, record / "run.json")
        recorded = await asyncio.to_thread(read_events, record / "events.jsonl")
        self.run_id = run_id
        self.task = meta.get("task") or next((e.get("task") for e in recorded if e.get("type") == "run_started"), "")
        self._turns = list(meta.get("turns") or [])
        self.turn = max([int(e.get("turn", 1)) for e in recorded] or [1])
        self._seq = max([int(e.get("seq", 0)) for e in recorded] or [0])
        self.uploads = list(meta.get("data") or [])
        self._undescribed = []
        self._totals = dict(meta.get("totals") or self._totals)
        self._resume = (run_id, state, record / "files")
        self._continuing = True
        return self._launch(text)

    async def resume(self, run_id: str, instruction: str) -> str:
        """Continue an earlier run (stopped or limit-ended) with a new instruction.

        The team is restored from the run's `state.json`. The sandbox is reattached
        when it is still the one that run used; otherwise a fresh sandbox gets the
        run's saved files and the model is told that Python variables are gone.
        """
        if not instruction or not instruction.strip():
            raise ValueError("the instruction is empty")
        record = run_dir(self.settings.runs_dir, run_id)
        # ValueError saying exactly what is missing (no state.json and why, a damaged one)
        state = await asyncio.to_thread(load_team_state, record, run_id)
        files = record / "files"
        same_sandbox = self.run_id == run_id and self.session.initialized
        self._resume = (run_id, state, None if same_sandbox else files)
        return self._launch(instruction)

    def _launch(self, task: str) -> str:
        if not task or not task.strip():
            raise ValueError("the task is empty")
        if self.state in ("running", "stopping"):
            raise RuntimeError("a run is already going; stop it first")
        continuing = self._continuing
        seq = self._seq
        self._reset_run_state()
        self._queue = asyncio.Queue()
        if continuing:
            self._seq = seq  # one record, one numbering for the whole conversation
            self.turn += 1
            self.turn_task = task
            self._state_at_turn_start = self._resume[1] if self._resume else None
        else:
            self.task = task
            self.turn_task = task
            self.turn = 1
            self.run_id = self._run_id_factory()
            self._state = None
            self._turns = []
            self._totals = {"messages": 0, "elapsed": 0.0, "tokens_in": 0, "tokens_out": 0}
        self.state = "running"
        self.record = (
            RunRecord(self.settings.runs_dir, self.run_id, self.settings.secrets())
            if self._record_enabled
            else None
        )
        self._drive_task = asyncio.create_task(self._drive(self.run_id, task), name=f"run-{self.run_id}")
        return self.run_id

    async def events(self) -> AsyncIterator[ev.Event]:
        """Every event of the current run; ends after its RunFinished."""
        queue = self._queue
        while True:
            event = await queue.get()
            yield event
            if isinstance(event, ev.RunFinished):
                return

    async def stop(self, force: bool = False) -> None:
        """Graceful stop (escalates after STOP_GRACE); `force` or a second call cancels now."""
        if self.state not in ("running", "stopping"):
            return
        second = self.state == "stopping"
        self.state = "stopping"
        self._stop_requested = self._stop_requested or "stopped"
        if force or second:
            await self._force()
            return
        if self._team is not None:
            self._team.external.set()
        await self._interrupt_tool()
        try:
            await asyncio.wait_for(asyncio.shield(self._finished.wait()), STOP_GRACE)
        except TimeoutError:
            await self._force()

    async def _interrupt_tool(self) -> None:
        """Refuse new code, then interrupt the sandbox if a tool runs (an interrupt
        that reaches an idle kernel has nothing to stop)."""
        if self._ctx is not None:
            self._ctx.stopping = True
        if self._ctx is not None and self._ctx.busy:
            await self.session.interrupt()

    async def _force(self) -> None:
        if self._finished.is_set():
            return
        if self._ctx is not None:
            self._ctx.closed = True
        if self._token is not None:
            self._token.cancel()
        await self._interrupt_tool()
        try:
            await asyncio.wait_for(asyncio.shield(self._finished.wait()), FORCE_WAIT)
        except TimeoutError:
            # The team is still winding down: report now, let it drain in the background.
            task = self._drive_task
            self._abandoned = True
            await self._finish(self.run_id or "", self._stop_requested or "stopped", "")
            if task is not None and not task.done():
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def restart(self, *, keep_sandbox: bool = False) -> str:
        """Stop the current run, then the same task again with a fresh team.

        In a follow-up turn (turn 2 …) it restarts that turn: the team goes back to
        where it was before the question and is asked it again, sandbox kept.
        """
        if self.turn > 1 and self._state_at_turn_start is not None:
            text = self.turn_task
            await self.stop(force=True)
            await self._await_drive()
            self._state, self.turn = self._state_at_turn_start, self.turn - 1
            self._turns = [t for t in self._turns if t.get("turn", 0) <= self.turn]
            return self.follow_up(text)
        task = self.task
        if task is None:
            raise RuntimeError("there is no task to restart")
        await self.stop(force=True)
        await self._await_drive()
        if not keep_sandbox:
            await self.session.reset()
        return self.start(task)

    async def close(self) -> None:
        """Stop any run, await every task we own, kill the sandbox. Idempotent."""
        with contextlib.suppress(Exception):
            await self.stop(force=True)
        await self._await_drive()
        pending = [t for t in self._background if not t.done()]
        if pending:
            # Let abandoned teams finish draining first (normally well under a second):
            # cancelling one inside `run_stream`'s clean-up leaves AutoGen's runtime
            # loop task running forever.
            await asyncio.wait(pending, timeout=CLOSE_DRAIN)
        for task in list(self._background):
            task.cancel()
        for task in list(self._background):
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 2)
        self._background.clear()
        await self.session.close()

    async def _await_drive(self) -> None:
        task = self._drive_task
        if task is None or task.done() or task in self._background:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), 3)
        except (TimeoutError, asyncio.CancelledError, Exception):
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    # -- emitting ---------------------------------------------------------------------
    def _emit(self, event: ev.Event, run_id: str | None = None) -> None:
        """Stamp, record and queue one event (dropped if its run is already over).

        Streamed text (TokenDelta per message, SandboxOutput per call and stream)
        goes through a StreamScrub of its own, so a key split across chunks never
        shows; any other event first flushes what the streams held back.
        """
        rid = run_id or self.run_id or ""
        if rid != self.run_id or self._finished.is_set():
            return
        if self._secrets and isinstance(event, (ev.TokenDelta, ev.SandboxOutput)):
            key = (event.type, getattr(event, "message_id", "") or f"{event.call_id}/{getattr(event, 'stream', '')}")
            scrubber = self._streams[key][0] if key in self._streams else StreamScrub(self._secrets)
            self._streams[key] = (scrubber, event)
            text = scrubber.feed(event.text)
            if text:
                self._put(event if text is event.text else dataclasses.replace(event, text=text), rid)  # type: ignore[arg-type]
            return
        self._flush_streams(rid)
        self._put(_scrub_event(event, self._secrets), rid)

    def _flush_streams(self, rid: str) -> None:
        """Emit what each stream's scrubber held back (the stream ended, or something else came)."""
        streams, self._streams = self._streams, {}
        for scrubber, last in streams.values():
            rest = scrubber.flush()
            if rest:
                self._put(dataclasses.replace(last, text=rest), rid)  # type: ignore[arg-type]

    def _put(self, event: ev.Event, rid: str) -> None:
        self._seq += 1
        stamped = _restamp(event, rid, self._seq, round(time.monotonic() - self._t0, 3), self.turn)
        if self.record is not None:
            problem = self.record.append(stamped)
            if problem:
                self._queue.put_nowait(
                    _restamp(ev.Notice(level="warning", text=problem), rid, self._seq, stamped.ts)
                )
        self._queue.put_nowait(stamped)

    @property
    def cost(self) -> float | None:
        if self.demo:
            return 0.0
        # [models #14] each agent's tokens at its own model's price
        from .cost import cost_for_agents
        from .models_config import agent_prices

        return cost_for_agents(self._agent_tokens, agent_prices(self.settings))

    def _progress(self, run_id: str) -> None:
        self._emit(
            ev.Progress(
                agent=self._agent,
                messages=self._messages,
                max_messages=self.settings.max_messages,
                elapsed=round(time.monotonic() - self._t0, 1),
                timeout=self.settings.timeout,
                tokens_in=self._tokens_in,
                tokens_out=self._tokens_out,
                cost=self.cost,
                agent_tokens={k: list(v) for k, v in self._agent_tokens.items()},
                conversation_messages=int(self._totals.get("messages", 0)) + self._messages,
                conversation_elapsed=round(self._totals.get("elapsed", 0) + time.monotonic() - self._t0, 1),
            ),
            run_id,
        )

    async def _finish(self, run_id: str, reason: str, message: str) -> None:
        """Save files and state, say what the record lacks, emit the run's one RunFinished,
        then write run.json (with `record_incomplete`) before anyone sees that event."""
        if self._finished.is_set() or run_id != self.run_id:
            return
        record = self.record
        outcome: dict[str, Any] = {"files_skipped": []}
        if self._team is not None and not self._abandoned:  # kept in memory for a follow-up turn
            try:
                self._state = await asyncio.wait_for(self._team.swarm.save_state(), 5)
                outcome["state"] = True
            except Exception as exc:
                outcome["state_error"] = why(exc)
        if record is not None:
            try:
                await asyncio.wait_for(self._save_outputs(outcome), FINISH_COPY_TIMEOUT)
            except TimeoutError:
                record.problem(
                    f"saving the sandbox's files and the team state was cut short after {FINISH_COPY_TIMEOUT:.0f} s"
                )
            except Exception as exc:
                record.problem(f"saving the sandbox's files and the team state failed ({why(exc)})")
            record.sync()
            untold = record.untold()
            if untold:
                self._emit(
                    ev.Notice(level="warning", text="run record incomplete: " + "; ".join(untold)), run_id
                )
        if self._meter is not None:  # [models #14] tokens of replies a stop cut short (no message carries them)
            for agent, (used_in, used_out) in self._meter.take_unreported().items():
                self._tokens_in += used_in
                self._tokens_out += used_out
                per_agent = self._agent_tokens.setdefault(agent, [0, 0])
                per_agent[0] += used_in
                per_agent[1] += used_out
        finished = ev.RunFinished(
            reason=reason,  # type: ignore[arg-type]
            message=message,
            messages=self._messages,
            elapsed=round(time.monotonic() - self._t0, 2),
            tokens_in=self._tokens_in,
            tokens_out=self._tokens_out,
            cost=self.cost,
            agent_tokens={k: list(v) for k, v in self._agent_tokens.items()},
        )
        self._end_turn(finished)
        self._emit(finished, run_id)
        self.last_finished = finished
        self.state = "finished"
        self._finished.set()
        if record is not None:
            record.finish(self._run_meta(outcome["files_skipped"]))  # no await since the emit

    def _end_turn(self, finished: ev.RunFinished) -> None:
        """Add this turn to the conversation's list and totals (run.json, the status bar)."""
        now = datetime.now()
        self._turns = [t for t in self._turns if t.get("turn") != self.turn]
        self._turns.append(
            {
                "turn": self.turn,
                "task": self.turn_task or self.task,
                "reason": finished.reason,
                "message": finished.message,
                "started": datetime.fromtimestamp(now.timestamp() - finished.elapsed).isoformat(timespec="seconds"),
                "finished": now.isoformat(timespec="seconds"),
                "messages": finished.messages,
                "elapsed": finished.elapsed,
                "tokens_in": finished.tokens_in,
                "tokens_out": finished.tokens_out,
            }
        )
        for key, value in (("messages", finished.messages), ("elapsed", finished.elapsed),
                           ("tokens_in", finished.tokens_in), ("tokens_out", finished.tokens_out)):
            self._totals[key] = round(self._totals.get(key, 0) + value, 2)

    @property
    def can_follow_up(self) -> bool:
        """A finished turn whose team can be asked again (its state was kept)."""
        return self.state not in ("running", "stopping") and self.run_id is not None and self._state is not None

    @property
    def record_problems(self) -> list[str]:
        """What the current run's record lacks ([] when whole, or when records are off)."""
        return list(self.record.problems) if self.record is not None else []

    async def _save_outputs(self, outcome: dict[str, Any]) -> None:
        """Copy the sandbox's files into the record and save the team state; failures
        are kept in the record's `problems` (run.json is written by `_finish`)."""
        record = self.record
        assert record is not None
        if self.session.initialized:
            report = await self.session.download_all(record.files_dir)
            outcome["files_skipped"] = [{"path": p, "reason": r} for p, r in report.skipped]
            limited = report.summary(failures=False)  # what limits left out; failures come below
            if limited:
                self._emit(ev.Notice(level="warning", text=f"run record: {limited}"), self.run_id)
            if report.incomplete:
                record.problem(report.incomplete)
        if "state_error" in outcome:
            record.problem(f"state.json not saved: the team's state could not be taken ({outcome['state_error']})")
        elif outcome.get("state"):
            await asyncio.to_thread(record.write_json, "state.json", self._state)

    def _run_meta(self, skipped: list[dict[str, str]]) -> dict[str, Any]:
        """run.json: the conversation (first task, every turn, totals, the user's data)."""
        first = self._turns[0] if self._turns else {}
        return {
            "run_id": self.run_id,
            "task": self.task,
            "model": self.model_label,
            "sandbox": self.sandbox_kind,
            # when the conversation began (this is written at a turn's end)
            "started": first.get("started") or datetime.fromtimestamp(
                time.time() - (time.monotonic() - self._t0)
            ).isoformat(timespec="seconds"),
            "finished": datetime.now().isoformat(timespec="seconds"),
            "files_skipped": skipped,
            "models": self.agent_models,  # [models #14] each agent's model
            "turns": self._turns,
            "totals": self._totals,
            "data": self.uploads,
        }

    # -- the run itself ---------------------------------------------------------------
    def _build_model(self) -> Any:
        if self._model_factory is not None:
            return self._model_factory()
        if self.demo:
            from .demo import demo_client

            return demo_client(self.settings.prompts, pace=self._demo_pace)
        # [models #14] one client per agent (model file or environment), metered for SBTEAM_MAX_COST
        from .cost import RunMeter
        from .models_config import agent_prices, build_agent_clients

        self._meter = RunMeter(self.settings.max_cost, agent_prices(self.settings), self.settings.spend_pool)
        return build_agent_clients(self.settings, self._meter)

    async def _drive(self, run_id: str, task: str) -> None:
        model = None
        watchdog: asyncio.Task[None] | None = None
        stream = None
        try:
            self._emit(
                ev.RunStarted(
                    task=task,
                    model=self.model_label,
                    demo=self.demo,
                    sandbox=self.sandbox_kind,
                    isolation=self.isolation,
                    max_messages=self.settings.max_messages,
                    timeout=self.settings.timeout,
                    prompts=self.settings.prompts,
                    resumed_from=self._resume[0] if self._resume and not self._continuing else "",
                    approve=self.approve,
                    limits=self.session.limits_text,
                ),
                run_id,
            )
            await self.recorded_uploads()  # their DataUploaded events, with sha256, come first
            pending, self._pending_events = self._pending_events, []
            for event in pending:  # e.g. data uploaded between turns
                self._emit(event, run_id)
            if self.record is not None and self.record.error:  # e.g. SBTEAM_HOME not writable
                self._emit(ev.Notice(level="warning", text=self.record.error), run_id)
            from autogen_core import CancellationToken

            from .swarm import build_team
            from .tools import CODE_TIMEOUT, ToolContext, build_tools

            if not self.session.initialized:
                self._emit(ev.SandboxStatus(state="starting", kind=self.sandbox_kind), run_id)
                try:
                    await self.session.initialize()
                except Exception as exc:
                    detail = scrub(_first_line(exc), self.settings.secrets())
                    self._emit(ev.SandboxStatus(state="error", kind=self.sandbox_kind, detail=detail), run_id)
                    raise SandboxStartError(f"the {self.sandbox_kind} sandbox did not start: {detail}") from exc
                self._emit(
                    ev.SandboxStatus(
                        state="ready", kind=self.sandbox_kind, isolation=self.isolation, limits=self.session.limits_text
                    ),
                    run_id,
                )
            resume = self._resume
            if resume is not None and resume[2] is not None:
                await self.session.reset()
                restored = await self.session.upload_dir(resume[2])
                task = (
                    f"(Continuing run {resume[0]}: the sandbox was recreated with its {restored} saved "
                    "file(s); Python variables from before are gone.)\n\n" + task
                )
            task = await self._with_data_description(task)
            await self.session.file_changes()  # baseline: files from earlier runs are not "new"
            ctx = ToolContext(
                self.session,
                emit=lambda e: self._emit(e, run_id),
                code_timeout=self._code_timeout or min(CODE_TIMEOUT, self.settings.timeout),
            )
            if self.approve:
                ctx.approver = self._ask_approval
            self._ctx = ctx
            model = self._build_model()
            self._team = build_team(
                model,
                build_tools(ctx, "CodeAgent"),
                build_tools(ctx, "AnalystAgent"),
                lang=self.settings.prompts,
                max_messages=self.settings.max_messages,
                timeout=self.settings.timeout,
            )
            if resume is not None and resume[1] is not None:
                await self._team.swarm.load_state(resume[1])
            self._token = CancellationToken()
            if self._stop_requested or self._abandoned:
                # Stopped while the sandbox or the team was being set up: the stop had
                # no team or token to act on yet, so don't start one that would run on.
                ctx.stopping = ctx.closed = True
                await self._finish(run_id, self._stop_requested or "stopped", "")
                return
            watchdog = asyncio.create_task(self._watchdog(run_id))
            stream = self._team.swarm.run_stream(task=task, cancellation_token=self._token)
            from autogen_agentchat.base import TaskResult

            reason, message = "error", "the team stopped without a reason"
            async for item in stream:
                if self._abandoned or run_id != self.run_id:
                    break
                done = self._translate(item, run_id, ctx)
                if done is not None:
                    reason, message = done
                    if not isinstance(item, TaskResult):
                        self._halt_team()  # we end it, not AutoGen: make the team stop too
                    break
            if self._error:
                reason, message = "error", self._error
            elif self._stop_requested and reason in ("stopped", "error"):
                reason, message = self._stop_requested, ""
            await self._finish(run_id, reason, message)
        except asyncio.CancelledError:
            if not self._finished.is_set():
                await asyncio.shield(self._finish(run_id, self._stop_requested or "stopped", ""))
            raise
        except Exception as exc:  # model and sandbox failures end the run, never the app
            if self._stop_requested:
                await self._finish(run_id, self._stop_requested, "")
            else:
                # [models #14] the spend cap and a runaway reply end runs with their own reasons
                from .model import run_end_of

                ended = run_end_of(exc)
                await self._finish(run_id, *(ended or ("error", self._describe_error(exc))))
        finally:
            if watchdog is not None:
                watchdog.cancel()
                with contextlib.suppress(BaseException):
                    await watchdog
            if stream is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(stream.aclose(), 5)
            if model is not None:
                with contextlib.suppress(BaseException):
                    await model.close()

    async def _with_data_description(self, task: str) -> str:
        """The task, after a description of data the team has not been told about yet
        (computed inside the sandbox: shape, columns, types, missing values, rows)."""
        if not self._undescribed:
            return task
        from . import uploads

        paths, self._undescribed = self._undescribed, []
        try:
            items = await uploads.describe(self.session, paths)
        except Exception as exc:  # the task still goes: the files are there
            items = [{"path": p, "error": why(exc)} for p in paths]
        return uploads.description_text(items, self.settings.prompts) + "\n\n" + task

    def _halt_team(self) -> None:
        if self._ctx is not None:
            self._ctx.stopping = True
        if self._team is not None:
            self._team.external.set()
        if self._token is not None:
            self._token.cancel()

    async def _ask_approval(self, agent: str, call_id: str, name: str, args: dict[str, Any]) -> tuple[str, Any]:
        """Approval mode: show the code, wait for the user's decision; no approver = reject."""
        run_id = self.run_id or ""
        self._emit(ev.ApprovalRequested(agent=agent, call_id=call_id, name=name, arguments=args), run_id)
        if self.approver is None:
            decision: tuple[str, Any] = ("reject", "nobody is there to approve it")
        else:
            decision = await self.approver(agent, call_id, name, args)
        kind = decision[0] if decision[0] in ("approve", "edit", "reject") else "reject"
        reason = str(decision[1]) if kind == "reject" else ""
        self._emit(ev.ApprovalDecided(call_id=call_id, decision=kind, reason=reason), run_id)  # type: ignore[arg-type]
        return kind, decision[1]

    async def _watchdog(self, run_id: str) -> None:
        """End a run whose cell or model call outlives SBTEAM_TIMEOUT."""
        await asyncio.sleep(self.settings.timeout)
        if run_id == self.run_id and not self._finished.is_set():
            self._stop_requested = "timeout"
            self.state = "stopping"
            if self._team is not None:
                self._team.external.set()
            await self._interrupt_tool()
            await asyncio.sleep(STOP_GRACE)
            if not self._finished.is_set():
                await self._force()

    def _describe_error(self, exc: BaseException) -> str:
        from .scripted import stop_message_of

        if isinstance(exc, SandboxStartError):  # not a model error: say what did not start
            return str(exc)
        scripted_stop = stop_message_of(exc)  # a scripted model (the DEMO) ended the run, saying why
        if scripted_stop:
            return scripted_stop
        try:
            from .model import classify_model_error

            return classify_model_error(exc, self.settings)
        except Exception:
            text = str(exc).strip().splitlines()
            return (text[0] if text else type(exc).__name__)[:200]

    def _usage(self, item: Any) -> None:
        usage = getattr(item, "models_usage", None)
        if usage is not None:
            used_in, used_out = int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)
            self._tokens_in += used_in
            self._tokens_out += used_out
            per_agent = self._agent_tokens.setdefault(getattr(item, "source", "?"), [0, 0])
            per_agent[0] += used_in
            per_agent[1] += used_out

    def _translate(self, item: Any, run_id: str, ctx: Any) -> tuple[str, str] | None:
        """Map one AutoGen item to our events; returns (reason, message) at the end."""
        from autogen_agentchat.base import TaskResult
        from autogen_agentchat.messages import (
            BaseChatMessage,
            HandoffMessage,
            ModelClientStreamingChunkEvent,
            TextMessage,
            ThoughtEvent,
            ToolCallExecutionEvent,
            ToolCallRequestEvent,
        )

        if isinstance(item, TaskResult):
            return stop_reason_of(item.stop_reason, self.settings.max_messages)
        if isinstance(item, ModelClientStreamingChunkEvent):
            self._emit(
                ev.TokenDelta(agent=item.source, text=item.content, message_id=item.full_message_id or ""),
                run_id,
            )
            return None
        self._usage(item)
        source = getattr(item, "source", "")
        if source and source != "user":
            self._agent = source
        if isinstance(item, ThoughtEvent):
            self._emit(ev.Message(agent=source, text=item.content, message_id=item.id), run_id)
        elif isinstance(item, ToolCallRequestEvent):
            # [models #14] a call the client read from the model's text is marked in the transcript
            from .text_tools import parsed_call_note

            for call in item.content:
                note = parsed_call_note(source, call.id, call.name)
                if note:
                    self._emit(ev.Notice(level="info", text=note), run_id)
            if any(not call.name.startswith("transfer_to_") for call in item.content):
                self._handoffs_since_progress.clear()  # a real tool call is progress
            for call in item.content:
                if not call.name.startswith("transfer_to_"):
                    ctx.announce(source, call.id, call.name, _arguments(call.arguments))
                ctx.requested(call.id).set()
        elif isinstance(item, ToolCallExecutionEvent):
            for result in item.content:
                if not (result.name or "").startswith("transfer_to_"):
                    ctx.finish(source, result.call_id, result.name, str(result.content), result.is_error, [])
        if isinstance(item, BaseChatMessage):
            self._messages += 1
            if isinstance(item, HandoffMessage):
                self._emit(ev.Handoff(source=source, target=item.target, text=item.content), run_id)
                self._agent = item.target
                looped = self._loop_check(source, item.target)
                if looped:
                    self._progress(run_id)
                    return "loop", looped
            elif isinstance(item, TextMessage):
                self._emit(
                    ev.Message(agent=source or "user", text=item.content, message_id=item.id), run_id
                )
                problem = self._text_tool_problem(source, item.content) if source not in ("", "user") else None
                if problem:  # [models #14] one wording for it, with doctor (team/text_tools.py)
                    self._error = problem
                    return "error", problem
            self._progress(run_id)
        return None

    def _loop_check(self, source: str, target: str) -> str | None:
        """Loop guard: the same handoff N times with no tool call in between."""
        limit = self.settings.loop_limit
        if limit <= 0:
            return None
        pair = (source, target)
        count = self._handoffs_since_progress.get(pair, 0) + 1
        self._handoffs_since_progress[pair] = count
        if count < limit:
            return None
        return (
            f"{source} handed the task to {target} {count} times without any tool call in between; "
            f"ended as a loop (SBTEAM_LOOP_LIMIT={limit}, 0 turns the guard off)"
        )

    def _text_tool_problem(self, agent: str, text: str) -> str | None:
        """[models #14] The one line when `agent` wrote a tool call as text its client could not
        use (unknown tool, broken JSON, or text tool calls off), else None."""
        if self.demo:
            return None
        try:
            from .models_config import text_tool_problem
            from .swarm import offered_tool_names
        except ImportError:
            return None
        return text_tool_problem(self.settings, agent, text, offered_tool_names(agent))


def stop_reason_of(text: str | None, max_messages: int) -> tuple[str, str]:
    """Classify AutoGen's combined stop_reason string into our reasons."""
    low = (text or "").lower()
    if "text 'terminate' mentioned" in low or "terminate" in low and "mentioned" in low:
        return "terminate", ""
    if "maximum number of messages" in low:
        return "max_messages", f"reached {max_messages} messages"
    if "timeout" in low:
        return "timeout", ""
    if "external termination" in low:
        return "stopped", ""
    return "error", text or "the team stopped without a reason"


def _arguments(raw: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return {"raw": raw}
    return value if isinstance(value, dict) else {"value": value}


def _restamp(event: ev.Event, run_id: str, seq: int, ts: float, turn: int = 1) -> ev.Event:
    return dataclasses.replace(event, run_id=run_id, seq=seq, ts=ts, turn=turn)


def _read_json(path: Path) -> dict[str, Any]:
    """A record's JSON file, or {} when it is missing or damaged (the caller says what it lacks)."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _scrub_event(event: ev.Event, secrets: list[str]) -> ev.Event:
    """The event with every configured secret replaced by `***` (a model or an
    endpoint may echo the key): done once here for the screen, `--json` and the record."""
    if not secrets:
        return event
    import dataclasses
    import json

    changes: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, str):
            if any(s in value for s in secrets):
                changes[f.name] = scrub(value, secrets)
        elif isinstance(value, (dict, list)):
            text = json.dumps(value, ensure_ascii=False, default=str)
            if any(s in text for s in secrets):
                try:
                    changes[f.name] = json.loads(scrub(text, secrets))
                except ValueError:
                    changes[f.name] = type(value)()
    return dataclasses.replace(event, **changes) if changes else event
