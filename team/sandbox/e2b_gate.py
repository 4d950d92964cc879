"""E2B's account limits kept by this process, and creating a sandbox within them.

`CreationGate` (one per event loop): at most SBTEAM_E2B_CONCURRENCY sandboxes
alive at once and at most SBTEAM_E2B_RATE creations per second. `create_sdk`
sends `AsyncSandbox.create` when the gate allows and retries what is worth it
(refused, 5xx, a lost connection) with exponential backoff and jitter, under
one idempotency key (see `e2b.py`'s docstring for the whole policy).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
import uuid
import weakref
from collections import deque
from collections.abc import Mapping
from typing import Any

import httpx
from e2b import (
    AuthenticationException,
    InvalidArgumentException,
    NotFoundException,
    RateLimitException,
    SandboxException,
    ServiceBusyException,
    TimeoutException,
)
from e2b_code_interpreter import AsyncSandbox

from .base import SandboxError
from .e2b_errors import map_e2b_error

DEFAULT_CONCURRENCY = 20  # sandboxes alive at once (E2B Hobby: 20; Pro: 100)
DEFAULT_RATE = 1.0  # sandbox creations per second (E2B Hobby: 1; Pro: 5)
DEFAULT_CREATE_RETRIES = 6
BACKOFF_BASE = 1.0  # seconds before the first retry; doubles each time
BACKOFF_CAP = 30.0


def scale_limits(env: Mapping[str, str] | None = None) -> tuple[int, float, int]:
    """(concurrency, creations per second, creation retries) from SBTEAM_E2B_CONCURRENCY,
    SBTEAM_E2B_RATE and SBTEAM_E2B_RETRIES (the environment, then `.env`); `0` turns the
    cap or the rate limit off. ValueError with one line naming the variable when bad."""
    from team.config import dotenv_value

    source = os.environ if env is None else env

    def get(name: str) -> str | None:
        value = source.get(name)
        if value is not None and value.strip():
            return value.strip()
        return dotenv_value(name) if env is None else None

    def number(name: str, default: float, kind: type) -> float:
        raw = get(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            value = -1
        if value < 0:
            what = "a whole number" if kind is int else "a number"
            raise ValueError(f"{name} must be {what}, 0 or more (got {raw!r})")
        return value

    return (
        int(number("SBTEAM_E2B_CONCURRENCY", DEFAULT_CONCURRENCY, int)),
        float(number("SBTEAM_E2B_RATE", DEFAULT_RATE, float)),
        int(number("SBTEAM_E2B_RETRIES", DEFAULT_CREATE_RETRIES, int)),
    )


class CreationGate:
    """This process's share of the E2B account: how many sandboxes may be alive at
    once (`concurrency`, 0 = no cap) and how fast new ones may be created (`rate`
    per second, 0 = no limit). Creations are spaced 1/rate apart, first come first
    served; `hold_off(s)` pushes every later creation back (after a 429)."""

    def __init__(self, concurrency: int = DEFAULT_CONCURRENCY, rate: float = DEFAULT_RATE,
                 retries: int = DEFAULT_CREATE_RETRIES) -> None:
        self.concurrency = concurrency
        self.rate = rate
        self.retries = retries
        self._slots = asyncio.Semaphore(concurrency) if concurrency > 0 else None
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0  # loop time before which no creation may start
        self.alive = 0
        self.peak = 0  # most sandboxes alive at once
        self.attempts: deque[float] = deque(maxlen=10_000)  # loop time of the creation requests sent
        self.waiting = 0  # creations waiting for a slot

    async def acquire(self) -> None:
        """A slot for one sandbox (waits while `concurrency` are alive)."""
        if self._slots is not None:
            self.waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self.waiting -= 1
        self.alive += 1
        self.peak = max(self.peak, self.alive)

    def release(self) -> None:
        self.alive -= 1
        if self._slots is not None:
            self._slots.release()

    async def turn(self) -> None:
        """Wait until this process may send its next creation request."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self._next)
        self._next = start + self._interval
        if start > now:
            await asyncio.sleep(start - now)
        self.attempts.append(loop.time())

    def hold_off(self, seconds: float) -> None:
        """No creation before `seconds` from now (E2B said 429)."""
        loop = asyncio.get_running_loop()
        self._next = max(self._next, loop.time() + seconds)


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CreationGate] = weakref.WeakKeyDictionary()


def creation_gate() -> CreationGate:
    """The gate of the running event loop, made from the environment on first use."""
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        try:
            concurrency, rate, retries = scale_limits()
        except ValueError as exc:
            raise SandboxError(str(exc)) from None
        gate = _gates[loop] = CreationGate(concurrency, rate, retries)
    return gate


def configure_gate(concurrency: int = DEFAULT_CONCURRENCY, rate: float = DEFAULT_RATE,
                   retries: int = DEFAULT_CREATE_RETRIES) -> CreationGate:
    """Replace the running loop's gate (tests, benchmarks, a program that knows its plan)."""
    gate = _gates[asyncio.get_running_loop()] = CreationGate(concurrency, rate, retries)
    return gate


def backoff_delay(attempt: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Exponential backoff with jitter: base·2^attempt capped, times 0.5–1."""
    return min(cap, base * 2**attempt) * (0.5 + random.random() / 2)


def _refused(exc: BaseException) -> bool:
    """E2B said no without creating anything (rate limit, out of capacity): retry with a new key."""
    return isinstance(exc, (RateLimitException, ServiceBusyException)) or getattr(exc, "status_code", None) in (429, 503)


def _retryable(exc: BaseException) -> bool:
    """Worth another creation attempt: refused, a 5xx, a lost or timed-out connection."""
    if _refused(exc):
        return True
    if isinstance(exc, (AuthenticationException, InvalidArgumentException, NotFoundException)):
        return False
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status >= 500
    return isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError, TimeoutException)) or (
        isinstance(exc, SandboxException) and bool(re.match(r"5\d\d:", str(exc)))
    )


async def create_sdk(
    kwargs: dict[str, Any], retries: int | None = None, backoff: float = BACKOFF_BASE
) -> AsyncSandbox:
    """`AsyncSandbox.create` paced by the gate and retried (see the module docstring).
    `retries` defaults to the SDK's `retries` option when the caller gave one (0 = no
    retries at all), else to the gate's (SBTEAM_E2B_RETRIES)."""
    gate = creation_gate()
    if retries is None:
        retries = kwargs["retries"] if isinstance(kwargs.get("retries"), int) else gate.retries
    key = uuid.uuid4().hex
    started = time.monotonic()
    attempt = 0
    while True:
        await gate.turn()
        try:
            return await AsyncSandbox.create(**kwargs, idempotency_key=key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if attempt >= retries or not _retryable(exc):
                error = map_e2b_error(exc)
                if attempt:
                    error = SandboxError(
                        f"{error} (gave up after {attempt + 1} attempts in {time.monotonic() - started:.0f} s)"
                    )
                raise error from exc
            delay = backoff_delay(attempt, backoff)
            if _refused(exc):
                key = uuid.uuid4().hex  # nothing was made: a fresh request
                gate.hold_off(delay)
            attempt += 1
            await asyncio.sleep(delay)
