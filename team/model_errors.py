"""A model's failure as one line a person can act on, naming the variable to fix, and
the ends a client chose on purpose (`budget`, `degenerate`).

Works on the openai SDK's exceptions and on the text AutoGen leaves of them (the type is
often lost in a `RuntimeError` holding a traceback), so it reads exception lines only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .errors import one_line
from .redact import scrub

if TYPE_CHECKING:
    from .config import Settings

OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"

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
