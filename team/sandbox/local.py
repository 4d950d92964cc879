"""`LocalSandbox`: an IPython kernel on this machine behind E2B's `AsyncSandbox` surface.

Callers (the session, the tools, the UI) must not be able to tell it from the E2B
backend, so it returns the SDK's own models (`Execution`, `Result`, `Logs`,
`ExecutionError`, `OutputMessage`, `EntryInfo`, `WriteInfo`) and raises the SDK's
own exceptions (`TimeoutException`, `FileNotFoundException`,
`InvalidArgumentException`).

Layout of one sandbox (all under one `sbteam-sbx-<pid>-*` temp folder, removed by
`kill()`; a folder left by a process that died is removed by the next `create()`):

    home/     the user's files; /home/user inside the sandbox (cwd and HOME)
    run/      connection files, kernel sockets (ipc), kernel logs, caches
    site/     PYTHONUSERBASE that install_package() fills; on the kernel's sys.path

With bubblewrap the kernel runs in its own mount/pid/ipc/uts (and, with
`network=False`, net) namespace that sees only those folders plus the read-only
system and Python installation (see `isolation.py`). The kernel talks to us over
unix sockets in `run/`, which work across network namespaces.

Kernel death contract: when the kernel dies while a cell runs (os._exit, segfault,
out of memory), that `run_code` call returns an `Execution` whose error is
`ExecutionError(name="KernelDied", ...)` and a fresh kernel is already running when
it returns. When it died between calls, the next `run_code` starts a fresh kernel,
runs the code there and reports the loss as a first stderr line (and `on_stderr`).

Deliberate differences from E2B: tracebacks come without ANSI colours and joined
with newlines (E2B joins coloured chunks with ""), because a model reads them;
only Python runs (no `language`/`context` other than Python).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import glob
import importlib.metadata
import inspect
import io
import json
import logging
import os
import pwd
import queue
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from typing import Any

from e2b.exceptions import FileNotFoundException, InvalidArgumentException, TimeoutException
from e2b.sandbox.filesystem.filesystem import EntryInfo, FileType, WriteInfo
from e2b_code_interpreter.exceptions import (
    format_execution_timeout_error,
    format_sandbox_killed_error,
)
from e2b_code_interpreter.models import Execution, ExecutionError, OutputMessage, Result
from packaging.requirements import Requirement

from . import isolation
from .base import WORKDIR, ErrorHandler, OutputHandler, ResultHandler, SandboxError
from .paths import PathOutsideSandbox, resolve, sandbox_relpath, to_sandbox_path
from .requirements import check_requirement

log = logging.getLogger(__name__)

TMP_PREFIX = "sbteam-sbx-"
START_TIMEOUT = 30.0  # seconds for a kernel to answer kernel_info
POLL = 0.1  # how often a waiting call checks for a dead kernel or kill()
DEFAULT_RUN_TIMEOUT = 300.0  # E2B's run_code default when timeout is None
INTERRUPT_GRACE = 3.0  # after an interrupt, how long before the kernel is replaced
KILLED_MESSAGE = "the sandbox was killed while the request was in progress"
KERNEL_DIED = ExecutionError(
    "KernelDied",
    "the kernel died (os._exit/segfault/out of memory); a fresh kernel was started "
    "and earlier variables are lost",
    "",
)
_PY_TAG = f"python{sys.version_info.major}.{sys.version_info.minor}"

# Silent code run in every fresh kernel: E2B's extra result formats (`data` for a
# pandas DataFrame, `chart` for a matplotlib figure, as E2B's template does with
# e2b-charts). Gated on sys.modules so pandas/matplotlib load only when used.
_SETUP_CODE = r"""
def __sbteam_setup(site, home):
    import math, os, sys
    from IPython import get_ipython
    from IPython.core.formatters import BaseFormatter
    from traitlets import ObjectName, Unicode

    if site not in sys.path:
        sys.path.insert(0, site)
    os.chdir(home)

    def clean(value):
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            return None
        if hasattr(value, "isoformat"):
            return value.isoformat()
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):
            try:
                return clean(value.item())
            except Exception:
                return str(value)
        return value

    class DataFormatter(BaseFormatter):
        format_type = Unicode("e2b/data")
        print_method = ObjectName("_repr_e2b_data_")
        _return_type = (dict, str)

        def __call__(self, obj):
            pandas = sys.modules.get("pandas")
            if pandas is None or not isinstance(obj, pandas.DataFrame):
                return super().__call__(obj)
            try:
                data = obj.to_dict(orient="list")
                return {str(k): [clean(v) for v in col] for k, col in data.items()}
            except Exception:
                return None

    class ChartFormatter(BaseFormatter):
        format_type = Unicode("e2b/chart")
        print_method = ObjectName("_repr_e2b_chart_")
        _return_type = (dict, str)

        def __call__(self, obj):
            if sys.modules.get("matplotlib") is None:
                return super().__call__(obj)
            from matplotlib.figure import Figure

            if not isinstance(obj, Figure):
                return super().__call__(obj)
            try:
                from e2b_charts import chart_figure_to_chart

                chart = chart_figure_to_chart(obj)
                return chart.model_dump(mode="json") if chart is not None else None
            except Exception:
                return None

    ip = get_ipython()
    fmt = ip.display_formatter
    fmt.formatters["e2b/data"] = DataFormatter(parent=fmt)
    fmt.formatters["e2b/chart"] = ChartFormatter(parent=fmt)

