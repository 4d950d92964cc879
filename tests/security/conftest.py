"""Attacks on the local sandbox, one file per attack class (issue 11).

Every test here plays the hostile code (it runs in the sandbox, as a model's code
would) or the hostile file system state it leaves behind, then checks the host:
files outside untouched, secrets unread, memory and disk bounded. They run as
whoever runs the suite (CI: root, where bwrap's user namespace matters most).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
import pytest_asyncio

from team.sandbox.local import LocalSandbox

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")


@pytest.fixture
def host_secret(tmp_path: Path) -> Path:
    """A file only the host may read (stands for ~/.ssh/id_rsa, .env, …)."""
    path = tmp_path / f"host-secret-{uuid.uuid4().hex}.txt"
    path.write_text("HOST-SECRET-" + uuid.uuid4().hex)
    return path


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sbx():
    sandbox = await LocalSandbox.create()
    yield sandbox
    await sandbox.kill()


async def value(sandbox: LocalSandbox, code: str, timeout: float = 60) -> str:
    """The text of the cell's last expression; the cell must not fail."""
    execution = await sandbox.run_code(code, timeout=timeout)
    assert execution.error is None, f"{execution.error.name}: {execution.error.value}"
    return execution.text or ""
