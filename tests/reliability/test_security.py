"""Security of the local sandbox (bubblewrap) and of the key.

Code in the kernel cannot read the host's home, the repository, a `.env`, the app's
`/proc/<pid>/environ` or its environment, and cannot write outside /home/user and
/tmp (plus its own runtime folder). A sentinel key configured in Settings and in
os.environ never shows up in the transcript events, events.jsonl, state.json,
files/, or the headless stdout/stderr, even when the endpoint echoes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from unittest import mock

import pytest
import pytest_asyncio

from team import events as ev
from team.run import RunController
from team.sandbox.local import LocalSandbox
from tests.openai_server import FakeOpenAIServer, error, text, tool_call, unused_port

from .conftest import check_run, collect, first_line, one_line

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-SENTINEL-" + uuid.uuid4().hex
E2B_KEY = "e2b_SENTINEL_" + uuid.uuid4().hex
BWRAP = shutil.which("bwrap") is not None and sys.platform.startswith("linux")

pytestmark = pytest.mark.timeout(60)
MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")
needs_bwrap = pytest.mark.skipif(not BWRAP, reason="bubblewrap not installed")


# ---------------------------------------------------------------- the kernel's view


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Secrets where a careless sandbox would expose them: home, repo, a .env in the cwd."""
    tag = uuid.uuid4().hex[:10]
    cwd = tmp_path_factory.mktemp("app-cwd")
    files = {
        "home": Path.home() / f".sbteam-rel-secret-{tag}",
        "repo": REPO / f".sbteam-rel-probe-{tag}",
        "cwd_env": cwd / ".env",
    }
    for path in files.values():
        path.write_text(f"OPENAI_API_KEY={KEY}\n")
    yield cwd, files
    for path in files.values():
        path.unlink(missing_ok=True)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def kernel(planted):
    """A bwrap sandbox created while the app's environment holds the sentinel keys."""
    cwd, _ = planted
    keys = {"OPENAI_API_KEY": KEY, "E2B_API_KEY": E2B_KEY, "OPENAI_API_BASE": "http://127.0.0.1:1/v1"}
    with mock.patch.dict(os.environ, keys), contextlib.chdir(cwd):
        sandbox = await LocalSandbox.create()
    assert sandbox.isolation == "bwrap"
    yield sandbox
    await sandbox.kill()


async def _py(sandbox: LocalSandbox, code: str):
    execution = await sandbox.run_code(code, timeout=30)
    assert execution.error is None, f"{execution.error}"
    return json.loads(execution.logs.stdout[-1])


PROBE_READ = r"""
import json
def probe(path):
    try:
        with open(path, 'rb') as fh:
            return 'READ ' + fh.read(200).decode('utf-8', 'replace')
    except Exception as exc:
        return type(exc).__name__
print(json.dumps({p: probe(p) for p in %r}))
"""


@needs_bwrap
@MODULE_LOOP
async def test_kernel_cannot_read_home_repo_or_dotenv(kernel, planted) -> None:
    cwd, files = planted
    paths = [str(p) for p in files.values()] + [
        str(REPO / "pyproject.toml"), str(REPO / ".env"), str(Path.home() / ".bashrc"), ".env",
        str(Path.home() / ".ssh" / "id_rsa"),
    ]
    found = await _py(kernel, PROBE_READ % paths)
    assert all(not result.startswith("READ") for result in found.values()), found
    listing = await _py(kernel, f"import os, json; print(json.dumps([os.path.exists(p) for p in {[str(REPO), str(cwd), str(Path.home())]!r}]))")
    # the host's home may coincide with a system path only if it is /root or /home/...; neither is mounted
    assert listing[:2] == [False, False]


@needs_bwrap
@MODULE_LOOP
async def test_kernel_cannot_read_the_apps_proc_environ(kernel) -> None:
    code = r"""
import os, json, glob
out = {}
for path in glob.glob('/proc/[0-9]*/environ') + ['/proc/%(app)d/environ', '/proc/%(app)d/cmdline', '/proc/1/environ']:
    try:
        with open(path, 'rb') as fh:
            data = fh.read()
        out[path] = 'SECRET' if (%(key)r.encode() in data or %(e2b)r.encode() in data) else 'clean'
    except Exception as exc:
        out[path] = type(exc).__name__
out['ppid'] = os.getppid()
print(json.dumps(out))
"""
    for name, value in {"%(app)d": str(os.getpid()), "%(key)r": repr(KEY), "%(e2b)r": repr(E2B_KEY)}.items():
        code = code.replace(name, value)
    found = await _py(kernel, code)
    assert "SECRET" not in found.values(), found
    assert found["ppid"] != os.getpid()  # its own pid namespace: the app is not even visible