__sbteam_setup(%(site)r, %(home)r)
del __sbteam_setup
"""

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


def _to_result(data: dict[str, Any], main: bool) -> Result:
    """A jupyter mime bundle as the SDK's Result, field by field as E2B's server fills it."""
    data = dict(data)
    fields: dict[str, Any] = {}
    for mime, name in _MIME_FIELDS.items():
        if mime in data:
            fields[name] = data.pop(mime)
    text = fields.get("text")
    # E2B's server strips the quotes from a str's repr.
    if isinstance(text, str) and len(text) >= 2 and text.startswith("'") and text.endswith("'"):
        fields["text"] = text[1:-1]
    return Result(is_main_result=main, extra=data or None, **fields)


async def _call(handler: Any, arg: Any) -> None:
    """Call a sync or async callback."""
    if handler is None:
        return
    out = handler(arg)
    if inspect.isawaitable(out):
        await out


# --- processes --------------------------------------------------------------------

_libc: Any = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError):
        _libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent_preexec(parent: int) -> Any:
    """preexec_fn: SIGKILL the child when the thread that started it dies.

    Caveat of PR_SET_PDEATHSIG: it follows the *thread*, so kernels are started
    from the event loop's thread, never from asyncio.to_thread workers.
    """

    def preexec() -> None:
        if _libc is not None:
            _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _kill_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL a child and its process group (it was started in a new session)."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, OSError):
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
        proc.wait(timeout=2)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap_stale_dirs() -> None:
    """Remove sandbox folders whose owning process is gone (it was SIGKILLed)."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), TMP_PREFIX + "*")):
        name = os.path.basename(path)[len(TMP_PREFIX) :]
        pid_text = name.split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _pid_alive(int(pid_text)):
            shutil.rmtree(path, ignore_errors=True)


def _prepare_folders(root: str | None) -> tuple[str, str]:
    """Reap folders of dead owners, then make this sandbox's top and home folders."""
    _reap_stale_dirs()
    top = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-")
    home = os.path.abspath(root) if root else os.path.join(top, "home")
    for sub in (home, os.path.join(top, "run", "tmp"), os.path.join(top, "site")):
        os.makedirs(sub, exist_ok=True)
    os.makedirs(os.path.join(top, "site", "lib", _PY_TAG, "site-packages"), exist_ok=True)
    return top, home


_live: set[LocalSandbox] = set()  # strong refs: atexit must reach every live sandbox


@atexit.register
def _cleanup_at_exit() -> None:
    """Last resort when the app exits without kill(): no kernel, no temp folder left."""
    for sbx in list(_live):
        sbx._kill_sync()


class _Kernel:
    """One kernel process and the client connected to it."""

    def __init__(self, proc: subprocess.Popen[bytes], client: Any, name: str, log_path: str):
        self.proc = proc
        self.client = client
        self.name = name
        self.log_path = log_path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def interrupt(self) -> None:
        """Interrupt by message (interrupt_mode="message"): works through the pid namespace."""
        if not self.alive():
            return
        with contextlib.suppress(Exception):
            msg = self.client.session.msg("interrupt_request", content={})
            self.client.control_channel.send(msg)

    def stop(self) -> None:
        _kill_process(self.proc)
        with contextlib.suppress(Exception):
            self.client.stop_channels()
        with contextlib.suppress(Exception):
            # The kernel is gone: without linger=0, messages it never read keep the
            # client's zmq context (linger 1000 ms) and so the app's exit waiting ~1 s.
            self.client.context.destroy(linger=0)

    def log_tail(self, limit: int = 2000) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - limit))
                return fh.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""


