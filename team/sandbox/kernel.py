"""E2B's `run_code` over Jupyter kernels: the part any kernel-based backend shares.

`KernelBackend` speaks the Jupyter protocol (handshake, execute, interrupt,
settle) and gives E2B's semantics on top: the SDK's own `Execution`/`Result`/
`ExecutionError` objects, callbacks as output arrives, `timeout` interrupting
the cell with state kept, code contexts (one kernel each, as E2B's server has),
and the kernel-death contract below. A backend subclass only says how a kernel
process is started (`_launch`) and what to run in it first (`_setup_code`);
`LocalSandbox` starts it under bubblewrap, a test backend starts it plainly.

Kernel death: when the kernel dies while a cell runs (os._exit, segfault, a
memory limit), that `run_code` returns an `Execution` whose error is
`ExecutionError(name="KernelDied", …)` with the reason if the backend knows it
(`_death_reason`), and a fresh kernel is already running. When it died between
calls, the next `run_code` starts a fresh kernel, runs the code there and
reports the loss as a first stderr line (and `on_stderr`).

Bounded host cost: the client connects once, before any code of the sandbox
runs, with reconnection off (a socket path the sandbox swaps later is never
dialled again) and a size cap per message (`MAX_MESSAGE`: a larger one breaks
the connection and costs the kernel, not the app's memory); what an
`Execution` keeps of stdout/stderr is bounded (`OutputKeeper`: head and tail,
with a line saying how much was left out); callbacks still see every chunk.

Deliberate differences from E2B: tracebacks come without ANSI colours and
joined with newlines (a model reads them); only Python runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import queue
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .base import WORKDIR, ErrorHandler, OutputHandler, ResultHandler, SandboxError

if TYPE_CHECKING:
    from e2b_code_interpreter.models import Context, Execution, ExecutionError, Result

START_TIMEOUT = 30.0  # seconds for a kernel to answer kernel_info
POLL = 0.1  # how often a waiting call checks for a dead kernel or kill()
DEFAULT_RUN_TIMEOUT = 300.0  # E2B's run_code default when timeout is None
INTERRUPT_GRACE = 3.0  # after an interrupt, how long before the kernel is replaced
MAX_MESSAGE = 64 << 20  # bytes of one kernel message the app accepts
KEEP_HEAD = 256 << 10  # characters of a cell's stdout (and of stderr) kept from the start
KEEP_TAIL = 256 << 10  # … and from the end
DEFAULT_CONTEXT = "default"
NOT_KEPT = "\n… [{:,} characters of output not kept] …\n"  # OutputKeeper's marker chunk
NOT_KEPT_RE = re.compile(r"\n… \[([\d,]+) characters of output not kept\] …\n")
KILLED_MESSAGE = "the sandbox was killed while the request was in progress"
REPLACED_MESSAGE = (
    "the previous cell did not stop when asked (stuck outside Python) so its kernel was "
    "replaced: earlier variables are lost"
)
DIED_MESSAGE = (
    "the kernel died (os._exit/segfault/out of memory); a fresh kernel was started "
    "and earlier variables are lost"
)

_MIME_FIELDS = {
    "text/plain": "text",
    "text/html": "html",
    "text/markdown": "markdown",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "application/pdf": "pdf",
    "text/latex": "latex",
    "application/json": "json",
    "application/javascript": "javascript",
    "e2b/data": "data",
    "e2b/chart": "chart",
}

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


class KernelProcess(Protocol):
    """The process behind one kernel, however a backend started it."""

    def alive(self) -> bool: ...

    def kill(self) -> None: ...

    def log_tail(self) -> str: ...


def to_result(data: dict[str, Any], main: bool, metadata: dict[str, Any] | None = None) -> Result:
    """A Jupyter MIME bundle as the SDK's Result, field by field as E2B's server fills it.

    The display metadata `sbteam/saved_as` (set by the guest's image-save hook)
    is kept in `extra`, so the app knows the picture is already a file.
    """
    from e2b_code_interpreter.models import Result

    data = dict(data)
    saved_as = (metadata or {}).get("sbteam/saved_as")
    if isinstance(saved_as, str):
        data["sbteam/saved_as"] = saved_as
    fields: dict[str, Any] = {}
    for mime, name in _MIME_FIELDS.items():
        if mime in data:
            fields[name] = data.pop(mime)
    text = fields.get("text")
    # E2B's server strips the quotes from a str's repr.
    if isinstance(text, str) and len(text) >= 2 and text.startswith("'") and text.endswith("'"):
        fields["text"] = text[1:-1]
    return Result(is_main_result=main, extra=data or None, **fields)


async def call_handler(handler: Any, arg: Any) -> None:
    """Call a sync or async callback."""
    if handler is None:
        return
    out = handler(arg)
    if inspect.isawaitable(out):
        await out


class OutputKeeper:
    """A list of output chunks (E2B's `Logs.stdout` shape) that keeps only head and tail.

    Once more than `head` characters arrived, later chunks go to a tail of about
    `tail` characters; `finish()` puts one marker chunk between them saying how
    many characters were left out, so a cell printing for minutes costs the host
    at most head + tail.
    """

    def __init__(self, target: list[str], head: int = KEEP_HEAD, tail: int = KEEP_TAIL) -> None:
        self.target = target
        self.head_left = head
        self.tail_limit = tail
        self.tail: deque[str] = deque()
        self.tail_size = 0
        self.dropped = 0

    def add(self, text: str) -> None:
        if self.head_left > 0:
            part = text[: self.head_left]
            self.target.append(part)
            self.head_left -= len(part)
            text = text[len(part) :]
            if not text:
                return
        self.tail.append(text)
        self.tail_size += len(text)
        while self.tail_size > self.tail_limit and len(self.tail) > 1:
            gone = self.tail.popleft()
            self.tail_size -= len(gone)
            self.dropped += len(gone)
        if self.tail_size > self.tail_limit:  # one huge chunk: keep its end
            only = self.tail[0]
            cut = len(only) - self.tail_limit
            self.tail[0] = only[cut:]
            self.tail_size -= cut
            self.dropped += cut

    def finish(self) -> None:
        if self.dropped:
            self.target.append(NOT_KEPT.format(self.dropped))
        self.target.extend(self.tail)
        self.tail.clear()
        self.tail_size = 0
        self.dropped = 0


def split_not_kept(text: str) -> tuple[str, int]:
    """(text without OutputKeeper's markers, how many characters they said were dropped)."""
    dropped = sum(int(m.replace(",", "")) for m in NOT_KEPT_RE.findall(text))
    return (NOT_KEPT_RE.sub("\n", text), dropped) if dropped else (text, 0)


class KernelConnection:
    """A jupyter_client connection that is dialled once and accepts bounded messages."""

    def __init__(self, info: dict[str, Any], max_message: int = MAX_MESSAGE) -> None:
        import zmq
        from jupyter_client.asynchronous.client import AsyncKernelClient

        self.client = AsyncKernelClient()
        # Socket options for every channel, set before any is created: no
        # reconnection (a path is dialled exactly once, before sandbox code runs),
        # no message larger than max_message, nothing lingering on close.
        self.client.context.setsockopt(zmq.RECONNECT_IVL, -1)
        self.client.context.setsockopt(zmq.MAXMSGSIZE, max_message)
        self.client.context.setsockopt(zmq.LINGER, 0)
        self.client.load_connection_info(info)
        self._monitors: list[Any] = []

    def start(self) -> None:
        """Dial the kernel's channels (once) and watch them for a lost connection."""
        import zmq

        self.client.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=True)
        # Monitor events arrive on inproc PAIR sockets; read them with a plain
        # (non-asyncio) context sharing the client's, so polling never awaits.
        self._sync = zmq.Context.shadow(self.client.context.underlying)
        for channel in (self.client.iopub_channel, self.client.shell_channel):
            sock = getattr(channel, "socket", None)
            if sock is None:
                continue
            address = f"inproc://sbteam-monitor-{uuid.uuid4().hex}"
            sock.monitor(address, zmq.EVENT_DISCONNECTED | zmq.EVENT_CLOSED)
            monitor = self._sync.socket(zmq.PAIR)
            monitor.connect(address)
            self._monitors.append(monitor)

    def broken(self) -> bool:
        """True once a channel lost its connection (kernel gone, or a message over the cap)."""
        import zmq

        for monitor in self._monitors:
            with contextlib.suppress(zmq.ZMQError):
                if monitor.poll(0):
                    return True
        return False

    def interrupt(self) -> None:
        """Interrupt by message (interrupt_mode="message"): works across pid namespaces."""
        with contextlib.suppress(Exception):
            msg = self.client.session.msg("interrupt_request", content={})
            self.client.control_channel.send(msg)

    def stop(self) -> None:
        for monitor in self._monitors:
            with contextlib.suppress(Exception):
                monitor.close(linger=0)
        self._monitors.clear()
        with contextlib.suppress(Exception):
            self.client.stop_channels()
        with contextlib.suppress(Exception):
            # Without linger=0, messages the dead kernel never read keep the zmq
            # context (linger 1000 ms) and so the app's exit waiting ~1 s.
            self.client.context.destroy(linger=0)


@dataclass
class Kernel:
    """One running kernel: its process and its connection."""

    process: KernelProcess
    conn: KernelConnection
    generation: int

    def alive(self) -> bool:
        return self.process.alive()

    def stop(self) -> None:
        self.process.kill()
        self.conn.stop()


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


class KernelBackend:
    """`run_code`, `interrupt` and code contexts over Jupyter kernels (see module doc)."""

    def __init__(self) -> None:
        self._contexts: dict[str, CodeContext] = {DEFAULT_CONTEXT: CodeContext(DEFAULT_CONTEXT)}
        self._killed = False
        self._background: set[asyncio.Task[None]] = set()

    # ---- what a backend provides

    async def _launch(self, ctx: CodeContext) -> Kernel:
        """Start a kernel process for `ctx` and connect to it (not yet ready)."""
        raise NotImplementedError  # pragma: no cover - abstract

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
            await self._wait_ready(kernel)
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

    async def _wait_ready(self, kernel: Kernel) -> None:
        """kernel_info round trip on shell, and proof that iopub is subscribed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        client = kernel.conn.client
        while True:
            msg_id = client.kernel_info()
            resend = loop.time() + 1.0
            got_reply = got_iopub = False
            while loop.time() < resend and not (got_reply and got_iopub):
                if self._killed:
                    raise SandboxError(KILLED_MESSAGE)
                if not kernel.alive():
                    raise SandboxError(f"the kernel failed to start: {kernel.process.log_tail() or 'no output'}")
                if not got_reply:
                    with contextlib.suppress(queue.Empty):
                        msg = await client.get_shell_msg(timeout=0.02)
                        got_reply = msg["parent_header"].get("msg_id") == msg_id
                        if got_reply:  # iopub may not be subscribed yet: ask again soon
                            resend = min(resend, loop.time() + 0.2)
                if not got_iopub:
                    with contextlib.suppress(queue.Empty):
                        msg = await client.get_iopub_msg(timeout=0.02)
                        got_iopub = msg["parent_header"].get("msg_id") == msg_id
            if got_reply and got_iopub:
                return
            if loop.time() > deadline:
                raise SandboxError(f"the kernel did not answer within {START_TIMEOUT:.0f} s")

    async def _silent(self, kernel: Kernel, code: str, timeout: float = 30.0) -> dict[str, Any]:  # noqa: ASYNC109
        """Run bookkeeping code that counts for nothing (no history, no execution_count)."""
        client = kernel.conn.client
        msg_id = client.execute(code, silent=True, store_history=False, allow_stdin=False)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                msg = await client.get_shell_msg(timeout=POLL)
            except queue.Empty:
                if not kernel.alive() or self._killed or loop.time() > deadline or kernel.conn.broken():
                    raise SandboxError("the kernel did not finish its setup") from None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                content: dict[str, Any] = msg["content"]
                if content.get("status") == "error":
                    raise SandboxError(f"kernel setup failed: {content.get('ename')}: {content.get('evalue')}")
                return content

    @staticmethod
    async def _drain_shell(kernel: Kernel) -> None:
        """Drop queued execute replies (output already came over iopub)."""
        with contextlib.suppress(Exception):
            while True:
                await kernel.conn.client.get_shell_msg(timeout=0)

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
                ctx.kernel.conn.interrupt()

    async def _settle(self, ctx: CodeContext, kernel: Kernel, msg_id: str) -> None:
        """Stop a cell whose caller went away (cancelled): interrupt until it is idle.

        Runs in the background under the lock, so the next call starts on an idle
        kernel; a cell that ignores SIGINT past the grace period costs the kernel.
        """
        loop = asyncio.get_running_loop()
        async with ctx.lock:
            if kernel is not ctx.kernel or self._killed:
                return
            give_up = loop.time() + INTERRUPT_GRACE
            last = loop.time()
            kernel.conn.interrupt()
            while kernel.alive() and not self._killed:
                try:
                    msg = await kernel.conn.client.get_iopub_msg(timeout=POLL)
                except queue.Empty:
                    msg = None
                except Exception:
                    return
                if (
                    msg is not None
                    and msg["parent_header"].get("msg_id") == msg_id
                    and msg["msg_type"] == "status"
                    and msg["content"].get("execution_state") == "idle"
                ):
                    await self._drain_shell(kernel)
                    return
                now = loop.time()
                if now > give_up or kernel.conn.broken():
                    ctx.lost_state = REPLACED_MESSAGE
                    with contextlib.suppress(SandboxError):
                        await self._replace_kernel(ctx)
                    return
                if now - last > 0.25:
                    kernel.conn.interrupt()  # the first may have landed before the cell started
                    last = now

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
            if ctx.kernel is None or not ctx.kernel.alive() or ctx.kernel.conn.broken():
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
            try:
                died = await self._execute(
                    ctx, kernel, code, epoch, execution, limit, on_stdout, on_stderr, on_result, on_error
                )
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

    async def _execute(
        self,
        ctx: CodeContext,
        kernel: Kernel,
        code: str,
        epoch: int,
        execution: Execution,
        timeout: float | None,  # noqa: ASYNC109
        on_stdout: OutputHandler | None,
        on_stderr: OutputHandler | None,
        on_result: ResultHandler | None,
        on_error: ErrorHandler | None,
    ) -> bool:
        """Send one execute_request and collect its iopub output; True if the kernel died."""
        from e2b.exceptions import TimeoutException
        from e2b_code_interpreter.exceptions import (
            format_execution_timeout_error,
            format_sandbox_killed_error,
        )
        from e2b_code_interpreter.models import ExecutionError, OutputMessage

        client = kernel.conn.client
        loop = asyncio.get_running_loop()
        if ctx.interrupt_epoch > epoch:  # interrupted while waiting for its turn
            execution.error = ExecutionError("KeyboardInterrupt", "interrupted before it started", "")
            await call_handler(on_error, execution.error)
            return False
        msg_id = client.execute(code, silent=False, store_history=True, allow_stdin=False)
        deadline = loop.time() + timeout if timeout else None
        interrupted_at: float | None = None
        stopped_by: str | None = None  # a backend watch that stopped the cell says why
        started = finished = False
        started_at = 0.0
        next_watch = loop.time() + 1.0
        stdout = OutputKeeper(execution.logs.stdout)
        stderr = OutputKeeper(execution.logs.stderr)
        try:
            while True:
                wait = POLL
                now = loop.time()
                if deadline is not None and interrupted_at is None:
                    wait = max(0.0, min(POLL, deadline - now))
                try:
                    msg = await client.get_iopub_msg(timeout=wait)
                except queue.Empty:
                    msg = None
                if self._killed:
                    raise format_sandbox_killed_error()
                if msg is None and (not kernel.alive() or kernel.conn.broken()):
                    return True
                now = loop.time()
                if (
                    ctx.interrupt_epoch > epoch
                    and started
                    and (ctx.interrupt_sent_at < started_at or now - ctx.interrupt_sent_at > 1.0)
                ):
                    # interrupt() came before the cell started (SIGINT to an idle kernel
                    # is ignored), or it was lost: send it again.
                    kernel.conn.interrupt()
                    ctx.interrupt_sent_at = now
                if now >= next_watch and interrupted_at is None:
                    next_watch = now + 1.0
                    stopped_by = await self._watch(ctx)
                    if stopped_by:
                        kernel.conn.interrupt()
                        interrupted_at = now
                if deadline is not None and interrupted_at is None and now >= deadline:
                    kernel.conn.interrupt()
                    interrupted_at = now
                if interrupted_at is not None and now - interrupted_at > INTERRUPT_GRACE:
                    # The cell ignores SIGINT (stuck in C code): replace the kernel.
                    await self._replace_kernel(ctx)
                    if stopped_by:
                        execution.error = ExecutionError("SandboxLimit", f"{stopped_by}; {DIED_MESSAGE}", "")
                        await call_handler(on_error, execution.error)
                        return False
                    raise TimeoutException(
                        "Execution timed out and the cell could not be interrupted; "
                        "a fresh kernel was started and earlier variables are lost"
                    )
                if msg is None or msg["parent_header"].get("msg_id") != msg_id:
                    continue
                kind = msg["msg_type"]
                content = msg["content"]
                if kind == "stream":
                    text = content.get("text", "")
                    if content.get("name") == "stderr":
                        stderr.add(text)
                        await call_handler(on_stderr, OutputMessage(text, time.time_ns(), True))
                    else:
                        stdout.add(text)
                        await call_handler(on_stdout, OutputMessage(text, time.time_ns(), False))
                elif kind in ("display_data", "execute_result"):
                    result = to_result(content.get("data", {}), kind == "execute_result", content.get("metadata"))
                    execution.results.append(result)
                    await call_handler(on_result, result)
                elif kind == "error":
                    if interrupted_at is None:
                        execution.error = self._note_error(
                            ExecutionError(
                                content.get("ename", ""),
                                content.get("evalue", ""),
                                "\n".join(content.get("traceback", [])),
                            )
                        )
                        await call_handler(on_error, execution.error)
                elif kind == "execute_input":
                    execution.execution_count = content.get("execution_count")
                    started, started_at = True, loop.time()
                    if ctx.interrupt_epoch > epoch and ctx.interrupt_sent_at < started_at:
                        kernel.conn.interrupt()  # requested before the cell started
                        ctx.interrupt_sent_at = started_at
                elif kind == "status" and content.get("execution_state") == "idle":
                    finished = True
                    break
        except BaseException:
            if not self._killed and kernel.alive() and not finished and kernel is ctx.kernel:
                # Cancelled or a callback raised: don't leave the cell running.
                kernel.conn.interrupt()
                task = asyncio.get_running_loop().create_task(self._settle(ctx, kernel, msg_id))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            raise
        finally:
            stdout.finish()
            stderr.finish()
            await self._drain_shell(kernel)
        if stopped_by:
            execution.error = ExecutionError("SandboxLimit", stopped_by, "")
            await call_handler(on_error, execution.error)
            return False
        if interrupted_at is not None:
            raise format_execution_timeout_error()
        return False


def _check_language(language: str | None) -> None:
    if language not in (None, "python", "python3"):
        from e2b.exceptions import InvalidArgumentException

        raise InvalidArgumentException(f"the local sandbox runs python only, not {language!r}")