@needs_bwrap
@MODULE_LOOP
async def test_kernel_does_not_inherit_the_apps_environment(kernel) -> None:
    env = await _py(kernel, "import os, json; print(json.dumps(dict(os.environ)))")
    assert not {"OPENAI_API_KEY", "E2B_API_KEY", "OPENAI_API_BASE"} & set(env)
    assert all(KEY not in v and E2B_KEY not in v for v in env.values())
    assert env["HOME"] == "/home/user"


WRITE_PROBE = r"""
import json, os, uuid
def probe(folder):
    path = os.path.join(folder, '.sbteam-write-probe-' + uuid.uuid4().hex[:6])
    try:
        with open(path, 'w') as fh:
            fh.write('x')
        os.remove(path)
        return 'WROTE'
    except Exception as exc:
        return type(exc).__name__
rw = sorted(line.split()[4] for line in open('/proc/self/mountinfo') if ' rw,' in ' ' + line.split()[5] + ',')
print(json.dumps({'probes': {f: probe(f) for f in %r}, 'rw_mounts': rw}))
"""


@needs_bwrap
@MODULE_LOOP
async def test_kernel_cannot_write_outside_home_and_tmp(kernel) -> None:
    outside = ["/", "/etc", "/usr", "/usr/local/lib", "/var", "/home", "/opt", "/opt/sbteam-site",
               str(REPO), str(Path.home()), sys.prefix, os.path.dirname(os.__file__)]
    found = await _py(kernel, WRITE_PROBE % (["/home/user", "/tmp", *outside],))
    probes = found["probes"]
    assert probes["/home/user"] == "WROTE" and probes["/tmp"] == "WROTE"
    assert [f for f in outside if probes[f] == "WROTE"] == []
    # the only writable mounts: its files, a private /tmp, its own runtime folder
    # (kernel sockets and logs), and the kernel-made /proc and /dev
    allowed = {"/home/user", "/tmp", "/run/sbteam", "/proc", "/dev"}
    assert [m for m in found["rw_mounts"] if m not in allowed and not m.startswith("/dev/")] == []


@needs_bwrap
@MODULE_LOOP
async def test_kernel_cannot_configure_the_host_side_pip(kernel, monkeypatch) -> None:
    """pip runs on the host: a pip.conf the code plants in any folder it can write
    (/home/user, /run/sbteam, /tmp) must not steer it to an index of the code's choosing."""
    plant = r"""
import os
conf = '[global]\nfind-links = http://127.0.0.1:9/EVIL-LINKS\nindex-url = http://127.0.0.1:9/EVIL-INDEX\n'
for base in ('/home/user', '/run/sbteam', '/run/sbteam/pip-home', '/tmp'):
    for rel in ('.config/pip/pip.conf', '.pip/pip.conf', 'pip.conf', '.pydistutils.cfg'):
        path = os.path.join(base, rel)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, 'w').write(conf)
        except OSError:
            pass
print('"planted"')
"""
    assert await _py(kernel, plant) == "planted"
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "1")
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # offline either way
    ok, output = await kernel.install_package("sbteam-no-such-package-" + uuid.uuid4().hex[:6], timeout=60)
    assert not ok
    assert "EVIL" not in output, output


# ---------------------------------------------------------------- the key in transcript, records, output


def _leaks(root: Path, *secrets: str) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if any(s.encode() in data for s in secrets):
                found.append(str(path.relative_to(root)))
    return found


LEAKY_CODE = (
    "import os, glob\n"
    "env = dict(os.environ)\n"
    "for p in glob.glob('/proc/*/environ'):\n"
    "    try: env[p] = open(p, 'rb').read().decode('latin-1')\n"
    "    except OSError: pass\n"
    "open('env_dump.txt', 'w').write(repr(env))\n"
    "print(env)"
)


def _echo_script() -> list:
    """Planner hands over; the CodeAgent dumps everything it can see; the Planner echoes the key."""
    return [
        tool_call("transfer_to_codeagent", {}),
        tool_call("run_code", {"code": LEAKY_CODE}),
        tool_call("transfer_to_planner", {}),
        text(f"I found your key {KEY} and {E2B_KEY}. TERMINATE"),
    ]


