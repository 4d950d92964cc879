"""What crosses between the sandbox and the host for a session: one file saved, a folder
uploaded, every file copied into the run record, within bounds that hold whatever the
sandbox holds (see `team/session.py`'s docstring), and the E2B fallbacks for names its
API cannot carry (a temporary UTF-8 name made in the sandbox, a listing walked there).

A mixin of `CodeSession`: it uses the session's `sandbox`, `kind`, `initialize` and
`list_entries` and nothing else of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import posixpath
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import one_line
from .events import has_raw_bytes
from .sandbox.base import WORKDIR, SandboxError
from .sanitize import shown_name

if TYPE_CHECKING:
    from .sandbox.base import Sandbox

MAX_ENTRIES = 5000  # files and folders a listing (tree, list_files, copy-out) takes at most
COPY_FILE_MAX = 100 << 20  # bytes: a larger file is not copied to the host
COPY_TOTAL_MAX = 1 << 30  # bytes copied out per run at most
FREE_MARGIN = 256 << 20  # bytes to leave free on the destination's filesystem
CODE_FALLBACK_TIMEOUT = 30.0  # seconds for the in-sandbox listing / transfer link (E2B, odd names)
TRANSFER_PREFIX = ".sbteam-transfer-"  # hidden, so never listed


@dataclass
class CopyReport:
    """What `download_all` copied and what it left, with why (shown and recorded).

    `skipped` lists every file not copied; `failed` names those among them that a
    failure left out (no free space, a write error that cut the copy short, a
    read error), as opposed to a limit (symlinks, size caps); `error` says why
    nothing could be copied at all (the listing failed).
    """

    saved: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (sandbox path, reason)
    listing_truncated: bool = False
    failed: list[str] = field(default_factory=list)  # sandbox paths (among skipped) a failure left out
    error: str = ""

    def summary(self, *, failures: bool = True) -> str:
        """One line for the transcript / stderr; "" when everything was copied.
        `failures=False`: only what limits left out (failures are told by `incomplete`)."""
        parts = []
        if self.error and failures:
            parts.append(f"the sandbox's files were not copied: {self.error}")
        skipped = self.skipped if failures else [(p, r) for p, r in self.skipped if p not in self.failed]
        if skipped:
            shown = "; ".join(f"{shown_name(p)} ({why})" for p, why in skipped[:5])
            more = f"; and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            parts.append(f"{len(skipped)} file(s) not copied: {shown}{more}")
        if self.listing_truncated:
            parts.append(f"the sandbox holds more than {MAX_ENTRIES:,} files and folders; only the first were considered")
        return ". ".join(parts)

    @property
    def incomplete(self) -> str:
        """One line saying what failures left out of the copy; "" when only limits did."""
        parts = []
        if self.error:
            parts.append(f"the sandbox's files were not copied ({self.error})")
        if self.failed:
            reasons = dict(self.skipped)
            shown = "; ".join(f"{shown_name(p)} ({reasons.get(p, 'failed')})" for p in self.failed[:3])
            more = f"; and {len(self.failed) - 3} more" if len(self.failed) > 3 else ""
            parts.append(f"{len(self.failed)} file(s) not copied into the record: {shown}{more}")
        return "; ".join(parts)


class HostWriteError(OSError):
    """Writing the copy on the host failed (the partial file was removed)."""


class Transfers:
    """Save, upload and copy out, for `CodeSession`."""

    if TYPE_CHECKING:  # provided by CodeSession
        listing_truncated: bool

        @property
        def sandbox(self) -> Sandbox: ...

        @property
        def kind(self) -> str: ...

        async def initialize(self) -> None: ...

        async def list_entries(self, path: str = WORKDIR) -> list[Any]: ...

    async def save_file(self, path: str, dest_dir: Path, max_bytes: int = COPY_FILE_MAX) -> Path:
        """Copy one sandbox file to the host folder `dest_dir` (keeping its relative path,
        byte for byte, whatever its name).

        Streams at most `max_bytes`; a larger file raises SandboxError, a failed
        write on the host HostWriteError (nothing is left half-written either way).
        """
        await self.initialize()
        rel = relative_path(absolute_path(path)) or posixpath.basename(path)
        target = Path(dest_dir) / rel
        partial = target.with_name(f".{target.name}.partial")
        async with self._transfer_name(absolute_path(path)) as usable:
            stream = await self.sandbox.files.read(usable, format="stream")  # checks the path first
            try:
                await _on_host(target.parent.mkdir, parents=True, exist_ok=True)
                written = 0
                try:
                    fh = await _on_host(open, partial, "wb")
                    try:
                        async for chunk in stream:
                            written += len(chunk)
                            if written > max_bytes:
                                raise SandboxError(f"{rel} is larger than the {max_bytes >> 20} MB copy limit")
                            await _on_host(fh.write, chunk)
                    finally:
                        await _on_host(fh.close)  # a full disk may say so only as the buffer is flushed
                    await _on_host(os.replace, partial, target)
                except BaseException as exc:
                    with contextlib.suppress(OSError):
                        partial.unlink()
                    if isinstance(exc, HostWriteError) and written:
                        raise HostWriteError(exc.errno, f"{exc.strerror}: the copy was cut short and removed") from None
                    raise
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()
        return target

    async def upload_dir(self, source: Path) -> int:
        """Copy a host folder's files into /home/user (resume); returns how many.

        The folder is one of ours (a run record); its symlinks are not followed.
        """
        source = Path(source)
        files = await asyncio.to_thread(
            lambda: [p for p in sorted(source.rglob("*")) if p.is_file() and not p.is_symlink()]
            if source.is_dir()
            else []
        )
        await self.initialize()
        for path in files:
            rel = path.relative_to(source).as_posix()
            target = posixpath.join(WORKDIR, rel)
            if self.kind == "local" or not has_raw_bytes(target):
                with open(path, "rb") as fh:  # noqa: ASYNC230 - read in chunks by the sandbox's writer
                    await self.sandbox.files.write(target, fh)
                continue
            # E2B cannot carry the name: upload under an ASCII name, then rename in the sandbox
            temporary = f"{WORKDIR}/{TRANSFER_PREFIX}{uuid.uuid4().hex}"
            with open(path, "rb") as fh:  # noqa: ASYNC230
                await self.sandbox.files.write(temporary, fh)
            await self._code_in_sandbox(
                "import os as _o\n"
                f"_o.makedirs(_o.path.dirname(_o.fsencode({target!r})), exist_ok=True)\n"
                f"_o.replace({temporary!r}, _o.fsencode({target!r}))\n"
                "del _o"
            )
        return len(files)

    # -- names E2B's file API cannot carry ----------------------------------------------
    @contextlib.asynccontextmanager
    async def _transfer_name(self, path: str) -> AsyncIterator[str]:
        """`path` itself, or, for E2B and a name that is not UTF-8, a hidden temporary
        hard link (a copy where links fail) with an ASCII name, removed afterwards."""
        if self.kind == "local" or not has_raw_bytes(path):
            yield path
            return
        temporary = f"{WORKDIR}/{TRANSFER_PREFIX}{uuid.uuid4().hex}"
        await self._code_in_sandbox(
            "import os as _o, shutil as _s\n"
            f"try:\n    _o.link(_o.fsencode({path!r}), {temporary!r})\n"
            f"except OSError:\n    _s.copyfile(_o.fsencode({path!r}), {temporary!r})\n"
            "del _o, _s"
        )
        try:
            yield temporary
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.sandbox.files.remove(temporary), CODE_FALLBACK_TIMEOUT)

    async def _code_in_sandbox(self, code: str) -> str:
        """Run a few lines of our own Python in the sandbox; its stdout, or SandboxError."""
        execution = await asyncio.wait_for(self.sandbox.run_code(code), CODE_FALLBACK_TIMEOUT)
        error = getattr(execution, "error", None)
        if error is not None:
            raise SandboxError(f"{error.name}: {error.value}")
        return "".join(execution.logs.stdout)

    async def _walk_in_sandbox(self, path: str) -> tuple[list[Any], bool]:
        """The listing `files.walk` gives, made by Python in the sandbox (names of any bytes)."""
        out = await self._code_in_sandbox(_WALK_CODE.replace("{args}", json.dumps([path, MAX_ENTRIES])))
        line = next((ln for ln in out.split("\n") if ln.startswith(_WALK_MARK)), None)
        if line is None:
            raise SandboxError("the in-sandbox listing printed nothing")
        rows, truncated = json.loads(line[len(_WALK_MARK) :])
        entries = [
            _ListedEntry(path=p, type=kind, size=int(size), modified_time=float(mtime), symlink_target=link)
            for p, kind, size, mtime, link in rows
        ]
        return entries, bool(truncated)


    async def download_all(
        self, dest_dir: Path, *, file_max: int = COPY_FILE_MAX, total_max: int = COPY_TOTAL_MAX
    ) -> CopyReport:
        """Copy every visible sandbox file to `dest_dir`, within the limits; what was and wasn't."""
        report = CopyReport()
        try:
            entries = await self.list_entries()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            report.error = f"the sandbox could not be listed ({_one_line(exc)})"
            return report
        report.listing_truncated = self.listing_truncated
        dest_dir = Path(dest_dir)
        total = 0
        for entry in entries:
            if entry.is_dir:
                continue
            if entry.is_link:
                report.skipped.append((entry.path, "a symbolic link; not followed"))
                continue
            if entry.size > file_max:
                report.skipped.append((entry.path, f"{_mb(entry.size)}, over the {_mb(file_max)} per-file copy limit"))
                continue
            if total + entry.size > total_max:
                report.skipped.append((entry.path, f"the run's {_mb(total_max)} copy limit was reached"))
                continue
            free = await asyncio.to_thread(_free_space, dest_dir)
            if free is not None and entry.size + FREE_MARGIN > free:
                report.skipped.append((entry.path, f"not enough free space in {dest_dir} ({_mb(free)} free)"))
                report.failed.append(entry.path)
                continue
            try:
                report.saved.append(await self.save_file(entry.path, dest_dir, file_max))
                total += entry.size
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                report.skipped.append((entry.path, _one_line(exc)))
                if not (isinstance(exc, SandboxError) and "copy limit" in str(exc)):  # grew past the cap: a limit
                    report.failed.append(entry.path)
        return report


