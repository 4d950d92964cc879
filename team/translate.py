"""AutoGen stream item → our events and, at the end, a typed end reason.

Pure: no I/O, no controller, no clock. A `Translator` is built per turn with the
turn's limits and the list in which the team's termination conditions note that
they fired (`team.run_ends`); it keeps the turn's own counts (`Tally`: AutoGen's
conditions reset themselves after firing, so the status bar needs counts of its
own). `RunController` applies each `Step`: ToolCall/ToolResult events go through
the tool context (which de-duplicates them with the tools' own reports), the rest
is emitted as is, then a Progress when `progress` says so, then the end.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

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

from . import events as ev
from .api import EndReason
from .text_tools import parsed_call_note

HANDOFF_PREFIX = "transfer_to_"
NO_REASON = "the team stopped without a reason"
# When several conditions fire on one message (TERMINATE in the last allowed one), the first here wins.
END_PRIORITY = (EndReason.TERMINATE, EndReason.MAX_MESSAGES, EndReason.TIMEOUT, EndReason.STOPPED)

# (agent, text) -> one line when the agent wrote a tool call as text its client could not use
TextToolGuard = Callable[[str, str], str | None]


@dataclass(frozen=True)
class End:
    """Why the turn ended. `by_team`: AutoGen's team ended it (a TaskResult); otherwise
    we did (a loop, a tool call written as text), and the team must be told to stop."""

    reason: EndReason
    message: str = ""
    by_team: bool = True


@dataclass
class Tally:
    """A turn's counts: messages, tokens (per agent too), the current agent, handoffs."""

    messages: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    agent: str = "Planner"
    agent_tokens: dict[str, list[int]] = field(default_factory=dict)  # agent -> [in, out]
    handoffs: dict[tuple[str, str], int] = field(default_factory=dict)  # since the last real tool call

    def add_usage(self, agent: str, used_in: int, used_out: int) -> None:
        self.tokens_in += used_in
        self.tokens_out += used_out
        per_agent = self.agent_tokens.setdefault(agent, [0, 0])
        per_agent[0] += used_in
        per_agent[1] += used_out


@dataclass
class Step:
    """What one item means: events in order, tool calls now requested (their ids),
    whether a Progress follows, and the end if this item ends the turn."""

    events: list[ev.Event] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)
    progress: bool = False
    end: End | None = None


def end_of_result(fired: Sequence[EndReason], stop_reason: str | None, max_messages: int) -> End:
    """The end a TaskResult means: the condition that fired (see `team.run_ends`); AutoGen's
    own text only as the message of an end no condition of ours explains."""
    for reason in END_PRIORITY:
        if reason in fired:
            return End(reason, f"reached {max_messages} messages" if reason is EndReason.MAX_MESSAGES else "")
    return End(EndReason.ERROR, stop_reason or NO_REASON)


def arguments(raw: str) -> dict[str, Any]:
    """A tool call's JSON arguments as a dict (what could not be parsed kept as `raw`)."""
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return {"raw": raw}
    return value if isinstance(value, dict) else {"value": value}


class Translator:
    """One turn's translation; call it with each item of `run_stream`."""

    def __init__(
        self,
        *,
        max_messages: int,
        loop_limit: int,
        fired: Sequence[EndReason] = (),
        text_tool_guard: TextToolGuard | None = None,
    ) -> None:
        self.max_messages = max_messages
        self.loop_limit = loop_limit
        self.fired = fired
        self.text_tool_guard = text_tool_guard
        self.tally = Tally()

    def __call__(self, item: Any) -> Step:
        step = Step()
        if isinstance(item, TaskResult):
            step.end = end_of_result(self.fired, item.stop_reason, self.max_messages)
            return step
        if isinstance(item, ModelClientStreamingChunkEvent):
            step.events.append(ev.TokenDelta(agent=item.source, text=item.content, message_id=item.full_message_id or ""))
            return step
        usage = getattr(item, "models_usage", None)
        source = getattr(item, "source", "")
        if usage is not None:
            self.tally.add_usage(getattr(item, "source", "?"), int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0))
        if source and source != "user":
            self.tally.agent = source
        if isinstance(item, ThoughtEvent):
            step.events.append(ev.Message(agent=source, text=item.content, message_id=item.id))
        elif isinstance(item, ToolCallRequestEvent):
            self._requested(item, source, step)
        elif isinstance(item, ToolCallExecutionEvent):
            for result in item.content:
                if not (result.name or "").startswith(HANDOFF_PREFIX):
                    step.events.append(
                        ev.ToolResult(agent=source, call_id=result.call_id, name=result.name,
                                      content=str(result.content), is_error=bool(result.is_error))
                    )
        if isinstance(item, BaseChatMessage):
            self._chat_message(item, source, step)
        return step

    def _requested(self, item: ToolCallRequestEvent, source: str, step: Step) -> None:
        # [models #14] a call the client read from the model's text is marked in the transcript
        for call in item.content:
            note = parsed_call_note(source, call.id, call.name)
            if note:
                step.events.append(ev.Notice(level="info", text=note))
        if any(not call.name.startswith(HANDOFF_PREFIX) for call in item.content):
            self.tally.handoffs.clear()  # a real tool call is progress
        for call in item.content:
            if not call.name.startswith(HANDOFF_PREFIX):
                step.events.append(ev.ToolCall(agent=source, call_id=call.id, name=call.name,
                                               arguments=arguments(call.arguments)))
            step.requested.append(call.id)

    def _chat_message(self, item: BaseChatMessage, source: str, step: Step) -> None:
        self.tally.messages += 1
        step.progress = True
        if isinstance(item, HandoffMessage):
            step.events.append(ev.Handoff(source=source, target=item.target, text=item.content))
            self.tally.agent = item.target
            looped = self._loop_check(source, item.target)
            if looped:
                step.end = End(EndReason.LOOP, looped, by_team=False)
        elif isinstance(item, TextMessage):
            step.events.append(ev.Message(agent=source or "user", text=item.content, message_id=item.id))
            guard = self.text_tool_guard
            problem = guard(source, item.content) if guard is not None and source not in ("", "user") else None
            if problem:  # [models #14] one wording for it, with doctor (team/text_tools.py)
                step.progress = False
                step.end = End(EndReason.ERROR, problem, by_team=False)

    def _loop_check(self, source: str, target: str) -> str | None:
        """Loop guard: the same handoff N times with no tool call in between."""
        limit = self.loop_limit
        if limit <= 0:
            return None
        pair = (source, target)
        count = self.tally.handoffs.get(pair, 0) + 1
        self.tally.handoffs[pair] = count
        if count < limit:
            return None
        return (
            f"{source} handed the task to {target} {count} times without any tool call in between; "
            f"ended as a loop (SBTEAM_LOOP_LIMIT={limit}, 0 turns the guard off)"
        )