# --- files -------------------------------------------------------------------------


class _FileStream:
    """Async iterator over a file's bytes (what E2B's `read(format="stream")` gives)."""

    CHUNK = 1 << 16

    def __init__(self, fh: io.BufferedReader):
        self._fh = fh

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._fh.closed:
            raise StopAsyncIteration
        chunk = await asyncio.to_thread(self._fh.read, self.CHUNK)
        if not chunk:
            self._fh.close()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._fh.close()

    async def __aenter__(self) -> _FileStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class LocalFiles:
    """`sandbox.files` for the local backend: E2B's Filesystem over a host folder.

    Every path is confined to the sandbox folder (see `paths.resolve`); a path that
    leaves it raises `PathOutsideSandbox` (an E2B `InvalidArgumentException`) before
    anything is read or written.
    """

    def __init__(self, root: str):
        self._root = root

    def _host(self, path: str) -> str:
        return resolve(self._root, path)

    @staticmethod
    def _sandbox_path(path: str) -> str:
        return to_sandbox_path(sandbox_relpath(path))

    async def read(self, path: str, format: str = "text", **_: Any) -> Any:
        """File content as str ("text"), bytearray ("bytes") or an async byte stream ("stream")."""
        host = self._host(path)
        if format not in ("text", "bytes", "stream"):
            raise InvalidArgumentException(f"unknown format {format!r}")

        def _read() -> Any:
            if os.path.isdir(host):
                raise InvalidArgumentException(f"path {path!r} is a directory")
            try:
                if format == "stream":
                    return open(host, "rb")  # noqa: SIM115 - closed by the stream
                with open(host, "rb") as fh:
                    data = fh.read()
            except FileNotFoundError:
                raise FileNotFoundException(f"file {path!r} does not exist") from None
            if format == "text":
                return data.decode("utf-8", "replace")
            return bytearray(data)

        out = await asyncio.to_thread(_read)
        return _FileStream(out) if format == "stream" else out

    async def write(self, path: str, data: Any, **_: Any) -> WriteInfo:
        """Write str/bytes/file-like/async-iterable data, creating parent folders."""
        host = self._host(path)
        if sandbox_relpath(path) == "":
            raise InvalidArgumentException(f"path {path!r} is a directory")
        chunks: list[bytes] | None = None
        if isinstance(data, AsyncIterable):
            chunks = [bytes(c) async for c in data]

        def _write() -> None:
            if os.path.isdir(host):
                raise InvalidArgumentException(f"path {path!r} is a directory")
            os.makedirs(os.path.dirname(host), exist_ok=True)
            resolve(self._root, path)  # re-check: a parent may have been a symlink
            with open(host, "wb") as fh:
                if chunks is not None:
                    for chunk in chunks:
                        fh.write(chunk)
                elif isinstance(data, str):
                    fh.write(data.encode("utf-8"))
                elif isinstance(data, (bytes, bytearray, memoryview)):
                    fh.write(data)
                elif hasattr(data, "read"):
                    while True:
                        chunk = data.read(1 << 16)
                        if not chunk:
                            break
                        fh.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
                else:
                    raise InvalidArgumentException(
                        f"cannot write data of type {type(data).__name__}"
                    )

        await asyncio.to_thread(_write)
        spath = self._sandbox_path(path)
        return WriteInfo(name=os.path.basename(spath), type=FileType.FILE, path=spath)

    async def list(self, path: str = WORKDIR, depth: int | None = 1, **_: Any) -> list[EntryInfo]:
        """Entries under a folder, depth-first in name order (parents before children)."""
        if depth is not None and depth < 1:
            raise InvalidArgumentException("depth should be at least 1")
        host = self._host(path)
        base = self._sandbox_path(path)

        def _entry(full: str, spath: str, st: os.stat_result, lst: os.stat_result) -> EntryInfo:
            is_link = stat.S_ISLNK(lst.st_mode)
            ftype = FileType.DIR if stat.S_ISDIR(st.st_mode) else FileType.FILE
            target = None
            if is_link:
                with contextlib.suppress(OSError):
                    target = os.readlink(full)
            return EntryInfo(
                name=os.path.basename(spath),
                type=ftype,
                path=spath,
                size=st.st_size,
                mode=stat.S_IMODE(st.st_mode),
                permissions=stat.filemode(st.st_mode)[1:],
                owner=_owner(st.st_uid),
                group=str(st.st_gid),
                modified_time=datetime.fromtimestamp(st.st_mtime, tz=UTC),
                symlink_target=target,
            )

        def _walk() -> list[EntryInfo]:
            real_root = os.path.realpath(self._root)
            if not os.path.exists(host):
                raise FileNotFoundException(f"path {path!r} does not exist")
            if not os.path.isdir(host):
                raise InvalidArgumentException(f"path {path!r} is not a directory")
            out: list[EntryInfo] = []

            def walk(folder: str, spath: str, level: int) -> None:
                try:
                    names = sorted(os.listdir(folder))
                except OSError:
                    return
                for name in names:
                    full = os.path.join(folder, name)
                    child = f"{spath}/{name}"
                    try:
                        lst = os.lstat(full)
                    except OSError:
                        continue
                    st = lst
                    if stat.S_ISLNK(lst.st_mode):
                        with contextlib.suppress(OSError):
                            st = os.stat(full)
                    out.append(_entry(full, child, st, lst))
                    descend = stat.S_ISDIR(lst.st_mode)  # never follow symlinked folders
                    if descend and (depth is None or level < depth):
                        real = os.path.realpath(full)
                        if real.startswith(real_root + os.sep):
                            walk(full, child, level + 1)

            walk(host, base, 1)
            return out

        return await asyncio.to_thread(_walk)

    async def exists(self, path: str, **_: Any) -> bool:
        host = self._host(path)
        return await asyncio.to_thread(os.path.lexists, host)

    async def get_info(self, path: str, **_: Any) -> EntryInfo:
        host = self._host(path)
        spath = self._sandbox_path(path)

        def _info() -> EntryInfo:
            try:
                lst = os.lstat(host)
                st = os.stat(host) if stat.S_ISLNK(lst.st_mode) else lst
            except FileNotFoundError:
                raise FileNotFoundException(f"path {path!r} does not exist") from None
            return EntryInfo(
                name=os.path.basename(spath),
                type=FileType.DIR if stat.S_ISDIR(st.st_mode) else FileType.FILE,
                path=spath,
                size=st.st_size,
                mode=stat.S_IMODE(st.st_mode),
                permissions=stat.filemode(st.st_mode)[1:],
                owner=_owner(st.st_uid),
                group=str(st.st_gid),
                modified_time=datetime.fromtimestamp(st.st_mtime, tz=UTC),
                symlink_target=os.readlink(host) if stat.S_ISLNK(lst.st_mode) else None,
            )

        return await asyncio.to_thread(_info)

    async def remove(self, path: str, **_: Any) -> None:
        """Remove a file or folder (recursively); a missing path is not an error.

        A symlink is removed itself, never what it points to.
        """
        rel = sandbox_relpath(path)
        if rel == "":
            raise InvalidArgumentException(f"cannot remove the sandbox folder ({WORKDIR})")
        parent = resolve(self._root, to_sandbox_path(os.path.dirname(rel)))
        host = os.path.join(parent, os.path.basename(rel))

        def _remove() -> None:
            try:
                lst = os.lstat(host)
            except FileNotFoundError:
                return
            if stat.S_ISDIR(lst.st_mode):
                shutil.rmtree(host, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(host)

        await asyncio.to_thread(_remove)

    async def make_dir(self, path: str, **_: Any) -> bool:
        """Create a folder and its parents; True if created, False if it existed."""
        host = self._host(path)

        def _mkdir() -> bool:
            if os.path.isdir(host):
                return False
            os.makedirs(host, exist_ok=True)
            resolve(self._root, path)
            return True

        return await asyncio.to_thread(_mkdir)


# --- sandbox -----------------------------------------------------------------------


class LocalSandbox:
    """E2B's AsyncSandbox surface over a local IPython kernel (see module docstring)."""

    kind = "local"

    def __init__(
        self,
        *,
        top: str,
        home: str,
        envs: dict[str, str] | None,
        network: bool,
        bwrap: str | None,
    ):
        self.sandbox_id = f"local-{uuid.uuid4().hex[:12]}"
        self._top = top
        self.root = home  # host folder that is /home/user inside the sandbox
        self._runtime = os.path.join(top, "run")
        self._site = os.path.join(top, "site")
        self._envs = dict(envs or {})
        self.network = network
        self._bwrap = bwrap
        self.isolation = "bwrap" if bwrap else "none"
        self.files = LocalFiles(home)
        self._kernel: _Kernel | None = None
        self._generation = 0
        self._lock = asyncio.Lock()
        self._killed = False
        self._pip: subprocess.Popen[bytes] | None = None
        self._interrupt_epoch = 0  # interrupt() count; a call made before the last one stops
        self._interrupt_sent_at = 0.0
        self._background: set[asyncio.Task[None]] = set()
        self._pid = os.getpid()

    # ---- lifecycle

    @classmethod
    async def create(
        cls,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - E2B's signature
        network: bool = True,
        root: str | None = None,
        isolate: bool | None = None,
        **_: Any,
    ) -> LocalSandbox:
        """Start a sandbox and wait until its kernel answers.

        `envs` are added to the kernel's (allow-listed) environment. `timeout` is
        E2B's sandbox lifetime; accepted for compatibility, a local sandbox lives
        until `kill()`. `network=False` (bwrap only) gives the kernel no network.
        `root` uses an existing folder as /home/user (kept on kill); by default a
        fresh temp folder is used. `isolate` forces bwrap (True, error if missing)
        or no isolation (False); None picks bwrap when available.
        """
        bwrap = isolation.bwrap_path()
        if isolate is True and bwrap is None:
            raise SandboxError("bubblewrap (bwrap) is not available, cannot isolate the kernel")
        if isolate is False:
            bwrap = None
        top, home = await asyncio.to_thread(_prepare_folders, root)
        sbx = cls(top=top, home=home, envs=envs, network=network, bwrap=bwrap)
        _live.add(sbx)
        try:
            await sbx._start_kernel()
        except BaseException:
            await sbx.kill()
            raise
        return sbx

    async def __aenter__(self) -> LocalSandbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.kill()

    async def is_running(self) -> bool:
        return not self._killed and self._kernel is not None and self._kernel.alive()

    async def kill(self) -> None:
        """Stop the kernel and pip, remove the temp folder. Safe to call twice."""
        if self._killed:
            return
        self._killed = True
        kernel = self._kernel
        if kernel is not None:
            _kill_process(kernel.proc)  # a waiting run_code notices within POLL
        _kill_process(self._pip)
        if self._lock.locked():
            with contextlib.suppress(TimeoutError, RuntimeError):
                await asyncio.wait_for(self._lock.acquire(), 2.0)
                self._lock.release()
        self._kill_sync()

    def _kill_sync(self) -> None:
        self._killed = True
        if self._kernel is not None:
            self._kernel.stop()
            self._kernel = None
        _kill_process(self._pip)
        if os.getpid() == self._pid:
            shutil.rmtree(self._top, ignore_errors=True)
        _live.discard(self)

    # ---- kernel process

    def _site_packages(self, host: bool) -> str:
        base = self._site if (host or not self._bwrap) else isolation.SITE_MOUNT
        return f"{base}/lib/{_PY_TAG}/site-packages"

    def _spawn(self) -> _Kernel:
        """Write a connection file and start the kernel (on the loop's thread, see preexec)."""
        from jupyter_client.asynchronous.client import AsyncKernelClient

        self._generation += 1
        name = f"{self.sandbox_id}-k{self._generation}"
        inside = isolation.RUNTIME_MOUNT if self._bwrap else self._runtime
        home = WORKDIR if self._bwrap else self.root
        tmp = "/tmp" if self._bwrap else os.path.join(self._runtime, "tmp")
        info = {
            "shell_port": 1,
            "iopub_port": 2,
            "stdin_port": 3,
            "control_port": 4,
            "hb_port": 5,
            "transport": "ipc",
            "key": uuid.uuid4().hex,
            "signature_scheme": "hmac-sha256",
            "kernel_name": "python3",
        }
        conn_path = os.path.join(self._runtime, f"{name}.json")
        fd = os.open(conn_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({**info, "ip": f"{inside}/{name}"}, fh)
        command = [
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            f"{inside}/{name}.json",
            "--HistoryManager.enabled=False",
            "--InteractiveShell.colors=NoColor",
        ]
        env = isolation.kernel_env(
            home, tmp=tmp, site=self._site_packages(host=False), extra=self._envs
        )
        if self._bwrap:
            argv = isolation.bwrap_argv(
                self._bwrap,
                home=self.root,
                runtime=self._runtime,
                site=self._site,
                env=env,
                command=command,
                network=self.network,
            )
            popen_env: dict[str, str] = {"PATH": env["PATH"]}
        else:
            argv, popen_env = command, env
        log_path = os.path.join(self._runtime, f"{name}.log")
        with open(log_path, "wb") as log_fh:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env=popen_env,
                start_new_session=True,
                close_fds=True,
                preexec_fn=_die_with_parent_preexec(os.getpid()),  # noqa: PLW1509
            )
        client = AsyncKernelClient()
        client.load_connection_info({**info, "ip": os.path.join(self._runtime, name)})
        client.start_channels(hb=False)
        return _Kernel(proc, client, name, log_path)

    async def _start_kernel(self) -> None:
        kernel = self._spawn()
        self._kernel = kernel
        try:
            await self._wait_ready(kernel)
            site = self._site_packages(host=False)
            home = WORKDIR if self._bwrap else self.root
            await self._silent(kernel, _SETUP_CODE % {"site": site, "home": home})
        except BaseException:
            kernel.stop()
            if self._kernel is kernel:
                self._kernel = None
            raise

    async def _wait_ready(self, kernel: _Kernel) -> None:
        """kernel_info round trip on shell, and proof that iopub is subscribed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        client = kernel.client
        while True:
            msg_id = client.kernel_info()
            resend = loop.time() + 1.0
            got_reply = got_iopub = False
            while loop.time() < resend and not (got_reply and got_iopub):
                if self._killed:
                    raise SandboxError(KILLED_MESSAGE)
                if not kernel.alive():
                    raise SandboxError(
                        f"the kernel failed to start: {kernel.log_tail() or 'no output'}"
                    )
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

    async def _silent(
        self,
        kernel: _Kernel,
        code: str,
        timeout: float = 30.0,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Run bookkeeping code that counts for nothing (no history, no execution_count)."""
        client = kernel.client
        msg_id = client.execute(code, silent=True, store_history=False, allow_stdin=False)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                msg = await client.get_shell_msg(timeout=POLL)
            except queue.Empty:
                if not kernel.alive() or self._killed or loop.time() > deadline:
                    raise SandboxError("the kernel did not finish its setup") from None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                content: dict[str, Any] = msg["content"]
                if content.get("status") == "error":
                    raise SandboxError(
                        f"kernel setup failed: {content.get('ename')}: {content.get('evalue')}"
                    )
                return content

    async def _replace_kernel(self) -> None:
        old = self._kernel
        self._kernel = None
        if old is not None:
            old.stop()
        await self._start_kernel()

    async def interrupt(self) -> None:
        """Stop the running cell (if any); the kernel keeps its state.

        It applies to every run_code call already made: the running cell gets a
        KeyboardInterrupt (re-sent if it arrived before the cell had started), and
        calls still waiting for their turn return at once with a KeyboardInterrupt
        error without running. Later calls are not affected.
        """
        if self._kernel is None or self._killed:
            return
        self._interrupt_epoch += 1
        self._interrupt_sent_at = asyncio.get_running_loop().time()
        self._kernel.interrupt()

    async def _settle(self, kernel: _Kernel, msg_id: str) -> None:
        """Stop a cell whose caller went away (cancelled): interrupt until it is idle.

        Runs in the background under the lock, so the next call starts on an idle
        kernel; a cell that ignores SIGINT past the grace period costs the kernel.
        """
        loop = asyncio.get_running_loop()
        async with self._lock:
            if kernel is not self._kernel or self._killed:
                return
            give_up = loop.time() + INTERRUPT_GRACE
            last = loop.time()
            kernel.interrupt()
            while kernel.alive() and not self._killed:
                try:
                    msg = await kernel.client.get_iopub_msg(timeout=POLL)
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
                if now > give_up:
                    with contextlib.suppress(SandboxError):
                        await self._replace_kernel()
                    return
                if now - last > 0.25:
                    kernel.interrupt()  # the first may have landed before the cell started
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

        `timeout` (seconds; None = E2B's default 300 s, 0 = no limit) interrupts the cell and raises E2B's
        TimeoutException, the kernel keeping its state. kill() during the call raises
        TimeoutException too. Calls are serialized.
        """
        if language not in (None, "python", "python3"):
            raise InvalidArgumentException(f"the local sandbox runs python only, not {language!r}")
        epoch = self._interrupt_epoch
        return await self._run_code(
            code, epoch, on_stdout, on_stderr, on_result, on_error, envs, timeout
        )

    async def _run_code(
        self,
        code: str,
        epoch: int,
        on_stdout: OutputHandler | None,
        on_stderr: OutputHandler | None,
        on_result: ResultHandler | None,
        on_error: ErrorHandler | None,
        envs: dict[str, str] | None,
        timeout: float | None,  # noqa: ASYNC109
    ) -> Execution:
        async with self._lock:
            if self._killed:
                raise SandboxError("the sandbox was killed")
            execution = Execution()
            if self._kernel is None or not self._kernel.alive():
                await self._replace_kernel()
                notice = f"[sandbox] {KERNEL_DIED.value}\n"
                execution.logs.stderr.append(notice)
                await _call(on_stderr, OutputMessage(notice, time.time_ns(), True))
            kernel = self._kernel
            assert kernel is not None
            if envs:
                env_code = _ENV_SET % {
                    "keys": list(envs),
                    "envs": {str(k): str(v) for k, v in envs.items()},
                }
                await self._silent(kernel, env_code)
            try:
                died = await self._execute(
                    kernel,
                    code,
                    epoch,
                    execution,
                    None if timeout == 0 else (timeout or DEFAULT_RUN_TIMEOUT),
                    on_stdout,
                    on_stderr,
                    on_result,
                    on_error,
                )
            except TimeoutException:
                if envs and kernel.alive() and not self._killed:
                    with contextlib.suppress(SandboxError):
                        await self._silent(kernel, _ENV_RESTORE, timeout=5)
                raise
            if died:
                if self._killed:
                    raise format_sandbox_killed_error()
                await self._replace_kernel()
                execution.error = KERNEL_DIED
                await _call(on_error, execution.error)
                return execution
            if envs:
                await self._silent(kernel, _ENV_RESTORE)
            return execution

    async def _execute(
        self,
        kernel: _Kernel,
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
        client = kernel.client
        loop = asyncio.get_running_loop()
        if self._interrupt_epoch > epoch:  # interrupted while waiting for its turn
            execution.error = ExecutionError(
                "KeyboardInterrupt", "interrupted before it started", ""
            )
            await _call(on_error, execution.error)
            return False
        msg_id = client.execute(code, silent=False, store_history=True, allow_stdin=False)
        deadline = loop.time() + timeout if timeout else None
        interrupted_at: float | None = None
        started = finished = False
        started_at = 0.0
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
                if msg is None and not kernel.alive():
                    return True
                now = loop.time()
                if (
                    self._interrupt_epoch > epoch
                    and started
                    and (
                        self._interrupt_sent_at < started_at or now - self._interrupt_sent_at > 1.0
                    )
                ):
                    # interrupt() came before the cell started (SIGINT to an idle kernel
                    # is ignored), or it was lost: send it again.
                    kernel.interrupt()
                    self._interrupt_sent_at = now
                if deadline is not None and interrupted_at is None and now >= deadline:
                    kernel.interrupt()
                    interrupted_at = now
                if interrupted_at is not None and now - interrupted_at > INTERRUPT_GRACE:
                    # The cell ignores SIGINT (stuck in C code): replace the kernel.
                    await self._replace_kernel()
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
                        execution.logs.stderr.append(text)
                        await _call(on_stderr, OutputMessage(text, time.time_ns(), True))
                    else:
                        execution.logs.stdout.append(text)
                        await _call(on_stdout, OutputMessage(text, time.time_ns(), False))
                elif kind in ("display_data", "execute_result"):
                    result = _to_result(content.get("data", {}), kind == "execute_result")
                    execution.results.append(result)
                    await _call(on_result, result)
                elif kind == "error":
                    if interrupted_at is None:
                        execution.error = ExecutionError(
                            content.get("ename", ""),
                            content.get("evalue", ""),
                            "\n".join(content.get("traceback", [])),
                        )
                        await _call(on_error, execution.error)
                elif kind == "execute_input":
                    execution.execution_count = content.get("execution_count")
                    started, started_at = True, loop.time()
                    if self._interrupt_epoch > epoch and self._interrupt_sent_at < started_at:
                        kernel.interrupt()  # requested before the cell started
                        self._interrupt_sent_at = started_at
                elif kind == "status" and content.get("execution_state") == "idle":
                    finished = True
                    break
        except BaseException:
            if not self._killed and kernel.alive() and not finished and kernel is self._kernel:
                # Cancelled or a callback raised: don't leave the cell running.
                kernel.interrupt()
                task = asyncio.get_running_loop().create_task(self._settle(kernel, msg_id))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            raise
        finally:
            await self._drain_shell(kernel)
        if interrupted_at is not None:
            raise format_execution_timeout_error()
        return False

    @staticmethod
    async def _drain_shell(kernel: _Kernel) -> None:
        """Drop queued execute replies (output already came over iopub)."""
        with contextlib.suppress(Exception):
            while True:
                await kernel.client.get_shell_msg(timeout=0)

    # ---- packages

    async def install_package(
        self,
        package_name: str,
        timeout: float = 600,  # noqa: ASYNC109 - the interface's
    ) -> tuple[bool, str]:
        """pip-install one requirement into the sandbox's site folder; (ok, output).

        Refuses anything but a plain requirement (see requirements.py) without
        running pip. A requirement already satisfied (system or sandbox site) is
        reported without running pip. pip runs as a host subprocess with an
        allow-listed environment (it needs the package index even when the kernel
        has no network), `--user` into the sandbox's PYTHONUSERBASE so packages
        the system already has are not downloaded again.
        """
        reason = check_requirement(package_name)
        if reason:
            return False, f"refused: {reason}"
        if self._killed:
            return False, "the sandbox was killed"
        spec = package_name.strip()
        already = await asyncio.to_thread(self._satisfied, spec)
        if already:
            return True, already
        in_venv = sys.prefix != sys.base_prefix
        cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
        cmd += ["--no-cache-dir", "--progress-bar", "off", "--no-warn-script-location"]
        cmd += ["--target", self._site_packages(host=True)] if in_venv else ["--user"]
        cmd += [spec]
        # pip's HOME (its tools write dotfiles there). NOT under run/, which the kernel
        # sees read-write at /run/sbteam: code there could plant ~/.config/pip/pip.conf
        # and point the host-side pip at an index of its choosing.
        pip_home = os.path.join(self._top, "pip-home")
        os.makedirs(pip_home, exist_ok=True)
        env = isolation.pip_env(pip_home, self._site)
        start = time.monotonic()
        # Popen on the loop's thread on purpose: PR_SET_PDEATHSIG follows the thread.
        proc = subprocess.Popen(  # noqa: ASYNC220
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self._top,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent_preexec(os.getpid()),  # noqa: PLW1509
        )
        self._pip = proc
        try:
            out, _ = await asyncio.wait_for(asyncio.to_thread(proc.communicate), timeout)
        except TimeoutError:
            _kill_process(proc)
            return False, f"pip install {spec} timed out after {timeout:.0f} s"
        except asyncio.CancelledError:
            _kill_process(proc)
            raise
        finally:
            self._pip = None
        text = out.decode("utf-8", "replace") if out else ""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        tail = "\n".join(lines[-15:])[-3000:]
        ok = proc.returncode == 0
        if ok:
            kernel = self._kernel
            if kernel is not None and kernel.alive() and not self._lock.locked():
                async with self._lock:
                    with contextlib.suppress(SandboxError):
                        await self._silent(
                            kernel, "import importlib; importlib.invalidate_caches()"
                        )
            tail = f"installed {spec} in {time.monotonic() - start:.1f} s\n{tail}"
        return ok, tail

    def _satisfied(self, spec: str) -> str | None:
        """'name version is already installed' if the requirement is met, else None."""
        req = Requirement(spec)
        sc = sysconfig.get_paths()
        paths = [self._site_packages(host=True), sc["purelib"], sc["platlib"]]
        try:
            dist = next(iter(importlib.metadata.distributions(name=req.name, path=paths)))
        except (StopIteration, Exception):
            return None
        version = dist.version
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            return None
        return f"{req.name} {version} is already installed"


__all__ = ["LocalFiles", "LocalSandbox", "PathOutsideSandbox"]
