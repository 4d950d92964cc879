"""The user's own data: host files copied into the sandbox under /home/user/data/.

What the user picks (files, folders, globs; `examples` for the data sets that ship
with the app) is read on the host and streamed into the sandbox through its files
API, so it works the same for the local sandbox and for E2B. A picked path that
is a symlink is followed (the user chose it); inside a picked folder symlinks are
not followed (a folder can hold links to anywhere). Each file's sha256 goes in the
run record, so it says exactly what the data was (name, size, sha256); it is
computed after the copy (`fingerprint`), overlapping the description.

Limits: more than ASK_ABOVE bytes in one upload needs a yes from the user (the app
asks, the CLI wants `--yes`); more than REFUSE_ABOVE is refused with the reason;
at most MAX_FILES files.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import hashlib
import os
import posixpath
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .sandbox.base import WORKDIR

if TYPE_CHECKING:
    from .session import CodeSession

DATA_DIR = f"{WORKDIR}/data"
EXAMPLES = Path(__file__).resolve().parent / "data"
EXAMPLE_FILES = ("flowers.csv", "daily_sales.csv")
ASK_ABOVE = 500 << 20
REFUSE_ABOVE = 5 << 30
MAX_FILES = 10_000
CHUNK = 1 << 20

Progress = Callable[[int, int], None]  # (bytes copied so far, bytes in all)


class UploadError(ValueError):
    """One line saying why nothing was uploaded (missing path, too large, …)."""


@dataclass(frozen=True)
class HostFile:
    """A host file to upload and where it lands, relative to /home/user/data/."""

    source: Path
    name: str
    size: int
    walked: bool = False  # found inside a picked folder: a symlink there is never followed


@dataclass
class Plan:
    """What `collect` found: the files, their total size, what it left out and why."""

    files: list[HostFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def needs_consent(self) -> bool:
        return self.total > ASK_ABOVE


def collect(paths: Iterable[str | os.PathLike[str]], cwd: Path | None = None) -> Plan:
    """Expand what the user named into files to upload; UploadError for what cannot be.

    Raises on a name that matches nothing (one line naming it), on more than
    REFUSE_ABOVE bytes or MAX_FILES files in all.
    """
    plan = Plan()
    base = Path(cwd or Path.cwd())
    for raw in paths:
        text = os.fspath(raw)
        if text == "examples":
            for name in EXAMPLE_FILES:
                source = EXAMPLES / name
                plan.files.append(HostFile(source, name, source.stat().st_size))
            continue
        path = Path(os.path.expanduser(text))
        path = path if path.is_absolute() else base / path
        matches = [Path(p) for p in sorted(glob.glob(str(path)))] if glob.has_magic(str(path)) else [path]
        if not matches or not any(m.exists() for m in matches):
            raise UploadError(f"no such file or folder: {text}")
        for match in matches:
            _add(plan, match.resolve() if match.is_symlink() else match, match.name)
    if len(plan.files) > MAX_FILES:
        raise UploadError(f"{len(plan.files):,} files is more than the {MAX_FILES:,} one upload takes")
    if plan.total > REFUSE_ABOVE:
        raise UploadError(
            f"{_size(plan.total)} is more than the {_size(REFUSE_ABOVE)} one upload takes "
            "(the sandbox folder has a disk limit too): pick fewer or smaller files"
        )
    seen: set[str] = set()
    for item in plan.files:
        if item.name in seen:
            raise UploadError(f"two files would both land at data/{item.name}: rename one or upload its folder")
        seen.add(item.name)
    return plan


def _add(plan: Plan, path: Path, name: str) -> None:
    """A picked file, or a picked folder walked without following the links in it."""
    if path.is_file():
        plan.files.append(HostFile(path, name, path.stat().st_size))
        return
    if not path.is_dir():
        plan.skipped.append((name, "not a regular file or folder"))
        return
    for folder, dirs, files in os.walk(path, followlinks=False):
        rel_folder = Path(folder).relative_to(path)
        dirs.sort()
        for entry in sorted(files):
            full = Path(folder) / entry
            rel = posixpath.join(name, *rel_folder.parts, entry)
            if full.is_symlink():
                plan.skipped.append((rel, "a symbolic link inside the folder; not followed"))
            elif full.is_file():
                plan.files.append(HostFile(full, rel, full.stat().st_size, walked=True))
            else:
                plan.skipped.append((rel, "not a regular file"))
        for sub in list(dirs):
            if (Path(folder) / sub).is_symlink():
                plan.skipped.append((posixpath.join(name, *rel_folder.parts, sub), "a symbolic link; not followed"))


def _open_source(item: HostFile) -> tuple[int, os.stat_result]:
    """An fd of the host file to read, refused unless it is (still) a regular file.

    Opened non-blocking, so a file swapped for a FIFO after `collect` looked is refused
    instead of hanging; files found inside a picked folder are opened without following
    a symlink swapped in since (the user picked the folder, not where links in it lead).
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_NOFOLLOW if item.walked else 0)
    try:
        fd = os.open(item.source, flags)
    except OSError as exc:
        raise UploadError(f"{item.name}: {exc.strerror or exc} (it changed after it was picked)") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UploadError(f"{item.name}: not a regular file any more")
    os.set_blocking(fd, True)
    return fd, st


