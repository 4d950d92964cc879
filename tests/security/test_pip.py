"""Attack 4: a package's build script. `install_package` used to run pip on the
host: the build backend of any sdist the model names (a typosquat) ran with the
app's rights and saw the host's PIP_* settings. Now pip runs in the sandbox.

The package here has an in-tree PEP 517 backend (no setuptools, no index needed)
whose build hook tries to write a marker on the host and records who it ran as.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from team.sandbox.local import LocalSandbox

from .conftest import needs_bwrap

pytestmark = needs_bwrap

BACKEND = '''
import base64, hashlib, json, os, zipfile

def _marker(where):
    os.makedirs(os.path.dirname(where), exist_ok=True)
    with open(where, "w") as fh:
        json.dump({"uid": os.getuid(), "env": {k: v for k, v in os.environ.items() if k.startswith("PIP_")},
                   "cwd": os.getcwd()}, fh)

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    for where in (HOST_MARKER, "/home/user/build-ran.json"):
        try:
            _marker(where)
        except OSError:
            pass
    name, dist = "evilpkg-1.0-py3-none-any.whl", "evilpkg-1.0.dist-info"
    files = {"evilpkg.py": b"VALUE = 1\\n",
             dist + "/METADATA": b"Metadata-Version: 2.1\\nName: evilpkg\\nVersion: 1.0\\n",
             dist + "/WHEEL": b"Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
    def digest(d):
        return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode()
    record = "".join(f"{p},{digest(d)},{len(d)}\\n" for p, d in files.items()) + dist + "/RECORD,,\\n"
    files[dist + "/RECORD"] = record.encode()
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for p, d in files.items():
            zf.writestr(p, d)
    return name
'''

PYPROJECT = """
[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]

[project]
name = "evilpkg"
version = "1.0"
"""


def _sdist(host_marker: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in {
            "pyproject.toml": PYPROJECT,
            "backend.py": f"HOST_MARKER = {str(host_marker)!r}\n" + BACKEND,
            "PKG-INFO": "Metadata-Version: 2.1\nName: evilpkg\nVersion: 1.0\n",
        }.items():
            data = text.encode()
            info = tarfile.TarInfo(f"evilpkg-1.0/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def test_a_build_script_runs_inside_the_sandbox_as_user_1000(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host_marker = tmp_path / "host" / "pwned.json"
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/host-index-must-not-reach-the-sandbox")
    monkeypatch.setenv("PIP_TRUSTED_HOST", "host-setting")
    envs = {"PIP_FIND_LINKS": "/home/user/dist", "PIP_NO_INDEX": "1"}
    async with await LocalSandbox.create(envs=envs) as box:
        await box.files.write("dist/evilpkg-1.0.tar.gz", _sdist(host_marker))
        ok, out = await box.install_package("evilpkg")
        assert ok, out
        assert not host_marker.exists() and not host_marker.parent.exists()  # nothing on the host
        ran = json.loads(await box.files.read("build-ran.json"))
        assert ran["uid"] == 1000  # the sandbox's unprivileged user
        assert "PIP_INDEX_URL" not in ran["env"] and "PIP_TRUSTED_HOST" not in ran["env"]
        assert ran["env"].get("PIP_CONFIG_FILE") == "/dev/null"  # and no host pip.conf
        done = await box.run_code("import evilpkg\nevilpkg.VALUE")
        assert done.text == "1"  # installed where the kernel finds it
