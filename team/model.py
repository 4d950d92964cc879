"""The model client, and turning its failures into one line a person can act on.

`autogen_ext.models.openai` costs ~1.4 s to import, so it is imported inside
`build_model_client` only; importing this module stays cheap for the TUI.

Two request-shape traps of the OpenAI API are handled here rather than left to
every caller (see `_client_class`): `stream_options` is rejected on
non-streaming calls, and `parallel_tool_calls` is rejected on calls without
tools. So usage-in-streams and parallel_tool_calls=False are added per call.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .text_tools import looks_like_text_tool_call  # noqa: F401  (callers import it from here)

if TYPE_CHECKING:
    from autogen_core.models import ChatCompletionClient, ModelInfo

    from .config import Settings

#: Sent as the key to local servers (Ollama, vLLM, llama.cpp) that need none;
#: the openai SDK refuses to build a client without some key.
PLACEHOLDER_KEY = "not-needed"

#: The generic line (the run and `doctor` say more: what arrived, see team/text_tools.py).
MODEL_TOOL_TEXT_ERROR = (
    "the model wrote a tool call as plain text instead of calling the tool — set SBTEAM_TEXT_TOOLS=on "
    "to turn such calls into real ones, or choose a model whose server returns tool_calls (OPENAI_MODEL)"
)

#: Sent after a request that would end with the agent's own text (the same agent speaks again in
#: a Swarm when it neither handed off nor called a tool). OpenAI accepts trailing assistant
#: messages; llama.cpp reads one as a prefill to continue and refuses two ("Cannot have 2 or
#: more assistant messages at the end of the list"), so other endpoints get this turn instead.
YOUR_TURN_NOTE = "It is your turn again. Continue the task with one of your tools: {tools}. {then}"
YOUR_TURN_BACK = "When you are done, or cannot go on, hand the task back with transfer_to_planner."
YOUR_TURN_END = "When everything is done, answer TERMINATE."


def your_turn_note(tool_names: Sequence[str]) -> str:
    """`YOUR_TURN_NOTE` for an agent offered `tool_names`."""
    names = [n for n in tool_names if n]
    then = YOUR_TURN_BACK if "transfer_to_planner" in names else YOUR_TURN_END
    return YOUR_TURN_NOTE.format(tools=", ".join(names) or "none", then=then)

#: What a model whose reply ran away is told on its next call (once; the second time ends the run).
DEGENERATE_NOTE = (
    "Your previous reply repeated itself and was cut. Do not repeat text: call a tool or give a short answer."
)

EMPTY_STREAM_ERROR = (
    "the endpoint sent no chat completion chunks (an HTML page or broken JSON?); "
    "its answer is not OpenAI-compatible"
)


# --------------------------------------------------------------------------- client


def unknown_model_info() -> ModelInfo:
    """Capabilities assumed for a model AutoGen has no table entry for (any non-OpenAI name).

    The app needs tool calling, so that is assumed; `doctor` verifies it for real.
    """
    from autogen_core.models import ModelInfo

    return ModelInfo(
        vision=False,
        function_calling=True,
        json_output=False,
        family="unknown",
        structured_output=False,
    )


def _extra_args(tools: Sequence[Any], extra: Mapping[str, Any]) -> Mapping[str, Any]:
    if tools and "parallel_tool_calls" not in extra:
        return {**extra, "parallel_tool_calls": False}
    return extra


class _RequestShaping:
    """Mixed into AutoGen's OpenAI and Azure OpenAI clients (see `_client_class`)."""

    async def _create_stream_chunks(
        self,
        tool_params: list[Any],
        oai_messages: list[Any],
        create_args: dict[str, Any],
        cancellation_token: Any,
    ) -> AsyncGenerator[Any, None]:
        """AutoGen's own, plus: argument deltas merged, and the HTTP response closed when
        the stream is left early (a cut reply, a stop), so the server stops generating at
        once instead of when the response is garbage-collected."""
        import asyncio

        from openai import NOT_GIVEN

        stream_future = asyncio.ensure_future(
            self._client.chat.completions.create(  # type: ignore[attr-defined]  # AutoGen's own openai client, private: no public hook for a raw request
                messages=oai_messages,
                stream=True,
                tools=tool_params if len(tool_params) > 0 else NOT_GIVEN,
                **create_args,
            )
        )
        if cancellation_token is not None:
            cancellation_token.link_future(stream_future)
        stream = await stream_future

        async def chunks() -> AsyncGenerator[Any, None]:
            while True:
                chunk_future = asyncio.ensure_future(anext(stream))
                if cancellation_token is not None:
                    cancellation_token.link_future(chunk_future)
                try:
                    chunk = await chunk_future
                except StopAsyncIteration:
                    return
                yield chunk

        source = chunks()
        try:
            async for chunk in merge_argument_deltas(source):
                yield chunk
        finally:
            await source.aclose()
            try:
                await stream.close()
            except Exception:
                pass  # the connection is gone already

    async def create(
        self,
        messages: Sequence[Any],
        *,
        tools: Sequence[Any] = (),
        extra_create_args: Mapping[str, Any] = {},
        **kw: Any,
    ) -> Any:
        return await super().create(  # type: ignore[misc]  # a mixin: super() is the AutoGen client it is mixed into
            messages,
            tools=list(tools),
            extra_create_args=_extra_args(tools, extra_create_args),
            **kw,
        )

    async def create_stream(
        self,
        messages: Sequence[Any],
        *,
        tools: Sequence[Any] = (),
        extra_create_args: Mapping[str, Any] = {},
        include_usage: bool | None = None,
        **kw: Any,
    ) -> AsyncGenerator[Any, None]:
        if include_usage is None and "stream_options" not in extra_create_args:
            include_usage = True
        inner = super().create_stream(  # type: ignore[misc]  # as above
            messages,
            tools=list(tools),
            extra_create_args=_extra_args(tools, extra_create_args),
            include_usage=include_usage,
            **kw,
        )
        got_text = False
        try:
            async for item in inner:
                if isinstance(item, str):
                    got_text = got_text or bool(item)
                elif (
                    not got_text
                    and getattr(item, "finish_reason", None) == "unknown"
                    and not getattr(item, "content", None)
                ):
                    # Nothing parseable arrived (an HTML page or broken JSON instead
                    # of server-sent events); without this the team would carry on
                    # with empty answers until a limit ends the run.
                    raise ValueError(EMPTY_STREAM_ERROR)
                yield item
        finally:
            await inner.aclose()  # an abandoned stream must not leave the HTTP response open


