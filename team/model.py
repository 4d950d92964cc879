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
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import one_line
from .redact import scrub
from .text_tools import looks_like_text_tool_call  # noqa: F401  (callers import it from here)

if TYPE_CHECKING:
    from autogen_core.models import ChatCompletionClient

    from .config import Settings

OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"
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


def unknown_model_info() -> dict[str, Any]:
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
            self._client.chat.completions.create(  # type: ignore[attr-defined]
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
        return await super().create(  # type: ignore[misc]
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
        inner = super().create_stream(  # type: ignore[misc]
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

    class SbteamOpenAIClient(_RequestShaping, OpenAIChatCompletionClient):  # type: ignore[misc,valid-type]
        pass

    SbteamOpenAIClient.__module__ = __name__
    return SbteamOpenAIClient


@functools.cache
def _azure_client_class() -> type:
    """`AzureOpenAIChatCompletionClient` with the same request shaping as `_client_class`."""
    from autogen_ext.models.openai import AzureOpenAIChatCompletionClient

    class SbteamAzureOpenAIClient(_RequestShaping, AzureOpenAIChatCompletionClient):  # type: ignore[misc,valid-type]
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


# --------------------------------------------------------------------------- errors

# A non-indented `Name: message` (or bare `Name`) line in a traceback: the exception
# lines, not the source lines (which are indented and may mention other error names).
_EXC_LINE = re.compile(r"^[A-Za-z_][\w.]*(?::\s.*)?$")
_STATUS = re.compile(r"error code:\s*(\d{3})")
_MODEL_IN_MSG = re.compile(r"model[`'\" ]+([^`'\"\s]+)[`'\"]")


def _error_text(error: BaseException | str) -> str:
    """`Type: message` lines for an exception and its causes; AutoGen's strings pass through."""
    if isinstance(error, str):
        return error
    lines: list[str] = []
    seen: set[int] = set()
    exc: BaseException | None = error
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        message = str(exc)
        lines.append(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)
        exc = exc.__cause__ or exc.__context__
    return "\n".join(lines)


def _signal(text: str) -> str:
    """First line plus the exception lines of any embedded traceback, lower-cased."""
    lines = text.strip().splitlines()
    if not lines:
        return ""
    kept = [lines[0]] + [line for line in lines[1:] if _EXC_LINE.match(line)]
    return "\n".join(kept).lower()


def _first_line(text: str, limit: int = 200) -> str:
    return one_line(text, limit) or "unknown error"


def _has(sig: str, *needles: str) -> bool:
    return any(n in sig for n in needles)


def classify_model_error(
    error: BaseException | str,
    settings: Settings | None = None,
    *,
    secrets: Iterable[str] | None = None,
    base_url: str | None = None,
    model: str | None = None,
) -> str:
    """One user-facing line for a model failure, naming the variable to fix.

    Works on the openai SDK's exceptions and on the text AutoGen leaves of them
    (`RuntimeError("AuthenticationError: Error code: 401 …\\nTraceback: …")`,
    where the type is lost). Never returns a secret: `secrets` defaults to
    `settings.secrets()`.
    """
    from .models_config import ModelConfigError

    if isinstance(error, ModelConfigError):  # already one line naming the file, line and agent
        return scrub(str(error), list(secrets or (settings.secrets() if settings is not None else ())))
    if settings is not None:
        base_url = base_url or settings.openai_api_base
        model = model or settings.openai_model
        if secrets is None:
            secrets = settings.secrets()
    secret_list = list(secrets or ())
    text = scrub(_error_text(error), secret_list)
    sig = _signal(text)
    base = base_url or OPENAI_DEFAULT_BASE
    status_match = _STATUS.search(sig)
    status = int(status_match.group(1)) if status_match else None

    if "unicodedecodeerror" in sig or "codec can't decode" in sig:
        line = (
            f"the model endpoint {base} sent text that is not UTF-8 (a broken proxy or server) — "
            "try again, or check OPENAI_API_BASE"
        )
    elif status == 401 or _has(sig, "authenticationerror", "invalid_api_key", "incorrect api key"):
        line = "the model endpoint rejected the API key (OPENAI_API_KEY)"
    elif status == 403 or "permissiondeniederror" in sig:
        line = "the model endpoint refused access (HTTP 403) — check the key's permissions (OPENAI_API_KEY)"
    elif _has(
        sig,
        "remoteprotocolerror",
        "peer closed connection",
        "incomplete chunked read",
        "server disconnected",
    ):
        line = f"the model endpoint {base} dropped the connection in the middle of an answer — try again"
    elif _has(
        sig,
        "apitimeouterror",
        "request timed out",
        "readtimeout",
        "connecttimeout",
        "timeouterror",
        "timed out",
    ):
        line = f"the model endpoint {base} did not answer in time — is it overloaded, or is the model still loading?"
    elif _has(
        sig,
        "apiconnectionerror",
        "connection error",
        "connecterror",
        "connection refused",
        "all connection attempts failed",
        "name or service not known",
        "nodename nor servname",
        "temporary failure in name resolution",
    ):
        line = f"cannot reach the model endpoint {base} (OPENAI_API_BASE) — is the server running?"
    elif status == 404 or _has(sig, "notfounderror", "model_not_found"):
        if _has(sig, "model", "does not exist"):
            found = _MODEL_IN_MSG.search(text)
            name = model or (found.group(1) if found else "?")
            line = f"the endpoint does not know model '{name}' (OPENAI_MODEL)"
        else:
            line = f"the endpoint {base} has no chat completions API (HTTP 404) — check OPENAI_API_BASE (it usually ends in /v1)"
    elif status == 429 or "ratelimiterror" in sig:
        if _has(sig, "quota", "billing"):
            line = "the model endpoint says the account is out of quota (HTTP 429) — check billing for OPENAI_API_KEY"
        else:
            line = "the model endpoint is rate-limiting requests (HTTP 429) — wait a moment and try again"
    elif (status is not None and status >= 500) or "internalservererror" in sig:
        line = f"the model endpoint failed (HTTP {status or 500}) — a server-side problem; try again or check the server's log"
    elif _has(sig, "context_length_exceeded", "maximum context length", "context window"):
        line = "the conversation no longer fits the model's context window — start a new run or use a larger model (OPENAI_MODEL)"
    elif _has(
        sig,
        "does not support tools",
        "tool_choice",
        "tools are not supported",
        "function calling is not",
    ):
        line = f"the model '{model or '?'}' does not support tool calling — choose one that does (OPENAI_MODEL)"
    elif _has(
        sig,
        "jsondecodeerror",
        "expecting value",
        "expecting property name",
        "unterminated string",
        "apiresponsevalidationerror",
        "'str' object has no attribute",
        "not openai-compatible",
    ):
        line = "the endpoint's answer is not OpenAI-compatible JSON — check OPENAI_API_BASE"
    elif status == 400 or "badrequesterror" in sig:
        detail = _first_line(text, 160).split(" - ", 1)[-1]
        line = f"the model endpoint rejected the request (HTTP 400): {detail}"
    else:
        line = _first_line(text)
    return scrub(line, secret_list)


# --------------------------------------------------------------------------- runaway replies


class DegenerateReply(Exception):
    """A second reply of the run repeated itself; the run ends with reason `degenerate`."""


def run_end_of(error: BaseException | str) -> tuple[str, str] | None:
    """(reason, message) when a model client ended the run on purpose (`budget`,
    `degenerate`), also from the text AutoGen relays (`RuntimeError("BudgetExceeded: …")`)."""
    from .cost import BudgetExceeded

    reasons = ((BudgetExceeded, "budget"), (DegenerateReply, "degenerate"))
    if isinstance(error, BaseException):
        for cls, reason in reasons:
            if isinstance(error, cls):
                return reason, str(error)
    for line in _error_text(error).splitlines():
        for cls, reason in reasons:
            marker = f"{cls.__name__}: "
            at = line.find(marker)
            if at >= 0 and (at == 0 or line[at - 1] in " :("):
                return reason, line[at + len(marker) :].strip()
    return None


class RepetitionDetector:
    """Notices a reply that repeats one piece of text over and over.

    Fed the streamed text chunk by chunk (a chunk is about a token). Every `EVERY`
    chunks it asks whether the text of the last `WINDOW` chunks is periodic with a
    period that fits at least three times (one phrase, one line, a number list), and
    every fourth time whether the last `LONG_WINDOW` chunks repeat a longer block
    twice. Exact repetition is what a runaway small model produces; prose, code and
    data do not repeat exactly for a hundred and fifty tokens.
    """

    WINDOW = 150
    LONG_WINDOW = 600
    EVERY = 8
    MAX_PERIOD = 2000  # characters
    TAIL = 16_000

    def __init__(self) -> None:
        self.tail = ""
        self._lens: list[int] = []
        self.count = 0
        self.period = 0

    def feed(self, chunk: str) -> bool:
        if not chunk:
            return False
        self.count += 1
        self.tail += chunk
        if len(self.tail) > 2 * self.TAIL:
            self.tail = self.tail[-self.TAIL :]
        self._lens.append(len(chunk))
        if len(self._lens) > 2 * self.LONG_WINDOW:
            del self._lens[: -self.LONG_WINDOW]
        if self.count < self.WINDOW or self.count % self.EVERY:
            return False
        if self._periodic(sum(self._lens[-self.WINDOW :]), 3):
            return True
        if self.count >= self.LONG_WINDOW and self.count % (4 * self.EVERY) == 0:
            return self._periodic(sum(self._lens[-self.LONG_WINDOW :]), 2)
        return False

    def _periodic(self, span: int, copies: int) -> bool:
        tail = self.tail
        span = min(span, len(tail))
        if span < 2 * copies:
            return False
        end = tail[-span:]
        last = tail[-1]
        for period in range(1, min(self.MAX_PERIOD, span // copies) + 1):
            if len(tail) < span + period or tail[-1 - period] != last:
                continue
            if tail[-span - period : -period] == end:
                self.period = period
                return True
        return False


def loop_start(text: str, period: int) -> int:
    """Where the repetition at the end of `text` (with `period`) begins."""
    i = len(text) - period - 1
    while i >= 0 and text[i] == text[i + period]:
        i -= 1
    return i + 1


# --------------------------------------------------------------------------- the client each agent gets

MAX_CORRECTIONS = 2  # written calls that cannot be used are sent back this often per request
CUT_DEGENERATE = " … [cut: the reply repeated itself]"
CUT_LENGTH = " … [cut: the reply reached max_tokens]"
_COMPLETION_TOKEN_MODELS = ("o1", "o3", "o4", "gpt-5")


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
        ModelInfo,
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

    class SbteamClient(ChatCompletionClient):  # type: ignore[misc]
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
            finally:
                await inner.aclose()  # also ends the server's generation of a cut reply
                attempt.text = "".join(parts)
                if not done:  # stopped or failed half-way: still count what streamed
                    self.meter.record(self.agent, attempt.prompt, attempt.chunks, reported=False)
            p, c = self._usage_of(attempt.result if not attempt.cut else None, attempt.prompt, attempt.chunks)
            self.meter.record(self.agent, p, c, reported=False)
            attempt.prompt, attempt.chunks = p, c
            yield attempt

        async def create_stream(  # type: ignore[override]
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
        async def create(  # type: ignore[override]
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
                except BaseException:
                    self.meter.record(self.agent, prompt, 0, reported=False)
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
        def capabilities(self) -> ModelCapabilities:  # type: ignore[override]
            return self.inner.capabilities

        @property
        def model_info(self) -> ModelInfo:
            return self.inner.model_info

    SbteamClient.__module__ = __name__
    return SbteamClient
