"""One code context and one cell run in it: the state `KernelBackend.run_code` works on.

`CodeContext` is E2B's code context (one kernel, its own variables and working
folder) plus the bookkeeping that makes `interrupt()` reliable: an epoch counter
(a call made before the last interrupt stops, a later one does not) and when
the interrupt was last sent. `Cell` follows one execute_request to its end,
weighing every `POLL`: this cell's output (as E2B's objects, to the callbacks at
once and bounded in the `Execution`), an interrupt that came before the cell
started (an idle kernel ignores it, so it is sent again), the backend's watch
(a limit), the deadline, and the grace after an interrupt past which the kernel
is replaced. The E2B SDK's models are imported when a cell runs.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .base import WORKDIR, ErrorHandler, OutputHandler, ResultHandler
from .jupyter import POLL, Kernel
from .output import OutputKeeper, ResultKeeper, call_handler, to_result

if TYPE_CHECKING:
    from e2b_code_interpreter.models import Context, Execution

    from .kernel import KernelBackend

INTERRUPT_GRACE = 3.0  # after an interrupt, how long before the kernel is replaced
RESEND_AFTER = 1.0  # an interrupt with no effect after this long is sent again
DIED_MESSAGE = (
    "the kernel died (os._exit/segfault/out of memory); a fresh kernel was started "
    "and earlier variables are lost"
)


@dataclass
class CodeContext:
    """E2B's code context: one kernel with its own state and working folder."""

    id: str
    cwd: str = WORKDIR
    language: str = "python"
    kernel: Kernel | None = None
    generations: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    interrupt_epoch: int = 0  # interrupt() count; a call made before the last one stops
    interrupt_sent_at: float = 0.0
    lost_state: str = ""  # why the kernel was replaced in the background, told at the next call

    def as_e2b(self) -> Context:
        from e2b_code_interpreter.models import Context

        return Context(context_id=self.id, language=self.language, cwd=self.cwd)


@dataclass
class Handlers:
    """The callbacks of one `run_code` call."""

    on_stdout: OutputHandler | None = None
    on_stderr: OutputHandler | None = None
    on_result: ResultHandler | None = None
    on_error: ErrorHandler | None = None


