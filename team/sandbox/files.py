"""`sandbox.files` for the local backend: E2B's Filesystem surface over `safefs`.

Paths are sandbox paths ("/home/user/x", or "x" relative to it); a path that
leaves /home/user raises `PathOutsideSandbox` (an E2B `InvalidArgumentException`)
before anything is touched, and every operation goes through `SandboxFS`, so
nothing the sandbox does to its folder makes the host follow a link out.
Results are the SDK's own `EntryInfo`/`WriteInfo`, errors its own exceptions.

Where E2B's VM and a host folder differ:
- only /home/user is reachable (E2B's whole VM is);
- a symlink pointing out of the sandbox is listed as a file with the link's
  own size and its text as target, never stat-ed (the host would otherwise
  reveal whether a host file exists and its size); inside, as envd: the
  target's type and resolved path, the link's own size and mode;
- `read_head` (not E2B) reads a bounded prefix and the real size, for previews.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import os
import stat
from collections.abc import AsyncIterable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .base import WORKDIR, SandboxError
from .paths import OutsideSandbox, sandbox_relpath
from .safefs import CHUNK, Entry, NotRegularFile, SandboxFS

if TYPE_CHECKING:
    from e2b.sandbox.filesystem.filesystem import EntryInfo, WriteInfo

LIST_CAP = 100_000  # entries one list() call returns at most


def _names(mine: int) -> dict[int, str]:
    """How owners look inside the sandbox: the app's own id (the sandbox's) is `user`."""
    return {mine: "user", 0: "root"} if mine != 0 else {0: "user"}


def _permissions(mode: int) -> str:
    """Go's FileMode.String(), which envd reports: `-rw-r--r--`, `drwxr-xr-x`, `Lrwxrwxrwx`."""
    text = stat.filemode(mode)
    return "L" + text[1:] if text.startswith("l") else text


def _error(exc: OSError, path: str) -> Exception:
    """The SDK's exception for a failed file operation, with a one-line message."""
    from e2b.exceptions import FileNotFoundException, InvalidArgumentException

    if isinstance(exc, FileNotFoundError):
        return FileNotFoundException(f"path {path!r} does not exist")
    if isinstance(exc, IsADirectoryError):
        return InvalidArgumentException(f"path {path!r} is a directory")
    if isinstance(exc, NotADirectoryError):
        return InvalidArgumentException(f"path {path!r} is not a directory")
    if isinstance(exc, NotRegularFile):
        return InvalidArgumentException(f"path {path!r} is not a regular file (a pipe, socket or device)")
    return SandboxError(f"{path}: {exc.strerror or exc}")


