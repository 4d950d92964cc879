"""The seed's `CodeSession`: one sandbox per session, shared by all tools.

Kept close to the seed (`get_instance`, `initialize`, `close`, `current_files`,
`installed_packages`) with what a long-running app needs on top:
- `get_instance` is safe under concurrent callers (a lock: one sandbox, not two);
- `warm_up()` starts the sandbox in the background when the app opens, so the
  first tool call does not wait for it;
- `file_changes()` reports what was added/changed/removed since the last look,
  which drives the UI's file tree without polling;
- a session can also be made directly (`CodeSession(settings)`), which the run
  controller does so that tests and batch runs can hold several at once; the
  singleton is the process-wide default.

Hidden paths (any component starting with '.') are left out of listings: they
are the kernel's and pip's own folders, not the user's results.

Bounded host cost, whatever the sandbox holds: listings walk the whole tree
but stop at MAX_ENTRIES (and say so), reads take a bounded prefix and report
the real size, and the copy of the sandbox's files to the host (`download_all`)
skips symlinks, files over COPY_FILE_MAX and everything past COPY_TOTAL_MAX or
past the free space of the destination, each skip listed in a `CopyReport`.
A copy that fails on the host side (disk full, I/O error, read-only) removes
its partial file and is listed too, as a failure: the report then says the
copy is incomplete (`CopyReport.incomplete`), which the run record keeps.

File names need not be UTF-8: inside the engine a name is a `str` with
surrogate escapes (as `os.listdir` gives it), copied to the host under its
real bytes. The local sandbox's file access handles such names itself; E2B's
envd cannot carry them (its API is protobuf/JSON, UTF-8 only), so for E2B a
failed listing is redone by a few lines of Python in the sandbox, and a file
with such a name is moved through a hidden temporary link with an ASCII name.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from . import session_transfers
from .sandbox.base import WORKDIR, Sandbox, SandboxError
from .session_transfers import (  # noqa: F401  (CopyReport, COPY_FILE_MAX: callers import them from here)
    COPY_FILE_MAX,
    CopyReport,
    Transfers,
    absolute_path,
    relative_path,
)

if TYPE_CHECKING:
    from .config import Settings


@dataclass(frozen=True)
class FileEntry:
    """A file or folder of the sandbox, `path` relative to /home/user."""

    path: str
    size: int
    is_dir: bool
    modified: float
    is_link: bool = False


SandboxFactory = Callable[[], Awaitable[Sandbox]]


class CodeSession(Transfers):
    """Owns the sandbox; creates it lazily and exactly once."""

    _instance: ClassVar[CodeSession | None] = None
    _instance_lock: ClassVar[asyncio.Lock | None] = None

    def __init__(self, settings: Settings | None = None, factory: SandboxFactory | None = None):
        self.settings = settings
        self._factory = factory
        self.executor: Sandbox | None = None
        self.initialized = False
        self.current_files: list[str] = []
        self.installed_packages: set[str] = set()
        self._lock = asyncio.Lock()
        self._warm_task: asyncio.Task[None] | None = None
        self._snapshot: dict[str, tuple[int, float]] = {}
        self.listing_truncated = False  # the last listing stopped at MAX_ENTRIES

    # -- the seed's singleton -------------------------------------------------
    @classmethod
    async def get_instance(cls, settings: Settings | None = None) -> CodeSession:
        """The process-wide session, initialised once even under concurrent callers."""
        if cls._instance_lock is None:
            cls._instance_lock = asyncio.Lock()
        async with cls._instance_lock:
            if cls._instance is None:
                if settings is None:
                    from .config import Settings

                    settings = Settings.load()
                cls._instance = CodeSession(settings)
            instance = cls._instance
        await instance.initialize()
        return instance

    async def initialize(self) -> None:
        """Start the sandbox if it is not running yet (idempotent, concurrency-safe)."""
        if self.initialized and self.executor is not None:
            return
        async with self._lock:
            if self.initialized and self.executor is not None:
                return
            self.executor = await self._create()
            self.initialized = True

    async def _create(self) -> Sandbox:
        if self._factory is not None:
            return await self._factory()
        from .sandbox import create_sandbox

        if self.settings is None:
            from .config import Settings

            self.settings = Settings.load()
        return await create_sandbox(self.settings)

    def warm_up(self) -> asyncio.Task[None]:
        """Start the sandbox in the background; await the task to learn the outcome."""
        if self._warm_task is None or (self._warm_task.done() and not self.initialized):
            self._warm_task = asyncio.create_task(self.initialize(), name="sbteam-warm-up")
        return self._warm_task

    async def close(self) -> None:
        """Kill the sandbox; the session can be initialised again afterwards."""
        task, self._warm_task = self._warm_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        async with self._lock:
            executor, self.executor = self.executor, None
            self.initialized = False
            self.current_files = []
            self.installed_packages = set()
            self._snapshot = {}
            if executor is not None:
                with contextlib.suppress(Exception):
                    await executor.kill()
        if CodeSession._instance is self:
            CodeSession._instance = None

    async def reset(self) -> None:
        """A fresh, empty sandbox (restart without keep_sandbox)."""
        await self.close()
        await self.initialize()

    @property
    def sandbox(self) -> Sandbox:
        if self.executor is None:
            raise SandboxError("the sandbox is not running")
        return self.executor

    @property
    def isolation(self) -> str:
        return getattr(self.executor, "isolation", "unknown") if self.executor else "unknown"

    @property
    def kind(self) -> str:
        if self.executor is not None:
            return getattr(self.executor, "kind", "local")
        return self.settings.sandbox if self.settings else "local"

    @property
    def limits_text(self) -> str:
        """The sandbox's limits in one line: measured from the running sandbox when there is one."""
        report = getattr(self.executor, "limits_report", None)
        if report is not None:
            r = report()
            return f"{r['limits']} (memory by {r['memory']}; processes by {r['processes']})"
        if self.kind == "e2b":
            return "set by E2B (the sandbox template's VM)"
        return self.settings.limits.as_text() if self.settings is not None else ""

    async def interrupt(self) -> None:
        """Stop whatever code runs now; never raises."""
        if self.executor is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.executor.interrupt(), 5)

    # -- files -------------------------------------------------------------------
    async def list_entries(self, path: str = WORKDIR) -> list[FileEntry]:
        """Every visible file and folder under `path`, sorted, at most MAX_ENTRIES.

        The whole tree (no depth limit); `listing_truncated` says whether the
        count limit cut it. Symlinks are listed as files (their target's size
        only when it is inside the sandbox), never entered.
        """
        await self.initialize()
        try:
            entries, truncated = await self.sandbox.files.walk(path, session_transfers.MAX_ENTRIES)
        except Exception:
            if self.kind == "local":  # the local backend lists any name itself
                raise
            # envd fails a whole listing over one name that is not UTF-8: list in the sandbox
            try:
                entries, truncated = await self._walk_in_sandbox(path)
            except Exception:
                pass
            else:
                self.listing_truncated = truncated
                return self._entries(entries)
            raise
        self.listing_truncated = truncated
        return self._entries(entries)

    def _entries(self, entries: list[Any]) -> list[FileEntry]:
        result: list[FileEntry] = []
        for entry in entries:
            rel = relative_path(getattr(entry, "path", ""))
            if rel is None or any(part.startswith(".") for part in rel.split("/")):
                continue
            result.append(
                FileEntry(
                    path=rel,
                    size=int(getattr(entry, "size", 0) or 0),
                    is_dir=_is_dir(entry),
                    modified=_timestamp(getattr(entry, "modified_time", None)),
                    is_link=_is_link(entry),
                )
            )
        result.sort(key=lambda e: e.path)
        return result

    async def file_changes(self) -> tuple[list[str], list[str], list[str]]:
        """(added, changed, removed) files since the last call; updates `current_files`."""
        entries = [e for e in await self.list_entries() if not e.is_dir]
        now = {e.path: (e.size, e.modified) for e in entries}
        before = self._snapshot
        added = sorted(p for p in now if p not in before)
        changed = sorted(p for p in now if p in before and before[p] != now[p])
        removed = sorted(p for p in before if p not in now)
        self._snapshot = now
        self.current_files = sorted(now)
        return added, changed, removed

    async def read_bytes(self, path: str, max_bytes: int) -> bytes:
        """The first `max_bytes` bytes of a sandbox file (never more is read)."""
        data, _size = await self.read_head(path, max_bytes)
        return data

    async def read_head(self, path: str, max_bytes: int) -> tuple[bytes, int]:
        """(the first `max_bytes` bytes, the file's real size)."""
        await self.initialize()
        async with self._transfer_name(absolute_path(path)) as usable:
            return await self.sandbox.files.read_head(usable, max_bytes)


def _is_dir(entry: Any) -> bool:
    kind = getattr(entry, "type", None)
    value = getattr(kind, "value", kind)
    return str(value).lower() in ("dir", "directory")


def _is_link(entry: Any) -> bool:
    kind = getattr(entry, "type", None)
    return str(getattr(kind, "value", kind)).lower() == "symlink" or bool(getattr(entry, "symlink_target", None))


def _timestamp(value: Any) -> float:
    if value is None:
        return 0.0
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
