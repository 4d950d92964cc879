"""The bubblewrap sandbox hides the host: home, repo, .env, secrets in the environment."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from unittest import mock

import pytest
import pytest_asyncio

from team.sandbox import launcher
from team.sandbox.local import LocalSandbox

REPO = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed"),
]


def _exists(path: str) -> bool:
    return os.path.exists(path)


SENTINEL = "sk-sentinel-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def secrets():
    """A secret in the test process's home and one in the repo, removed afterwards."""
    tag = uuid.uuid4().hex
    home_secret = Path.home() / f".sbteam-test-secret-{tag}"
    repo_secret = REPO / f".env-probe-{tag}"
    home_secret.write_text("home-secret")
    repo_secret.write_text("OPENAI_API_KEY=repo-secret")
    yield home_secret, repo_secret
    home_secret.unlink(missing_ok=True)
    repo_secret.unlink(missing_ok=True)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sbx(secrets):
    keys = {"OPENAI_API_KEY": SENTINEL, "E2B_API_KEY": SENTINEL, "SBTEAM_SECRET": SENTINEL}
    with mock.patch.dict(os.environ, keys):
        sandbox = await LocalSandbox.create(envs={"GIVEN": "ok"})
    assert sandbox.isolation == "bwrap"
    yield sandbox
    await sandbox.kill()


async def _value(sbx: LocalSandbox, code: str) -> str:
    ex = await sbx.run_code(code)
    assert ex.error is None, ex.error
    return ex.text or ""


PROBE = """
def probe(path):
    try:
        with open(path) as fh:
            return 'READ:' + fh.read()
    except Exception as exc:
        return 'DENIED:' + type(exc).__name__
"""


async def test_host_home_invisible(sbx: LocalSandbox, secrets) -> None:
    home_secret, _ = secrets
    await sbx.run_code(PROBE)
    assert (await _value(sbx, f"probe({str(home_secret)!r})")).startswith("DENIED")
    listing = await _value(
        sbx, f"import os\nos.path.exists({str(Path.home())!r}) and os.listdir({str(Path.home())!r})"
    )
    assert home_secret.name not in listing


async def test_repo_and_env_invisible(sbx: LocalSandbox, secrets) -> None:
    _, repo_secret = secrets
    await sbx.run_code(PROBE)
    assert (await _value(sbx, f"probe({str(repo_secret)!r})")).startswith("DENIED")
    assert (await _value(sbx, f"probe({str(REPO / '.env')!r})")).startswith("DENIED")
    assert await _value(sbx, f"import os\nos.path.exists({str(REPO)!r})") == "False"


async def test_cannot_write_outside(sbx: LocalSandbox) -> None:
    code = """
results = []
for path in ('/usr/sbteam_probe', '/etc/sbteam_probe', '/sbteam_probe'):
    try:
        open(path, 'w').write('x')
        results.append('WROTE:' + path)
    except OSError as exc:
        results.append('DENIED')
results
"""
    assert "WROTE" not in await _value(sbx, code)
    assert not _exists("/usr/sbteam_probe") and not _exists("/etc/sbteam_probe")
    # /tmp is private: a file written there does not appear on the host
    name = f"sbteam-private-{uuid.uuid4().hex}"
    await _value(sbx, f"open('/tmp/{name}', 'w').write('x')")
    assert not _exists(f"/tmp/{name}")
    assert await _value(sbx, "import os\nos.getcwd()") == "/home/user"


async def test_no_secrets_in_environment(sbx: LocalSandbox) -> None:
    env = await _value(sbx, "import os\nrepr(dict(os.environ))")
    assert SENTINEL not in env
    for key in ("OPENAI_API_KEY", "E2B_API_KEY", "SBTEAM_SECRET", "JPY_PARENT_PID"):
        assert key not in env
    assert await _value(sbx, "os.environ['GIVEN']") == "ok"
    assert await _value(sbx, "os.environ['HOME']") == "/home/user"


async def test_host_processes_invisible(sbx: LocalSandbox) -> None:
    pids = await _value(
        sbx, "import os\nsorted(int(p) for p in os.listdir('/proc') if p.isdigit())"
    )
    assert pids.startswith("[1, 2")  # a fresh pid namespace
    # our own process is not visible by any pid: no cmdline mentions pytest
    cmdlines = await _value(
        sbx,
        "[open(f'/proc/{p}/cmdline','rb').read() for p in os.listdir('/proc') if p.isdigit()]",
    )
    assert "pytest" not in cmdlines


