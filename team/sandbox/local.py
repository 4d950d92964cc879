"""`LocalSandbox`: IPython kernels on this machine behind E2B's `AsyncSandbox` surface.

Callers (the session, the tools, the UI) must not be able to tell it from the
E2B backend, so it returns the SDK's own models and raises the SDK's own
exceptions. This module is the composition: a launcher (`local_kernel.py`
starts each kernel, under bubblewrap as `launcher.py` builds it, or plainly)
+ the kernel client (`kernel.py` over `jupyter.py`: run_code, interrupt, code
contexts) + the host file API (`files.py` over `safefs.py`) + `commands.py`;
here: folders, limits, pip, and clean-up.

Layout of one sandbox (one `sbteam-sbx-<pid>-*` temp folder, mode 0700, removed
by `kill()`; a folder left by a process that died is removed by the next
`create()`):

    home/       the user's files: /home/user inside (cwd and HOME); packages that
                install_package() adds go to home/.local (hidden from listings)
    run-<n>/    one kernel's sockets, bound read-write at /run/sbteam inside that
                kernel's namespace only; a fresh folder for every kernel, so what
                one kernel's code planted there is never seen by the next
    tmp-<n>/    without bubblewrap only: that kernel's caches

How a kernel is started and dialled once is `local_kernel.py`'s docstring.
Importing this module and starting a sandbox loads neither the E2B SDK nor
AutoGen (the SDK's models come on the first `run_code`).

Security promises and their limits are in the README ("Security model").
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import glob
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from typing import TYPE_CHECKING, Any

from . import cgroups, guest, launcher, local_kernel
from .base import WORKDIR, SandboxError
from .files import LocalFiles
from .kernel import CodeContext, Kernel, KernelBackend
from .limits import Limits, human_bytes
from .paths import sandbox_relpath
from .requirements import check_requirement
from .safefs import SandboxFS

if TYPE_CHECKING:
    from team.config import Settings

TMP_PREFIX = "sbteam-sbx-"
OUTPUT_CHUNK = 1 << 18  # characters ipykernel buffers before it must send (guest._bound_output)
PIP_OUTPUT = 64 << 10  # characters of pip's output kept (head and tail)


# --- folders --------------------------------------------------------------------------


def _reap_stale_dirs() -> None:
    """Remove sandbox folders whose owning process is gone (it was SIGKILLed)."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), TMP_PREFIX + "*")):
        name = os.path.basename(path)[len(TMP_PREFIX) :]
        pid_text = name.split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not launcher.pid_alive(int(pid_text)):
            shutil.rmtree(path, ignore_errors=True)  # fd-based, never follows links


def _prepare_folders(root: str | None) -> tuple[str, str]:
    """Reap folders of dead owners, then make this sandbox's top (0700) and home folders."""
    _reap_stale_dirs()
    top = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-")
    home = os.path.abspath(root) if root else os.path.join(top, "home")
    os.makedirs(home, exist_ok=True)
    os.chmod(home, 0o755)
    return top, home


_live: set[LocalSandbox] = set()  # strong refs: atexit must reach every live sandbox


@atexit.register
def _cleanup_at_exit() -> None:
    """Last resort when the app exits without kill(): no kernel, no temp folder left."""
    for sbx in list(_live):
        sbx._kill_sync()


# --- the sandbox ------------------------------------------------------------------------


