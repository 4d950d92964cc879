"""The E2B cloud backend: `e2b_code_interpreter.AsyncSandbox` behind the `Sandbox` interface.

What this adds over the bare SDK, and why:

* one-line `SandboxError`s a person can act on (bad key, rate limit, no network)
  instead of the SDK's multi-sentence exceptions;
* `interrupt()`: E2B has no interrupt call, but its code-interpreter server
  interrupts the kernel when the client disconnects from `POST /execute`
  (template/server/messaging.py, "Client disconnected during execution ...
  interrupting kernel"). The SDK streams that request over a dedicated
  HTTP/1.1 connection, so cancelling the in-flight `run_code` task closes the
  connection and the kernel stops *with its state kept*; the caller's
  `run_code` returns promptly with a `KeyboardInterrupt` error;
* a sandbox that expired (E2B kills idle sandboxes after their timeout) is
  recreated ONCE per failing call. `run_code` then runs the cell again in the
  new sandbox and returns its `Execution` with `error.name == "SandboxRestarted"`
  saying that earlier variables and files are lost. File operations and
  `install_package` recreate too but raise `KernelRestarted` with the same
  message (they have no `Execution` to carry it), so the caller can retry;
* `install_package` checks the requirement first and gives pip 600 s instead of
  the SDK's 60 s command default;
* E2B's account limits, kept by this process (`CreationGate`, one per event loop):
  at most SBTEAM_E2B_CONCURRENCY sandboxes alive at once and at most SBTEAM_E2B_RATE
  creations per second (defaults 20 and 1, E2B's Hobby tier; Pro: 100 and 5). A creation refused with 429/503, a 5xx or a lost connection is retried
  with exponential backoff and jitter (1 s doubling to 30 s, each wait 50–100 % of
  that), SBTEAM_E2B_RETRIES times (default 6); a 429 also holds back every other
  creation of the process for that wait. The SDK's own transport retries run first
  and honour `Retry-After` (its exceptions drop the headers, so ours cannot).
  Each creation sends one idempotency key, kept across retries after an ambiguous
  failure (a 5xx or a lost connection: the sandbox may exist) and renewed after a
  refusal, so a retry never makes a second sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import random
import re
import shlex
import time
import urllib.parse
import uuid
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx
from e2b import (
    AuthenticationException,
    CommandExitException,
    FileNotFoundException,
    InvalidArgumentException,
    NotEnoughSpaceException,
    NotFoundException,
    RateLimitException,
    SandboxException,
    SandboxNotFoundException,
    SandboxNotRunningException,
    SandboxUnreachableException,
    ServiceBusyException,
    TimeoutException,
)
from e2b_code_interpreter import AsyncSandbox
from e2b_code_interpreter.exceptions import format_sandbox_killed_error
from e2b_code_interpreter.models import Execution, ExecutionError, Logs, OutputMessage

from team.sandbox.base import (
    ErrorHandler,
    KernelRestarted,
    OutputHandler,
    ResultHandler,
    SandboxError,
)
from team.sandbox.requirements import check_requirement

T = TypeVar("T")

AUTH_MESSAGE = "E2B rejected the API key (E2B_API_KEY) — check it at e2b.dev/dashboard"
NO_KEY_MESSAGE = "E2B_API_KEY is not set — create a key at e2b.dev/dashboard"
RATE_LIMIT_MESSAGE = (
    "E2B rate limit reached (too many requests or running sandboxes for this key) — "
    "wait a minute and retry"
)
BUSY_MESSAGE = "E2B is temporarily out of capacity (503) — retry in a moment"
STATE_LOST_MESSAGE = (
    "the E2B sandbox had expired (or was killed) and was recreated: "
    "earlier variables, files and installed packages are lost"
)
RESTARTED_ERROR_NAME = "SandboxRestarted"
INTERRUPTED_ERROR_NAME = "KeyboardInterrupt"
WALK_DEPTH = 64  # "the whole tree" for envd's list (it has no unlimited depth)

# Domain errors of the SDK that say something about the user's request, not the
# connection or the sandbox's life: passed through unchanged.
_PASS_THROUGH = (
    FileNotFoundException,
    InvalidArgumentException,
    NotEnoughSpaceException,
    CommandExitException,
)


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    text = text or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _network_detail(exc: BaseException) -> str:
    """`host:port: reason` out of the SDK's long transport messages."""
    text = _one_line(exc, 400)
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
    text = _one_line(exc)
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


# ---- account limits: concurrency cap, creation rate, retries ---------------------------

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