async def test_env_allow_list_unit() -> None:
    env = launcher.sandbox_env(
        "/home/user",
        tmp="/tmp",
        source={"PATH": "/bin", "OPENAI_API_KEY": "x", "E2B_API_KEY": "y", "JPY_PARENT_PID": "1",
                "PIP_INDEX_URL": "http://evil", "LANG": "C.UTF-8"},
    )
    assert env["HOME"] == "/home/user" and env["LANG"] == "C.UTF-8"
    for key in ("OPENAI_API_KEY", "E2B_API_KEY", "JPY_PARENT_PID", "PIP_INDEX_URL"):
        assert key not in env
    assert env["PIP_CONFIG_FILE"] == os.devnull  # no pip.conf of the host's either


async def test_bwrap_argv_unit() -> None:
    argv = launcher.bwrap_argv(
        "/usr/bin/bwrap",
        home="/h",
        env={"A": "1"},
        command=["python"],
        network=False,
        tmp_size=1 << 20,
        data={"/run/x.json": 7},
        runtime="/r",
    )
    joined = " ".join(argv)
    assert "--bind /h /home/user" in joined and "--bind /r /run/sbteam" in joined
    assert "--size 1048576 --tmpfs /tmp" in joined and "--size 1048576 --tmpfs /dev/shm" in joined
    assert "--ro-bind-data 7 /run/x.json" in joined
    for flag in ("--unshare-user", "--disable-userns", "--new-session", "--die-with-parent", "--clearenv",
                 "--unshare-net", "--unshare-pid"):
        assert flag in argv, flag
    assert argv[argv.index("--uid") + 1] == "1000" and argv[argv.index("--cap-drop") + 1] == "ALL"
    # the private /tmp comes before the Python binds (a venv under /tmp stays visible) and
    # the root is made read-only last
    assert argv.index("/tmp") < max(i for i, a in enumerate(argv) if a == "--ro-bind")
    remount_root = next(i for i in range(len(argv) - 1) if argv[i : i + 2] == ["--remount-ro", "/"])
    assert remount_root > max(i for i, a in enumerate(argv) if a in ("--bind", "--ro-bind", "--ro-bind-data"))
    assert argv[-2:] == ["--", "python"]
    assert not any(a.startswith("/etc/shadow") for a in argv)
    assert "--unshare-net" not in launcher.bwrap_argv("bwrap", home="/h", env={}, command=["x"], network=True)


async def test_network_off() -> None:
    async with await LocalSandbox.create(network=False) as box:
        ex = await box.run_code(
            "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=1)\n    r='CONNECTED'\n"
            "except OSError as e:\n    r='BLOCKED'\nr"
        )
        assert ex.text == "BLOCKED"
        assert (await box.run_code("1+1")).text == "2"


@pytest.mark.parametrize("prefix", ["/tmp/ci-x/venv", "/var/tmp/venv", "/opt/venv", "/home/alice/venv", "/home/user/venv"])
async def test_python_installation_is_bound_above_what_would_hide_it(prefix: str) -> None:
    """A venv anywhere stays visible: bound after the private /tmp and after /home/user."""
    with mock.patch.object(launcher.sys, "prefix", prefix), mock.patch.object(launcher.os.path, "realpath", lambda p: p):
        argv = launcher.bwrap_argv("bwrap", home="/h", env={}, command=["x"], network=True)
    binds = [i for i in range(len(argv) - 2) if argv[i] == "--ro-bind" and argv[i + 2] == prefix]
    assert binds, argv
    covering = [i for i in range(len(argv) - 2) if argv[i] in ("--tmpfs", "--bind") and prefix.startswith(argv[i + 1 if argv[i] == "--tmpfs" else i + 2] + "/")]
    assert all(i < binds[0] for i in covering), (prefix, covering, binds)


async def test_no_process_in_the_sandbox_holds_a_folder_of_the_host(sbx: LocalSandbox) -> None:
    """The host keeps each kernel's runtime folder open as an fd (it dials the kernel
    through /proc/self/fd/N). A folder fd leaked into the sandbox is a way out (openat
    '..' from it); every fd of every process the sandbox can see is checked."""
    code = (
        "import os, stat\n"
        "found = []\n"
        "for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
        "    try:\n"
        "        fds = os.listdir(f'/proc/{pid}/fd')\n"
        "    except OSError:\n"
        "        continue\n"
        "    for fd in fds:\n"
        "        try:\n"
        "            st = os.stat(f'/proc/{pid}/fd/{fd}')\n"
        "        except OSError:\n"
        "            continue\n"
        "        if stat.S_ISDIR(st.st_mode):\n"
        "            found.append((pid, fd, os.readlink(f'/proc/{pid}/fd/{fd}')))\n"
        "[f for f in found if not f[2].startswith(('/home/user', '/proc'))]"
    )
    assert await _value(sbx, code) == "[]"
