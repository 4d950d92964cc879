"""The user's data into the E2B sandbox (issue 13), against the local stand-in: the
upload goes through the SDK's files API (no kernel copy there), bounded and hashed
like the local one, and the description is computed by code run in the sandbox."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from team import tables, uploads
from team.sandbox.e2b import E2BSandbox
from team.session import CodeSession
from tests.e2b_standin import E2BStandIn
from tests.test_e2b_sandbox import _no_internet  # noqa: F401  (autouse: never the internet)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[E2BSandbox]:
    async with E2BStandIn(tmp_path / "standin") as server:
        box = await E2BSandbox.create(**server.sdk_kwargs())
        yield box
        await box.kill()


async def test_upload_and_describe_through_the_files_api(sandbox: E2BSandbox, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("city,temp\nOslo,3\nRome,18\nLima,\n")
    (folder / "sub" / "b.bin").write_bytes(bytes(range(256)) * 4000)
    session = CodeSession(factory=lambda: asyncio.sleep(0, sandbox))
    seen: list[int] = []
    done = await uploads.upload(session, uploads.collect([folder]), lambda n, total: seen.append(n))
    assert [d["path"] for d in done] == ["data/mine/a.csv", "data/mine/sub/b.bin"]
    assert done[1]["size"] == 1_024_000 and seen[-1] == sum(d["size"] for d in done)
    assert done[1]["sha256"] == hashlib.sha256((folder / "sub" / "b.bin").read_bytes()).hexdigest()
    back = await sandbox.files.read("/home/user/data/mine/sub/b.bin", format="bytes")
    assert bytes(back) == (folder / "sub" / "b.bin").read_bytes()
    facts = await tables.describe(sandbox, ["data/mine/a.csv"])
    assert facts[0]["rows"] == 3 and facts[0]["columns"] == ["city", "temp"] and facts[0]["missing"] == [0, 1]