async def _create_sdk(
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


class E2BFiles:
    """`sandbox.files` that follows the current SDK sandbox across a recreate.

    The six `Files` methods map errors and recreate an expired sandbox; any
    other SDK filesystem method (get_info, rename, write_files, watch_dir …)
    is forwarded as is.
    """

    def __init__(self, owner: E2BSandbox) -> None:
        self._owner = owner

    async def read(self, path: str, format: str = "text", **kw: Any) -> Any:
        return await self._owner._call(lambda sdk: sdk.files.read(path, format=format, **kw))

    async def write(self, path: str, data: Any, **kw: Any) -> Any:
        return await self._owner._call(lambda sdk: sdk.files.write(path, data, **kw))

    async def list(self, path: str, depth: int | None = 1, **kw: Any) -> list[Any]:
        return await self._owner._call(lambda sdk: sdk.files.list(path, depth=depth, **kw))

    async def exists(self, path: str, **kw: Any) -> bool:
        return await self._owner._call(lambda sdk: sdk.files.exists(path, **kw))

    async def remove(self, path: str, **kw: Any) -> None:
        await self._owner._call(lambda sdk: sdk.files.remove(path, **kw))

    async def make_dir(self, path: str, **kw: Any) -> bool:
        return await self._owner._call(lambda sdk: sdk.files.make_dir(path, **kw))

    async def read_head(self, path: str, max_bytes: int) -> tuple[bytes, int]:
        """(at most `max_bytes` from the start, the file's size): streamed, then closed early."""
        info = await self._owner._call(lambda sdk: sdk.files.get_info(path))

        async def head(sdk: Any) -> bytes:
            stream = await sdk.files.read(path, format="stream")
            data = bytearray()
            try:
                async for chunk in stream:
                    data += chunk
                    if len(data) >= max_bytes:
                        break
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()
            return bytes(data[:max_bytes])

        return await self._owner._call(head), int(getattr(info, "size", 0) or 0)

    async def walk(self, path: str, max_entries: int) -> tuple[list[Any], bool]:
        """The whole tree under `path` (envd lists to any depth), at most `max_entries`."""
        entries = await self._owner._call(lambda sdk: sdk.files.list(path, depth=WALK_DEPTH))
        return entries[:max_entries], len(entries) > max_entries

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner.sdk.files, name)


