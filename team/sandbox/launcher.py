"""How a process of the local sandbox is started: the bubblewrap command line, its
environment, its limits. One function builds the whole argv (`bwrap_argv`) so the
security boundary can be read, and unit-tested, in one place.

What a sandboxed process gets (with bwrap):
- its own user namespace where it is uid/gid 1000 (`user`, as in E2B) with every
  capability dropped, no way to make further user namespaces, no new privileges,
  its own session (no TIOCSTI into the app's terminal), and its own pid, ipc, uts
  and cgroup namespaces (`--network off`: net too);
- read-only: the system folders, the Python installation(s) the app runs from, and
  only the `/etc` files a Python program needs, with a synthetic `passwd`/`group`
  (no `/etc/shadow`, no host accounts);
- read-write: the sandbox folder at /home/user, a private size-limited /tmp and
  /dev/shm, and for a kernel its own fresh socket folder at /run/sbteam;
- files handed over by fd (`--ro-bind-data`), e.g. the kernel's connection file:
  they exist nowhere the sandbox could have written;
- an environment from an allow-list (no key of the app's ever);
- resource limits set inside by `guest.exec_with_limits` before the program starts.

Order matters in bwrap: a later mount covers an earlier one, so the private /tmp
comes before the Python binds (a venv under /tmp stays visible) and the root is
remounted read-only last.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence

from . import guest
from .base import WORKDIR

SANDBOX_UID = 1000
RUNTIME_MOUNT = "/run/sbteam"  # a kernel's socket folder (fresh for every kernel)
CONNECTION_FILE = "/run/sbteam-kernel.json"  # read-only, handed over by fd
SITE_REL = f".local/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"

SYSTEM_DIRS: tuple[str, ...] = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# /etc entries a Python program (and pip, matplotlib, ssl, DNS) needs; nothing else
# of the host's /etc is visible. Missing ones are skipped.
ETC_ALLOW: tuple[str, ...] = (
    "alternatives", "ca-certificates", "ca-certificates.conf", "fonts", "gai.conf",
    "host.conf", "hosts", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime",
    "mime.types", "nsswitch.conf", "protocols", "resolv.conf", "services", "ssl",
    "timezone",
)  # fmt: skip
PASSWD = (
    "root:x:0:0:root:/root:/usr/sbin/nologin\n"
    f"user:x:{SANDBOX_UID}:{SANDBOX_UID}:user:{WORKDIR}:/bin/bash\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
)
GROUP = f"root:x:0:\nuser:x:{SANDBOX_UID}:\nnogroup:x:65534:\n"
# E2B's template gives `user` passwordless sudo; here there is no root to become,
# so `sudo CMD` runs CMD as the user (it works where root was not needed, and
# fails with a plain permission error where it was) instead of "command not found".
GUEST_BIN = "/opt/sbteam/bin"
SUDO = """#!/bin/sh
# sbteam: the local sandbox has no root; sudo runs the command as the sandbox's user.
while [ $# -gt 0 ]; do
  case "$1" in
    -u|-g|-C|-p|-h|-r|-t|-U) shift 2 ;;
    --) shift; break ;;
    -*) shift ;;
    *) break ;;
  esac
