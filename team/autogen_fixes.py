"""Workarounds for AutoGen 0.7 cancellation bugs, in one place so they can go when upstream fixes them.

Both come from the same upstream behaviour: `AssistantAgent` runs an agent's
tool calls in a task (`_execute_tool_calls`: `asyncio.gather` of the calls,
then an end-of-tools `None` on a queue the agent waits on). If a call raises
`CancelledError` — the run's `CancellationToken` cancels a future linked to it
on a force stop — the gather raises, the end-of-tools marker is never sent and
the agent waits forever: a task leaked per force stop, and a team that cannot
finish. Upstream: microsoft/autogen#7956 ("Cancelling an in-flight tool call
deadlocks AssistantAgent.on_messages_stream"; still open, PRs #7957 closed and
#8182 open). When it is fixed, `CancelSafeWorkbench` can become AutoGen's
`StaticStreamWorkbench` and `AsyncHandoff` its `Handoff`.

Our own tools also catch the cancellation themselves (team/tools/sandbox_tool.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from autogen_agentchat.base import Handoff
from autogen_core import CancellationToken
from autogen_core.tools import (
    BaseTool,
    FunctionTool,
    StaticStreamWorkbench,
    TextResultContent,
    ToolResult,
)
from pydantic import BaseModel

from .tools.context import CANCELLED


class CancelSafeWorkbench(StaticStreamWorkbench):
    """AutoGen's workbench, except that a cancelled tool call yields a result.

    `StaticStreamWorkbench.call_tool_stream` turns a failing tool into an error
    result with `except Exception`, which `CancelledError` is not: if the token
    cancels the tool's future before our `run_json` even starts, the error
    escapes the workbench and the agent hangs (microsoft/autogen#7956).
    """

    async def call_tool_stream(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        cancellation_token: CancellationToken | None = None,
        call_id: str | None = None,
    ) -> AsyncGenerator[Any, None]:
        try:
            async for item in super().call_tool_stream(name, arguments, cancellation_token, call_id):
                yield item
        except asyncio.CancelledError:
            yield ToolResult(name=name, result=[TextResultContent(content=CANCELLED)], is_error=True)


class AsyncHandoff(Handoff):
    """AutoGen's handoff with an async tool function.

    The stock handoff tool is a sync function, which `FunctionTool` runs in a
    thread-pool future linked to the cancellation token; a force stop cancels
    that future and the CancelledError escapes `_execute_tool_call` (handoffs
    do not go through the workbench, so `CancelSafeWorkbench` cannot catch it):
    the same hang as microsoft/autogen#7956. No upstream issue names the handoff
    tool itself; #8182 (sending the end-of-tools marker in a `finally`) would
    fix both. An async function is awaited directly, needs no thread, and
    cannot be cancelled half-way through returning a constant.
    """

    @property
    def handoff_tool(self) -> BaseTool[BaseModel, BaseModel]:
        message = self.message

        async def _handoff_tool() -> str:
            return message

        return FunctionTool(_handoff_tool, name=self.name, description=self.description, strict=True)