def _sentinel_settings(settings, server: FakeOpenAIServer):
    return settings.with_(
        openai_api_key=KEY, e2b_api_key=E2B_KEY, sandbox="local",
        openai_api_base=server.base_url, openai_model="fake-model", model_retries=0, model_timeout=10,
    )


@MODULE_LOOP
@pytest.mark.parametrize(
    "script",
    [
        "echo-in-text",
        "401-echo",
        "400-echo",
        "500-echo",
    ],
)
async def test_sentinel_key_never_reaches_events_or_records(settings, monkeypatch, script) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("E2B_API_KEY", E2B_KEY)
    replies = {
        "echo-in-text": _echo_script(),
        "401-echo": [error(401, f"Incorrect API key provided: {KEY}.", code="invalid_api_key")],
        "400-echo": [error(400, f"bad request from key {KEY} (e2b {E2B_KEY})")],
        "500-echo": [error(500, f"upstream failed for Bearer {KEY}", type="server_error")],
    }[script]
    with FakeOpenAIServer(replies) as server:
        cfg = _sentinel_settings(settings, server)
        controller = RunController(cfg)
        try:
            run_id = controller.start(f"analyse the data (the token is {KEY})")
            events = await asyncio.wait_for(collect(controller), 45)
            done = check_run(cfg, run_id, events)
        finally:
            await controller.close()
    if script == "echo-in-text":
        assert done.reason == "terminate"
        assert any(isinstance(e, ev.Message) and "***" in e.text for e in events)
        assert (cfg.runs_dir / run_id / "files" / "env_dump.txt").is_file()
        assert (cfg.runs_dir / run_id / "state.json").is_file()
    else:
        assert done.reason == "error"
        one_line(done.message)
    leaked = [e.type for e in events if KEY in e.to_json() or E2B_KEY in e.to_json()]
    assert leaked == []
    assert _leaks(cfg.home, KEY, E2B_KEY) == []


def _headless(args: list[str], server: FakeOpenAIServer, home: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "E2B_", "SBTEAM_"))}
    env.update({
        "OPENAI_API_KEY": KEY, "E2B_API_KEY": E2B_KEY, "SBTEAM_SANDBOX": "local",
        "OPENAI_API_BASE": server.base_url, "OPENAI_MODEL": "fake-model", "SBTEAM_HOME": str(home),
    })
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", "run", *args], env=env, cwd=cwd,
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize("mode", ["json", "transcript"])
def test_sentinel_key_never_reaches_headless_output(tmp_path: Path, mode: str) -> None:
    """Subprocess, so AutoGen's or the SDK's own logging to stderr would be caught too."""
    (tmp_path / ".env").write_text(f"OPENAI_API_KEY={KEY}\n")
    home = tmp_path / "home"
    if mode == "json":
        replies = _echo_script()
        args = ["--json", "look at the data"]
    else:  # the endpoint echoes the key in its error
        replies = [error(401, f"Incorrect API key provided: {KEY}", code="invalid_api_key")]
        args = ["--out", str(tmp_path / "out"), "look at the data"]
    with FakeOpenAIServer(replies) as server:
        done = _headless(args, server, home, tmp_path)
    output = done.stdout + done.stderr
    assert KEY not in output and E2B_KEY not in output
    assert "Traceback" not in output
    assert _leaks(home, KEY, E2B_KEY) == []
    if mode == "json":
        assert done.returncode == 0, done.stderr
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        done = [e for e in lines if e["type"] == "run_finished"]
        assert len(done) == 1 and done[0]["reason"] == "terminate" and lines[-1]["type"] == "outputs_saved"
        assert any(e["type"] == "tool_result" and "***" not in e["content"] for e in lines)
    else:
        assert done.returncode == 1
        assert "rejected the API key (OPENAI_API_KEY)" in done.stdout
        assert _leaks(tmp_path / "out", KEY, E2B_KEY) == [] if (tmp_path / "out").exists() else True


def test_settings_repr_masks_the_keys(settings) -> None:
    cfg = settings.with_(openai_api_key=KEY, e2b_api_key=E2B_KEY)
    shown = repr(cfg) + str(cfg)
    assert KEY not in shown and E2B_KEY not in shown
    assert first_line(shown).startswith("Settings(")


def test_unreachable_endpoint_error_does_not_echo_the_key(settings) -> None:
    from team.model_errors import classify_model_error

    cfg = settings.with_(openai_api_key=KEY, openai_api_base=f"http://127.0.0.1:{unused_port()}/v1")
    line = classify_model_error(RuntimeError(f"APIConnectionError: Connection error. key={KEY}"), cfg)
    assert KEY not in one_line(line)