class FileStream:
    """Async iterator over a file's bytes (what E2B's `read(format="stream")` gives)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._done = False

    def __aiter__(self) -> FileStream:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        chunk = await asyncio.to_thread(next, self._chunks, b"")
        if not chunk:
            await self.aclose()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        if not self._done:
            self._done = True
            close = getattr(self._chunks, "close", None)
            if close is not None:
                await asyncio.to_thread(close)

    async def __aenter__(self) -> FileStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class LocalFiles:
    """E2B's `Filesystem` over one sandbox folder (see module doc)."""

    def __init__(self, fs: SandboxFS) -> None:
        self._fs = fs
        self._owners = _names(os.getuid())
        self._groups = _names(os.getgid())

    async def _run(self, path: str, func: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(func, *args)
        except OutsideSandbox:
            raise
        except OSError as exc:
            raise _error(exc, path) from None

    # ---- E2B surface

    async def read(self, path: str, format: str = "text", **_: Any) -> Any:
        """File content as str ("text"), bytearray ("bytes") or an async byte stream ("stream")."""
        from e2b.exceptions import InvalidArgumentException

        rel = sandbox_relpath(path)
        if format not in ("text", "bytes", "stream"):
            raise InvalidArgumentException(f"unknown format {format!r}")
        if format == "stream":
            fd_iter = await self._run(path, lambda: _primed(self._fs.iter_file(rel)))
            return FileStream(fd_iter)
        data, _size = await self._run(path, self._fs.read, rel)
        return data.decode("utf-8", "replace") if format == "text" else bytearray(data)

    async def copy_from(self, path: str, source_fd: int, size: int, advanced: Any = None) -> int:
        """Not E2B's: copy an open host file in (uploads), in the kernel; bytes copied."""
        return await self._run(path, self._fs.copy_from, sandbox_relpath(path), source_fd, size, advanced)

    async def write(self, path: str, data: Any, **kw: Any) -> WriteInfo:
        """Write str/bytes/file-like/(async) iterable data, creating parent folders."""
        return (await self.write_files([{"path": path, "data": data}], **kw))[0]

    async def write_files(
        self, files: Iterable[Any], metadata: dict[str, str] | None = None, **_: Any
    ) -> list[WriteInfo]:
        """Write several files (E2B's `WriteEntry` dicts: `path`, `data`), each with `metadata`."""
        from e2b.sandbox.filesystem.filesystem import FileType, WriteInfo, validate_metadata

        validate_metadata(metadata)  # before anything is written, as E2B
        out = []
        for item in files:
            path, data = item["path"], item["data"]
            rel = sandbox_relpath(path)
            chunks = await _chunks(data)
            await self._run(path, self._fs.write, rel, chunks, metadata)
            spath = _spath(rel)
            out.append(
                WriteInfo(name=os.path.basename(spath), type=FileType.FILE, path=spath, metadata=dict(metadata) if metadata else None)
            )
        return out

    async def list(self, path: str = WORKDIR, depth: int | None = 1, **_: Any) -> list[EntryInfo]:
        """Entries under a folder, parents before children; `depth` None is one level, as E2B."""
        from e2b.exceptions import InvalidArgumentException

        if depth is not None and depth < 1:
            raise InvalidArgumentException("depth should be at least 1")
        rel = sandbox_relpath(path)
        entries, _truncated = await self._run(path, functools.partial(self._fs.list, metadata=True), rel, depth or 1, LIST_CAP)
        return [self._info(e) for e in entries]

    async def walk(self, path: str = WORKDIR, max_entries: int = LIST_CAP) -> tuple[builtins.list[EntryInfo], bool]:
        """The whole tree under `path` (no depth limit), at most `max_entries`; (entries, truncated)."""
        rel = sandbox_relpath(path)
        entries, truncated = await self._run(path, self._fs.list, rel, None, max_entries)
        return [self._info(e) for e in entries], truncated

    async def exists(self, path: str, **_: Any) -> bool:
        rel = sandbox_relpath(path)
        return bool(await self._run(path, self._fs.exists, rel))

    async def get_info(self, path: str, **_: Any) -> EntryInfo:
        rel = sandbox_relpath(path)
        return self._info(await self._run(path, functools.partial(self._fs.entry, metadata=True), rel))

    async def remove(self, path: str, **_: Any) -> None:
        """Remove a file or folder (recursively); a symlink itself, never its target."""
        rel = sandbox_relpath(path)
        await self._run(path, self._fs.remove, rel)

    async def rename(self, old_path: str, new_path: str, **_: Any) -> EntryInfo:
        """Move a file or folder (the target's parent folders are made); the target's info."""
        old, new = sandbox_relpath(old_path), sandbox_relpath(new_path)
        await self._run(old_path, self._fs.rename, old, new)
        return self._info(await self._run(new_path, functools.partial(self._fs.entry, metadata=True), new))

    async def make_dir(self, path: str, **_: Any) -> bool:
        """Create a folder and its parents; True if created, False if it existed."""
        rel = sandbox_relpath(path)
        return bool(await self._run(path, self._fs.make_dir, rel))

    # ---- bounded reads for the app

    async def read_head(self, path: str, max_bytes: int) -> tuple[bytes, int]:
        """(at most `max_bytes` from the start, the file's real size)."""
        rel = sandbox_relpath(path)
        return await self._run(path, self._fs.read, rel, max_bytes)

    async def usage(self) -> tuple[int, int, bool]:
        """(bytes on disk, entries, truncated) of the whole sandbox folder."""
        return await asyncio.to_thread(self._fs.usage)

    def _info(self, entry: Entry) -> EntryInfo:
        """The SDK's EntryInfo, as envd fills it (a symlink has its target's type)."""
        from e2b.sandbox.filesystem.filesystem import EntryInfo, FileType

        spath = entry.sandbox_path
        return EntryInfo(
            name=os.path.basename(spath),
            type=FileType.DIR if entry.kind == "dir" else FileType.FILE,
            path=spath,
            size=entry.size,
            mode=stat.S_IMODE(entry.mode),
            permissions=_permissions(entry.mode),
            owner=self._owners.get(entry.uid, str(entry.uid)),
            group=self._groups.get(entry.gid, str(entry.gid)),
            modified_time=datetime.fromtimestamp(entry.mtime, tz=UTC),
            symlink_target=entry.link_target,
            metadata=entry.metadata,
        )


def _spath(rel: str) -> str:
    return f"{WORKDIR}/{rel}" if rel else WORKDIR


def _primed(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Start the generator now, so opening errors surface at read(), as with E2B."""
    first = next(chunks, b"")

    def gen() -> Iterator[bytes]:
        try:
            if first:
                yield first
            yield from chunks
        finally:
            chunks.close()  # type: ignore[attr-defined]  # an async generator has aclose/close; the protocol says AsyncIterable

    return gen()


async def _chunks(data: Any) -> Iterable[bytes]:
    """What `SandboxFS.write` consumes: an iterable of bytes, read lazily from file objects."""
    if isinstance(data, str):
        return [data.encode("utf-8")]
    if isinstance(data, (bytes, bytearray, memoryview)):
        return [bytes(data)]
    if hasattr(data, "read"):
        return _read_chunks(data)
    if isinstance(data, AsyncIterable):
        return [bytes(c) async for c in data]
    if isinstance(data, Iterable):
        return (bytes(c) for c in data)
    from e2b.exceptions import InvalidArgumentException

    raise InvalidArgumentException(f"cannot write data of type {type(data).__name__}")


def _read_chunks(fh: Any) -> Iterator[bytes]:
    while True:
        chunk = fh.read(CHUNK)
        if not chunk:
            return
        yield chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)
