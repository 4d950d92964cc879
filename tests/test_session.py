"""CodeSession: one sandbox per session even under concurrency, restartable, reports file changes."""

from __future__ import annotations

import asyncio
import os

import pytest
import pytest_asyncio

import team.sandbox as sandbox_pkg
from team.session import CodeSession, absolute_path, relative_path


class FakeSandbox:
    """Just enough of the Sandbox surface for life-cycle tests (no kernel)."""

    kind = "local"
    isolation = "none"

    def __init__(self, number: int) -> None:
        self.number = number
        self.killed = False

    async def kill(self) -> None:
        self.killed = True

    async def is_running(self) -> bool:
        return not self.killed


class CountingFactory:
    def __init__(self, delay: float = 0.1, fail_first: bool = False) -> None:
        self.delay = delay
        self.fail_first = fail_first
        self.calls = 0
        self.made: list[FakeSandbox] = []

    async def __call__(self) -> FakeSandbox:
        self.calls += 1
        await asyncio.sleep(self.delay)  # a slow start widens any race
        if self.fail_first and self.calls == 1:
            raise RuntimeError("kernel did not start")
        sbx = FakeSandbox(self.calls)
        self.made.append(sbx)
        return sbx


@pytest.fixture
def singleton(monkeypatch):
    """A clean process-wide singleton whose sandboxes come from a counting fake."""
    monkeypatch.setattr(CodeSession, "_instance", None)
    monkeypatch.setattr(CodeSession, "_instance_lock", None)
    factory = CountingFactory()

    async def fake_create_sandbox(settings):
        return await factory()

    monkeypatch.setattr(sandbox_pkg, "create_sandbox", fake_create_sandbox)
    return factory


# -- the singleton, under concurrency ---------------------------------------------------------


async def test_concurrent_get_instance_makes_one_sandbox(singleton, settings):
    sessions = await asyncio.gather(*(CodeSession.get_instance(settings) for _ in range(5)))
    assert singleton.calls == 1
    assert len({id(s) for s in sessions}) == 1
    assert len({id(s.executor) for s in sessions}) == 1
    session = sessions[0]
    assert session.initialized and session.executor is singleton.made[0]
    # later callers get the same running session, without starting anything
    assert await CodeSession.get_instance() is session
    assert singleton.calls == 1
    await session.close()


def test_get_instance_works_again_in_a_new_event_loop(singleton, settings):
    """The app (or a test) may run several event loops one after another."""

    async def five_then_close():
        sessions = await asyncio.gather(*(CodeSession.get_instance(settings) for _ in range(5)))
        assert len({id(s) for s in sessions}) == 1
        await sessions[0].close()

    asyncio.run(five_then_close())
    asyncio.run(five_then_close())
    assert singleton.calls == 2


async def test_close_and_reinitialise_the_singleton(singleton, settings):
    first = await CodeSession.get_instance(settings)
    sandbox = first.executor
    await first.close()
    assert sandbox.killed
    assert first.executor is None and not first.initialized
    assert first.current_files == [] and first.installed_packages == set()
    second = await CodeSession.get_instance(settings)
    assert second is not first
    assert second.executor is singleton.made[1] and not singleton.made[1].killed
    await second.close()
    await second.close()  # idempotent
    assert singleton.calls == 2


async def test_concurrent_initialize_of_one_session_makes_one_sandbox():
    factory = CountingFactory()
    session = CodeSession(factory=factory)
    warm = session.warm_up()
    assert session.warm_up() is warm  # asking twice does not start twice
    await asyncio.gather(*(session.initialize() for _ in range(5)), warm)
    assert factory.calls == 1 and session.executor is factory.made[0]
    assert session.sandbox is factory.made[0]
    await session.close()
    assert factory.made[0].killed
    await session.initialize()  # re-created after close
    assert factory.calls == 2 and session.sandbox is factory.made[1]
    await session.close()


async def test_a_failed_start_can_be_retried():
    factory = CountingFactory(delay=0, fail_first=True)
    session = CodeSession(factory=factory)
    with pytest.raises(RuntimeError, match="did not start"):
        await session.warm_up()
    assert not session.initialized
    await session.warm_up()  # a fresh attempt, not the failed task again
    assert session.initialized and factory.calls == 2
    await session.close()


async def test_close_during_warm_up_leaves_nothing_running():
    factory = CountingFactory(delay=0.5)
    session = CodeSession(factory=factory)
    session.warm_up()
    await asyncio.sleep(0.05)
    await session.close()
    assert not session.initialized and session.executor is None
    assert factory.made == []  # the start was abandoned before a sandbox existed