@functools.cache
def _client_class() -> type:
    """`OpenAIChatCompletionClient` that shapes each request the way the API accepts it.

    - Streams ask for usage (`stream_options.include_usage`), else AutoGen reports
      0 tokens; putting `stream_options` in the constructor would also send it on
      non-streaming `create()`, which OpenAI and vLLM reject with HTTP 400.
    - `parallel_tool_calls=False` (one tool call per turn, as the Swarm's handoffs
      expect) is sent only with tools; OpenAI rejects it on a request without tools.
    - Tool-call argument deltas are merged before AutoGen sees them: AutoGen 0.7
      builds the arguments with `call.arguments += delta` on an attribute, which
      copies the whole string every time (a 3 MB argument in 64-character deltas
      took 99 s). Merged into pieces of up to MERGE_ARGUMENTS characters, the same
      argument takes as long as the server needs to send it. This overrides
      AutoGen's `_create_stream_chunks` (the one place chunks come from; the
      autogen-ext version is pinned below 0.8 and tests/test_model.py checks it).

    Built on first use so the heavy import stays out of module import time; only
    public `create`/`create_stream` parameters are touched. A model file's OpenAI
    entries load as this class (`team.model.SbteamOpenAIClient`), Azure ones as
    `SbteamAzureOpenAIClient`, through `ChatCompletionClient.load_component`.
    """
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    class SbteamOpenAIClient(_RequestShaping, OpenAIChatCompletionClient):
        pass

    SbteamOpenAIClient.__module__ = __name__
    return SbteamOpenAIClient


