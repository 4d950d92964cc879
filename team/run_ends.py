"""Which termination condition ended a turn, told by the condition itself.

AutoGen reports why a team stopped only as text (`TaskResult.stop_reason`, the
conditions' messages joined by ", "), and it resets every condition right after one
fires, so `terminated` is already False when the `TaskResult` arrives. Each of our
conditions is therefore wrapped in a `Tagged` condition that appends its `EndReason`
to a list the `Team` owns the moment it fires; `translate.end_of_result` reads that
list. No English text is matched.
"""

from __future__ import annotations

from collections.abc import Sequence

from autogen_agentchat.base import TerminationCondition
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage, StopMessage

from .api import EndReason


class Tagged(TerminationCondition):
    """`inner`, which also notes `reason` in `fired` when it ends the run."""

    def __init__(self, inner: TerminationCondition, reason: EndReason, fired: list[EndReason]) -> None:
        self.inner = inner
        self.reason = reason
        self._fired = fired

    @property
    def terminated(self) -> bool:
        return self.inner.terminated

    async def __call__(self, messages: Sequence[BaseAgentEvent | BaseChatMessage]) -> StopMessage | None:
        stop = await self.inner(messages)
        if stop is not None:
            self._fired.append(self.reason)
        return stop

    async def reset(self) -> None:
        await self.inner.reset()  # `fired` stays: it is read after AutoGen's reset