class E2BSandbox:
    """`team.sandbox.base.Sandbox` over an E2B cloud sandbox (see the module docstring)."""

    kind = "e2b"
    isolation = "e2b"

    def __init__(
        self, sdk: AsyncSandbox, create_kwargs: dict[str, Any], gate: CreationGate | None = None,
        retries: int | None = None, backoff: float = BACKOFF_BASE,
    ) -> None:
        """Wrap an SDK sandbox; `create_kwargs` are what `AsyncSandbox.create` needs to recreate it.
        `gate`: the slot this sandbox holds, given back by `kill()`."""
        self._sdk = sdk
        self._create_kwargs = dict(create_kwargs)
        self._gate = gate
        self._retries = retries
        self._backoff = backoff
        self._generation = 0
        self._side: tuple[int, Any] | None = None  # (generation, code context) of run_side
        self._recreate_lock = asyncio.Lock()
        self._inflight: asyncio.Task[Execution] | None = None
        self._interrupt_requested = False
        self._killed = False
        self.restarts = 0
        self.files = E2BFiles(self)

    @classmethod
    async def create(
        cls,
        api_key: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the sandbox lifetime, not a deadline
        envs: dict[str, str] | None = None,
        *,
        create_retries: int | None = None,
        backoff: float = BACKOFF_BASE,
        **sdk_kwargs: Any,
    ) -> E2BSandbox:
        """Start a sandbox. `timeout` is the sandbox lifetime in seconds (E2B's default is
        300); `sdk_kwargs` go to `AsyncSandbox.create` (template, debug, api_url,
        sandbox_url, domain, request_timeout, retries …). Waits for a slot and a turn
        of the process's `CreationGate`; `create_retries` and `backoff` (first wait,
        seconds) tune the retries of a refused or failed creation."""
        kwargs = dict(sdk_kwargs)
        if api_key:
            kwargs["api_key"] = api_key
        if timeout is not None:
            kwargs["timeout"] = int(timeout)
        if envs:
            kwargs["envs"] = dict(envs)
        gate = creation_gate()
        await gate.acquire()
        try:
            sdk = await _create_sdk(kwargs, create_retries, backoff)
        except BaseException:
            gate.release()
            raise
        return cls(sdk, kwargs, gate, create_retries, backoff)

    @property
    def sdk(self) -> AsyncSandbox:
        """The current SDK sandbox (a different object after a recreate)."""
        return self._sdk

    @property
    def sandbox_id(self) -> str:
        return self._sdk.sandbox_id

    # ---- code ------------------------------------------------------------------------
    async def run_code(
        self,
        code: str,
        *,
        on_stdout: OutputHandler | None = None,
        on_stderr: OutputHandler | None = None,
        on_result: ResultHandler | None = None,
        on_error: ErrorHandler | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - part of the Sandbox interface
    ) -> Execution:
        """Run a cell. Cell errors, `interrupt()` (error name "KeyboardInterrupt") and a
        recreated sandbox ("SandboxRestarted") come back inside the `Execution`; as in the
        SDK, an execution timeout raises e2b's `TimeoutException("Execution timed out …")`
        and `kill()` mid-cell its "sandbox was killed" one; other failures raise a
        one-line `SandboxError`."""
        self._ensure_open()
        handlers = (on_stdout, on_stderr, on_result, on_error)
        generation = self._generation
        try:
            return await self._run_tracked(code, handlers, envs, timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if _is_own_report(exc) or self._killed:
                raise
            if not await self._looks_expired(exc):
                raise map_e2b_error(exc) from exc
            await self._recreate(generation)
        try:
            execution = await self._run_tracked(code, handlers, envs, timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if _is_own_report(exc) or self._killed:
                raise
            raise SandboxError(
                f"{STATE_LOST_MESSAGE}, and the new one failed too: {map_e2b_error(exc)}"
            ) from exc
        previous = execution.error
        value = f"{STATE_LOST_MESSAGE}; this cell was run again in the new sandbox"
        if previous is not None:
            value += f" and failed: {previous.name}: {previous.value}"
        execution.error = ExecutionError(
            RESTARTED_ERROR_NAME, value, previous.traceback if previous else ""
        )
        await _call_handler(on_error, execution.error)
        return execution

    async def _run_tracked(
        self,
        code: str,
        handlers: tuple[Any, Any, Any, Any],
        envs: dict[str, str] | None,
        timeout: float | None,  # noqa: ASYNC109 - passed to the SDK
    ) -> Execution:
        """One SDK `run_code` as a task that `interrupt()` can cancel."""
        on_stdout, on_stderr, on_result, on_error = handlers
        stdout: list[str] = []
        stderr: list[str] = []

        def tee(
            sink: list[str], user: OutputHandler | None
        ) -> Callable[[OutputMessage], Awaitable[None]]:
            async def handler(message: OutputMessage) -> None:
                sink.append(message.line)
                await _call_handler(user, message)

            return handler

        self._interrupt_requested = False
        task = asyncio.ensure_future(
            self._sdk.run_code(
                code,
                on_stdout=tee(stdout, on_stdout),
                on_stderr=tee(stderr, on_stderr),
                on_result=on_result,
                on_error=on_error,
                envs=envs,
                timeout=timeout,
            )
        )
        self._inflight = task
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not (
                task.cancelled()
                and self._interrupt_requested
                and current is not None
                and current.cancelling() == 0
            ):
                raise
            if self._killed:  # as the SDK (and LocalSandbox) report a kill mid-request
                raise format_sandbox_killed_error() from None
            error = ExecutionError(
                INTERRUPTED_ERROR_NAME,
                "the cell was interrupted; variables defined before it are kept",
                "",
            )
        finally:
            if self._inflight is task:
                self._inflight = None
        execution = Execution(logs=Logs(stdout=stdout, stderr=stderr), error=error)
        await _call_handler(on_error, error)
        return execution

    async def interrupt(self) -> None:
        """Cancel the running cell: closing the `/execute` stream makes E2B's server
        interrupt the kernel, which keeps its state. No-op when nothing runs."""
        task = self._inflight
        if task is None or task.done():
            return
        self._interrupt_requested = True
        task.cancel()
        await asyncio.wait({task}, timeout=10)

    # ---- packages --------------------------------------------------------------------
    async def install_package(
        self,
        package_name: str,
        timeout: float = 600,  # noqa: ASYNC109 - part of the Sandbox interface
    ) -> tuple[bool, str]:
        """pip-install one requirement (refused unless it is a plain requirement)."""
        reason = check_requirement(package_name)
        if reason is not None:
            return False, f"refused to install: {reason}"
        command = f"pip install {shlex.quote(package_name.strip())}"
        try:
            result = await self._call(lambda sdk: sdk.commands.run(command, timeout=timeout))
        except CommandExitException as exc:
            output = ((exc.stdout or "") + (exc.stderr or "")).strip()
            return False, output or exc.error or f"pip exited with status {exc.exit_code}"
        return True, ((result.stdout or "") + (result.stderr or "")).strip()

    # ---- life ------------------------------------------------------------------------
    async def is_running(self) -> bool:
        if self._killed:
            return False
        try:
            return bool(await self._sdk.is_running(request_timeout=10))
        except asyncio.CancelledError:
            raise
        except Exception:
            return False

    async def kill(self) -> None:
        """Kill the sandbox; safe to call twice or after it expired."""
        if self._killed:
            return
        self._killed = True
        gate, self._gate = self._gate, None
        task = self._inflight
        if task is not None and not task.done():
            self._interrupt_requested = True
            task.cancel()
        try:
            with contextlib.suppress(Exception):
                await self._sdk.kill(request_timeout=10)
        finally:
            if gate is not None:  # the slot is free once E2B has let the sandbox go
                gate.release()

    # ---- internals -------------------------------------------------------------------
    def _ensure_open(self) -> None:
        if self._killed:
            raise SandboxError("the E2B sandbox was closed")

    async def run_side(self, code: str, timeout: float = 120) -> Execution:  # noqa: ASYNC109
        """Run code that is not the team's (previews, data descriptions) in a code context
        of its own, so it neither waits for nor disturbs the team's kernel."""
        if self._side is None or self._side[0] != self._generation:
            context = await self._call(lambda sdk: sdk.create_code_context())
            self._side = (self._generation, context)
        context = self._side[1]
        return await self._call(lambda sdk: sdk.run_code(code, context=context, timeout=timeout))

    async def _call(self, op: Callable[[AsyncSandbox], Awaitable[T]]) -> T:
        """Run one SDK operation with error mapping and recreate-on-expiry (then raise
        `KernelRestarted`, since the caller's earlier files are gone)."""
        self._ensure_open()
        generation = self._generation
        try:
            return await op(self._sdk)
        except asyncio.CancelledError:
            raise
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            if not await self._looks_expired(exc):
                raise map_e2b_error(exc) from exc
            await self._recreate(generation)
            raise KernelRestarted(f"{STATE_LOST_MESSAGE}; retry the operation") from exc

    async def _looks_expired(self, exc: BaseException) -> bool:
        """Whether `exc` means the sandbox is gone (as opposed to a bad request or no network)."""
        if isinstance(exc, _PASS_THROUGH):
            return False
        if isinstance(exc, (SandboxNotRunningException, SandboxNotFoundException)):
            return True
        text = str(exc).lower()
        suspicious = isinstance(exc, NotFoundException) or (
            isinstance(exc, TimeoutException)
            and any(s in text for s in ("was not found", "sandbox was killed", "sandbox timeout"))
        )
        if not suspicious:
            return False
        try:
            return not await self._sdk.is_running(request_timeout=10)
        except asyncio.CancelledError:
            raise
        except Exception:
            return True

    async def _recreate(self, generation: int) -> None:
        """Replace a dead sandbox with a fresh one, once even if several calls noticed."""
        async with self._recreate_lock:
            if self._killed:
                raise SandboxError("the E2B sandbox was closed")
            if self._generation != generation:
                return
            old = self._sdk
            with contextlib.suppress(Exception):
                await old.kill(request_timeout=5)
            self._sdk = await _create_sdk(self._create_kwargs, self._retries, self._backoff)
            self._generation += 1
            self.restarts += 1


def _is_own_report(exc: BaseException) -> bool:
    """The SDK's execution timeout: passed through unchanged, like the SDK and
    `LocalSandbox` raise it (the server already interrupted the cell)."""
    return isinstance(exc, TimeoutException) and "execution timed out" in str(exc).lower()


async def _call_handler(handler: Callable[[Any], Any] | None, value: Any) -> None:
    if handler is None:
        return
    result = handler(value)
    if inspect.isawaitable(result):
        await result


async def check_e2b_status(api_key: str | None, **sdk_kwargs: Any) -> tuple[bool, str]:
    """For `doctor`: can we reach the E2B API and does it accept the key? (No sandbox is
    started; listing sandboxes is the cheapest authenticated call.)"""
    if not (api_key or os.environ.get("E2B_API_KEY")):
        return False, NO_KEY_MESSAGE
    kwargs = {"request_timeout": 15, **sdk_kwargs}
    if api_key:
        kwargs["api_key"] = api_key
    try:
        await AsyncSandbox.list(limit=1, **kwargs).next_items()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return False, str(map_e2b_error(exc))
    return True, "E2B API reachable and the API key is valid"
