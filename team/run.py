"""`RunController`: one task at a time through the seed's Swarm, as typed events.

The UI and the headless CLI use only this (`team.api.Controller`): `start(task)`,
`async for e in events()`, `stop()`, `stop(force=True)`, `restart()`, `close()`.
This module is the life-cycle; `team.translate` turns AutoGen's stream into our
events (pure), `team.run_outbox` numbers, records and queues them,
`team.run_record` saves a turn's outputs, `team.run_data` is the data/files glue.

State is told: `state` is a `RunState`, every change goes through `_set_state`
(checked against `TRANSITIONS`) and is emitted as `RunStateChanged`. A turn goes
STARTING (launched) → RUNNING (the team starts) → STOPPING (a stop was asked, with
its cause) → FINISHED (with the `EndReason`).

What it does about AutoGen's known behaviour (DESIGN.md, "Stop and restart"):
- A fresh team per run. AutoGen teams are not reliably reusable after a cancel.
- The timeout clock starts when the team is built, and a watchdog of our own ends a
  run whose cell or model call outlives it (`TimeoutTermination` only looks when a
  message arrives).
- One stop path, `_request_stop(reason)`, for the user's stop, the watchdog and our
  halts (loop, budget, degenerate): graceful first (`ExternalTermination.set()`, takes
  effect at the end of the agent's turn, plus an interrupt of running code); after
  `STOP_GRACE` seconds, or at a second request, or with `force=True`, the run's
  `CancellationToken` is cancelled. Either way the run reports within about a second.
- The `run_stream` generator is always closed. A cancelled team may take a while to
  wind down (issue #7100), so after a force stop the run is reported finished at once
  and the old stream is drained in the background by a task this controller owns and
  awaits in `close()`; its late events are dropped.
- Exactly one `RunFinished` per run, sent BEFORE the sandbox's files are copied into
  the record (the team's state is taken in memory first, for a follow-up); the copy
  follows as an owned task and `OutputsSaved` reports it. `events()` ends after
  OutputsSaved. Whoever needs the saved record waits for it: `outputs_saved()`, and
  the next turn, `restart`, `resume`, `continue_run`, `reset_sandbox` and `close`
  (which cancels it) do. A stop after RunFinished does nothing, so never a second copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from . import events as ev
from .api import ACTIVE, TRANSITIONS, EndReason, RunState
from .config import Settings
from .records import RunRecord, load_team_state, run_dir
from .run_data import DataAndFiles
from .run_outbox import Outbox
from .run_record import TurnEnd, recorded_conversation
from .run_turn import SandboxStartError, TurnDriver, quiet_autogen_logs
from .session import CodeSession

STOP_GRACE = 0.5
FORCE_WAIT = 1.0
CLOSE_DRAIN = 5.0  # close(): how long abandoned runs may take to wind down before cancel

ModelFactory = Callable[[], Any]
# (agent, call_id, tool name, arguments) -> ("approve"|"edit"|"reject", new arguments or reason)
Approver = Callable[[str, str, str, dict[str, Any]], Awaitable[tuple[str, Any]]]
__all__ = ["RunController", "SandboxStartError", "new_run_id", "quiet_autogen_logs"]


def new_run_id() -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


class RunController(TurnDriver, TurnEnd, DataAndFiles):
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
        # [models #14] the model of each agent: one name, or "Planner=…, CodeAgent=…, AnalystAgent=…"
        from .agent_models import agent_models, model_label

        self.model_label = model_label(settings)
        self.agent_models = agent_models(settings)
        self._prices: tuple[Settings | None, dict[str, tuple[float, float] | None]] = (None, {})
        self.session = session or CodeSession(settings)
        self._model_factory = model_factory
        self._run_id_factory = run_id_factory
        self._demo_pace = demo_pace
        self._code_timeout = code_timeout
        self._record_enabled = record
        self._secrets = [s for s in settings.secrets() if len(s) >= 4]
        self.state = RunState.IDLE
        self.run_id: str | None = None
        self.task: str | None = None
        self.last_finished: ev.RunFinished | None = None
        self.record: RunRecord | None = None
        self._outbox = Outbox("", 1, self._secrets)
        self._drive_task: asyncio.Task[None] | None = None
        self._saving: asyncio.Task[None] | None = None  # the last turn's outputs going into its record
        self._background: set[asyncio.Task[Any]] = set()
        self.approve = False
        self.approver: Approver | None = None
        self._resume: tuple[str, dict[str, Any] | None, Path | None] | None = None
        # The conversation: turns share one run id, record, team history and sandbox.
        self.turn = 1
        self._continuing = False  # this launch is a follow-up turn of the current conversation
        self._seq_base = 0  # the recorded conversation's last seq (`continue_run`)
        self._state: dict[str, Any] | None = None  # the team's state after the last turn
        self._turns: list[dict[str, Any]] = []  # one entry per finished turn (run.json)
        self._totals: dict[str, Any] = {"messages": 0, "elapsed": 0.0, "tokens_in": 0, "tokens_out": 0}
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

    @property
    def cost(self) -> float | None:
        if self.demo:
            return 0.0
        # [models #14] each agent's tokens at its own model's price
        from .cost import cost_for_agents

        return cost_for_agents(self._tally.agent_tokens, self.prices())

    def prices(self) -> dict[str, tuple[float, float] | None]:
        """Each agent's price, worked out once per settings (read on every Progress event)."""
        if self._prices[0] is not self.settings:
            from .agent_models import agent_prices

            self._prices = (self.settings, agent_prices(self.settings))
        return self._prices[1]

    @property
    def record_problems(self) -> list[str]:
        """What the current run's record lacks ([] when whole, or when records are off)."""
        return list(self.record.problems) if self.record is not None else []

    def can_follow_up(self) -> bool:
        """A finished turn whose team can be asked again (its state was kept)."""
        return self.state not in ACTIVE and self.run_id is not None and self._state is not None

    # -- starting ------------------------------------------------------------------
    def _reset_run_state(self) -> None:
        from .translate import Tally

        self._team: Any = None
        self._token: Any = None
        self._ctx: Any = None
        self._t0 = time.monotonic()
        self._tally = Tally()
        self._stop_reason: EndReason | None = None  # the first cause of a stop (reported as the end)
        self._abandoned = False
        self._finishing = False
        self._finished = asyncio.Event()  # RunFinished was sent
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
        conversation from its record instead. The turn starts once the last one's
        outputs are saved (same record)."""
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
        self._refuse_while_running()
        await self.outputs_saved()
        if run_id == self.run_id and self._state is not None and self.session.initialized:
            return self.follow_up(text)
        past = await asyncio.to_thread(recorded_conversation, run_dir(self.settings.runs_dir, run_id), run_id)
        self.run_id, self.task, self.turn, self._seq_base = run_id, past["task"], past["turn"], past["seq"]
        self._turns, self.uploads, self._undescribed = past["turns"], past["data"], []
        self._totals = past["totals"] or self._totals
        self._resume = (run_id, past["state"], past["files"])
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
        self._refuse_while_running()
        await self.outputs_saved()  # its state.json and files are written by then
        record = run_dir(self.settings.runs_dir, run_id)
        # ValueError saying exactly what is missing (no state.json and why, a damaged one)
        state = await asyncio.to_thread(load_team_state, record, run_id)
        same_sandbox = self.run_id == run_id and self.session.initialized
        self._resume = (run_id, state, None if same_sandbox else record / "files")
        self._continuing = False
        return self._launch(instruction)

    def _refuse_while_running(self) -> None:
        if self.state in ACTIVE:
            raise RuntimeError("a run is already going; stop it first")

    def _launch(self, task: str) -> str:
        if not task or not task.strip():
            raise ValueError("the task is empty")
        self._refuse_while_running()
        continuing = self._continuing
        self._reset_run_state()
        if continuing:
            self.turn += 1
            self.turn_task = task
            self._state_at_turn_start = self._resume[1] if self._resume else None
        else:
            self.task = task
            self.turn_task = task
            self.turn = 1
            self.run_id = self._run_id_factory()
            self._seq_base = 0
            self._state = None
            self._turns = []
            self._totals = {"messages": 0, "elapsed": 0.0, "tokens_in": 0, "tokens_out": 0}
        assert self.run_id is not None
        previous, self._outbox = self._outbox, Outbox(self.run_id, self.turn, self._secrets)
        if continuing:  # one record, one numbering for the whole conversation
            self._outbox.after, self._outbox.base = (previous if previous.run_id == self.run_id else None), self._seq_base
        self._outbox.waits_for = self._saving
        self.record = None  # opened by the turn, once the last turn's outputs are saved
        self._emit(self._started(task))
        self._set_state(RunState.STARTING)
        self._drive_task = asyncio.create_task(self._drive(self._outbox, task), name=f"run-{self.run_id}")
        return self.run_id

    async def _open_turn(self, outbox: Outbox) -> None:
        """Wait for the last turn's outputs (same record, same numbering), then open the
        record and let the turn's events out."""
        if outbox.opened:
            return
        if outbox.waits_for is not None:
            await asyncio.wait({outbox.waits_for})  # (its failure is its own: OutputsSaved says it)
        if outbox.opened:
            return
        self.record = (
            RunRecord(self.settings.runs_dir, outbox.run_id, self.settings.secrets()) if self._record_enabled else None
        )
        outbox.open(self.record)

    async def events(self) -> AsyncIterator[ev.Event]:
        """Every event of the current turn; ends after its OutputsSaved (which follows RunFinished)."""
        queue = self._outbox.queue
        while True:
            event = await queue.get()
            yield event
            if isinstance(event, ev.OutputsSaved):
                return

    async def outputs_saved(self) -> None:
        """Wait until the last turn's files and state are in its record (OutputsSaved sent)."""
        task = self._saving
        if task is not None and not task.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(task)

    # -- state and stopping ---------------------------------------------------------
    def _set_state(self, new: RunState, reason: str = "") -> None:
        """The one place the run state changes: checked against TRANSITIONS, then told."""
        if new not in TRANSITIONS[self.state]:
            raise RuntimeError(f"run state {self.state} → {new} is not allowed (team.api.TRANSITIONS)")
        self.state = new
        self._emit(ev.RunStateChanged(state=new, reason=reason))

    def _emit(self, event: ev.Event) -> None:
        self._outbox.emit(event)

    async def stop(self, force: bool = False) -> None:
        """Graceful stop (escalates after STOP_GRACE); `force` or a second call cancels now.
        Does nothing once RunFinished was sent (also while the files are being saved)."""
        await self._request_stop(EndReason.STOPPED, force=force)

    async def _request_stop(self, reason: EndReason, *, force: bool = False, wait: bool = True) -> None:
        """The one stop path: the user (`stopped`), the watchdog (`timeout`) and our halts
        (`loop`, `budget`, `degenerate`, a written tool call: `wait=False`, from inside the
        turn, which ends it itself). The first cause is the one reported."""
        if self.state not in ACTIVE:
            return
        second = self.state is RunState.STOPPING
        if not second:
            self._stop_reason = reason
            self._set_state(RunState.STOPPING, reason)
        if self._ctx is not None:
            self._ctx.stopping = True  # no new code starts
        if self._team is not None:
            self._team.external.set()
        if not wait:  # the turn ends where it is: make the team stop too
            if self._token is not None:
                self._token.cancel()
            return
        if force or second:
            await self._force()
            return
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
            await self._finish(self._outbox, self._stop_reason or EndReason.STOPPED)
            if task is not None and not task.done():
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def restart(self, *, keep_sandbox: bool = False) -> str:
        """Stop the current run, then the same task again with a fresh team.

        In a follow-up turn (turn 2 …) it restarts that turn: the team goes back to
        where it was before the question and is asked it again, sandbox kept.
        """
        if self.turn > 1 and self._state_at_turn_start is not None:
            text = self.turn_task or ""
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
            await self.outputs_saved()  # the old run's files are copied out before the sandbox goes
            await self.session.reset()
        return self.start(task)

    async def close(self) -> None:
        """Stop any run, await every task we own (a copy into the record still going is
        cancelled; the record says so), kill the sandbox. Idempotent."""
        with contextlib.suppress(Exception):
            await self.stop(force=True)
        await self._await_drive()
        saving = self._saving
        if saving is not None:
            saving.cancel()
            with contextlib.suppress(BaseException):
                await saving
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