@functools.cache
def _azure_client_class() -> type:
    """`AzureOpenAIChatCompletionClient` with the same request shaping as `_client_class`."""
    from autogen_ext.models.openai import AzureOpenAIChatCompletionClient

    class SbteamAzureOpenAIClient(_RequestShaping, AzureOpenAIChatCompletionClient):
        @classmethod
        def _from_config(cls, config: Any) -> Any:
            """AutoGen's, except that a key-based config does not need the azure packages
            (they are imported only for an `azure_ad_token_provider`)."""
            if getattr(config, "azure_ad_token_provider", None) is not None:
                return super()._from_config(config)
            copied = config.model_copy().model_dump(exclude_none=True)
            key = getattr(config, "api_key", None)
            if key is not None and hasattr(key, "get_secret_value"):
                copied["api_key"] = key.get_secret_value()
            return cls(**copied)

    SbteamAzureOpenAIClient.__module__ = __name__
    return SbteamAzureOpenAIClient


def __getattr__(name: str) -> Any:
    """The client classes by name, built on first use (`load_component` imports them by path)."""
    if name == "SbteamOpenAIClient":
        return _client_class()
    if name == "SbteamAzureOpenAIClient":
        return _azure_client_class()
    if name == "SbteamClient":
        from .agent_client import _wrapper_class

        return _wrapper_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


MERGE_ARGUMENTS = 1 << 18  # characters of tool-call arguments merged into one delta at most


def _argument_deltas(chunk: Any) -> dict[int, str] | None:
    """{tool-call index: arguments piece} when the chunk carries nothing else, else None."""
    choices = getattr(chunk, "choices", None)
    if getattr(chunk, "usage", None) is not None or not choices or len(choices) != 1:
        return None
    choice = choices[0]
    delta = choice.delta
    calls = delta.tool_calls
    if choice.finish_reason is not None or delta.content or not calls:
        return None
    pieces: dict[int, str] = {}
    for call in calls:
        function = call.function
        if call.id is not None or function is None or function.name is not None or function.arguments is None:
            return None
        pieces[call.index] = pieces.get(call.index, "") + function.arguments
    return pieces


async def merge_argument_deltas(chunks: AsyncIterator[Any]) -> AsyncGenerator[Any, None]:
    """The same stream, with runs of argument-only chunks merged (see `_client_class`)."""
    first: Any = None
    parts: dict[int, list[str]] = {}
    size = 0

    def merged() -> Any:
        out = first.model_copy(deep=True)
        template = out.choices[0].delta.tool_calls[0]
        calls = []
        for index, texts in parts.items():
            call = template.model_copy(deep=True)
            call.index = index
            call.function.arguments = "".join(texts)
            calls.append(call)
        out.choices[0].delta.tool_calls = calls
        return out

    async for chunk in chunks:
        pieces = _argument_deltas(chunk)
        if pieces is not None:
            if first is None:
                first = chunk
            for index, text in pieces.items():
                parts.setdefault(index, []).append(text)
                size += len(text)
            if size < MERGE_ARGUMENTS:
                continue
        if first is not None:
            yield merged()
            first, parts, size = None, {}, 0
        if pieces is None:
            yield chunk
    if first is not None:
        yield merged()


def build_model_client(settings: Settings) -> ChatCompletionClient:
    """The real model client for `settings` (OpenAI or any OpenAI-compatible endpoint).

    A missing key is fine when `openai_api_base` points at a local server. Model
    names AutoGen does not know get `unknown_model_info()` instead of its ValueError.
    Raises ValueError when there is neither a key nor an endpoint (that is DEMO mode).
    """
    key = settings.openai_api_key
    if not key:
        if not settings.openai_api_base:
            raise ValueError(
                "no model configured: set OPENAI_API_KEY (and OPENAI_API_BASE for a local server)"
            )
        key = PLACEHOLDER_KEY
    cls = _client_class()
    kwargs: dict[str, Any] = {
        "model": settings.openai_model,
        "api_key": key,
        "timeout": settings.model_timeout,
        "max_retries": settings.model_retries,
    }
    if settings.openai_api_base:
        kwargs["base_url"] = settings.openai_api_base
    try:
        return cls(**kwargs)
    except ValueError as exc:
        if "model_info" not in str(exc):
            raise
    return cls(**kwargs, model_info=unknown_model_info())
