"""How the local sandbox starts a kernel: a fresh runtime folder, the process (under
bubblewrap, or plainly when isolation is off), its log pipe, and the one dial.

The kernel speaks ipc sockets in `run-<n>/`, a folder made fresh for every
kernel; the connection file reaches bubblewrap by fd (read-only inside, never on
a path the sandbox can write). The host dials only after every socket is there
and is a socket (not a link or anything else the sandbox could have planted),
before any code of the sandbox has run; the kernel starts with `-I`, a fresh
/tmp and no user site. Everything after the dial is `jupyter.py`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import subprocess
import sys
import uuid
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import jupyter, launcher
from .base import WORKDIR, SandboxError
from .jupyter import START_TIMEOUT, Kernel

if TYPE_CHECKING:
    from .kernel import CodeContext
    from .local import LocalSandbox

LOG_TAIL = 8 << 10  # bytes of a kernel's own stdout/stderr kept for error messages
SOCKET_PORTS = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}
KERNEL_ARGS = ["-m", "ipykernel_launcher", "--HistoryManager.enabled=False", "--InteractiveShell.colors=NoColor"]


class LogTail(asyncio.Protocol):
    """Drains a kernel's stdout/stderr pipe, keeping only the last LOG_TAIL bytes.

    Draining matters as much as the tail: code writing to fd 1 would otherwise
    block the kernel once the pipe's 64 KB are full.
    """

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.size = 0

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        while self.size - len(self.chunks[0]) >= LOG_TAIL:
            self.size -= len(self.chunks.popleft())

    def text(self) -> str:
        return b"".join(self.chunks)[-LOG_TAIL:].decode("utf-8", "replace").strip()


class SandboxedProcess:
    """A kernel (or other) process of this sandbox: a `jupyter.KernelProcess`. It owns the
    kernel's runtime folder as an open fd (`runtime_fd`) while it lives: the host dials
    the kernel's sockets through it."""

    def __init__(self, proc: subprocess.Popen[bytes], tail: LogTail, transport: asyncio.BaseTransport | None,
                 runtime_fd: int | None = None):
        self.proc = proc
        self.tail = tail
        self.transport = transport
        self.runtime_fd = runtime_fd

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        launcher.kill_process(self.proc)
        fd, self.runtime_fd = self.runtime_fd, None
        if fd is not None:
            os.close(fd)
        transport, self.transport = self.transport, None
        if transport is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed (exit): nothing to tell
                transport.close()

    def log_tail(self) -> str:
        return self.tail.text()


