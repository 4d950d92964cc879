"""The client each agent gets: one wrapper around the provider's AutoGen client that caps
replies, turns tool calls a model *wrote* into real ones (team/text_tools.py), cuts a
runaway reply (team/repetition.py), meters usage for the spend cap and says "your turn"
when a model answers without a tool. Built on first use (`_wrapper_class`): AutoGen is
imported only when a run needs a model."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .model import DEGENERATE_NOTE, your_turn_note
from .model_errors import DegenerateReply
from .repetition import RepetitionDetector, loop_start

if TYPE_CHECKING:
    from autogen_core.models import ModelInfo

MAX_CORRECTIONS = 2  # written calls that cannot be used are sent back this often per request
CUT_DEGENERATE = " … [cut: the reply repeated itself]"
CUT_LENGTH = " … [cut: the reply reached max_tokens]"
_COMPLETION_TOKEN_MODELS = ("o1", "o3", "o4", "gpt-5")


def never_sent(exc: BaseException) -> bool:
    """The request never reached the server (no connection: refused, or the name did not
    resolve), so the spend meter counts nothing for it; anything later (a timeout, a reset)
    may have been billed and is counted as sent. Read from the chain of causes, by kind: the
    openai SDK wraps its own copy of httpx, whose `ConnectError` is not `httpx.ConnectError`."""
    import socket

    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, (ConnectionRefusedError, socket.gaierror)) or type(cause).__name__ == "ConnectError":
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def estimate_prompt_tokens(messages: Sequence[Any], tools: Sequence[Any] = ()) -> int:
    """About how many tokens a request's prompt has (4 characters a token)."""
    chars = 0
    for message in messages:
        content = getattr(message, "content", "")
        chars += len(content) if isinstance(content, str) else len(str(content))
        chars += len(getattr(message, "thought", None) or "")
    for tool in tools:
        schema = tool if isinstance(tool, Mapping) else getattr(tool, "schema", {})
        try:
            chars += len(json.dumps(schema, default=str))
        except (TypeError, ValueError):
            chars += 200
    return chars // 4 + 4 * len(messages) + 1


