"""A scripted `ChatCompletionClient`: plays the agents' side from a function.

Used by DEMO mode and by tests (a model that never says TERMINATE, one that
streams slowly, one that runs a busy loop). It implements the real AutoGen
interface, streaming included, so the Swarm, its tools and the run controller
run exactly as with a real model; only the words are scripted.

The script is `responder(turn) -> Reply`, where `turn` tells which agent asks
(recognised by the tools it offers), how many times it has asked before, and
what it has been shown (the user's messages, the tool results with their error
flags). A responder that raises `ScriptStopped(reason)` ends the run as an error
with that one-line reason (the DEMO does, after a rejected or failed tool).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    ModelCapabilities,
    ModelFamily,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema


@dataclass
class Say:
    """Plain text (the Planner's TERMINATE is one)."""

    text: str


@dataclass
class Call:
    """One tool call (a handoff is a call of `transfer_to_<agent>`), with optional text before it."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    thought: str = ""


Reply = Say | Call


class ScriptStopped(Exception):
    """Raised by a responder to end the run as an error with this one-line reason.

    AutoGen hands it on as `RuntimeError("ScriptStopped: <reason>\\nTraceback: …")`;
    `stop_message_of` gets the reason back for the run's end message.
    """


def stop_message_of(error: BaseException) -> str | None:
    """The reason of a `ScriptStopped` in `error` (raised directly or relayed by AutoGen), else None."""
    if isinstance(error, ScriptStopped):
        return str(error)
    marker = f"{ScriptStopped.__name__}: "
    for line in str(error).splitlines():
        if line.startswith(marker):
            return line[len(marker):].strip() or None
    return None


REJECTED = "❌ the user rejected this "


@dataclass
class ToolOutcome:
    """One tool result as the model sees it."""

    name: str
    content: str
    is_error: bool

    @property
    def failed(self) -> bool:
        """An error, a rejection or a cancellation (the tools return these as "❌ …"/"⏹ …" text)."""
        return self.is_error or self.content.lstrip().startswith(("❌", "⏹"))

    @property
    def rejected(self) -> bool:
        return self.content.lstrip().startswith(REJECTED)

    @property
    def detail(self) -> str:
        """Why it failed, in one line: the user's reason for a rejection, else the first line."""
        text = self.content.strip()
        if self.rejected:
            text = text.split(":", 1)[1] if ":" in text else ""
        else:
            text = text.lstrip("❌⏹ ")
        line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        return line if len(line) <= 200 else line[:199] + "…"


@dataclass
class Turn:
    agent: str
    index: int  # how many times this agent asked before
    messages: Sequence[LLMMessage]
    tool_names: list[str]

    def last_user_text(self) -> str:
        """The newest message from the user (the task, or a resume instruction)."""
        for message in reversed(self.messages):
            if getattr(message, "source", "") == "user":
                return str(message.content)
        return ""

    def user_texts(self) -> list[str]:
        """Every message from the user in this agent's context, oldest first (a resumed
        run has the earlier task and the new instruction)."""
        return [str(m.content) for m in self.messages if getattr(m, "source", "") == "user"]

    def tool_outcomes(self) -> list[ToolOutcome]:
        """Every tool result in this agent's context, oldest first, with its error flag."""
        found: list[ToolOutcome] = []
        for message in self.messages:
            if isinstance(message, FunctionExecutionResultMessage):
                found.extend(ToolOutcome(r.name, str(r.content), bool(r.is_error)) for r in message.content)
        return found

    def tool_results(self) -> list[str]:
        """Contents of every tool result in this agent's context, oldest first."""
        found: list[str] = []
        for message in self.messages:
            if isinstance(message, FunctionExecutionResultMessage):
                found.extend(str(r.content) for r in message.content)
        return found


Responder = Callable[[Turn], Reply]


def agent_of(tool_names: Sequence[str]) -> str:
    """Which seed agent is asking, from the tools it offers."""
    names = set(tool_names)
    if "run_code" in names:
        return "CodeAgent"
    if "transfer_to_codeagent" in names or "transfer_to_analystagent" in names:
        return "Planner"
    if "read_file" in names:
        return "AnalystAgent"
    return "unknown"


def _tool_name(tool: Tool | ToolSchema) -> str:
    return tool["name"] if isinstance(tool, Mapping) else tool.name


def chunks(text: str, size: int = 12) -> list[str]:
    """Split text into stream-sized pieces at spaces where possible."""
    pieces, start = [], 0
    while start < len(text):
        end = min(len(text), start + size)
        space = text.rfind(" ", start + 1, end)
        if space > start and end < len(text):
            end = space + 1
        pieces.append(text[start:end])
        start = end
    return pieces


class ScriptedChatCompletionClient(ChatCompletionClient):
    """Streams scripted replies; `pace` seconds between chunks (0 = as fast as possible)."""

    def __init__(self, responder: Responder, *, pace: float = 0.0) -> None:
        self._responder = responder
        self._pace = pace
        self._counts: dict[str, int] = {}
        self._total = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._last = RequestUsage(prompt_tokens=0, completion_tokens=0)

    def _next(self, messages: Sequence[LLMMessage], tools: Sequence[Tool | ToolSchema]) -> Reply:
        names = [_tool_name(t) for t in tools]
        agent = agent_of(names)
        index = self._counts.get(agent, 0)
        self._counts[agent] = index + 1
        return self._responder(Turn(agent=agent, index=index, messages=messages, tool_names=names))

    def _result(self, reply: Reply, messages: Sequence[LLMMessage]) -> CreateResult:
        prompt = sum(len(str(getattr(m, "content", ""))) for m in messages) // 4
        if isinstance(reply, Say):
            usage = RequestUsage(prompt_tokens=prompt, completion_tokens=max(1, len(reply.text) // 4))
            result = CreateResult(finish_reason="stop", content=reply.text, usage=usage, cached=False)
        else:
            call = FunctionCall(
                id=f"call_{uuid.uuid4().hex[:12]}",
                name=reply.name,
                arguments=json.dumps(reply.arguments, ensure_ascii=False),
            )
            out = (len(call.arguments) + len(reply.thought)) // 4 + 1
            usage = RequestUsage(prompt_tokens=prompt, completion_tokens=out)
            result = CreateResult(
                finish_reason="function_calls", content=[call], usage=usage, cached=False,
                thought=reply.thought or None,
            )
        self._last = usage
        self._total = RequestUsage(
            prompt_tokens=self._total.prompt_tokens + usage.prompt_tokens,
            completion_tokens=self._total.completion_tokens + usage.completion_tokens,
        )
        return result

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: Any = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        return self._result(self._next(messages, tools), messages)

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: Any = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        reply = self._next(messages, tools)
        text = reply.text if isinstance(reply, Say) else reply.thought
        for piece in chunks(text):
            if cancellation_token is not None and cancellation_token.is_cancelled():
                raise asyncio.CancelledError()
            yield piece
            await asyncio.sleep(self._pace)
        yield self._result(reply, messages)

    async def close(self) -> None:
        return None

    def actual_usage(self) -> RequestUsage:
        return self._last

    def total_usage(self) -> RequestUsage:
        return self._total

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return sum(len(str(getattr(m, "content", ""))) for m in messages) // 4

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return 128_000 - self.count_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:
        return ModelCapabilities(vision=False, function_calling=True, json_output=False)

    @property
    def model_info(self) -> ModelInfo:
        return ModelInfo(
            vision=False, function_calling=True, json_output=False,
            family=ModelFamily.UNKNOWN, structured_output=False,
        )
