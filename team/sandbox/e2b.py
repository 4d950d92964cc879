"""The E2B cloud backend: `e2b_code_interpreter.AsyncSandbox` behind the `Sandbox` interface.

Modules: this one (the sandbox: run, interrupt, recreate, pip), `e2b_files`
(its `files`), `e2b_errors` (one-line errors), `e2b_gate` (account limits and
creation retries).

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
* E2B's account limits, kept by this process (`e2b_gate.CreationGate`, one per event loop):
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
import os
import shlex
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from e2b import (
    CommandExitException,
    FileNotFoundException,
    InvalidArgumentException,
    NotEnoughSpaceException,
    NotFoundException,
    SandboxNotFoundException,
    SandboxNotRunningException,
    TimeoutException,
)
from e2b_code_interpreter import AsyncSandbox
from e2b_code_interpreter.exceptions import format_sandbox_killed_error
from e2b_code_interpreter.models import Execution, ExecutionError, Logs, OutputMessage

if TYPE_CHECKING:
    from team.config import Settings

from team.sandbox.base import (
    ErrorHandler,
    KernelRestarted,
    OutputHandler,
    ResultHandler,
    SandboxError,
)
from team.sandbox.e2b_errors import (
    AUTH_MESSAGE,
    BUSY_MESSAGE,
    NO_KEY_MESSAGE,
    RATE_LIMIT_MESSAGE,
    map_e2b_error,
)
from team.sandbox.e2b_files import WALK_DEPTH, E2BFiles
from team.sandbox.e2b_gate import (
    BACKOFF_BASE,
    DEFAULT_CONCURRENCY,
    DEFAULT_CREATE_RETRIES,
    DEFAULT_RATE,
    CreationGate,
    backoff_delay,
    configure_gate,
    create_sdk,
    creation_gate,
    scale_limits,
)
from team.sandbox.output import call_handler
from team.sandbox.requirements import check_requirement

__all__ = [  # what callers import from here; errors and the gate live in e2b_errors/e2b_gate
    "AUTH_MESSAGE", "BACKOFF_BASE", "BUSY_MESSAGE", "DEFAULT_CONCURRENCY", "DEFAULT_CREATE_RETRIES",
    "DEFAULT_RATE", "NO_KEY_MESSAGE", "RATE_LIMIT_MESSAGE", "WALK_DEPTH", "CreationGate", "E2BFiles",
    "E2BSandbox", "backoff_delay", "check_e2b_status", "configure_gate", "creation_gate", "map_e2b_error",
    "scale_limits",
]  # fmt: skip

T = TypeVar("T")

STATE_LOST_MESSAGE = (
    "the E2B sandbox had expired (or was killed) and was recreated: "
    "earlier variables, files and installed packages are lost"
)
RESTARTED_ERROR_NAME = "SandboxRestarted"
INTERRUPTED_ERROR_NAME = "KeyboardInterrupt"

# Domain errors of the SDK that say something about the user's request, not the
# connection or the sandbox's life: passed through unchanged.
_PASS_THROUGH = (
    FileNotFoundException,
    InvalidArgumentException,
    NotEnoughSpaceException,
    CommandExitException,
)


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
            sdk = await create_sdk(kwargs, create_retries, backoff)
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
        await call_handler(on_error, execution.error)
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
                await call_handler(user, message)

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
        await call_handler(on_error, error)
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
            self._sdk = await create_sdk(self._create_kwargs, self._retries, self._backoff)
            self._generation += 1
            self.restarts += 1


def _is_own_report(exc: BaseException) -> bool:
    """The SDK's execution timeout: passed through unchanged, like the SDK and
    `LocalSandbox` raise it (the server already interrupted the cell)."""
    return isinstance(exc, TimeoutException) and "execution timed out" in str(exc).lower()


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


async def start(settings: Settings) -> E2BSandbox:
    """`create_sandbox` for `SBTEAM_SANDBOX=e2b` (team/sandbox/kinds.py). E2B counts a
    sandbox's life from creation, not idleness (default 300 s): give it an hour, or twice the
    run limit, so long sessions don't expire."""
    lifetime = int(max(3600, 2 * settings.timeout))
    return await E2BSandbox.create(api_key=settings.e2b_api_key, timeout=lifetime)
