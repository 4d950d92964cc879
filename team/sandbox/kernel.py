"""E2B's `run_code` over Jupyter kernels: the part any kernel-based backend shares.

`KernelBackend` gives E2B's semantics on top of the protocol client
(`jupyter.py`): the SDK's own `Execution`/`Result`/`ExecutionError` objects,
callbacks as output arrives, `timeout` interrupting the cell with state kept,
`interrupt()` (epochs, see its docstring), code contexts (one kernel each, as
E2B's server has), and the kernel-death contract below. One cell's run is
`cell.Cell`; this module is the life cycle around it. A backend subclass only
says how a kernel process is started (`_launch`, returning `jupyter.connect(…)`)
and what to run in it first (`_setup_code`); `LocalSandbox` starts it under
bubblewrap (`local_kernel.py`), `tests/test_kernel_backend.py` plainly. The
SDK is imported on the first call that needs its models, not to start a kernel.

Kernel death: when the kernel dies while a cell runs (os._exit, segfault, a
memory limit), that `run_code` returns an `Execution` whose error is
`ExecutionError(name="KernelDied", …)` with the reason if the backend knows it
(`_death_reason`), and a fresh kernel is already running. When it died between
calls, the next `run_code` starts a fresh kernel, runs the code there and
reports the loss as a first stderr line (and `on_stderr`).

Bounded host cost: messages are capped by the connection (`jupyter.py`); what an
`Execution` keeps of stdout/stderr is bounded (`OutputKeeper`: head and tail,
with a line saying how much was left out); callbacks still see every chunk.

Deliberate differences from E2B: tracebacks come without ANSI colours and
joined with newlines (a model reads them); only Python runs.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
import uuid
from typing import TYPE_CHECKING, Any

from .base import WORKDIR, ErrorHandler, OutputHandler, ResultHandler, SandboxError
from .cell import DIED_MESSAGE, INTERRUPT_GRACE, Cell, CodeContext, Handlers
from .jupyter import Kernel
from .output import call_handler

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from e2b_code_interpreter.models import Context, Execution, ExecutionError

__all__ = ["CodeContext", "Kernel", "KernelBackend"]  # what a backend builds on (tests/test_kernel_backend.py)

DEFAULT_RUN_TIMEOUT = 300.0  # E2B's run_code default when timeout is None
DEFAULT_CONTEXT = "default"
REPLACED_MESSAGE = (
    "the previous cell did not stop when asked (stuck outside Python) so its kernel was "
    "replaced: earlier variables are lost"
)

_ENV_SET = (
    "import os as __sbteam_os\n"
    "__sbteam_saved_env = {k: __sbteam_os.environ.get(k) for k in %(keys)r}\n"
    "__sbteam_os.environ.update(%(envs)r)\n"
    "del __sbteam_os\n"
)
_ENV_RESTORE = (
    "import os as __sbteam_os\n"
    "for __sbteam_k, __sbteam_v in globals().pop('__sbteam_saved_env', {}).items():\n"
    "    if __sbteam_v is None:\n"
    "        __sbteam_os.environ.pop(__sbteam_k, None)\n"
    "    else:\n"
    "        __sbteam_os.environ[__sbteam_k] = __sbteam_v\n"
    "del __sbteam_os\n"
    "globals().pop('__sbteam_k', None); globals().pop('__sbteam_v', None)\n"
)


class KernelBackend(abc.ABC):
    """`run_code`, `interrupt` and code contexts over Jupyter kernels (see module doc).

    A backend subclasses it with `_launch` (and, if it has them to say, the other
    hooks below) plus what `base.Sandbox` asks beyond code: `kind`, `isolation`,
    `files`, `install_package`, and a `kill` that also frees its own resources.
    """

    def __init__(self) -> None:
        self._contexts: dict[str, CodeContext] = {DEFAULT_CONTEXT: CodeContext(DEFAULT_CONTEXT)}
        self._killed = False
        self._background: set[asyncio.Task[None]] = set()

    # ---- what a backend provides

    @abc.abstractmethod
    async def _launch(self, ctx: CodeContext) -> Kernel:
        """Start a kernel process for `ctx` and connect to it (not yet ready): the one
        thing every backend must say (`jupyter.connect(info, process)` does the rest)."""

    def _setup_code(self, ctx: CodeContext) -> str:
        """Code run silently in every fresh kernel before the first cell."""
        return f"import os\nos.chdir({ctx.cwd!r})\ndel os\n"

    def _death_reason(self, ctx: CodeContext) -> str | None:
        """Why the kernel died, when the backend can tell (e.g. a memory limit)."""
        return None

    async def _watch(self, ctx: CodeContext) -> str | None:
        """Called about once a second while a cell runs: an error message stops it."""
        return None

    def _note_error(self, error: ExecutionError) -> ExecutionError:
        """A backend may add what a person needs to know (e.g. the memory limit)."""
        return error

    # ---- kernels

    async def _start_kernel(self, ctx: CodeContext) -> None:
        kernel = await self._launch(ctx)
        ctx.kernel = kernel
        try:
            await kernel.wait_ready(self._stopped)
            setup = self._setup_code(ctx)
            if setup:
                await self._silent(kernel, setup)
        except BaseException:
            kernel.stop()
            if ctx.kernel is kernel:
                ctx.kernel = None
            raise

    async def _replace_kernel(self, ctx: CodeContext) -> None:
        old, ctx.kernel = ctx.kernel, None
        if old is not None:
            old.stop()
        await self._start_kernel(ctx)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` (a settle) as a task this backend holds until it is done."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _end_background(self) -> None:
        """Cancel the settles and wait for them: they read the kernels' sockets, which are
        closed next (a zmq socket closed under a pending read aborts the process)."""
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _stopped(self) -> bool:
        """For the protocol client's waits: the sandbox was killed, give up."""
        return self._killed

    async def _silent(self, kernel: Kernel, code: str, timeout: float = 30.0) -> dict[str, Any]:  # noqa: ASYNC109
        """Run bookkeeping code that counts for nothing (no history, no execution_count)."""
        return await kernel.silent(code, self._stopped, timeout)

    async def evaluate(self, expr: str, context: Any = None) -> str:
        """The repr of one Python expression in a context's kernel, not counted as a cell.

        For checks and bookkeeping (is a package installed?); it needs none of the
        SDK's models, so it works before the SDK was ever imported.
        """
        ctx = self._context(context)
        async with ctx.lock:
            kernel = ctx.kernel
            if self._killed or kernel is None or not kernel.alive():
                raise SandboxError("the kernel is not running")
            return await kernel.evaluate(expr)

    async def is_running(self) -> bool:
        kernel = self._contexts[DEFAULT_CONTEXT].kernel
        return not self._killed and kernel is not None and kernel.alive()

    async def kill(self) -> None:
        """Stop every kernel; a waiting call returns or raises within `POLL`. Safe twice."""
        self._killed = True
        await self._end_background()
        self._kill_kernels()

    def _kill_kernels(self) -> None:
        for ctx in self._contexts.values():
            if ctx.kernel is not None:
                ctx.kernel.stop()
                ctx.kernel = None

    # ---- contexts

    def _context(self, context: Any) -> CodeContext:
        if context is None:
            return self._contexts[DEFAULT_CONTEXT]
        cid = context if isinstance(context, str) else getattr(context, "id", None)
        ctx = self._contexts.get(str(cid))
        if ctx is None:
            from e2b.exceptions import NotFoundException

            raise NotFoundException(f"context {cid!r} not found")
        return ctx

    async def create_code_context(
        self, cwd: str | None = None, language: str | None = None, request_timeout: float | None = None
    ) -> Context:
        """A new context (its own kernel and state), working folder `cwd` (default /home/user)."""
        _check_language(language)
        ctx = CodeContext(str(uuid.uuid4()), cwd=cwd or WORKDIR)
        self._contexts[ctx.id] = ctx
        try:
            async with ctx.lock:
                await self._start_kernel(ctx)
        except BaseException:
            self._contexts.pop(ctx.id, None)
            raise
        return ctx.as_e2b()

    async def list_code_contexts(self) -> list[Context]:
        return [ctx.as_e2b() for ctx in self._contexts.values()]

    async def restart_code_context(self, context: Any) -> None:
        """A fresh kernel for the context: its variables are gone, its files stay."""
        ctx = self._context(context)
        async with ctx.lock:
            await self._replace_kernel(ctx)

    async def remove_code_context(self, context: Any) -> None:
        ctx = self._context(context)
        if ctx.id == DEFAULT_CONTEXT:
            async with ctx.lock:
                await self._replace_kernel(ctx)
            return
        self._contexts.pop(ctx.id, None)
        if ctx.kernel is not None:
            ctx.kernel.stop()
            ctx.kernel = None

    # ---- interrupt

    async def interrupt(self) -> None:
        """Stop the running cell (of every context); the kernels keep their state.

        It applies to every run_code call already made: the running cell gets a
        KeyboardInterrupt (re-sent if it arrived before the cell had started), and
        calls still waiting for their turn return at once with a KeyboardInterrupt
        error without running. Later calls are not affected.
        """
        if self._killed:
            return
        now = asyncio.get_running_loop().time()
        for ctx in self._contexts.values():
            ctx.interrupt_epoch += 1
            ctx.interrupt_sent_at = now
            if ctx.kernel is not None and ctx.kernel.alive():
                ctx.kernel.interrupt()

    async def _settle(self, ctx: CodeContext, kernel: Kernel, msg_id: str) -> None:
        """Stop a cell whose caller went away (cancelled): interrupt until it is idle.

        Runs in the background under the lock, so the next call starts on an idle
        kernel; a cell that ignores SIGINT past the grace period costs the kernel.
        """
        async with ctx.lock:
            if kernel is not ctx.kernel or self._killed:
                return
            if await kernel.settle(msg_id, INTERRUPT_GRACE, self._stopped) or self._killed:
                return
            ctx.lost_state = REPLACED_MESSAGE
            with contextlib.suppress(SandboxError):
                await self._replace_kernel(ctx)

    # ---- code

    async def run_code(
        self,
        code: str,
        language: str | None = None,
        context: Any = None,
        *,
        on_stdout: OutputHandler | None = None,
        on_stderr: OutputHandler | None = None,
        on_result: ResultHandler | None = None,
        on_error: ErrorHandler | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - E2B's signature
        request_timeout: float | None = None,
    ) -> Execution:
        """Run one cell; output reaches the callbacks as it arrives.

        `timeout` (seconds; None = E2B's default 300 s, 0 = no limit) interrupts the
        cell and raises E2B's TimeoutException, the kernel keeping its state. kill()
        during the call raises TimeoutException too. Calls on one context are serialized.
        """
        from e2b_code_interpreter.exceptions import format_sandbox_killed_error
        from e2b_code_interpreter.models import Execution, OutputMessage

        _check_language(language)
        ctx = self._context(context)
        epoch = ctx.interrupt_epoch
        async with ctx.lock:
            if self._killed:
                raise format_sandbox_killed_error()
            execution = Execution()
            notice = ""
            if ctx.kernel is None or not ctx.kernel.usable():
                reason = self._death_reason(ctx) if ctx.kernel is not None else None
                await self._replace_kernel(ctx)
                notice = reason or DIED_MESSAGE
            elif ctx.lost_state:
                notice = ctx.lost_state
            ctx.lost_state = ""
            if notice:
                line = f"[sandbox] {notice}\n"
                execution.logs.stderr.append(line)
                await call_handler(on_stderr, OutputMessage(line, time.time_ns(), True))
            kernel = ctx.kernel
            assert kernel is not None
            if envs:
                keys = list(envs)
                await self._silent(kernel, _ENV_SET % {"keys": keys, "envs": {str(k): str(v) for k, v in envs.items()}})
            limit = None if timeout == 0 else (timeout or DEFAULT_RUN_TIMEOUT)
            handlers = Handlers(on_stdout, on_stderr, on_result, on_error)
            try:
                died = await Cell(self, ctx, kernel, execution, handlers, epoch=epoch, timeout=limit).run(code)
            except BaseException as exc:
                from e2b.exceptions import TimeoutException

                if isinstance(exc, TimeoutException) and envs and kernel.alive() and not self._killed:
                    with contextlib.suppress(SandboxError):
                        await self._silent(kernel, _ENV_RESTORE, timeout=5)
                raise
            if died:
                if self._killed:
                    raise format_sandbox_killed_error()
                from e2b_code_interpreter.models import ExecutionError

                reason = self._death_reason(ctx) or DIED_MESSAGE
                await self._replace_kernel(ctx)
                execution.error = ExecutionError("KernelDied", reason, "")
                await call_handler(on_error, execution.error)
                return execution
            if envs:
                await self._silent(kernel, _ENV_RESTORE)
            return execution


def _check_language(language: str | None) -> None:
    if language not in (None, "python", "python3"):
        from e2b.exceptions import InvalidArgumentException

        raise InvalidArgumentException(f"the local sandbox runs python only, not {language!r}")
