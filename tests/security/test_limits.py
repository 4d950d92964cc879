"""Attack 6: exhaust the machine. The old sandbox had no limit at all: memory,
processes, file size, /tmp (a RAM tmpfs of half the host's memory) and disk were
the host's. Each limit now holds, says so in one line, and the next cell works.
Small limits here so the test is quick; the defaults are the same mechanisms.
"""

from __future__ import annotations

import pytest_asyncio

from team.sandbox.limits import MIB, Limits
from team.sandbox.local import LocalSandbox

from .conftest import needs_bwrap, value

pytestmark = needs_bwrap

# 1 GB: enough for a kernel's address space where RLIMIT_AS (not a cgroup) is the mechanism
SMALL = Limits(memory=1024 * MIB, processes=64, file=32 * MIB, tmp=16 * MIB, disk=120 * MIB, cell=60)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def box():
    sandbox = await LocalSandbox.create(limits=SMALL)
    yield sandbox
    await sandbox.kill()


async def test_memory(box: LocalSandbox) -> None:
    execution = await box.run_code("hog = b'x' * (1500 << 20)\nlen(hog)")  # really touched, not calloc'd
    error = execution.error
    assert error is not None and error.name in ("MemoryError", "KernelDied"), error
    assert "1.0GB" in error.value and "SBTEAM_LIMITS" in error.value  # the user is told which limit
    assert await value(box, "1 + 1") == "2"


async def test_processes(box: LocalSandbox) -> None:
    code = """
import subprocess
procs, error = [], ""
try:
    for _ in range(200):
        procs.append(subprocess.Popen(["sleep", "30"]))
except OSError as exc:
    error = type(exc).__name__
for p in procs:
    p.kill(); p.wait()
(len(procs), error)
"""
    started, error = eval(await value(box, code))  # noqa: S307
    assert started < 64 and error in ("BlockingIOError", "OSError", "PermissionError")
    assert await value(box, "2 + 2") == "4"


async def test_file_size(box: LocalSandbox) -> None:
    execution = await box.run_code("open('big.bin', 'wb').write(b'x' * (64 << 20))")
    assert execution.error is not None and "File too large" in execution.error.value
    assert "32.0MB" in execution.error.value
    await box.files.remove("big.bin")


async def test_tmp_size(box: LocalSandbox) -> None:
    code = "import errno\ntry:\n    open('/tmp/fill', 'wb').write(b'x' * (30 << 20))\n    r = 'WROTE'\nexcept OSError as e:\n    r = errno.errorcode[e.errno]\nr"
    assert await value(box, code) == "ENOSPC"
    assert await value(box, "import os\nos.remove('/tmp/fill') if os.path.exists('/tmp/fill') else None\n3") == "3"


async def test_disk(box: LocalSandbox) -> None:
    code = """
import os, time
os.makedirs('fill', exist_ok=True)
for i in range(40):
    with open(f'fill/{i}.bin', 'wb') as fh:
        fh.write(os.urandom(8 << 20))
    time.sleep(0.25)
'all written'
"""
    execution = await box.run_code(code, timeout=60)
    assert execution.error is not None and execution.error.name == "SandboxLimit", execution.error
    assert "more than its limit of 120MB" in execution.error.value
    await box.files.remove("fill")
    assert await value(box, "5") == "5"


async def test_limits_are_reported(box: LocalSandbox) -> None:
    report = box.limits_report()
    assert report["limits"] == "memory=1.0G, processes=64, file=32.0M, tmp=16.0M, disk=120M, cell=60s"
    assert "not enforced" not in report["memory"] and report["file"] == "RLIMIT_FSIZE"
