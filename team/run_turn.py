"""One turn of a run: ready the sandbox, build the team, read its stream to the end.

A mixin of `RunController` (the life-cycle, in `team.run`): the drive task of a
turn, its watchdog and what it asks of the user (approvals). Every event of the
turn goes to the turn's own `Outbox`, so a turn abandoned by a force stop cannot
write into the next one. AutoGen's items are translated by `team.translate`;
the end of the turn goes through the controller's `_request_stop` (our halts)
and `_finish`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from . import events as ev
from .api import EndReason, RunState
from .errors import one_line
from .redact import scrub
from .run_outbox import Outbox

if TYPE_CHECKING:
    from .translate import Step


class SandboxStartError(RuntimeError):
    """The run's sandbox could not be started (its message is the run's end line)."""


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


class TurnDriver:
    """The drive of one turn; see `team.run.RunController` for the attributes it uses."""

    settings: Any
    session: Any
    demo: bool
    approve: bool
    approver: Any
    model_label: str
    state: RunState
    _outbox: Outbox
    _resume: Any
    _continuing: bool
    _pending_events: list[ev.Event]
    _code_timeout: float | None
    _team: Any
    _ctx: Any
    _token: Any
    _t0: float
    _tally: Any
    _totals: dict[str, Any]
    _stop_reason: EndReason | None
    _abandoned: bool
    _finished: asyncio.Event
    _model_factory: Any
    _demo_pace: float
    _meter: Any

    if TYPE_CHECKING:  # provided by RunController and DataAndFiles
        def _emit(self, event: ev.Event) -> None: ...
        async def _open_turn(self, outbox: Outbox) -> None: ...
        async def _finish(self, outbox: Outbox, reason: EndReason, message: str = "") -> None: ...
        async def _request_stop(self, reason: EndReason, *, force: bool = False, wait: bool = True) -> None: ...
        def _set_state(self, new: RunState, reason: str = "") -> None: ...
        async def recorded_uploads(self) -> None: ...
        async def _with_data_description(self, task: str) -> str: ...
        def prices(self) -> dict[str, tuple[float, float] | None]: ...
        @property
        def sandbox_kind(self) -> str: ...
        @property
        def isolation(self) -> str: ...
        @property
        def cost(self) -> float | None: ...

    async def _drive(self, outbox: Outbox, task: str) -> None:
        model = None
        watchdog: asyncio.Task[None] | None = None
        stream = None
        emit = outbox.emit
        try:
            await self._open_turn(outbox)  # after the last turn's outputs are saved
            await self.recorded_uploads()  # their DataUploaded events, with sha256, come first
            pending, self._pending_events = self._pending_events, []
            for event in pending:  # e.g. data uploaded between turns
                emit(event)
            record = outbox.record
            if record is not None and record.error:  # e.g. SBTEAM_HOME not writable
                emit(ev.Notice(level="warning", text=record.error))
            from autogen_core import CancellationToken

            from .swarm import build_team
            from .tools import CODE_TIMEOUT, ToolContext, build_tools
            from .translate import NO_REASON, End, Translator

            if not self.session.initialized:
                emit(ev.SandboxStatus(state="starting", kind=self.sandbox_kind))
                try:
                    await self.session.initialize()
                except Exception as exc:
                    detail = scrub(one_line(exc, 300), self.settings.secrets())
                    emit(ev.SandboxStatus(state="error", kind=self.sandbox_kind, detail=detail))
                    raise SandboxStartError(f"the {self.sandbox_kind} sandbox did not start: {detail}") from exc
                emit(
                    ev.SandboxStatus(
                        state="ready", kind=self.sandbox_kind, isolation=self.isolation, limits=self.session.limits_text
                    )
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
                self.session, emit=emit, code_timeout=self._code_timeout or min(CODE_TIMEOUT, self.settings.timeout)
            )
            if self.approve:
                ctx.approver = self._ask_approval
            model = self._build_model()
            team = build_team(
                model,
                build_tools(ctx, "CodeAgent"),
                build_tools(ctx, "AnalystAgent"),
                lang=self.settings.prompts,
                max_messages=self.settings.max_messages,
                timeout=self.settings.timeout,
            )
            if resume is not None and resume[1] is not None:
                await team.swarm.load_state(resume[1])
            if outbox is not self._outbox:  # abandoned while it was being set up: a later turn runs
                return
            self._ctx, self._team, self._token = ctx, team, CancellationToken()
            if self._stop_reason or self._abandoned:
                # Stopped while the sandbox or the team was being set up: the stop had
                # no team or token to act on yet, so don't start one that would run on.
                ctx.stopping = ctx.closed = True
                await self._finish(outbox, self._stop_reason or EndReason.STOPPED)
                return
            translate = Translator(
                max_messages=self.settings.max_messages,
                loop_limit=self.settings.loop_limit,
                fired=team.fired,
                text_tool_guard=self._text_tool_problem,
            )
            self._tally = translate.tally
            self._set_state(RunState.RUNNING)
            watchdog = asyncio.create_task(self._watchdog(outbox))
            stream = team.swarm.run_stream(task=task, cancellation_token=self._token)
            end = End(EndReason.ERROR, NO_REASON)
            async for item in stream:
                if self._abandoned or outbox is not self._outbox:
                    break
                step = translate(item)
                self._apply(step, ctx, outbox)
                if step.end is not None:
                    end = step.end
                    if not end.by_team:  # we end it, not AutoGen: make the team stop too
                        await self._request_stop(end.reason, wait=False)
                    break
            reason, message = end.reason, end.message
            if end.by_team and self._stop_reason and reason in (EndReason.STOPPED, EndReason.ERROR):
                reason, message = self._stop_reason, ""
            await self._finish(outbox, reason, message)
        except asyncio.CancelledError:
            await asyncio.shield(self._finish(outbox, self._stop_reason or EndReason.STOPPED))
            raise
        except Exception as exc:  # model and sandbox failures end the run, never the app
            await self._ended_by(exc, outbox)
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

    async def _ended_by(self, exc: Exception, outbox: Outbox) -> None:
        """A failure ended the turn: the stop's own cause if one was asked, our halts
        (`budget`, `degenerate`) by their reason, anything else as an error."""
        if self._stop_reason:
            await self._finish(outbox, self._stop_reason)
            return
        from .model_errors import run_end_of  # [models #14] the spend cap and a runaway reply

        ended = run_end_of(exc)
        if ended is None:
            await self._finish(outbox, EndReason.ERROR, self._describe_error(exc))
            return
        reason = EndReason(ended[0])
        if outbox is self._outbox:
            await self._request_stop(reason, wait=False)
        await self._finish(outbox, reason, ended[1])

    def _started(self, task: str) -> ev.RunStarted:
        """The turn's first event (sent before its STARTING state)."""
        return ev.RunStarted(
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
        )

    def _apply(self, step: Step, ctx: Any, outbox: Outbox) -> None:
        """Emit a translated step; tool calls and results through the tool context, which
        de-duplicates them with what the tools report themselves."""
        for event in step.events:
            if isinstance(event, ev.ToolCall):
                ctx.announce(event.agent, event.call_id, event.name, event.arguments)
            elif isinstance(event, ev.ToolResult):
                ctx.finish(event.agent, event.call_id, event.name, event.content, event.is_error, [])
            else:
                outbox.emit(event)
        for call_id in step.requested:
            ctx.requested(call_id).set()
        if step.progress:
            self._progress(outbox)

    def _progress(self, outbox: Outbox) -> None:
        tally = self._tally
        outbox.emit(
            ev.Progress(
                agent=tally.agent,
                messages=tally.messages,
                max_messages=self.settings.max_messages,
                elapsed=round(time.monotonic() - self._t0, 1),
                timeout=self.settings.timeout,
                tokens_in=tally.tokens_in,
                tokens_out=tally.tokens_out,
                cost=self.cost,
                agent_tokens={k: list(v) for k, v in tally.agent_tokens.items()},
                conversation_messages=int(self._totals.get("messages", 0)) + tally.messages,
                conversation_elapsed=round(self._totals.get("elapsed", 0) + time.monotonic() - self._t0, 1),
            )
        )

    async def _watchdog(self, outbox: Outbox) -> None:
        """End a run whose cell or model call outlives SBTEAM_TIMEOUT."""
        await asyncio.sleep(self.settings.timeout)
        if outbox is self._outbox and not self._finished.is_set():
            await self._request_stop(EndReason.TIMEOUT)

    async def _ask_approval(self, agent: str, call_id: str, name: str, args: dict[str, Any]) -> tuple[str, Any]:
        """Approval mode: show the code, wait for the user's decision; no approver = reject."""
        self._emit(ev.ApprovalRequested(agent=agent, call_id=call_id, name=name, arguments=args))
        if self.approver is None:
            decision: tuple[str, Any] = ("reject", "nobody is there to approve it")
        else:
            decision = await self.approver(agent, call_id, name, args)
        kind = decision[0] if decision[0] in ("approve", "edit", "reject") else "reject"
        reason = str(decision[1]) if kind == "reject" else ""
        self._emit(ev.ApprovalDecided(call_id=call_id, decision=kind, reason=reason))  # type: ignore[arg-type]  # kind is one of the three decisions, checked by the approver
        return kind, decision[1]

    def _describe_error(self, exc: BaseException) -> str:
        from .scripted import stop_message_of

        if isinstance(exc, SandboxStartError):  # not a model error: say what did not start
            return str(exc)
        scripted_stop = stop_message_of(exc)  # a scripted model (the DEMO) ended the run, saying why
        if scripted_stop:
            return scripted_stop
        try:
            from .model_errors import classify_model_error

            return classify_model_error(exc, self.settings)
        except Exception:
            return one_line(exc)

    def _text_tool_problem(self, agent: str, text: str) -> str | None:
        """[models #14] The one line when `agent` wrote a tool call as text its client could not
        use (unknown tool, broken JSON, or text tool calls off), else None."""
        if self.demo:
            return None
        try:
            from .agent_models import text_tool_problem
            from .swarm import offered_tool_names
        except ImportError:
            return None
        return text_tool_problem(self.settings, agent, text, offered_tool_names(agent))

    def _build_model(self) -> Any:
        if self._model_factory is not None:
            return self._model_factory()
        if self.demo:
            from .demo import demo_client

            return demo_client(self.settings.prompts, pace=self._demo_pace)
        # [models #14] one client per agent (model file or environment), metered for SBTEAM_MAX_COST
        from .agent_models import build_agent_clients
        from .cost import RunMeter

        self._meter = RunMeter(self.settings.max_cost, self.prices(), self.settings.spend_pool)
        return build_agent_clients(self.settings, self._meter)
