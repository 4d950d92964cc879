"""Attack 1: the kernel's runtime files (connection file, sockets, logs) as a way out.

The old sandbox kept them in a folder the code could write: a symlink planted
under the *next* kernel's log name, then `os._exit(1)`, made the host open a
host file for writing when it restarted the kernel. Now the connection file
arrives by fd (read-only inside), logs come over a pipe, every kernel gets a
fresh socket folder, and sockets are dialled once, before any sandbox code runs.
"""

from __future__ import annotations

from pathlib import Path

from team.sandbox.local import LocalSandbox

from .conftest import needs_bwrap, value

pytestmark = needs_bwrap

PLANT = r"""
import os, sys
victim = {victim!r}
planted = []
# every name the host could possibly open in the runtime folder, now and for later kernels
names = [f"k-{{p}}" for p in range(1, 6)] + ["kernel.json", "kernel.log"]
names += [f"{{s}}-k{{g}}.{{e}}" for s in ("local", "sbx") for g in range(1, 6) for e in ("json", "log")]
for name in names:
    path = os.path.join("/run/sbteam", name)
    try:
        if os.path.lexists(path):
            os.unlink(path)          # the live sockets too: the host must not dial again
        os.symlink(victim, path)
        planted.append(name)
    except OSError as exc:
        pass
try:
    open("/run/sbteam-kernel.json", "w").write("{{}}")
    conn = "WROTE"
except OSError as exc:
    conn = type(exc).__name__
# start-up hijacks for the next kernel: modules on the path, site hooks, IPython profile.
# (A .pth file in the sandbox's own site folder does run in the next kernel, but only
# when the host sets the kernel up, after it has connected: the sandbox's code in the
# sandbox, like any site-packages.)
marker = "/home/user/HIJACKED"
hook = f"open({{marker!r}}, 'w').write('ran at start-up')\n"
site = "/home/user/.local/lib/python%d.%d/site-packages" % sys.version_info[:2]
os.makedirs(site, exist_ok=True)
os.makedirs("/home/user/.ipython/profile_default/startup", exist_ok=True)
for path in ("/home/user/ipykernel_launcher.py", "/home/user/sitecustomize.py",
             site + "/sitecustomize.py", site + "/usercustomize.py",
             "/home/user/.ipython/profile_default/startup/00-evil.py"):
    open(path, "w").write(hook)
(len(planted), conn)
"""


async def test_planted_runtime_links_and_a_kernel_restart_touch_no_host_file(host_secret: Path) -> None:
    original = host_secret.read_text()
    async with await LocalSandbox.create() as box:
        planted, conn = eval(await value(box, PLANT.format(victim=str(host_secret))))  # noqa: S307
        assert planted >= 5
        assert conn == "OSError"  # read-only: the connection file cannot be rewritten
        # The live sockets were replaced by links to a host file: the host keeps its
        # connections and never dials a path again.
        assert await value(box, "6 * 7") == "42"
        runs_before = box._runs
        died = await box.run_code("import os\nos._exit(1)")
        assert died.error is not None and died.error.name == "KernelDied"
        assert box._runs == runs_before + 1  # a new kernel in a new runtime folder
        # the new kernel works and nothing planted ran at its start-up
        assert await value(box, "1 + 1") == "2"
        assert not await box.files.exists("HIJACKED")
        assert host_secret.read_text() == original  # not truncated, not written


async def test_connection_file_and_sockets_are_nowhere_the_code_can_reach_on_the_host() -> None:
    async with await LocalSandbox.create() as box:
        seen = await value(box, "import os\n(sorted(os.listdir('/run')), os.stat('/run/sbteam-kernel.json').st_mode & 0o222)")
        assert "sbteam" in seen
        # The host's runtime folders live in the sandbox's private top folder,
        # which is not mounted inside: the code sees only its own kernel's sockets.
        listing = await value(box, "sorted(os.listdir('/run/sbteam'))")
        assert listing.count("k-") == 5 and "json" not in listing and "log" not in listing
