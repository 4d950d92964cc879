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
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .sandbox.base import WORKDIR, Sandbox, SandboxError

if TYPE_CHECKING:
    from .config import Settings

MAX_ENTRIES = 2000
LIST_DEPTH = 6


@dataclass(frozen=True)
class FileEntry:
    """A file or folder of the sandbox, `path` relative to /home/user."""

    path: str
    size: int
    is_dir: bool
    modified: float


SandboxFactory = Callable[[], Awaitable[Sandbox]]


class CodeSession:
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

    async def interrupt(self) -> None:
        """Stop whatever code runs now; never raises."""
        if self.executor is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.executor.interrupt(), 5)

    # -- files -------------------------------------------------------------------
    async def list_entries(self, path: str = WORKDIR) -> list[FileEntry]:
        """Every visible file and folder under `path`, sorted, capped at MAX_ENTRIES."""
        await self.initialize()
        entries = await self.sandbox.files.list(path, depth=LIST_DEPTH)
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
                )
            )
            if len(result) >= MAX_ENTRIES:
                break
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

    async def read_bytes(self, path: str, max_bytes: int | None = None) -> bytes:
        """Raw bytes of a sandbox file (the first `max_bytes` when given)."""
        await self.initialize()
        data = await self.sandbox.files.read(absolute_path(path), format="bytes")
        data = bytes(data)
        return data if max_bytes is None else data[:max_bytes]

    async def save_file(self, path: str, dest_dir: Path) -> Path:
        """Copy one sandbox file to the host folder `dest_dir` (keeping its relative path)."""
        data = await self.read_bytes(path)
        rel = relative_path(absolute_path(path)) or posixpath.basename(path)
        target = Path(dest_dir) / rel
        await asyncio.to_thread(_write_host_file, target, data)
        return target

    async def upload_dir(self, source: Path) -> int:
        """Copy a host folder's files into /home/user (resume); returns how many."""
        source = Path(source)
        files = await asyncio.to_thread(
            lambda: [p for p in sorted(source.rglob("*")) if p.is_file()] if source.is_dir() else []
        )
        await self.initialize()
        for path in files:
            rel = path.relative_to(source).as_posix()
            data = await asyncio.to_thread(path.read_bytes)
            await self.sandbox.files.write(posixpath.join(WORKDIR, rel), data)
        return len(files)

    async def download_all(self, dest_dir: Path) -> list[Path]:
        """Copy every visible sandbox file to `dest_dir`; returns host paths."""
        saved = []
        for entry in await self.list_entries():
            if not entry.is_dir:
                with contextlib.suppress(Exception):
                    saved.append(await self.save_file(entry.path, dest_dir))
        return saved


def _write_host_file(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def absolute_path(path: str) -> str:
    """Resolve a sandbox path the way E2B does: relative paths are under /home/user."""
    path = (path or "").strip() or "."
    if not path.startswith("/"):
        path = posixpath.join(WORKDIR, path)
    return posixpath.normpath(path)


def relative_path(path: str) -> str | None:
    """`/home/user/a/b` → `a/b`; None for paths outside /home/user or the folder itself."""
    norm = posixpath.normpath(path) if path else ""
    if not norm.startswith(WORKDIR + "/"):
        return None
    return norm[len(WORKDIR) + 1 :]


def _is_dir(entry: Any) -> bool:
    kind = getattr(entry, "type", None)
    value = getattr(kind, "value", kind)
    return str(value).lower() in ("dir", "directory")


def _timestamp(value: Any) -> float:
    if value is None:
        return 0.0
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
