"""The Jupyter protocol client: one kernel process and its connection, nothing else.

Knows the wire (handshake, execute, interrupt by message, quiet bookkeeping
calls, settling a cell nobody waits for) and nothing of how the kernel was
started (bubblewrap, a plain subprocess, a container: see `KernelProcess`) or
of E2B's models (`kernel.py` gives E2B's semantics on top). It imports neither
the E2B SDK nor AutoGen, so a kernel can start while the app is still painting.

Bounded host cost: the client connects once, before any code of the sandbox
runs, with reconnection off (a socket path the sandbox swaps later is never
dialled again) and a size cap per message (`MAX_MESSAGE`: a larger one breaks
the connection and costs the kernel, not the app's memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .base import SandboxError

START_TIMEOUT = 30.0  # seconds for a kernel to answer kernel_info
POLL = 0.1  # how often a waiting call checks for a dead kernel or kill()
MAX_MESSAGE = 64 << 20  # bytes of one kernel message the app accepts
KILLED_MESSAGE = "the sandbox was killed while the request was in progress"


def _never() -> bool:
    return False


class KernelProcess(Protocol):
    """The process behind one kernel, however a backend started it."""

    def alive(self) -> bool: ...

    def kill(self) -> None: ...

    def log_tail(self) -> str: ...


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
        self.client.load_connection_info(info)  # type: ignore[arg-type]  # a plain dict of the same keys
        self._monitors: list[Any] = []
        self._sync: Any = None

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


def connect(info: dict[str, Any], process: KernelProcess, generation: int = 1) -> Kernel:
    """Dial a kernel that is already listening (the launcher checked its sockets)."""
    conn = KernelConnection(info)
    conn.start()
    return Kernel(process, conn, generation)


@dataclass
class Kernel:
    """One running kernel: its process, its connection, and the protocol calls on them.

    Every waiting call takes `stopped` (the owner was killed: give up at once)
    and checks it, and the process, every `POLL` seconds.
    """

    process: KernelProcess
    conn: KernelConnection
    generation: int

    def alive(self) -> bool:
        return self.process.alive()

    def usable(self) -> bool:
        """Alive and still connected (a message over the cap breaks the connection)."""
        return self.process.alive() and not self.conn.broken()

    def interrupt(self) -> None:
        self.conn.interrupt()

    def stop(self) -> None:
        self.process.kill()
        self.conn.stop()

    async def wait_ready(self, stopped: Callable[[], bool] = _never, timeout: float = START_TIMEOUT) -> None:  # noqa: ASYNC109
        """kernel_info round trip on shell, and proof that iopub is subscribed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        client = self.conn.client
        while True:
            msg_id = client.kernel_info()
            resend = loop.time() + 1.0
            got_reply = got_iopub = False
            while loop.time() < resend and not (got_reply and got_iopub):
                if stopped():
                    raise SandboxError(KILLED_MESSAGE)
                if not self.alive():
                    raise SandboxError(f"the kernel failed to start: {self.process.log_tail() or 'no output'}")
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
                raise SandboxError(f"the kernel did not answer within {timeout:.0f} s")

    async def silent(self, code: str, stopped: Callable[[], bool] = _never, timeout: float = 30.0) -> dict[str, Any]:  # noqa: ASYNC109
        """Run bookkeeping code that counts for nothing (no history, no execution_count)."""
        client = self.conn.client
        msg_id = client.execute(code, silent=True, store_history=False, allow_stdin=False)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                msg = await client.get_shell_msg(timeout=POLL)
            except queue.Empty:
                if not self.alive() or stopped() or loop.time() > deadline or self.conn.broken():
                    raise SandboxError("the kernel did not finish its setup") from None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                content: dict[str, Any] = msg["content"]
                if content.get("status") == "error":
                    raise SandboxError(f"kernel setup failed: {content.get('ename')}: {content.get('evalue')}")
                return content

    async def evaluate(self, expr: str, timeout: float = 10.0) -> str:  # noqa: ASYNC109
        """The repr of one expression, evaluated without counting as a cell."""
        client = self.conn.client
        msg_id = client.execute("", silent=True, store_history=False, user_expressions={"v": expr})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            try:
                msg = await client.get_shell_msg(timeout=POLL)
            except Exception:
                if not self.alive():
                    break
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                value = msg["content"].get("user_expressions", {}).get("v", {})
                return str(value.get("data", {}).get("text/plain", ""))
        raise SandboxError("the kernel did not answer")

    def execute(self, code: str) -> str:
        """Send one cell (counted, kept in history); its output comes over `next_output`."""
        return self.conn.client.execute(code, silent=False, store_history=True, allow_stdin=False)

    async def next_output(self, timeout: float) -> dict[str, Any] | None:  # noqa: ASYNC109
        """The next iopub message (of any cell), or None when none came within `timeout`."""
        try:
            return await self.conn.client.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            return None

    async def drain_shell(self) -> None:
        """Drop queued execute replies (output already came over iopub)."""
        with contextlib.suppress(Exception):
            while True:
                await self.conn.client.get_shell_msg(timeout=0)

    async def settle(self, msg_id: str, grace: float, stopped: Callable[[], bool] = _never) -> bool:
        """Interrupt cell `msg_id` until the kernel is idle; False if it would not stop.

        For a cell whose caller went away: it must not keep running, and the next
        cell must start on an idle kernel. The interrupt is repeated, since the
        first may land before the cell started (an idle kernel ignores it).
        """
        loop = asyncio.get_running_loop()
        give_up = loop.time() + grace
        last = loop.time()
        self.interrupt()
        while self.alive() and not stopped():
            try:
                msg = await self.next_output(POLL)
            except Exception:
                return True  # the connection is gone: nothing left to settle here
            if (
                msg is not None
                and msg["parent_header"].get("msg_id") == msg_id
                and msg["msg_type"] == "status"
                and msg["content"].get("execution_state") == "idle"
            ):
                await self.drain_shell()
                return True
            now = loop.time()
            if now > give_up or self.conn.broken():
                return False
            if now - last > 0.25:
                self.interrupt()
                last = now
        return True