class LocalSandbox(KernelBackend):
    """E2B's AsyncSandbox surface over local IPython kernels (see module docstring)."""

    kind = "local"

    def __init__(
        self,
        *,
        top: str,
        home: str,
        envs: dict[str, str] | None,
        network: bool,
        bwrap: str | None,
        isolation_reason: str,
        disable_userns: bool,
        limits: Limits,
        own_home: bool,
    ):
        super().__init__()
        self.sandbox_id = f"local-{uuid.uuid4().hex[:12]}"
        self._top = top
        self.root = home  # host folder that is /home/user inside the sandbox
        self._own_home = own_home
        self._envs = dict(envs or {})
        self.network = network
        self._bwrap = bwrap
        self._disable_userns = disable_userns
        self.isolation = "bwrap" if bwrap else "none"
        self.isolation_reason = isolation_reason  # why not isolated, when not
        self.limits = limits
        self._fs = SandboxFS(home)
        self.files = LocalFiles(self._fs)
        self._cgroup: cgroups.Cgroup | None = None
        self.cgroup_reason = ""
        self._oom_seen = 0
        self._runs = 0  # kernel folders made so far (run-<n>)
        self._pid = os.getpid()
        self._disk_next = 0.0
        self._side: str | None = None  # the code context of run_side
        self._disk_over: str | None = None
        from .commands import LocalCommands

        self.commands = LocalCommands(self)

    # ---- lifecycle

    @classmethod
    async def create(
        cls,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - E2B's signature
        network: bool = True,
        root: str | None = None,
        isolate: bool | None = None,
        limits: Limits | None = None,
        **_: Any,
    ) -> LocalSandbox:
        """Start a sandbox and wait until its kernel answers.

        `envs` are added to the sandbox's (allow-listed) environment, for code, pip
        and commands alike. `timeout` is E2B's sandbox lifetime; accepted for
        compatibility, a local sandbox lives until `kill()`. `network=False` (bwrap
        only) gives the sandbox no network. `root` uses an existing folder as
        /home/user (kept on kill). `isolate` forces bwrap (True: error if it cannot
        be used) or no isolation (False); None uses bwrap when it works here.
        `limits` default to `Limits.default()`.
        """
        bwrap, reason, disable_userns = await asyncio.to_thread(launcher.probe)
        if isolate is True and bwrap is None:
            raise SandboxError(f"cannot isolate the kernel: {reason}")
        if isolate is False:
            bwrap, reason = None, "isolation turned off"
        top, home = await asyncio.to_thread(_prepare_folders, root)
        sbx = cls(
            top=top,
            home=home,
            envs=envs,
            network=network,
            bwrap=bwrap,
            isolation_reason=reason,
            disable_userns=disable_userns,
            limits=limits or Limits.default(),
            own_home=root is None,
        )
        _live.add(sbx)
        try:
            sbx._cgroup, sbx.cgroup_reason = await asyncio.to_thread(
                cgroups.create, sbx.limits.memory, sbx.limits.processes if bwrap else 0
            )
            ctx = sbx._contexts["default"]
            async with ctx.lock:
                await sbx._start_kernel(ctx)
        except BaseException:
            await sbx.kill()
            raise
        return sbx

    async def __aenter__(self) -> LocalSandbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.kill()

    async def run_side(self, code: str, timeout: float = 120) -> Any:  # noqa: ASYNC109
        """Run code that is not the team's (previews, data descriptions) in a code context
        of its own (a second kernel, started on first use): it neither waits for nor
        disturbs the team's kernel, its variables or its execution count."""
        if self._side is None or self._side not in {c.id for c in await self.list_code_contexts()}:
            self._side = (await self.create_code_context()).id
        return await self.run_code(code, context=self._side, timeout=timeout)

    def kernel_process(self) -> subprocess.Popen[bytes] | None:
        """The launcher process of the default context's kernel (bwrap, or the kernel itself)."""
        kernel = self._contexts["default"].kernel
        process = kernel.process if kernel is not None else None
        return process.proc if isinstance(process, local_kernel.SandboxedProcess) else None

    async def kill(self) -> None:
        """Stop every kernel, pip and command, remove the temp folder. Safe to call twice."""
        if self._killed:
            return
        self._killed = True
        for ctx in self._contexts.values():
            if ctx.kernel is not None:
                ctx.kernel.process.kill()  # a waiting run_code notices within POLL
        self.commands.kill_all()
        await self._end_background()
        for ctx in list(self._contexts.values()):
            if ctx.lock.locked():
                with contextlib.suppress(TimeoutError, RuntimeError):
                    await asyncio.wait_for(ctx.lock.acquire(), 2.0)
                    ctx.lock.release()
        # The kernels' zmq sockets are closed here, on the loop's thread that uses them: closed
        # from the thread below while a read was pending, libzmq aborted the whole app.
        self._kill_kernels()
        await asyncio.to_thread(self._kill_sync)

    def _kill_sync(self) -> None:
        """The blocking part of `kill()` (in a thread, its kernels already stopped on the loop)
        and, at exit without `kill()`, all of it (atexit: no loop is running any more)."""
        self._killed = True
        self._kill_kernels()
        self.commands.kill_all()
        if os.getpid() == self._pid:
            if self._cgroup is not None:
                self._cgroup.remove()
                self._cgroup = None
            with contextlib.suppress(OSError):
                self._fs.close()
            shutil.rmtree(self._top, ignore_errors=True)
        _live.discard(self)

    # ---- what the app shows

    def limits_report(self) -> dict[str, Any]:
        """The limits in force and how each is enforced (status bar tooltip, --json, doctor)."""
        cg = self._cgroup
        memory_by = (
            cg.describe() if cg and cg.memory else "RLIMIT_AS" if self.limits.memory else "off"
        )
        if not self.limits.processes:
            processes_by = "off"
        elif cg and cg.pids:
            processes_by = f"{cg.describe()} + RLIMIT_NPROC"
        elif self._bwrap is None:
            processes_by = "not enforced (no isolation)"
        elif os.getuid() == 0:
            processes_by = "not enforced (root without a cgroup: the kernel exempts uid 0 from RLIMIT_NPROC)"
        else:
            processes_by = "RLIMIT_NPROC"
        return {
            "limits": self.limits.as_text(),
            "memory": memory_by,
            "processes": processes_by,
            "file": "RLIMIT_FSIZE" if self.limits.file else "off",
            "tmp": "tmpfs size" if self._bwrap and self.limits.tmp else "not enforced (no isolation)" if self.limits.tmp else "off",
            "disk": "measured while cells run" if self.limits.disk else "off",
            "cgroup": cg.describe() if cg else f"none ({self.cgroup_reason})",
        }

    async def security_probe(self, hidden: list[str] | None = None) -> dict[str, Any]:
        """What code in the sandbox sees of its own rights (uid, capabilities, secrets).

        `hidden`: host folders that must show nothing inside (see `guest.probe`).
        """
        code = f"exec({inspect.getsource(guest)!r}, __sbteam_g := {{'__name__': 'sbteam_guest'}})\n"
        code += f"import json as __j\nprint(__j.dumps(__sbteam_g['probe']({list(hidden or [])!r})))\ndel __j, __sbteam_g\n"
        execution = await self.run_code(code, timeout=30)
        if execution.error is not None:
            raise SandboxError(f"probe failed: {execution.error.name}: {execution.error.value}")
        return json.loads("".join(execution.logs.stdout))

    # ---- kernels (KernelBackend)

    def _site(self, inside: bool) -> str:
        base = WORKDIR if (inside and self._bwrap) else self.root
        return f"{base}/{launcher.SITE_REL}"

    def _host_cwd(self, cwd: str) -> str:
        rel = sandbox_relpath(cwd)
        return os.path.join(self.root, rel) if rel else self.root

    def _setup_code(self, ctx: CodeContext) -> str:
        cwd = ctx.cwd if self._bwrap else self._host_cwd(ctx.cwd)
        call = f"__sbteam_g['setup_kernel']({self._site(True)!r}, {cwd!r}, {OUTPUT_CHUNK})"
        return (
            f"exec({inspect.getsource(guest)!r}, __sbteam_g := {{'__name__': 'sbteam_guest'}})\n"
            f"{call}\ndel __sbteam_g\n"
        )

    async def _launch(self, ctx: CodeContext) -> Kernel:
        """Start a kernel for `ctx` in a fresh runtime folder and dial it (`local_kernel.py`)."""
        return await local_kernel.launch_kernel(self, ctx)

    def _rlimits(self) -> dict[str, int]:
        memory_by_cgroup = bool(self._cgroup and self._cgroup.memory)
        return self.limits.rlimits(isolated=self._bwrap is not None, use_cgroup_memory=memory_by_cgroup)

    def _death_reason(self, ctx: CodeContext) -> str | None:
        cg = self._cgroup
        if cg is None or not cg.memory:
            return None
        kills = cg.oom_kills()
        if kills > self._oom_seen:
            self._oom_seen = kills
            return (
                f"the cell used more than {human_bytes(self.limits.memory)}B of memory (the sandbox's "
                "limit, SBTEAM_LIMITS) and was killed; a fresh kernel was started and earlier variables are lost"
            )
        return None

    def _note_error(self, error: Any) -> Any:
        if error.name == "MemoryError" and self.limits.memory:
            error.value = (
                f"{error.value or 'out of memory'} (the sandbox's memory limit is "
                f"{human_bytes(self.limits.memory)}B, SBTEAM_LIMITS)"
            ).strip()
        elif "File too large" in (error.value or "") and self.limits.file:
            error.value += f" (the sandbox's largest file is {human_bytes(self.limits.file)}B, SBTEAM_LIMITS)"
        return error

    async def _watch(self, ctx: CodeContext) -> str | None:
        """The disk limit: measure the sandbox folder while a cell runs (adaptive interval)."""
        if not self.limits.disk:
            return None
        loop = asyncio.get_running_loop()
        if loop.time() < self._disk_next:
            return None
        start = loop.time()
        used, _count, _truncated = await asyncio.to_thread(self._fs.usage)
        # Measuring must stay cheap next to the cell: at most ~5 % of the time.
        self._disk_next = loop.time() + max(1.0, 20 * (loop.time() - start))
        if used > self.limits.disk:
            return (
                f"the sandbox folder holds {human_bytes(used)}B, more than its limit of "
                f"{human_bytes(self.limits.disk)}B (SBTEAM_LIMITS disk=); delete files to go on"
            )
        return None

    # ---- packages

    async def install_package(self, package_name: str, timeout: float = 600) -> tuple[bool, str]:  # noqa: ASYNC109
        """pip-install one requirement inside the sandbox; (ok, output).

        Refuses anything but a plain requirement (see requirements.py) without
        running pip. A requirement the kernel can already import at a fitting
        version is reported without running pip. pip runs as a sandboxed process
        (same namespaces, limits and network as the code; no host PIP_* setting,
        no host pip.conf), `--prefix /home/user/.local`, which the kernel has on
        its path, so build scripts of a package run where its code will run.
        """
        reason = check_requirement(package_name)
        if reason:
            return False, f"refused: {reason}"
        if self._killed:
            return False, "the sandbox was killed"
        spec = package_name.strip()
        already = await self._satisfied(spec)
        if already:
            return True, already
        site = self._site(True)
        prefix = f"{WORKDIR}/.local" if self._bwrap else os.path.join(self.root, ".local")
        cmd = [sys.executable, "-m", "pip", "install", "--no-input", "--disable-pip-version-check"]
        cmd += ["--progress-bar", "off", "--no-warn-script-location", "--prefix", prefix, spec]
        start = time.monotonic()
        result = await self.commands.exec(cmd, envs={"PYTHONPATH": site}, timeout=timeout, keep=PIP_OUTPUT)
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        tail = "\n".join(lines[-15:])[-3000:]
        if result.timed_out:
            return False, f"pip install {spec} timed out after {timeout:.0f} s"
        if result.exit_code != 0:
            return False, tail or f"pip exited with code {result.exit_code}"
        await self._refresh_site()
        return True, f"installed {spec} in {time.monotonic() - start:.1f} s\n{tail}"

    async def _satisfied(self, spec: str) -> str | None:
        """'name version is already installed' when the kernel already has it, else None."""
        from packaging.requirements import Requirement

        ctx = self._contexts["default"]
        kernel = ctx.kernel
        if kernel is None or not kernel.alive() or ctx.lock.locked():
            return None
        req = Requirement(spec)
        expr = f"__import__('importlib.metadata', fromlist=['version']).version({req.name!r})"
        async with ctx.lock:
            try:
                version = (await kernel.evaluate(expr)).strip("'\"")
            except SandboxError:
                return None
        if not version or (req.specifier and not req.specifier.contains(version, prereleases=True)):
            return None
        return f"{req.name} {version} is already installed"

    async def _refresh_site(self) -> None:
        """Let the running kernel import what pip just installed (new folders, .pth files)."""
        ctx = self._contexts["default"]
        kernel = ctx.kernel
        if kernel is None or not kernel.alive() or ctx.lock.locked():
            return
        code = (
            "import importlib as __i, site as __s, sys as __y\n"
            f"__s.addsitedir({self._site(True)!r}); __i.invalidate_caches()\n"
            "del __i, __s, __y\n"
        )
        async with ctx.lock:
            with contextlib.suppress(SandboxError):
                await self._silent(kernel, code)


async def start(settings: Settings) -> LocalSandbox:
    """`create_sandbox` for `SBTEAM_SANDBOX=local` (team/sandbox/kinds.py)."""
    return await LocalSandbox.create(network=settings.network, limits=settings.limits)


__all__ = ["LocalFiles", "LocalSandbox", "start"]