async def launch_kernel(sbx: LocalSandbox, ctx: CodeContext) -> Kernel:
    """Start a kernel for `ctx` in a fresh runtime folder and dial it once it is listening."""
    if sbx._killed:
        raise SandboxError("the sandbox was killed")
    sbx._runs += 1
    runtime = os.path.join(sbx._top, f"run-{sbx._runs}")
    os.mkdir(runtime, 0o700 if sbx._bwrap is None else 0o755)
    key = uuid.uuid4().hex
    info = {
        **SOCKET_PORTS,
        "transport": "ipc",
        "key": key,
        "signature_scheme": "hmac-sha256",
        "kernel_name": "python3",
    }
    close_fds: list[int] = []
    keep_fds: list[int] = []
    # The runtime folder as an fd, owned by the kernel's process once there is one (see _socket_base).
    runtime_fd = os.open(runtime, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if sbx._bwrap:
            conn_fd = launcher.data_fd(json.dumps({**info, "ip": f"{launcher.RUNTIME_MOUNT}/k"}).encode())
            close_fds.append(conn_fd)
            data, ids = launcher.guest_files()
            close_fds += ids
            data[launcher.CONNECTION_FILE] = conn_fd
            command = [sys.executable, "-I", "-B", *KERNEL_ARGS, "-f", launcher.CONNECTION_FILE]
            env = launcher.sandbox_env(WORKDIR, tmp="/tmp", extra=sbx._envs)
            argv = launcher.bwrap_argv(
                sbx._bwrap,
                home=sbx.root,
                env=env,
                command=launcher.guest_argv(sbx._rlimits(), command),
                network=sbx.network,
                tmp_size=sbx.limits.tmp,
                data=data,
                runtime=runtime,
                disable_userns=sbx._disable_userns,
            )
            popen_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            cwd = sbx._top
        else:
            conn_path = os.path.join(runtime, "kernel.json")
            fd = os.open(conn_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                # Not isolated, the kernel binds on the host too: through the fd it inherits.
                json.dump({**info, "ip": _socket_base(runtime, runtime_fd)}, fh)
            keep_fds.append(runtime_fd)
            tmp = os.path.join(sbx._top, f"tmp-{sbx._runs}")
            os.mkdir(tmp, 0o700)
            command = [sys.executable, "-I", "-B", *KERNEL_ARGS, "-f", conn_path]
            argv = launcher.guest_argv(sbx._rlimits(), command)
            popen_env = launcher.sandbox_env(sbx.root, tmp=tmp, extra=sbx._envs)
            cwd = sbx._host_cwd(ctx.cwd)
        proc = _popen(sbx, argv, popen_env, cwd, pass_fds=close_fds + keep_fds, stdout=subprocess.PIPE)
    except BaseException:
        os.close(runtime_fd)
        raise
    finally:
        for fd in close_fds:
            os.close(fd)
    tail = LogTail()
    transport = None
    with contextlib.suppress(Exception):
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(lambda: tail, proc.stdout)
    process = SandboxedProcess(proc, tail, transport, runtime_fd)
    try:
        await _wait_for_sockets(sbx, runtime_fd, process)
        kernel = jupyter.connect({**info, "ip": _socket_base(runtime, runtime_fd)}, process, ctx.generations + 1)
    except BaseException:
        process.kill()
        raise
    ctx.generations += 1
    return kernel


def _popen(
    sbx: LocalSandbox, argv: list[str], env: dict[str, str], cwd: str, *, pass_fds: Sequence[int] = (),
    stdout: Any = subprocess.PIPE,
) -> subprocess.Popen[bytes]:
    """Start a sandboxed process on the loop's thread (PR_SET_PDEATHSIG follows the thread)."""
    procs = sbx._cgroup.procs_files if sbx._cgroup is not None else []
    return subprocess.Popen(  # noqa: ASYNC220 - on purpose, see docstring
        argv,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=env,
        start_new_session=True,
        close_fds=True,
        pass_fds=tuple(pass_fds),
        preexec_fn=launcher.child_setup(os.getpid(), procs),  # noqa: PLW1509
    )


def _socket_base(runtime: str, runtime_fd: int) -> str:
    """Where the host dials the kernel's sockets (`<base>-<port>`): through the runtime
    folder's fd, `/proc/self/fd/N/k`, where /proc is there (Linux). A socket's path may
    be at most 107 bytes; under a long TMPDIR (`/tmp/pytest-of-root/…/popen-gw1/…`) the
    folder's own path passed that and the kernel could not be reached. The fd also pins
    the folder the launcher checked, whatever is renamed meanwhile."""
    through_fd = f"/proc/self/fd/{runtime_fd}"
    return f"{through_fd}/k" if os.path.isdir(through_fd) else os.path.join(runtime, "k")


async def _wait_for_sockets(sbx: LocalSandbox, dir_fd: int, process: SandboxedProcess) -> None:
    """Wait until the kernel listens on all its sockets (no sandbox code has run yet).

    Every socket must be a socket (not a symlink or anything else) in the
    runtime folder we just made; only then is it dialled, once.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    names = [f"k-{port}" for port in SOCKET_PORTS.values()]
    while True:
        if sbx._killed:
            raise SandboxError("the sandbox was killed")
        if not process.alive():
            raise SandboxError(f"the kernel failed to start: {process.log_tail() or 'no output'}")
        ready = 0
        for name in names:
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                break
            if not stat.S_ISSOCK(st.st_mode):
                raise SandboxError("the kernel's socket folder was tampered with; not connecting")
            ready += 1
        if ready == len(names):
            return
        if loop.time() > deadline:
            raise SandboxError(f"the kernel did not listen within {START_TIMEOUT:.0f} s")
        await asyncio.sleep(0.02)