@functools.cache
def _wrapper_class() -> type:
    """`SbteamClient`: what each agent talks to, around any provider's client.

    - Tool calls the model *writes* (team/text_tools.py) become `FunctionCall`s for a
      tool that exists, stripped from the text (it becomes the call's `thought`);
      the stream holds back text that may be a call and ends at the first complete
      one. A written call naming no tool, or with broken JSON, goes back to the
      model with what was wrong (`MAX_CORRECTIONS` times per request), then the text
      is returned as it is and the run's guard says what arrived.
    - Each reply is capped: `max_tokens` is sent to OpenAI-family endpoints (the
      provider configs carry it for the others) and the stream is cut past it.
    - A reply that repeats itself (`RepetitionDetector`) is cut where the repetition
      began; the model is told once (`DEGENERATE_NOTE`); the second time in a run
      raises `DegenerateReply`.
    - Every call is metered (`RunMeter`): the spend cap is checked before it, and
      tokens of a stream that a stop cut short are still counted.
    - `your_turn` (endpoints other than OpenAI's and Azure's): a request that would end
      with the agent's own text gets `YOUR_TURN_NOTE` after it.
    """
    from autogen_core.models import (
        AssistantMessage,
        ChatCompletionClient,
        CreateResult,
        ModelCapabilities,
        RequestUsage,
        UserMessage,
    )

    from .cost import RunMeter
    from .text_tools import (
        TextCallHolder,
        correction_message,
        correction_note,
        parse_text_tool_calls,
        tool_specs,
    )

    class _Attempt:
        def __init__(self) -> None:
            self.text = ""
            self.result: Any = None
            self.cut = ""  # "" | "call" | "degenerate" | "length"
            self.chunks = 0
            self.prompt = 0
            self.holder: TextCallHolder | None = None
            self.period = 0

    class SbteamClient(ChatCompletionClient):
        def __init__(
            self,
            inner: ChatCompletionClient,
            *,
            agent: str = "",
            model: str = "",
            text_tools: bool = False,
            max_tokens: int | None = 4096,
            meter: RunMeter | None = None,
            price: tuple[float, float] | None = None,
            owns_inner: bool = True,
            your_turn: bool = False,
        ) -> None:
            self.inner = inner
            self.agent = agent or "model"
            self.model = model
            self.text_tools = text_tools
            self.max_tokens = max_tokens
            self.meter = meter if meter is not None else RunMeter(prices={self.agent: price})
            if price is not None and self.agent not in self.meter.prices:
                self.meter.prices[self.agent] = price
            self._owns_inner = owns_inner
            self._your_turn = your_turn
            self._note: str | None = None
            self._total = RequestUsage(prompt_tokens=0, completion_tokens=0)
            self._last = RequestUsage(prompt_tokens=0, completion_tokens=0)
            self._openai = any(c.__name__ == "BaseOpenAIChatCompletionClient" for c in type(inner).__mro__)

        # -- request shaping --------------------------------------------------------
        def _create_args(self, extra: Mapping[str, Any]) -> Mapping[str, Any]:
            if not self._openai or not self.max_tokens:
                return extra
            configured = getattr(self.inner, "_create_args", {}) or {}
            keys = ("max_tokens", "max_completion_tokens")
            if any(k in configured or k in extra for k in keys):
                return extra
            name = str(configured.get("model", self.model) or "")
            key = "max_completion_tokens" if name.startswith(_COMPLETION_TOKEN_MODELS) else "max_tokens"
            return {**extra, key: self.max_tokens}

        def _messages(self, messages: Sequence[Any], tools: Sequence[Any] = ()) -> list[Any]:
            out = list(messages)
            if self._note:  # (it also gives the turn back)
                out.append(UserMessage(content=self._note, source="sbteam"))
                self._note = None
            elif self._your_turn and out and isinstance(out[-1], AssistantMessage) and isinstance(out[-1].content, str):
                out.append(UserMessage(content=your_turn_note(list(tool_specs(tools))), source="sbteam"))
            return out

        def _usage_of(self, result: Any, prompt: int, chunks: int) -> tuple[int, int]:
            usage = getattr(result, "usage", None)
            got_in = int(getattr(usage, "prompt_tokens", 0) or 0)
            got_out = int(getattr(usage, "completion_tokens", 0) or 0)
            return (got_in or prompt, got_out or chunks)

        def _deliver(self, result: Any, used: list[int]) -> Any:
            """The final result of a request, carrying the usage of every attempt."""
            usage = RequestUsage(prompt_tokens=used[0], completion_tokens=used[1])
            self.meter.delivered(self.agent, used[0], used[1])
            self._last = usage
            self._total = RequestUsage(
                prompt_tokens=self._total.prompt_tokens + used[0],
                completion_tokens=self._total.completion_tokens + used[1],
            )
            return result.model_copy(update={"usage": usage})

        def _degenerate(self, attempt: _Attempt) -> str:
            self.meter.degenerate += 1
            if self.meter.degenerate >= 2:
                raise DegenerateReply(
                    f"{self.agent}'s reply repeated itself again ({attempt.chunks} tokens) after it had "
                    "been told once; ended as degenerate"
                )
            self._note = DEGENERATE_NOTE
            text = attempt.text
            if attempt.period:
                start = loop_start(text, attempt.period)
                text = text[: start + attempt.period]
            return text.rstrip() + CUT_DEGENERATE

        # -- streaming ------------------------------------------------------------------
        async def _attempt(
            self, messages: list[Any], tools: list[Any], specs: dict[str, Any], args: dict[str, Any]
        ) -> AsyncGenerator[Any, None]:
            """One model call: yields the text to show, then the `_Attempt`."""
            attempt = _Attempt()
            attempt.prompt = estimate_prompt_tokens(messages, tools)
            self.meter.check(self.agent, attempt.prompt)
            attempt.holder = TextCallHolder(specs) if specs else None
            detector = RepetitionDetector()
            parts: list[str] = []
            limit = (self.max_tokens + 64) if self.max_tokens else None
            inner = self.inner.create_stream(messages, tools=tools, **args)
            done = False
            try:
                async for item in inner:
                    if not isinstance(item, str):
                        attempt.result = item
                        continue
                    if not item:
                        continue
                    parts.append(item)
                    attempt.chunks += 1
                    if detector.feed(item):
                        attempt.cut, attempt.period = "degenerate", detector.period
                        break
                    if limit is not None and attempt.chunks > limit:
                        attempt.cut = "length"
                        break
                    shown = attempt.holder.feed(item) if attempt.holder is not None else item
                    if shown:
                        yield shown
                    if attempt.holder is not None and attempt.holder.found is not None:
                        attempt.cut = "call"  # a complete written call: no need to read on
                        break
                done = True
            except BaseException as exc:
                if attempt.chunks == 0 and never_sent(exc):
                    attempt.prompt = 0  # no connection was made: nothing was read, nothing is owed
                raise
            finally:
                await inner.aclose()  # also ends the server's generation of a cut reply
                attempt.text = "".join(parts)
                if not done:  # stopped or failed half-way: still count what streamed
                    self.meter.record(self.agent, attempt.prompt, attempt.chunks, reported=False)
            p, c = self._usage_of(attempt.result if not attempt.cut else None, attempt.prompt, attempt.chunks)
            self.meter.record(self.agent, p, c, reported=False)
            attempt.prompt, attempt.chunks = p, c
            yield attempt

        async def create_stream(
            self,
            messages: Sequence[Any],
            *,
            tools: Sequence[Any] = (),
            tool_choice: Any = "auto",
            json_output: Any = None,
            extra_create_args: Mapping[str, Any] = {},
            cancellation_token: Any = None,
            **kw: Any,
        ) -> AsyncGenerator[Any, None]:
            tools = list(tools)
            specs = tool_specs(tools) if self.text_tools and tools and not json_output else {}
            request = self._messages(messages, tools)
            args: dict[str, Any] = dict(
                tool_choice=tool_choice,
                json_output=json_output,
                extra_create_args=self._create_args(extra_create_args),
                cancellation_token=cancellation_token,
                **kw,
            )
            used = [0, 0]
            earlier = ""  # what the user saw of earlier attempts, with the notes between them
            for round_ in range(MAX_CORRECTIONS + 1):
                attempt: _Attempt | None = None
                now: list[str] = []  # what this attempt showed
                gen = self._attempt(request, tools, specs, args)
                try:
                    async for item in gen:
                        if isinstance(item, str):
                            now.append(item)
                            yield item
                        else:
                            attempt = item
                finally:
                    await gen.aclose()
                assert attempt is not None
                used[0] += attempt.prompt
                used[1] += attempt.chunks
                holder = attempt.holder
                result = attempt.result
                if attempt.cut in ("degenerate", "length"):
                    text = self._degenerate(attempt) if attempt.cut == "degenerate" else attempt.text + CUT_LENGTH
                    cut = CreateResult(
                        finish_reason="length" if attempt.cut == "length" else "stop",
                        content=earlier + text,
                        usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
                        cached=False,
                    )
                    yield self._deliver(cut, used)
                    return
                if result is not None and not isinstance(result.content, str):  # a real tool call
                    rest = holder.finish() if holder is not None else ""
                    if rest:
                        yield rest
                    if earlier:
                        result = result.model_copy(update={"thought": earlier + (result.thought or "")})
                    yield self._deliver(result, used)
                    return
                text = result.content if result is not None else attempt.text
                if not specs:
                    if result is None:
                        result = CreateResult(finish_reason="stop", content=text, cached=False,
                                              usage=RequestUsage(prompt_tokens=0, completion_tokens=0))
                    yield self._deliver(result, used)
                    return
                assert holder is not None
                caught = holder.found is not None  # the stream was held and ended at the written call
                if not caught:
                    rest = holder.finish()  # may still find an unclosed <tool_call> at the end
                    caught = holder.found is not None
                    if rest:
                        now.append(rest)
                        yield rest
                parsed = holder.found if caught else parse_text_tool_calls(text, specs)
                shown_now = "".join(now)
                if parsed is not None and parsed.calls:
                    prose = shown_now if caught else parsed.text
                    call = CreateResult(
                        finish_reason="function_calls",
                        content=[parsed.calls[0].function_call()],
                        usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
                        cached=False,
                        thought=(earlier + prose).strip() or None,
                    )
                    yield self._deliver(call, used)
                    return
                if parsed is not None and caught:  # the written call was held back: show it now
                    now.append(parsed.raw)
                    yield parsed.raw
                    text = shown_now + parsed.raw
                if parsed is not None and round_ < MAX_CORRECTIONS:
                    note = correction_note(parsed.problem)
                    yield note
                    earlier += "".join(now) + note
                    request = [
                        *request,
                        AssistantMessage(content=text, source=self.agent),
                        UserMessage(content=correction_message(parsed, specs), source="sbteam"),
                    ]
                    continue
                final = CreateResult(
                    finish_reason=result.finish_reason if result is not None else "stop",
                    content=earlier + ("".join(now) if caught or earlier else text),
                    usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
                    cached=False,
                )
                yield self._deliver(final, used)
                return

        # -- one-shot -----------------------------------------------------------------------
        async def create(
            self,
            messages: Sequence[Any],
            *,
            tools: Sequence[Any] = (),
            tool_choice: Any = "auto",
            json_output: Any = None,
            extra_create_args: Mapping[str, Any] = {},
            cancellation_token: Any = None,
        ) -> Any:
            tools = list(tools)
            specs = tool_specs(tools) if self.text_tools and tools and not json_output else {}
            request = self._messages(messages, tools)
            used = [0, 0]
            for round_ in range(MAX_CORRECTIONS + 1):
                prompt = estimate_prompt_tokens(request, tools)
                self.meter.check(self.agent, prompt)
                try:
                    result = await self.inner.create(
                        request,
                        tools=tools,
                        tool_choice=tool_choice,
                        json_output=json_output,
                        extra_create_args=self._create_args(extra_create_args),
                        cancellation_token=cancellation_token,
                    )
                except BaseException as exc:
                    self.meter.record(self.agent, 0 if never_sent(exc) else prompt, 0, reported=False)
                    raise
                p, c = self._usage_of(result, prompt, 0)
                self.meter.record(self.agent, p, c, reported=False)
                used[0] += p
                used[1] += c
                if not specs or not isinstance(result.content, str):
                    return self._deliver(result, used)
                parsed = parse_text_tool_calls(result.content, specs)
                if parsed is not None and parsed.calls:
                    return self._deliver(
                        result.model_copy(
                            update={
                                "content": [parsed.calls[0].function_call()],
                                "finish_reason": "function_calls",
                                "thought": parsed.text or None,
                            }
                        ),
                        used,
                    )
                if parsed is None or round_ == MAX_CORRECTIONS:
                    return self._deliver(result, used)
                request = [
                    *request,
                    AssistantMessage(content=result.content, source=self.agent),
                    UserMessage(content=correction_message(parsed, specs), source="sbteam"),
                ]
            raise AssertionError("unreachable")

        # -- the rest of the interface --------------------------------------------------
        async def close(self) -> None:
            if self._owns_inner:
                await self.inner.close()

        def actual_usage(self) -> RequestUsage:
            return self._last

        def total_usage(self) -> RequestUsage:
            return self._total

        def count_tokens(self, messages: Sequence[Any], *, tools: Sequence[Any] = []) -> int:
            return self.inner.count_tokens(messages, tools=tools)

        def remaining_tokens(self, messages: Sequence[Any], *, tools: Sequence[Any] = []) -> int:
            return self.inner.remaining_tokens(messages, tools=tools)

        @property
        def capabilities(self) -> ModelCapabilities:
            return self.inner.capabilities

        @property
        def model_info(self) -> ModelInfo:
            return self.inner.model_info

    SbteamClient.__module__ = __name__
    return SbteamClient


def __getattr__(name: str) -> Any:
    """`SbteamClient` by name, built on first use (a component path names it here)."""
    if name == "SbteamClient":
        return _wrapper_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
