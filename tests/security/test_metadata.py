"""Attack 7 (smaller): what listings reveal and what they silently drop.

- A symlink to a host file made `list_files` and the tree show that the file
  exists and its exact size. Now a link out of the sandbox shows only itself.
- Files deeper than 6 folders were never listed or copied, without a word. Now
  the walk has no depth limit, a count limit, and says when it is reached.
- A cell that ignored the stop had its kernel replaced silently. Now the next
  cell is told that earlier variables are gone.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import team.session_transfers as session_transfers
from team.sandbox.local import LocalSandbox
from team.session import CodeSession
from team.tools import ToolContext, build_tools

from .conftest import value


@pytest.fixture
async def session():
    box = await LocalSandbox.create()
    sess = CodeSession(factory=lambda: asyncio.sleep(0, box))
    await sess.initialize()
    yield sess
    await sess.close()


async def test_a_link_to_a_host_file_reveals_neither_its_existence_nor_its_size(
    session: CodeSession, host_secret: Path
) -> None:
    box = session.sandbox
    secret_size = host_secret.stat().st_size
    await value(box, f"import os\nos.symlink({str(host_secret)!r}, 'leak')\nos.symlink('/etc/shadow', 'shadow')\n0")
    for name in ("leak", "shadow"):
        info = await box.files.get_info(name)
        assert info.size == len(info.symlink_target)  # the link's own size, never its target's
    missing = await box.run_code("import os\nos.symlink('/nonexistent/file', 'dangling')")
    assert missing.error is None
    dangling = await box.files.get_info("dangling")
    # a link to a host file that exists and one to nothing look the same
    leak = await box.files.get_info("leak")
    assert (leak.type, leak.permissions) == (dangling.type, dangling.permissions)
    entries = {e.path: e for e in await session.list_entries()}
    assert entries["leak"].size != secret_size and entries["leak"].is_link
    listing = await build_tools(ToolContext(session))["list_files"].run_json({"path": "/"}, None, call_id="l")  # type: ignore[arg-type]
    assert f"({secret_size} B)" not in listing


async def test_deep_folders_are_listed_and_copied(session: CodeSession, tmp_path: Path) -> None:
    deep = "/".join(f"level{i}" for i in range(30))
    await session.sandbox.files.write(f"{deep}/bottom.txt", "found")
    assert f"{deep}/bottom.txt" in {e.path for e in await session.list_entries()}
    report = await session.download_all(tmp_path / "copy")
    assert (tmp_path / "copy" / deep / "bottom.txt").read_text() == "found"
    assert report.skipped == []


async def test_too_many_files_are_cut_with_a_notice(
    session: CodeSession, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    await value(session.sandbox, "import os\nos.makedirs('many', exist_ok=True)\nfor i in range(50):\n    open(f'many/{i:03}.txt', 'w').close()\n0")
    monkeypatch.setattr(session_transfers, "MAX_ENTRIES", 20)  # the one cap, read at call time
    entries = await session.list_entries()
    assert len(entries) <= 20 and session.listing_truncated
    report = await session.download_all(tmp_path / "copy")
    assert "more than 20 files and folders" in report.summary()


async def test_a_kernel_replaced_after_an_ignored_stop_is_announced(session: CodeSession) -> None:
    box = session.sandbox
    await value(box, "kept = 1")
    stubborn = asyncio.ensure_future(
        box.run_code("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)")
    )
    await asyncio.sleep(0.5)
    stubborn.cancel()  # a force stop: the cell ignores the interrupt, the kernel is replaced
    with pytest.raises(asyncio.CancelledError):
        await stubborn
    execution = await box.run_code("'kept' in globals()", timeout=30)
    assert execution.text == "False"
    assert any("earlier variables are lost" in line for line in execution.logs.stderr)
