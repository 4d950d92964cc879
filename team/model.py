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

from .redact import scrub

if TYPE_CHECKING:
    from autogen_core.models import ChatCompletionClient

    from .config import Settings

OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"
#: Sent as the key to local servers (Ollama, vLLM, llama.cpp) that need none;
#: the openai SDK refuses to build a client without some key.
PLACEHOLDER_KEY = "not-needed"

MODEL_TOOL_TEXT_ERROR = (
    "the model wrote a tool call as plain text instead of calling the tool — "
    "choose a model with function/tool calling (OPENAI_MODEL)"
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
    public `create`/`create_stream` parameters are touched.
    """
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    def extra_args(tools: Sequence[Any], extra: Mapping[str, Any]) -> Mapping[str, Any]:
        if tools and "parallel_tool_calls" not in extra:
            return {**extra, "parallel_tool_calls": False}
        return extra

    class SbteamOpenAIClient(OpenAIChatCompletionClient):  # type: ignore[misc,valid-type]
        async def _create_stream_chunks(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
            inner = super()._create_stream_chunks(*args, **kwargs)
            try:
                async for chunk in merge_argument_deltas(inner):
                    yield chunk
            finally:
                await inner.aclose()

        async def create(  # type: ignore[override]
            self,
            messages: Sequence[Any],
            *,
            tools: Sequence[Any] = (),
            extra_create_args: Mapping[str, Any] = {},
            **kw: Any,
        ) -> Any:
            return await super().create(
                messages,
                tools=list(tools),
                extra_create_args=extra_args(tools, extra_create_args),
                **kw,
            )

        async def create_stream(  # type: ignore[override]
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
            inner = super().create_stream(
                messages,
                tools=list(tools),
                extra_create_args=extra_args(tools, extra_create_args),
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

    return SbteamOpenAIClient


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
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "unknown error")
    return line if len(line) <= limit else line[: limit - 1] + "…"


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


# --------------------------------------------------------------------------- tool calls as text

_MARKERS = (
    "<tool_call>",
    "<|tool_call|>",
    "<|python_tag|>",
    "[tool_calls]",
    "<function_call>",
    "<function=",
    "<|action_start|>",
)
_FENCE = re.compile(r"```[ \t]*(json|tool_call|tool|javascript|js|)[ \t]*\n(.*?)```", re.S | re.I)
_ARG_KEYS = ("arguments", "parameters", "args", "input", "tool_input")
_IDENT = re.compile(r"^[A-Za-z_][\w.\-]*$")


def _tool_like(obj: Any, names: set[str]) -> bool:
    if isinstance(obj, list):
        return bool(obj) and all(_tool_like(o, names) for o in obj)
    if not isinstance(obj, dict):
        return False
    if isinstance(obj.get("function"), dict):
        return _tool_like(obj["function"], names)
    if isinstance(obj.get("tool_calls"), list):
        return _tool_like(obj["tool_calls"], names)
    name = obj.get("name", obj.get("tool", obj.get("tool_name")))
    if not isinstance(name, str) or not _IDENT.match(name):
        return False
    has_args = any(k in obj for k in _ARG_KEYS)
    if has_args and len(obj) <= 4:
        return True
    # {"name": "run_code"} alone, or with call-ish keys only
    return name in names and set(obj) <= {"name", "tool", "tool_name", "id", "type", *_ARG_KEYS}


def _json_tool_like(candidate: str, names: set[str]) -> bool:
    candidate = candidate.strip()
    if not candidate or candidate[0] not in "{[":
        return False
    try:
        obj, end = json.JSONDecoder().raw_decode(candidate)
    except ValueError:
        return False
    return candidate[end:].strip() == "" and _tool_like(obj, names)


def looks_like_text_tool_call(text: str | None, tool_names: Iterable[str] = ()) -> bool:
    """True when a model *wrote* a tool call instead of making one.

    Models without (working) tool calling do this: the answer is
    `{"name": "run_code", "arguments": …}`, a `<tool_call>` block, a fenced JSON
    call, or starts with `run_code(`/`transfer_to_x(`. Prose that merely mentions
    a tool, and ordinary JSON data, do not count.
    """
    if not text:
        return False
    names = {n for n in tool_names if n}
    stripped = text.strip()
    lowered = stripped.lower()
    if any(m in lowered for m in _MARKERS):
        return True
    if _json_tool_like(stripped, names):
        return True
    for match in _FENCE.finditer(stripped):
        if _json_tool_like(match.group(2), names):
            return True
    # JSON call after a short preamble: "Sure, calling it now:\n{...}"
    for match in re.finditer(r"(?m)^[ \t]*[{\[]", stripped):
        if _json_tool_like(stripped[match.start() :], names):
            return True
    # Python-call or ReAct style at the start of the answer (or of its first fence).
    body = re.sub(r"^```[\w-]*[ \t]*\n", "", stripped)
    call_names = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    head = rf"(?:functions\.)?(?:transfer_to_\w+{'|' + call_names if call_names else ''})"
    if re.match(rf"{head}\s*\(", body):
        return True
    return bool(call_names and re.match(rf"(?i)action:\s*(?:{call_names})\b", body))