done
if [ $# -eq 0 ]; then echo "sudo: no command (there is no root in the local sandbox)" >&2; exit 1; fi
exec "$@"
"""

SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

# The only host variables a sandboxed process may inherit; everything else (API
# keys, tokens, PIP_* settings, the app's own settings) stays out.
ENV_ALLOW: tuple[str, ...] = ("LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ")


def python_bin() -> str:
    """The folder of the interpreter the app runs, first on the sandbox's PATH."""
    return os.path.dirname(sys.executable)


def sandbox_env(
    home: str,
    *,
    tmp: str,
    extra: Mapping[str, str] | None = None,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of a sandboxed process: allow-listed host variables plus ours.

    `home` is what the process sees as its home and working folder; `tmp` a writable
    folder for caches (matplotlib, IPython, Jupyter) so they never show up among the
    user's files and never carry over to the next kernel.
    """
    src = os.environ if source is None else source
    env = {k: src[k] for k in ENV_ALLOW if k in src}
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        {
            "PATH": f"{python_bin()}:/usr/local/bin:/usr/bin:/bin:{GUEST_BIN}",
            "HOME": home,
            "USER": "user",
            "LOGNAME": "user",
            "TMPDIR": tmp,
            # Headless: figures render to PNG and reach the client via display().
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "MPLCONFIGDIR": f"{tmp}/matplotlib",
            "IPYTHONDIR": f"{tmp}/ipython",
            "JUPYTER_CONFIG_DIR": f"{tmp}/jupyter",
            "JUPYTER_DATA_DIR": f"{tmp}/jupyter",
            "JUPYTER_RUNTIME_DIR": f"{tmp}/jupyter",
            "XDG_CACHE_HOME": f"{tmp}/cache",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            "PIP_CONFIG_FILE": os.devnull,  # no pip.conf from anywhere: the index is PyPI or envs'
            # Under RLIMIT_AS every reserved address range counts, and glibc reserves
            # 64 MB per malloc arena (up to 8 per core): few arenas keep a 4 GB limit
            # about memory really used.
            "MALLOC_ARENA_MAX": "2",
        }
    )
    # pip and requests use certifi's bundle, not the system's: point them at the
    # system store (a public list, and where a company's proxy CA is installed).
    for name in ("PIP_CERT", "REQUESTS_CA_BUNDLE"):
        if os.path.isfile(SYSTEM_CA_BUNDLE):
            env[name] = SYSTEM_CA_BUNDLE
    if extra:
        env.update({str(k): str(v) for k, v in extra.items()})
    # Never hand a parent pid to ipykernel: under --unshare-pid it would think its
    # parent died and exit (bwrap's --die-with-parent does that job instead).
    env.pop("JPY_PARENT_PID", None)
    return env


def guest_argv(limits: Mapping[str, int], argv: Sequence[str]) -> list[str]:
    """`argv` wrapped so it starts with the sandbox's rlimits already set.

    `-I` (isolated): no PYTHON* variables, no user site, no current folder on
    sys.path, so nothing the sandbox wrote in /home/user runs at start-up.
    """
    return [sys.executable, "-I", "-c", _guest_source(), json.dumps(dict(limits)), *argv]


@functools.cache
def _guest_source() -> str:
    return inspect.getsource(guest)


def _python_binds(*, under_home: bool) -> list[str]:
    """Read-only binds of the Python installation(s) at their own paths (venv + base).

    `under_home` selects those inside /home/user (a host user really called
    `user`): they must be bound after the sandbox folder, or it would hide them.
    """
    args: list[str] = []
    seen: set[str] = set()
    candidates = [sys.base_prefix, sys.prefix, os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))]
    for path in candidates:
        real = os.path.realpath(path)
        if real in seen or path in seen or _under_system(real):
            continue
        seen.update((real, path))
        if (path == WORKDIR or path.startswith(WORKDIR + "/")) == under_home:
            args += ["--ro-bind", real, path]
    return args


def _under_system(path: str) -> bool:
    return any(path == d or path.startswith(d + "/") for d in SYSTEM_DIRS)


def _system_binds() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def _etc_binds() -> list[str]:
    args: list[str] = []
    for name in ETC_ALLOW:
        path = f"/etc/{name}"
        if os.path.lexists(path):
            args += ["--ro-bind-try", path, path]  # a symlink is bound as its target
    return args


def bwrap_argv(
    bwrap: str,
    *,
    home: str,
    env: Mapping[str, str],
    command: Sequence[str],
    network: bool,
    tmp_size: int = 0,
    data: Mapping[str, int | tuple[int, str]] | None = None,
    runtime: str | None = None,
    disable_userns: bool = True,
) -> list[str]:
    """The bubblewrap command line that runs `command` in the sandbox (see the module doc).

    `data` maps a path inside to a readable fd (or (fd, octal permissions)) whose
    content appears there read-only (`--ro-bind-data`; the fds must be passed to
    the child). `runtime`
    is a host folder bound read-write at RUNTIME_MOUNT (a kernel's sockets).
    """
    size = ["--size", str(tmp_size)] if tmp_size else []
    argv = [bwrap, *_system_binds(), *_etc_binds()]
    argv += ["--proc", "/proc", "--dev", "/dev", "--dir", "/root"]  # E2B's VM has a /root (code may cd there)
    argv += [*size, "--tmpfs", "/tmp", *size, "--tmpfs", "/dev/shm"]
    argv += _python_binds(under_home=False)
    argv += ["--bind", home, WORKDIR]
    argv += _python_binds(under_home=True)
    if runtime is not None:
        argv += ["--bind", runtime, RUNTIME_MOUNT]
    for dest, item in (data or {}).items():
        fd, perms = item if isinstance(item, tuple) else (item, "")
        argv += (["--perms", perms] if perms else []) + ["--ro-bind-data", str(fd), dest]
    argv += ["--remount-ro", "/dev", "--remount-ro", "/"]
    argv += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    if disable_userns:
        argv += ["--disable-userns"]
    argv += ["--cap-drop", "ALL"]
    argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not network:
        argv += ["--unshare-net"]
    argv += ["--hostname", "sandbox", "--die-with-parent", "--new-session"]
    argv += ["--chdir", WORKDIR, "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    argv += ["--", *command]
    return argv


def guest_files() -> tuple[dict[str, int | tuple[int, str]], list[int]]:
    """Files every sandboxed process gets by fd: synthetic /etc/passwd and /etc/group,
    and the `sudo` stand-in. Returns (`data` for bwrap_argv, fds to close after the start)."""
    data: dict[str, int | tuple[int, str]] = {}
    fds = []
    for dest, text, perms in (
        ("/etc/passwd", PASSWD, ""),
        ("/etc/group", GROUP, ""),
        (f"{GUEST_BIN}/sudo", SUDO, "0755"),
    ):
        fd = data_fd(text.encode())
        fds.append(fd)
        data[dest] = (fd, perms) if perms else fd
    return data, fds


def data_fd(content: bytes) -> int:
    """A readable fd holding `content` (a pipe, for `--ro-bind-data`)."""
    if len(content) > 60_000:  # a pipe holds 64 KiB without a reader
        raise ValueError("data for --ro-bind-data is too large for a pipe")
    read, write = os.pipe()
    try:
        os.write(write, content)
    finally:
        os.close(write)
    return read


# --- probing bubblewrap ---------------------------------------------------------------


@functools.cache
def probe() -> tuple[str | None, str, bool]:
    """(bwrap path or None, why it cannot be used, whether --disable-userns works).

    Runs the real thing once per process (~10 ms): a host where unprivileged user
    namespaces are off (some distributions' AppArmor policy) has a bwrap that
    cannot start any sandbox, and the user must hear why, not get a vague failure.
    """
    if not sys.platform.startswith("linux"):
        return None, "bubblewrap isolation exists on Linux only", False
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None, "bubblewrap (bwrap) is not installed", False
    last = ""
    for disable_userns in (True, False):
        with tempfile.TemporaryDirectory(prefix="sbteam-probe-") as home:
            argv = bwrap_argv(
                bwrap, home=home, env={}, command=["/bin/true"], network=True, disable_userns=disable_userns
            )
            try:
                done = subprocess.run(argv, capture_output=True, timeout=20, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return None, f"bubblewrap does not run: {exc}", False
        if done.returncode == 0:
            return bwrap, "", disable_userns
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        last = reason[-1] if reason else f"exit code {done.returncode}"
        if "disable-userns" not in last and "unrecognized" not in last.lower():
            break
    return None, f"bubblewrap cannot create a sandbox here: {last}", False


# --- starting processes ------------------------------------------------------------------

_libc: ctypes.CDLL | None = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError):
        _libc = ctypes.CDLL(None, use_errno=True)


def child_setup(parent: int, cgroup_procs: Sequence[str] = ()) -> Callable[[], None]:
    """preexec_fn: die with the app, and join the sandbox's cgroup before exec.

    PR_SET_PDEATHSIG follows the *thread* that forked, so sandboxed processes are
    started from the event loop's thread, never from asyncio.to_thread workers.
    """
    procs = list(cgroup_procs)

    def preexec() -> None:
        if _libc is not None:
            _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
        pid = str(os.getpid()).encode()
        for path in procs:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)

    return preexec


def pid_alive(pid: int) -> bool:
    """Whether a process exists (one of another user counts: it is alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL a child and its process group (it was started in a new session)."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, OSError):
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
        proc.wait(timeout=2)