class Cell:
    """One execute_request on `ctx`'s kernel, followed to its end (see the module doc)."""

    def __init__(
        self,
        backend: KernelBackend,
        ctx: CodeContext,
        kernel: Kernel,
        execution: Execution,
        handlers: Handlers,
        *,
        epoch: int,
        timeout: float | None,  # noqa: ASYNC109
    ) -> None:
        self.backend, self.ctx, self.kernel = backend, ctx, kernel
        self.execution, self.handlers = execution, handlers
        self.epoch = epoch  # ctx.interrupt_epoch when the call was made
        self.timeout = timeout
        self.msg_id = ""
        self.deadline: float | None = None
        self.interrupted_at: float | None = None
        self.stopped_by: str | None = None  # a backend watch that stopped the cell says why
        self.started = self.finished = False
        self.started_at = 0.0
        self.next_watch = 0.0
        self.stdout = OutputKeeper(execution.logs.stdout)
        self.stderr = OutputKeeper(execution.logs.stderr)
        self.results = ResultKeeper(execution.results)

    async def run(self, code: str) -> bool:
        """Send the cell and collect its iopub output; True if the kernel died."""
        from e2b_code_interpreter.exceptions import (
            format_execution_timeout_error,
            format_sandbox_killed_error,
        )
        from e2b_code_interpreter.models import ExecutionError

        ctx, kernel, backend = self.ctx, self.kernel, self.backend
        loop = asyncio.get_running_loop()
        if ctx.interrupt_epoch > self.epoch:  # interrupted while waiting for its turn
            await self._error(ExecutionError("KeyboardInterrupt", "interrupted before it started", ""))
            return False
        self.msg_id = kernel.execute(code)
        self.deadline = loop.time() + self.timeout if self.timeout else None
        self.next_watch = loop.time() + 1.0
        try:
            while not self.finished:
                wait = POLL
                if self.deadline is not None and self.interrupted_at is None:
                    wait = max(0.0, min(POLL, self.deadline - loop.time()))
                msg = await kernel.next_output(wait)
                if backend._killed:
                    raise format_sandbox_killed_error()
                if msg is None and not kernel.usable():
                    return True
                if await self._tick(loop.time()):
                    return False
                if msg is not None and msg["parent_header"].get("msg_id") == self.msg_id:
                    await self._handle(msg["msg_type"], msg["content"], loop.time())
        except BaseException:
            if not backend._killed and kernel.alive() and not self.finished and kernel is ctx.kernel:
                # Cancelled or a callback raised: don't leave the cell running.
                kernel.interrupt()
                backend._in_background(backend._settle(ctx, kernel, self.msg_id))
            raise
        finally:
            self.stdout.finish()
            self.stderr.finish()
            self.results.finish(self.execution.logs.stderr)
            await kernel.drain_shell()
        if self.stopped_by:
            await self._error(ExecutionError("SandboxLimit", self.stopped_by, ""))
            return False
        if self.interrupted_at is not None:
            raise format_execution_timeout_error()
        return False

    async def _tick(self, now: float) -> bool:
        """Interrupts, the watch, the deadline and the grace; True when the cell is over."""
        ctx, kernel = self.ctx, self.kernel
        if (
            ctx.interrupt_epoch > self.epoch
            and self.started
            and (ctx.interrupt_sent_at < self.started_at or now - ctx.interrupt_sent_at > RESEND_AFTER)
        ):
            # interrupt() came before the cell started (SIGINT to an idle kernel
            # is ignored), or it was lost: send it again.
            kernel.interrupt()
            ctx.interrupt_sent_at = now
        if now >= self.next_watch and self.interrupted_at is None:
            self.next_watch = now + 1.0
            self.stopped_by = await self.backend._watch(ctx)
            if self.stopped_by:
                kernel.interrupt()
                self.interrupted_at = now
        if self.deadline is not None and self.interrupted_at is None and now >= self.deadline:
            kernel.interrupt()
            self.interrupted_at = now
        if self.interrupted_at is not None and now - self.interrupted_at > INTERRUPT_GRACE:
            # The cell ignores SIGINT (stuck in C code): replace the kernel.
            from e2b.exceptions import TimeoutException
            from e2b_code_interpreter.models import ExecutionError

            await self.backend._replace_kernel(ctx)
            if self.stopped_by:
                await self._error(ExecutionError("SandboxLimit", f"{self.stopped_by}; {DIED_MESSAGE}", ""))
                return True
            raise TimeoutException(
                "Execution timed out and the cell could not be interrupted; "
                "a fresh kernel was started and earlier variables are lost"
            )
        return False

    async def _handle(self, kind: str, content: dict[str, Any], now: float) -> None:
        """One iopub message of this cell."""
        from e2b_code_interpreter.models import ExecutionError, OutputMessage

        execution, handlers = self.execution, self.handlers
        if kind == "stream":
            text = content.get("text", "")
            if content.get("name") == "stderr":
                self.stderr.add(text)
                await call_handler(handlers.on_stderr, OutputMessage(text, time.time_ns(), True))
            else:
                self.stdout.add(text)
                await call_handler(handlers.on_stdout, OutputMessage(text, time.time_ns(), False))
        elif kind in ("display_data", "execute_result"):
            data = content.get("data", {})
            result = to_result(data, kind == "execute_result", content.get("metadata"))
            self.results.add(result, data)
            await call_handler(handlers.on_result, result)
        elif kind == "error":
            if self.interrupted_at is None:
                traceback = "\n".join(content.get("traceback", []))
                error = ExecutionError(content.get("ename", ""), content.get("evalue", ""), traceback)
                await self._error(self.backend._note_error(error))
        elif kind == "execute_input":
            execution.execution_count = content.get("execution_count")
            self.started, self.started_at = True, now
            if self.ctx.interrupt_epoch > self.epoch and self.ctx.interrupt_sent_at < now:
                self.kernel.interrupt()  # requested before the cell started
                self.ctx.interrupt_sent_at = now
        elif kind == "status" and content.get("execution_state") == "idle":
            self.finished = True

    async def _error(self, error: Any) -> None:
        self.execution.error = error
        await call_handler(self.handlers.on_error, error)