@dataclass
class Copied:
    """One file `copy_in` copied: its record entry ({path, size}; `fingerprint` adds
    sha256) and what identifies the host file it came from."""

    entry: dict[str, Any]
    item: HostFile
    identity: tuple[int, int, int, int]


async def copy_in(session: CodeSession, plan: Plan, progress: Progress | None = None) -> list[Copied]:
    """Copy the plan's files into /home/user/data/, one `Copied` per file.

    The local sandbox copies in the kernel (`copy_file_range`); E2B streams the file
    through its SDK. At most the size `collect` saw is copied (a file still being
    written cannot grow the upload); a failed copy leaves no partial file behind.
    """
    await session.initialize()
    files = session.sandbox.files
    done = [0]
    total = plan.total

    def advanced(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    out: list[Copied] = []
    for item in plan.files:
        fd, st = await asyncio.to_thread(_open_source, item)
        dest = f"{DATA_DIR}/{item.name}"
        reader = _Bounded(fd, item.size, advanced)
        try:
            if hasattr(files, "copy_from"):
                copied = await files.copy_from(dest, fd, item.size, advanced)
            else:
                await files.write(dest, reader)
                copied = reader.read_so_far
        except BaseException:
            if not hasattr(files, "copy_from") and reader.read_so_far:  # (copy_from cleans up itself)
                with contextlib.suppress(Exception):
                    await asyncio.shield(files.remove(dest))  # no partial file left behind
            raise
        finally:
            os.close(fd)
        out.append(Copied({"path": f"data/{item.name}", "size": copied}, item, _identity(st)))
    return out


class _Bounded:
    """A binary reader of an fd that stops after `size` bytes and reports progress."""

    def __init__(self, fd: int, size: int, advanced: Callable[[int], None]) -> None:
        self.fd, self.left, self.advanced, self.read_so_far = fd, size, advanced, 0

    def read(self, size: int = -1) -> bytes:
        chunk = os.read(self.fd, min(CHUNK if size is None or size < 0 else size, self.left)) if self.left else b""
        self.left -= len(chunk)
        self.read_so_far += len(chunk)
        if chunk:
            self.advanced(len(chunk))
        return chunk


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _sha256(item: HostFile, identity: tuple[int, int, int, int], size: int) -> str:
    """The sha256 of what was copied: the host file's first `size` bytes, if it is still
    the same file, unchanged; "" when it changed after the copy (nothing to vouch for)."""
    fd, st = _open_source(item)
    try:
        if _identity(st) != identity:
            return ""
        digest = hashlib.sha256()
        left = size
        while left:
            chunk = os.read(fd, min(CHUNK * 4, left))
            if not chunk:
                return ""
            digest.update(chunk)
            left -= len(chunk)
        return digest.hexdigest() if _identity(os.fstat(fd)) == identity else ""
    finally:
        os.close(fd)


async def fingerprint(copies: list[Copied]) -> None:
    """Add each copied file's sha256 (for the record) to its entry.

    Separate from the copy so the caller can let it overlap what comes next (the
    description of the data is computed in the sandbox meanwhile): hashing costs
    more than a kernel copy. Reads the host file again, checking it is the same file
    with the same size and mtime as when it was copied.
    """
    for copied in copies:
        entry = copied.entry
        try:
            entry["sha256"] = await asyncio.to_thread(_sha256, copied.item, copied.identity, entry["size"])
        except UploadError:
            entry["sha256"] = ""
        if not entry["sha256"]:
            entry["note"] = "changed on the host after it was copied: no sha256"


async def upload(session: CodeSession, plan: Plan, progress: Progress | None = None) -> list[dict[str, Any]]:
    """`copy_in` then `fingerprint`: [{path, size, sha256}] per file."""
    copies = await copy_in(session, plan, progress)
    await fingerprint(copies)
    return [c.entry for c in copies]


def _size(n: int) -> str:
    return f"{n / (1 << 30):.1f} GB" if n >= 1 << 30 else f"{n / (1 << 20):.1f} MB"


def pasted_paths(text: str, cwd: Path | None = None) -> list[str]:
    """The existing files a paste names ([] when it is ordinary text).

    Terminals paste a dropped file as its path: quoted, backslash-escaped or as a
    file:// URI, several separated by spaces or newlines. Only when every part is an
    existing path is it taken for paths.
    """
    import shlex
    from urllib.parse import unquote, urlparse

    text = text.strip()
    if not text or len(text) > 8192:
        return []
    try:
        parts = shlex.split(text) if "\n" not in text else [p.strip() for p in text.splitlines() if p.strip()]
    except ValueError:
        return []
    found = []
    base = Path(cwd or Path.cwd())
    for part in parts:
        if part.startswith("file://"):
            part = unquote(urlparse(part).path)
        path = Path(part).expanduser()
        path = path if path.is_absolute() else base / path
        if not (part.startswith(("/", "~", "./", "file:")) or "/" in part) or not path.exists():
            return []
        found.append(str(path))
    return found


# --- telling the agents what the data is -------------------------------------------------

DESCRIBE_MAX = 6_000  # characters of description at most


async def describe(session: CodeSession, paths: list[str]) -> list[dict[str, Any]]:
    """Facts about each data file, computed inside the sandbox with pandas (team/tables.py)."""
    from . import tables

    return await tables.describe(session.sandbox, paths)


TEXT = {
    "en": {
        "head": "The user's data is in /home/user/data/ (already uploaded; read it from there):",
        "table": "{path}: {rows:,} row{rs} × {cols} column{cs}{partial}",
        "partial": " (first 1,000,000 rows read)",
        "columns": "  columns: {columns}",
        "missing": "  missing values: {missing}",
        "no_missing": "  no missing values",
        "sample": "  first rows: {rows}",
        "sheets": "  sheets: {sheets}",
        "file": "{path}: {kind}, {size}",
        "error": "{path}: could not be read as a table ({error})",
    },
    "zh": {
        "head": "用户的数据在 /home/user/data/ 中(已上传,请从那里读取):",
        "table": "{path}: {rows:,} 行 × {cols} 列{partial}",
        "partial": "(只读取了前 1,000,000 行)",
        "columns": "  列: {columns}",
        "missing": "  缺失值: {missing}",
        "no_missing": "  没有缺失值",
        "sample": "  前几行: {rows}",
        "sheets": "  工作表: {sheets}",
        "file": "{path}: {kind}, {size}",
        "error": "{path}: 无法作为表格读取({error})",
    },
}


def description_text(items: list[dict[str, Any]], lang: str = "en") -> str:
    """The description the Planner's task carries, in the prompts' language, bounded."""
    t = TEXT.get(lang, TEXT["en"])
    lines = [t["head"]]
    for item in items:
        path = item.get("path", "?")
        if "error" in item:
            lines.append(t["error"].format(path=path, error=item["error"]))
            continue
        if item.get("kind") == "file" or "rows" not in item:
            lines.append(t["file"].format(path=path, kind=_kind_of(path), size=_human(item.get("size", 0))))
            continue
        cols = item.get("columns", [])
        rows = int(item["rows"])
        lines.append(t["table"].format(path=path, rows=rows, cols=len(cols), rs="" if rows == 1 else "s",
                                       cs="" if len(cols) == 1 else "s",
                                       partial=t["partial"] if item.get("partial") else ""))
        lines.append(t["columns"].format(columns=", ".join(f"{c} ({d})" for c, d in zip(cols, item.get("dtypes", []), strict=False))))
        missing = {c: n for c, n in zip(cols, item.get("missing", []), strict=False) if n}
        lines.append(t["missing"].format(missing=", ".join(f"{c}: {n}" for c, n in missing.items())) if missing else t["no_missing"])
        if item.get("sheets"):
            lines.append(t["sheets"].format(sheets=", ".join(item["sheets"])))
        sample = item.get("sample") or []
        if sample:
            lines.append(t["sample"].format(rows=" | ".join(", ".join(str(v)[:30] for v in row) for row in sample)))
    text = "\n".join(lines)
    return text if len(text) <= DESCRIBE_MAX else text[: DESCRIBE_MAX - 1] + "…"


def _kind_of(path: str) -> str:
    ext = posixpath.splitext(path)[1].lstrip(".").lower()
    return ext or "file"


def _human(n: int) -> str:
    from .filetypes import human_size

    return human_size(int(n))