async def test_sandbox_property_before_start_is_a_clear_error():
    from team.sandbox import SandboxError

    session = CodeSession(factory=CountingFactory(delay=0))
    with pytest.raises(SandboxError, match="not running"):
        _ = session.sandbox


# -- a real local sandbox -------------------------------------------------------------------------

real = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def live():
    from team.config import Settings

    session = CodeSession(Settings(sandbox="local"))
    await session.initialize()
    yield session
    await session.close()


@real
async def test_file_changes_added_changed_removed(live):
    files = live.sandbox.files
    await live.file_changes()  # baseline
    await files.write("/home/user/a.txt", "one")
    await files.write("/home/user/sub/b.csv", "1,2\n")
    assert await live.file_changes() == (["a.txt", "sub/b.csv"], [], [])
    assert live.current_files == ["a.txt", "sub/b.csv"]
    assert await live.file_changes() == ([], [], [])  # nothing new since the last look
    await files.write("/home/user/a.txt", "one, longer now")
    execution = await live.sandbox.run_code(
        "import os\nos.remove('sub/b.csv')\nopen('c.json','w').write('{}')"
    )
    assert execution.error is None
    assert await live.file_changes() == (["c.json"], ["a.txt"], ["sub/b.csv"])
    assert live.current_files == ["a.txt", "c.json"]


@real
async def test_hidden_files_are_left_out(live):
    files = live.sandbox.files
    await live.file_changes()
    await files.write("/home/user/.secret_cache", "x")
    await files.write("/home/user/.pip/thing.txt", "x")
    await files.write("/home/user/data/.ipynb_checkpoints/x.py", "x")
    await files.write("/home/user/data/visible.txt", "x")
    added, changed, removed = await live.file_changes()
    assert added == ["data/visible.txt"] and changed == [] and removed == []
    paths = [e.path for e in await live.list_entries()]
    assert "data" in paths and "data/visible.txt" in paths
    assert not any(part.startswith(".") for p in paths for part in p.split("/"))
    assert paths == sorted(paths)
    entry = next(e for e in await live.list_entries() if e.path == "data")
    assert entry.is_dir


@real
async def test_read_bytes_and_save_file_to_the_host(live, tmp_path):
    payload = bytes(range(256)) * 4
    await live.sandbox.files.write("/home/user/out/blob.bin", payload)
    assert await live.read_bytes("out/blob.bin", 1 << 20) == payload
    assert await live.read_bytes("/home/user/out/blob.bin", max_bytes=10) == payload[:10]
    saved = await live.save_file("out/blob.bin", tmp_path / "dl")
    assert saved == tmp_path / "dl" / "out" / "blob.bin"
    assert saved.read_bytes() == payload
    # an absolute sandbox path keeps its place under /home/user too
    saved = await live.save_file("/home/user/out/blob.bin", tmp_path / "dl2")
    assert saved == tmp_path / "dl2" / "out" / "blob.bin"


@real
async def test_download_all_copies_visible_files_only(live, tmp_path):
    await live.sandbox.files.write("/home/user/report/summary.md", "# done\n")
    await live.sandbox.files.write("/home/user/.hidden_state", "no")
    report = await live.download_all(tmp_path / "all")
    assert report.skipped == [] and not report.listing_truncated
    rel = sorted(str(p.relative_to(tmp_path / "all")) for p in report.saved)
    assert "report/summary.md" in rel
    assert not any(os.path.basename(p).startswith(".") for p in rel)
    assert (tmp_path / "all" / "report" / "summary.md").read_text() == "# done\n"


@real
async def test_save_file_refuses_paths_outside_the_sandbox(live, tmp_path):
    with pytest.raises(Exception, match="outside the sandbox"):
        await live.save_file("../../etc/passwd", tmp_path / "x")
    assert not (tmp_path / "x").exists()


@real
async def test_reset_gives_a_fresh_empty_sandbox(live):
    await live.sandbox.files.write("/home/user/old.txt", "old")
    await live.sandbox.run_code("remember_me = 1")
    old = live.sandbox
    await live.reset()
    assert not await old.is_running()
    assert live.sandbox is not old and await live.sandbox.is_running()
    assert [e.path for e in await live.list_entries()] == []
    execution = await live.sandbox.run_code("'remember_me' in globals()")
    assert execution.text == "False"
    assert live.current_files == []


def test_sandbox_path_helpers():
    assert absolute_path("a/b.txt") == "/home/user/a/b.txt"
    assert absolute_path("") == "/home/user"
    assert absolute_path("/home/user/x/../y") == "/home/user/y"
    assert relative_path("/home/user/a/b") == "a/b"
    assert relative_path("/home/user") is None
    assert relative_path("/etc/passwd") is None
    assert relative_path("/home/username/x") is None
