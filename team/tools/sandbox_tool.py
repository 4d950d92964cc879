"""A registered tool as AutoGen's `FunctionTool`, bound to one run's context and agent.

The tools tell the run what happens while they work, in order: the tool call
itself (before any output, which AutoGen's own request event cannot
guarantee), live stdout/stderr, the files that changed, and the result. Every
call is cancellation-safe: a `CancelledError` becomes a "⏹ cancelled" result
instead of escaping into AutoGen (microsoft/autogen#7956, see team/autogen_fixes.py).

This is the one module of team/tools that imports AutoGen (`team.tools` loads
it on first use), so reading the registry costs the app nothing at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import typing
from collections.abc import Mapping
from typing import Any

from autogen_core import CancellationToken
from autogen_core.tools import FunctionTool, ToolSchema

from .context import CANCELLED, ToolContext, one_line
from .registry import CODE_AGENT, ToolSpec, specs


class SandboxTool(FunctionTool):
    """A FunctionTool that reports its call, result and file changes to the run."""

    def __init__(self, spec: ToolSpec, ctx: ToolContext, agent: str):
        super().__init__(_bind(spec, ctx), description=spec.description, name=spec.name, strict=False)
        self.spec = spec
        self._ctx = ctx
        self.agent = agent
        self._schema: ToolSchema | None = None

    @property
    def schema(self) -> ToolSchema:
        """Built once: AutoGen asks for it on every model call (~50 times a run),
        and pydantic regenerates the JSON schema each time."""
        if self._schema is None:
            self._schema = super().schema
        return self._schema

    async def run_json(
        self, args: Mapping[str, Any], cancellation_token: CancellationToken, call_id: str | None = None
    ) -> Any:
        try:
            return await self._run_json(args, cancellation_token, call_id)
        except asyncio.CancelledError:
            # Cancelled outside the tool function itself (e.g. while waiting for its
            # request to be shown). AutoGen runs tools in a task whose CancelledError
            # escapes its `except Exception`, and the agent then waits forever for the
            # tool's end-of-stream marker (microsoft/autogen#7956). Return instead.
            ctx = self._ctx
            ctx.busy = False
            text = "⏹ cancelled: the run was stopped while this tool was starting"
            ctx.finish(self.agent, call_id or "", self.name, text, True, [])
            return text

    async def _run_json(
        self, args: Mapping[str, Any], cancellation_token: CancellationToken, call_id: str | None
    ) -> Any:
        ctx = self._ctx
        cid = call_id or ""
        if ctx.closed:
            return "⏹ cancelled: the run was stopped"
        if cid:
            # AutoGen runs the tool before its request event reaches the run's
            # stream; wait (briefly) so the transcript shows the call, and what
            # came before it, ahead of the tool's output.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ctx.requested(cid).wait(), 1.0)
        ctx.announce(self.agent, cid, self.name, args)
        note = ""
        if ctx.approver is not None and self.spec.needs_approval:
            try:
                decision, detail = await ctx.approver(self.agent, cid, self.name, dict(args))
            except asyncio.CancelledError:
                decision, detail = "reject", "the run was stopped"
            if decision == "reject":
                text = f"❌ the user rejected this {self.name}: {detail or 'no reason given'}"
                ctx.finish(self.agent, cid, self.name, text, True, [])
                return text
            if decision == "edit" and isinstance(detail, Mapping):
                args = {**args, **detail}
                note = "\n(note: the user edited the arguments before they were used)"
        ctx.current_call_id = cid
        ctx.busy = True
        images: list[str] = []
        try:
            result = await super().run_json(args, cancellation_token, call_id=call_id)
        except asyncio.CancelledError:
            await ctx.session.interrupt()
            result = CANCELLED
        except Exception as exc:  # bad arguments from the model: tell it, keep going
            result = f"❌ invalid arguments for {self.name}: {_describe_arguments_error(exc)}"
        finally:
            ctx.busy = False
        text = str(result) + note
        if not self.spec.read_only:  # listing the whole tree after a read is wasted I/O
            with contextlib.suppress(asyncio.CancelledError):
                images = await ctx.report_files()
        ctx.finish(self.agent, cid, self.name, text, text.startswith(("❌", "⏹")), images)
        return text


def build_tools(ctx: ToolContext, agent: str = CODE_AGENT) -> dict[str, SandboxTool]:
    """The registered tools `agent` is offered, bound to one run's context, in registry order."""
    return {spec.name: SandboxTool(spec, ctx, agent) for spec in specs(agent)}


def _bind(spec: ToolSpec, ctx: ToolContext) -> Any:
    """`spec.func` with its context bound, as a function whose signature is the tool's
    own parameters (what FunctionTool turns into the schema).

    Not `functools.partial`: AutoGen resolves a partial's string annotations in an
    empty namespace (`from __future__ import annotations` makes them strings)."""
    func = spec.func
    signature = inspect.signature(func)
    context, *params = signature.parameters.values()
    hints = _type_hints(func, skip=context.name)

    async def call(**kwargs: Any) -> str:
        return await func(ctx, **kwargs)

    call.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]  # read by inspect
    call.__annotations__ = {p.name: hints.get(p.name, Any) for p in params} | {"return": hints.get("return", str)}
    call.__name__ = call.__qualname__ = spec.name
    call.__doc__ = spec.description
    return call


def _type_hints(func: Any, skip: str) -> dict[str, Any]:
    """`func`'s resolved annotations but `skip`'s (the context may be typed under
    TYPE_CHECKING only); `Annotated` kept, AutoGen reads parameter descriptions from it."""

    def shim() -> None: ...

    shim.__annotations__ = {k: v for k, v in func.__annotations__.items() if k != skip}
    return typing.get_type_hints(shim, globalns=func.__globals__, include_extras=True)


def _describe_arguments_error(exc: BaseException) -> str:
    """One line naming each bad argument (pydantic's own first line names none)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return one_line(exc)
    try:
        problems = []
        for err in errors()[:5]:
            name = ".".join(str(part) for part in err.get("loc", ())) or "arguments"
            if err.get("type") == "missing":
                problems.append(f"{name} is missing")
            else:
                got = repr(err.get("input"))
                got = got if len(got) <= 40 else got[:39] + "…"
                problems.append(f"{name}: {err.get('msg', 'invalid')} (got {got})")
    except Exception:
        return one_line(exc)
    return "; ".join(problems).replace("\n", " ")[:300] or one_line(exc)