async def _on_host(func: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """A host file operation in a thread; its OSError as HostWriteError (a write failure of ours)."""
    try:
        return await asyncio.to_thread(func, *args, **kw)
    except HostWriteError:
        raise
    except OSError as exc:
        raise HostWriteError(exc.errno, exc.strerror or str(exc)) from None


@dataclass(frozen=True)
class _ListedEntry:
    """An entry of the in-sandbox listing, with the EntryInfo fields `list_entries` reads."""

    path: str
    type: str
    size: int
    modified_time: float
    symlink_target: str | None = None


_WALK_MARK = "sbteam-walk:v1 "
# Lists like files.walk, by bytes (any name), printing one JSON line (ASCII: odd bytes as \udcXX).
_WALK_CODE = """
def _sbteam_walk(top, cap):
    import json, os, stat
    rows, cut = [], [False]
    def visit(folder):
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            return
        for name in names:
            if len(rows) >= cap:
                cut[0] = True
                return
            full = os.path.join(folder, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            link = os.fsdecode(os.readlink(full)) if stat.S_ISLNK(st.st_mode) else None
            kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
            rows.append([os.fsdecode(full), kind, st.st_size, st.st_mtime, link])
            if kind == "dir":
                visit(full)
    visit(os.fsencode(top))
    print("sbteam-walk:v1 " + json.dumps([rows, cut[0]]))
_sbteam_walk(*{args})
del _sbteam_walk
"""


def _mb(size: int) -> str:
    return f"{size / (1 << 20):,.1f} MB" if size < 1 << 30 else f"{size / (1 << 30):,.1f} GB"


def _one_line(exc: BaseException) -> str:
    """A host write error by its cause alone (the path is said next to it)."""
    if isinstance(exc, HostWriteError) and exc.strerror:
        return exc.strerror[:200]
    return one_line(exc)


def _free_space(folder: Path) -> int | None:
    """Free bytes on the filesystem that holds `folder` (or its nearest existing parent)."""
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None


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
