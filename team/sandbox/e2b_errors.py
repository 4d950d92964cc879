"""E2B's failures as one line a person can act on (bad key, rate limit, no network).

The SDK's exceptions are several sentences long, or a transport error with a
URL inside; `map_e2b_error` turns any of them into a `SandboxError` that names
the cause and what to do.
"""

from __future__ import annotations

import re
import urllib.parse

import httpx
from e2b import (
    AuthenticationException,
    RateLimitException,
    SandboxNotFoundException,
    SandboxNotRunningException,
    SandboxUnreachableException,
    ServiceBusyException,
    TimeoutException,
)

from team.errors import one_line

from .base import SandboxError

AUTH_MESSAGE = "E2B rejected the API key (E2B_API_KEY) — check it at e2b.dev/dashboard"
NO_KEY_MESSAGE = "E2B_API_KEY is not set — create a key at e2b.dev/dashboard"
RATE_LIMIT_MESSAGE = (
    "E2B rate limit reached (too many requests or running sandboxes for this key) — "
    "wait a minute and retry"
)
BUSY_MESSAGE = "E2B is temporarily out of capacity (503) — retry in a moment"





def _network_detail(exc: BaseException) -> str:
    """`host:port: reason` out of the SDK's long transport messages."""
    text = one_line(exc, 400)
    host = ""
    match = re.search(r"url \((\S+?)\)", text)
    if match:
        host = urllib.parse.urlsplit(match.group(1)).netloc
    reason = text.rsplit(": ", 1)[-1] if ": " in text else text
    return f"{host}: {reason}" if host else reason


def map_e2b_error(exc: BaseException) -> SandboxError:
    """Turn any SDK or transport exception into a one-line `SandboxError`."""
    if isinstance(exc, SandboxError):
        return exc
    text = one_line(exc)
    status = getattr(exc, "status_code", None)
    if isinstance(exc, AuthenticationException):
        if "api key is required" in str(exc).lower():
            return SandboxError(NO_KEY_MESSAGE)
        return SandboxError(AUTH_MESSAGE)
    if isinstance(exc, RateLimitException) or status == 429:
        return SandboxError(RATE_LIMIT_MESSAGE)
    if isinstance(exc, ServiceBusyException):
        return SandboxError(BUSY_MESSAGE)
    if isinstance(exc, (SandboxNotRunningException, SandboxNotFoundException)):
        return SandboxError("the E2B sandbox is no longer running (it expired or was killed)")
    if isinstance(exc, SandboxUnreachableException):
        return SandboxError(f"cannot reach the E2B sandbox ({text}); check the network or proxy")
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, ConnectionError)):
        return SandboxError(
            f"cannot reach E2B ({_network_detail(exc)}); check the network or proxy"
        )
    if isinstance(exc, (TimeoutException, httpx.TimeoutException, TimeoutError)):
        return SandboxError(f"E2B did not answer in time ({text}); check the network or proxy")
    if isinstance(exc, httpx.TransportError):
        return SandboxError(
            f"cannot reach E2B ({_network_detail(exc)}); check the network or proxy"
        )
    return SandboxError(f"E2B error: {text}")
