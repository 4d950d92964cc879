"""Attack 2: privileges inside. As root the old sandbox kept every capability
(CapEff 000001fffeffffff): it remounted a read-only bind writable, wrote into the
host venv and read /etc/shadow. Whoever starts the app, the code must be uid
1000 in its own user namespace with no capability and no way to get one.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from team.sandbox.local import LocalSandbox

from .conftest import needs_bwrap, value

pytestmark = needs_bwrap


async def test_uid_1000_no_capabilities_no_new_privileges(sbx: LocalSandbox) -> None:
    probe = await sbx.security_probe()
    assert (probe["uid"], probe["gid"]) == (1000, 1000)
    assert probe["status"]["CapEff"] == "0" * 16 and probe["status"]["CapBnd"] == "0" * 16
    assert probe["status"]["NoNewPrivs"] == "1"
    assert probe["shadow_readable"] is False
    assert probe["can_make_user_namespace"] is False  # no nested namespace to regain capabilities in


async def test_read_only_binds_cannot_be_remounted_or_written(sbx: LocalSandbox) -> None:
    code = f"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
MS_REMOUNT, MS_BIND = 32, 4096
results = {{}}
for target in ("/", {sys.prefix!r}, "/usr"):
    rc = libc.mount(None, target.encode(), None, MS_REMOUNT | MS_BIND, None)
    results["remount " + target] = "OK" if rc == 0 else os.strerror(ctypes.get_errno())
for path in ({os.path.join(sys.prefix, "sbteam-pwned")!r}, "/usr/sbteam-pwned", "/etc/sbteam-pwned"):
    try:
        open(path, "w").write("x")
        results["write " + path] = "WROTE"
    except OSError as exc:
        results["write " + path] = exc.strerror
results
"""
    results = eval(await value(sbx, code))  # noqa: S307
    assert all(v != "OK" and v != "WROTE" for v in results.values()), results
    assert not Path(sys.prefix, "sbteam-pwned").exists()


async def test_only_the_etc_files_python_needs_and_no_host_accounts(sbx: LocalSandbox) -> None:
    etc = eval(await value(sbx, "import os\nsorted(os.listdir('/etc'))"))  # noqa: S307
    assert "shadow" not in etc and "gshadow" not in etc and "sudoers" not in etc
    assert {"passwd", "group", "hosts"} <= set(etc)
    lines = json.loads(await value(sbx, "import json\njson.dumps(open('/etc/passwd').read().splitlines())"))
    assert "user:x:1000:1000:user:/home/user:/bin/bash" in lines
    assert {line.split(":")[0] for line in lines} == {"root", "user", "nobody"}  # no host account


async def test_host_home_and_project_are_invisible(sbx: LocalSandbox) -> None:
    home = str(Path.home())
    shown = await value(sbx, f"import os\n(os.path.exists({home!r}) and os.listdir({home!r})) or []")
    # the home may be a mount point on the way to the Python installation (pyenv); its own files are not there
    for name in os.listdir(home):
        if not Path(sys.base_prefix).is_relative_to(Path(home) / name) and not Path(sys.prefix).is_relative_to(Path(home) / name):
            assert name not in shown, name
    repo = Path(__file__).resolve().parents[2]
    assert await value(sbx, f"import os\nos.path.exists({str(repo)!r})") == "False"
