"""How the local kernel is isolated: the bubblewrap command line and the environment.

Kept apart from `local.py` so the rules are easy to read and test on their own:
what the kernel may see (an allow-list of folders and environment variables)
is the security boundary of the local backend.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence

from .base import WORKDIR

# Where the sandbox's private folders appear inside the bubblewrap namespace.
RUNTIME_MOUNT = "/run/sbteam"  # connection file and kernel sockets
SITE_MOUNT = "/opt/sbteam-site"  # packages installed by install_package()

# System folders every program needs, read-only. Symlinks (usr-merge) are recreated
# as symlinks so the layout matches the host.
SYSTEM_DIRS: tuple[str, ...] = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")

# The only host variables the kernel may inherit; everything else (API keys,
# tokens, the app's settings) stays out. `envs=` given by the caller is added on top.
ENV_ALLOW: tuple[str, ...] = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ")

# Variables pip needs to reach the configured package index; given to the pip
# subprocess only, never to the kernel.
PIP_ENV_ALLOW_PREFIXES: tuple[str, ...] = ("PIP_",)
PIP_ENV_ALLOW: tuple[str, ...] = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
)


def bwrap_path() -> str | None:
    """The bubblewrap binary, or None when the kernel cannot be isolated here."""
    if not sys.platform.startswith("linux"):
        return None
    return shutil.which("bwrap")


def kernel_env(
    home: str,
    *,
    tmp: str,
    site: str,
    extra: Mapping[str, str] | None = None,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The kernel's whole environment: allow-listed host variables plus our own.

    `home` is what the kernel sees as its home and working folder; `tmp` a writable
    folder for caches (matplotlib, IPython) so they never show up among the user's
    files; `site` the folder install_package() fills, put on the kernel's path.
    """
    src = os.environ if source is None else source
    env = {k: src[k] for k in ENV_ALLOW if k in src}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        {
            "HOME": home,
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
            "SBTEAM_SITE": site,
        }
    )
    if extra:
        env.update({str(k): str(v) for k, v in extra.items()})
    # Never hand a parent pid to ipykernel: under --unshare-pid it would think its
    # parent died and exit (bwrap's --die-with-parent does that job instead).
    env.pop("JPY_PARENT_PID", None)
    return env


def pip_env(home: str, userbase: str, source: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the pip subprocess: the kernel's allow-list plus pip's own settings."""
    src = os.environ if source is None else source
    env = {k: src[k] for k in ENV_ALLOW if k in src}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    for key, value in src.items():
        if key in PIP_ENV_ALLOW or key.startswith(PIP_ENV_ALLOW_PREFIXES):
            env[key] = value
    env.update({"HOME": home, "PYTHONUSERBASE": userbase})
    return env


def _system_binds() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def _python_binds() -> list[str]:
    """Read-only binds so the kernel finds its interpreter and site-packages."""
    args: list[str] = []
    seen: set[str] = set()
    for path in (sys.base_prefix, sys.prefix):
        real = os.path.realpath(path)
        if real in seen or any(real.startswith(d + "/") or real == d for d in SYSTEM_DIRS):
            continue
        seen.add(real)
        args += ["--ro-bind", real, path]
        if real != path:
            seen.add(path)
    return args


def bwrap_argv(
    bwrap: str,
    *,
    home: str,
    runtime: str,
    site: str,
    env: Mapping[str, str],
    command: Sequence[str],
    network: bool = True,
) -> list[str]:
    """The full bubblewrap command line that runs `command` inside the sandbox.

    The sandbox folder `home` is bound read-write at /home/user (cwd and HOME),
    `runtime` (connection file, sockets) at RUNTIME_MOUNT, `site` read-only at
    SITE_MOUNT; the system and the Python installation are read-only; /tmp is
    private. The host's home, the repository and any `.env` are simply not mounted.
    """
    # /tmp first: the Python installation may live under /tmp (a venv there) and
    # must be bound on top of the private tmpfs, not hidden by it.
    argv = [bwrap, *_system_binds(), "--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev"]
    argv += _python_binds()
    argv += ["--bind", home, WORKDIR]
    argv += ["--bind", runtime, RUNTIME_MOUNT]
    argv += ["--ro-bind", site, SITE_MOUNT]
    argv += ["--remount-ro", "/"]  # the namespace's own root is not a scratch space
    argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not network:
        argv += ["--unshare-net"]
    argv += ["--hostname", "sandbox", "--die-with-parent", "--new-session"]
    argv += ["--chdir", WORKDIR, "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    argv += ["--", *command]
    return argv
