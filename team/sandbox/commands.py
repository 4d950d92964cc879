"""`sandbox.commands` for the local backend: shell commands run inside the sandbox.

E2B runs `/bin/bash -l -c CMD` in its VM; here every command is its own
sandboxed process (the same namespaces, limits, environment and /home/user as
the kernels; a /tmp of its own), started like a kernel (`launcher.py`) and
owned by the sandbox: `kill()` ends every command still running. Output a
command prints is kept bounded (head and tail) and also streamed to the
callbacks as it arrives. The app itself uses `exec` (argv, no shell) for pip.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import launcher
from .base import WORKDIR, SandboxError
from .output import OutputKeeper, call_handler
from .paths import sandbox_relpath

if TYPE_CHECKING:
    from .local import LocalSandbox

KEEP = 1 << 20  # characters of each stream a command keeps (head + tail)
OutputCallback = Callable[[str], Awaitable[Any] | Any]


@dataclass
class ExecResult:
    """What `LocalCommands.exec` returns: combined output, exit code, whether it timed out."""

    output: str
    exit_code: int
    timed_out: bool


class _Stream:
    """One pipe of a command: decoded incrementally, kept bounded, sent to a callback."""

    def __init__(self, keep: int, callback: OutputCallback | None) -> None:
        self.chunks: list[str] = []
        self._keeper = OutputKeeper(self.chunks, head=keep // 2, tail=keep // 2)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._callback = callback

    async def pump(self, reader: asyncio.StreamReader) -> None:
        while True:
            data = await reader.read(1 << 16)
            text = self._decoder.decode(data, final=not data)
            if text:
                self._keeper.add(text)
                await call_handler(self._callback, text)
            if not data:
                self._keeper.finish()
                return

    @property
    def text(self) -> str:
        return "".join(self.chunks)


class LocalCommandHandle:
    """A running command (E2B's `AsyncCommandHandle` surface: pid, wait, kill, output)."""

    def __init__(self, proc: asyncio.subprocess.Process, streams: tuple[_Stream, _Stream], pumps: asyncio.Future[Any], owner: LocalCommands):
        self._proc = proc
        self._out, self._err = streams
        self._pumps = pumps
        self._owner = owner
        self.exit_code: int | None = None
        self.error: str | None = None

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def stdout(self) -> str:
        return self._out.text

    @property
    def stderr(self) -> str:
        return self._err.text

    async def wait(self, on_stdout: OutputCallback | None = None, on_stderr: OutputCallback | None = None) -> Any:
        """Wait for the end; a non-zero exit raises E2B's CommandExitException, as E2B does."""
        from e2b.exceptions import SandboxNotRunningException
        from e2b.sandbox.commands.command_handle import CommandExitException, CommandResult

        if on_stdout is not None:
            self._out._callback = on_stdout
        if on_stderr is not None:
            self._err._callback = on_stderr
        await self._pumps
        code = await self._proc.wait()
        self.exit_code = _exit_code(code)
        self._owner._running.pop(self.pid, None)
        if self._owner._sandbox._killed and self.error != "timeout":
            raise SandboxNotRunningException(
                "The sandbox was killed or reached its end of life while the command was running"
            )
        if self.exit_code != 0:
            self.error = self.error or f"exit status {self.exit_code}"
            raise CommandExitException(
                stdout=self.stdout, stderr=self.stderr, exit_code=self.exit_code, error=self.error
            )
        return CommandResult(stdout=self.stdout, stderr=self.stderr, exit_code=0, error=None)

    async def kill(self) -> bool:
        """SIGKILL the command (and what it started); False if it had already ended."""
        if self._proc.returncode is not None:
            return False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        return True

    async def send_stdin(self, data: str | bytes) -> None:
        """Write to the command's stdin (it was started with `stdin=True`)."""
        stdin = self._proc.stdin
        if stdin is None or stdin.is_closing():
            from e2b.exceptions import InvalidArgumentException

            raise InvalidArgumentException("the command's stdin is not open (start it with stdin=True)")
        stdin.write(data.encode() if isinstance(data, str) else bytes(data))
        await stdin.drain()

    async def close_stdin(self) -> None:
        """Close the command's stdin (it reads EOF)."""
        stdin = self._proc.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await stdin.wait_closed()

    async def disconnect(self) -> None:
        """E2B stops streaming to this handle; the command goes on (nothing to do locally)."""


def _exit_code(code: int) -> int:
    return code if code >= 0 else -1  # killed by a signal: -1, as E2B (Go's ExitCode())


def _is_dir(sbx: LocalSandbox, rel: str) -> bool:
    try:
        return sbx._fs.entry(rel).kind == "dir"
    except (OSError, ValueError):
        return False


class LocalCommands:
    """E2B's `Commands` surface for one LocalSandbox."""

    def __init__(self, sandbox: LocalSandbox) -> None:
        self._sandbox = sandbox
        self._running: dict[int, LocalCommandHandle] = {}

    async def _start(
        self,
        argv: Sequence[str],
        *,
        envs: dict[str, str] | None,
        cwd: str | None,
        keep: int,
        on_stdout: OutputCallback | None,
        on_stderr: OutputCallback | None,
        stdin: bool = False,
    ) -> LocalCommandHandle:
        sbx = self._sandbox
        if sbx._killed:
            raise SandboxError("the sandbox was killed")
        extra = {**sbx._envs, **(envs or {})}
        target = cwd or WORKDIR
        if target == "~" or target.startswith("~/"):
            target = WORKDIR + target[1:]  # the sandbox user's home, as a shell would
        rel = sandbox_relpath(target)
        inside_cwd = f"{WORKDIR}/{rel}" if rel else WORKDIR
        if rel and not await asyncio.to_thread(_is_dir, sbx, rel):
            from e2b.exceptions import InvalidArgumentException

            raise InvalidArgumentException(f"cwd {cwd!r} is not an existing folder in the sandbox")
        command = launcher.guest_argv(sbx._rlimits(), list(argv))
        close_fds: list[int] = []
        if sbx._bwrap:
            data, close_fds = launcher.guest_files()
            env = launcher.sandbox_env(WORKDIR, tmp="/tmp", extra=extra)
            full = launcher.bwrap_argv(
                sbx._bwrap,
                home=sbx.root,
                env=env,
                command=command,
                network=sbx.network,
                tmp_size=sbx.limits.tmp,
                data=data,
                disable_userns=sbx._disable_userns,
            )
            # bwrap's --chdir: the folder must exist inside; default is /home/user.
            full[full.index("--chdir") + 1] = inside_cwd
            popen_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            host_cwd = sbx._top
        else:
            tmp = os.path.join(sbx._top, "tmp-commands")
            os.makedirs(tmp, mode=0o700, exist_ok=True)
            full = command
            popen_env = launcher.sandbox_env(sbx.root, tmp=tmp, extra=extra)
            host_cwd = sbx._host_cwd(inside_cwd)
        procs = sbx._cgroup.procs_files if sbx._cgroup is not None else []
        try:
            proc = await asyncio.create_subprocess_exec(
                *full,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=host_cwd,
                env=popen_env,
                start_new_session=True,
                pass_fds=tuple(close_fds),
                preexec_fn=launcher.child_setup(os.getpid(), procs),  # noqa: PLW1509
            )
        finally:
            for fd in close_fds:
                os.close(fd)
        out, err = _Stream(keep, on_stdout), _Stream(keep, on_stderr)
        assert proc.stdout is not None and proc.stderr is not None
        pumps = asyncio.ensure_future(asyncio.gather(out.pump(proc.stdout), err.pump(proc.stderr)))
        handle = LocalCommandHandle(proc, (out, err), pumps, self)
        self._running[proc.pid] = handle
        return handle

    async def exec(
        self,
        argv: Sequence[str],
        *,
        envs: dict[str, str] | None = None,
        timeout: float | None = 600,  # noqa: ASYNC109
        keep: int = KEEP,
        cwd: str | None = None,
    ) -> ExecResult:
        """Run argv (no shell) in the sandbox; stdout and stderr combined, bounded."""
        handle = await self._start(argv, envs=envs, cwd=cwd, keep=keep, on_stdout=None, on_stderr=None)
        timed_out = False
        try:
            await asyncio.wait_for(asyncio.shield(handle._pumps), timeout)
            code = await handle._proc.wait()
        except TimeoutError:
            timed_out = True
            await handle.kill()
            code = await handle._proc.wait()
        except asyncio.CancelledError:
            await handle.kill()
            raise
        finally:
            self._running.pop(handle.pid, None)
        output = handle.stdout + (("\n" + handle.stderr) if handle.stderr else "")
        return ExecResult(output, _exit_code(code), timed_out)

    async def run(
        self,
        cmd: str,
        background: bool | None = None,
        envs: dict[str, str] | None = None,
        user: str | None = None,
        cwd: str | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        stdin: bool | None = None,
        timeout: float | None = 60,  # noqa: ASYNC109 - E2B's signature
        request_timeout: float | None = None,
        **_: Any,
    ) -> Any:
        """`bash -l -c cmd` in the sandbox: a CommandResult, or a handle when `background`.

        As with E2B: a non-zero exit raises CommandExitException; `timeout`
        (seconds, 0 = none) kills the command and raises TimeoutException.
        """
        handle = await self._start(
            ["/bin/bash", "-l", "-c", cmd],
            envs=envs,
            cwd=cwd,
            keep=KEEP,
            on_stdout=on_stdout,
            on_stderr=on_stderr,
            stdin=bool(stdin),
        )
        if timeout:
            asyncio.get_running_loop().call_later(timeout, self._expire, handle)
        if background:
            return handle
        try:
            return await handle.wait()
        except asyncio.CancelledError:
            await handle.kill()
            raise
        finally:
            if handle.error == "timeout":
                from e2b.exceptions import TimeoutException

                raise TimeoutException(f"command timed out after {timeout:g} s") from None

    def _expire(self, handle: LocalCommandHandle) -> None:
        if handle._proc.returncode is None:
            handle.error = "timeout"
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(handle._proc.pid, signal.SIGKILL)

    async def list(self, **_: Any) -> list[Any]:
        """The commands still running (E2B's ProcessInfo: pid, cmd, args, envs, cwd, tag)."""
        from e2b.sandbox.commands.main import ProcessInfo

        return [
            ProcessInfo(pid=pid, tag=None, cmd="/bin/bash", args=[], envs={}, cwd=WORKDIR)
            for pid, h in self._running.items()
            if h._proc.returncode is None
        ]

    async def kill(self, pid: int, **_: Any) -> bool:
        handle = self._running.get(pid)
        return await handle.kill() if handle is not None else False

    async def send_stdin(self, pid: int, data: str | bytes, **_: Any) -> None:
        await (await self.connect(pid)).send_stdin(data)

    async def close_stdin(self, pid: int, **_: Any) -> None:
        await (await self.connect(pid)).close_stdin()

    def kill_all(self) -> None:
        """SIGKILL every command still running (the sandbox is being killed)."""
        for handle in list(self._running.values()):
            if handle._proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(handle._proc.pid, signal.SIGKILL)
        self._running.clear()

    async def connect(self, pid: int, **_: Any) -> LocalCommandHandle:
        handle = self._running.get(pid)
        if handle is None:
            from e2b.exceptions import NotFoundException

            raise NotFoundException(f"process {pid} not found")
        return handle
