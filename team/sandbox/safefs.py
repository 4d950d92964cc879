"""Host-side access to the sandbox folder that never follows a path the sandbox can change.

The sandbox folder is an ordinary host folder that hostile code writes into
while we read it: any "resolve, check, then open" by path can be raced (a file
swapped for a symlink to `~/.ssh/id_rsa` between the check and the open, or a
folder swapped with `renameat2(RENAME_EXCHANGE)`). So every operation here
starts from a directory fd of the sandbox root, opened once, and walks one
component at a time with `O_NOFOLLOW` opens relative to the previous fd
(`dir_fd=`). Symlinks are resolved *by us*, inside the sandbox's own path
space, the way the sandbox itself would see them: `/home/user/x` and relative
targets are followed within the folder, anything else (`/etc/shadow`, `../..`)
is refused. The fd we end on can only be inside the folder: the sandbox cannot
move a file out of its mount (EXDEV), and we never go through a name twice.

Sizes are taken from the opened fd (`fstat`), reads are bounded by the caller's
limit, non-regular files (FIFOs, sockets) are refused before any read or write
blocks on them, and listing walks without a depth limit but with a count limit.

One module (~600 lines) on purpose: it is one security boundary, and every
operation (read, write, list, remove, rename, copy out) is a short use of the
same walk (`_resolve`) under the same fd discipline. Kept together, the whole
boundary is reviewed in one read; split, a new operation could start from a
path instead of the walk without anyone noticing.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .base import WORKDIR
from .paths import OutsideSandbox, outside, sandbox_relpath

MAX_LINKS = 40
XATTR_PREFIX = "user.e2b."  # E2B's file metadata lives in these extended attributes
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
CHUNK = 1 << 20
COPY_STEP = 8 << 20  # bytes one kernel copy call moves (progress is reported between them)


class NotRegularFile(OSError):
    """A FIFO, socket or device where a file was expected: never opened for real."""


@dataclass(frozen=True)
class Entry:
    """What the host may know of one sandbox path (all taken without following out)."""

    rel: str  # path relative to the sandbox folder, "" for the folder itself
    kind: str  # "file" | "dir" | "other" (FIFO, socket, …); a symlink's is its target's ("file" if outside)
    size: int  # of the entry itself (lstat): a symlink's is its text's length, never its target's
    mode: int  # st_mode of the entry itself (lstat)
    mtime: float
    uid: int
    gid: int
    link_target: str | None = None  # a symlink's target: resolved sandbox path if inside, else its text
    blocks: int = 0  # st_blocks * 512: what it really takes on disk (sparse files)
    metadata: dict[str, str] | None = None  # E2B's file metadata (user.e2b.* xattrs), when asked for

    @property
    def sandbox_path(self) -> str:
        return f"{WORKDIR}/{self.rel}" if self.rel else WORKDIR


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    return "other"


def _split(rel: str) -> list[str]:
    return [p for p in rel.split("/") if p not in ("", ".")]


class SandboxFS:
    """fd-relative, no-follow file operations inside one sandbox folder.

    Methods are synchronous (call them from a worker thread); every fd they open
    is closed before they return, except the root fd, closed by `close()`.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self._root_fd = os.open(root, _DIR_FLAGS)
        self._with_metadata = False

    def close(self) -> None:
        fd, self._root_fd = self._root_fd, -1
        if fd >= 0:
            os.close(fd)

    # ---- resolution -------------------------------------------------------------

    def _resolve(self, rel: str, *, follow_last: bool, make_parents: bool = False) -> tuple[int, str]:
        """(fd of the folder holding the last component, its name); name "" = the root.

        The caller closes the fd. Symlinks along the way are followed inside the
        sandbox only; the last one too when `follow_last`. `make_parents` creates
        missing folders on the way (for write and make_dir).
        """
        fd, name, _folder = self._resolve_full(rel, follow_last=follow_last, make_parents=make_parents)
        return fd, name

    def _resolve_full(
        self, rel: str, *, follow_last: bool, make_parents: bool = False
    ) -> tuple[int, str, list[str]]:
        """`_resolve`, plus the resolved folder's path (components from the root)."""
        stack = [os.dup(self._root_fd)]
        names: list[str] = []  # the folder path of stack[-1], kept in step with the stack
        parts = _split(rel)
        links = 0
        try:
            while parts:
                name = parts.pop(0)
                if name == "..":
                    if len(stack) == 1:
                        raise outside(f"a symbolic link in {rel!r} points outside the sandbox ({WORKDIR})")
                    os.close(stack.pop())
                    names.pop()
                    continue
                last = not parts
                if last and not follow_last:
                    return self._keep_top(stack), name, names
                try:
                    st = os.stat(name, dir_fd=stack[-1], follow_symlinks=False)
                except FileNotFoundError:
                    if last:
                        return self._keep_top(stack), name, names
                    if not make_parents:
                        raise
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, 0o755, dir_fd=stack[-1])
                    st = os.stat(name, dir_fd=stack[-1], follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    links += 1
                    if links > MAX_LINKS:
                        raise OSError(errno.ELOOP, f"too many levels of symbolic links in {rel!r}")
                    target = os.readlink(name, dir_fd=stack[-1])
                    if target.startswith("/"):
                        # A sandbox-absolute target: only /home/user/... is inside.
                        inner = sandbox_relpath(target)
                        while len(stack) > 1:
                            os.close(stack.pop())
                        names.clear()
                        parts = _split(inner) + parts
                    else:
                        parts = _split(target) + parts
                    continue
                if last:
                    return self._keep_top(stack), name, names
                if not stat.S_ISDIR(st.st_mode):
                    raise NotADirectoryError(errno.ENOTDIR, f"{name!r} in {rel!r} is not a folder")
                stack.append(os.open(name, _DIR_FLAGS, dir_fd=stack[-1]))
                names.append(name)
            return self._keep_top(stack), "", names
        except BaseException:
            for fd in stack:
                os.close(fd)
            raise

    @staticmethod
    def _keep_top(stack: list[int]) -> int:
        top = stack.pop()
        for fd in stack:
            os.close(fd)
        stack.clear()
        return top

    def _open(self, rel: str, flags: int, *, make_parents: bool = False, mode: int = 0o644) -> int:
        """Open the (link-resolved) path; the result is never a symlink's target outside."""
        for _attempt in range(MAX_LINKS):
            parent, name = self._resolve(rel, follow_last=True, make_parents=make_parents)
            try:
                if name == "":
                    return os.open(".", flags & ~(os.O_CREAT | os.O_WRONLY) | os.O_DIRECTORY, dir_fd=parent)
                return os.open(name, flags, mode, dir_fd=parent)
            except OSError as exc:
                # ELOOP: it became a symlink after we looked; resolve again.
                if exc.errno != errno.ELOOP:
                    raise
            finally:
                os.close(parent)
        raise OSError(errno.ELOOP, f"{rel!r} keeps changing into a symbolic link")

    # ---- reading ----------------------------------------------------------------

    def open_file(self, rel: str) -> tuple[int, os.stat_result]:
        """An fd for reading a regular file and its fstat; the caller closes the fd."""
        fd = self._open(rel, _READ_FLAGS)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, f"{rel or '.'!r} is a directory")
            raise NotRegularFile(errno.EINVAL, f"{rel!r} is not a regular file")
        os.set_blocking(fd, True)
        return fd, st

    def read(self, rel: str, max_bytes: int | None = None) -> tuple[bytes, int]:
        """(the first `max_bytes` bytes, the file's size when opened).

        Never more than that size: a file the sandbox keeps appending to cannot
        make the host read on and on.
        """
        fd, st = self.open_file(rel)
        try:
            want = st.st_size if max_bytes is None else min(st.st_size, max_bytes)
            return _read_fd(fd, want), st.st_size
        finally:
            os.close(fd)

    def iter_file(self, rel: str, max_bytes: int | None = None) -> Iterator[bytes]:
        """The file's bytes in chunks, stopping after `max_bytes`."""
        fd, _st = self.open_file(rel)
        try:
            left = max_bytes
            while left is None or left > 0:
                chunk = os.read(fd, CHUNK if left is None else min(CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            os.close(fd)

    # ---- writing ----------------------------------------------------------------

    def write(self, rel: str, chunks: Iterable[bytes], metadata: dict[str, str] | None = None) -> int:
        """Create or replace a regular file's content (parents created); bytes written.

        `metadata` replaces the file's E2B metadata (`user.e2b.*` xattrs); an
        overwrite without it clears what was there, as E2B does.
        """
        fd = self._open_for_write(rel)
        try:
            total = 0
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                    total += written
            _set_xattrs(fd, metadata)
            return total
        finally:
            os.close(fd)

    def copy_from(self, rel: str, source_fd: int, size: int, advanced: Callable[[int], None] | None = None) -> int:
        """Copy at most `size` bytes of an open host file into `rel`, in the kernel.

        For uploads: `copy_file_range` (or `sendfile`) moves the bytes without
        bringing them through Python; a source that grows while it is copied stops
        at `size`. `advanced(n)` is told after each step. Returns the bytes copied.
        """
        fd = self._open_for_write(rel)
        try:
            return _copy_fd(source_fd, fd, size, advanced)
        except BaseException:
            self._unlink_file(rel)  # no partial file for the agents to mistake for the data
            raise
        finally:
            os.close(fd)

    def _unlink_file(self, rel: str) -> None:
        """Remove the file `rel` leads to (never a folder: unlink refuses those)."""
        with contextlib.suppress(OSError):
            parent, name = self._resolve(rel, follow_last=True)
            try:
                os.unlink(name, dir_fd=parent)
            finally:
                os.close(parent)

    def _open_for_write(self, rel: str) -> int:
        """An fd of a regular file at `rel`, created (with its parents) or truncated."""
        if not _split(rel):
            raise IsADirectoryError(errno.EISDIR, f"{WORKDIR} is a directory")
        fd = self._open(rel, _WRITE_FLAGS, make_parents=True)
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, f"{rel!r} is a directory")
            if not stat.S_ISREG(st.st_mode):
                raise NotRegularFile(errno.EINVAL, f"{rel!r} is not a regular file")
            os.set_blocking(fd, True)
            os.ftruncate(fd, 0)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def make_dir(self, rel: str) -> bool:
        """Create a folder and its parents; False if it already existed."""
        parts = _split(rel)
        if not parts:
            return False
        parent, name = self._resolve(rel, follow_last=True, make_parents=True)
        try:
            try:
                os.mkdir(name, 0o755, dir_fd=parent)
                return True
            except FileExistsError:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    return False
                raise
        finally:
            os.close(parent)

    def remove(self, rel: str) -> bool:
        """Remove a file, a symlink (itself, never its target) or a folder tree."""
        if not _split(rel):
            raise outside(f"cannot remove the sandbox folder ({WORKDIR})")
        try:
            parent, name = self._resolve(rel, follow_last=False)
        except FileNotFoundError:
            return False
        try:
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                return False
            if stat.S_ISDIR(st.st_mode):
                # rmtree with dir_fd walks by fd and never follows symlinks (3.11+).
                shutil.rmtree(name, dir_fd=parent)
            else:
                os.unlink(name, dir_fd=parent)
            return True
        finally:
            os.close(parent)

    def rename(self, old: str, new: str) -> None:
        """Move `old` to `new` (both inside); the target's missing parent folders are made."""
        if not _split(old) or not _split(new):
            raise outside(f"cannot move the sandbox folder ({WORKDIR})")
        src, src_name = self._resolve(old, follow_last=False)
        try:
            dst, dst_name = self._resolve(new, follow_last=False, make_parents=True)
            try:
                os.stat(src_name, dir_fd=src, follow_symlinks=False)  # FileNotFoundError first
                os.rename(src_name, dst_name, src_dir_fd=src, dst_dir_fd=dst)
            finally:
                os.close(dst)
        finally:
            os.close(src)

    # ---- metadata ---------------------------------------------------------------

    def entry(self, rel: str, *, metadata: bool = False) -> Entry:
        """Metadata of one path (see `_entry_of`); `metadata` also reads E2B's xattrs."""
        parent, name = self._resolve(rel, follow_last=False)
        try:
            if name == "":
                return self._entry_of("", os.fstat(parent), None, parent if metadata else None, "")
            lst = os.stat(name, dir_fd=parent, follow_symlinks=False)
            target = os.readlink(name, dir_fd=parent) if stat.S_ISLNK(lst.st_mode) else None
            return self._entry_of(_join(*_split(rel)), lst, target, parent if metadata else None, name)
        finally:
            os.close(parent)

    def _entry_of(
        self, rel: str, lst: os.stat_result, target: str | None, parent: int | None = None, name: str = ""
    ) -> Entry:
        """An Entry as E2B's envd reports it: for a symlink, its own size and mode with
        its target's kind and resolved path, but only when the target is inside.

        A link pointing out of the sandbox (or nowhere) is a "file" with its own
        text as target: the host never stats a path outside, so a link cannot
        reveal whether a host file exists or how large it is.
        """
        kind = _kind(lst.st_mode)
        blocks = getattr(lst, "st_blocks", 0) * 512
        if target is not None:
            resolved = self._target(rel)
            kind, blocks = "file", 0
            if resolved is not None:
                target = resolved[0]
                kind = _kind(resolved[1].st_mode)
        metadata = self._xattrs(parent, name, lst) if parent is not None else None
        return Entry(
            rel=rel,
            kind=kind,
            size=lst.st_size,
            mode=lst.st_mode,
            mtime=lst.st_mtime,
            uid=lst.st_uid,
            gid=lst.st_gid,
            link_target=target,
            blocks=blocks,
            metadata=metadata,
        )

    @staticmethod
    def _xattrs(parent: int, name: str, lst: os.stat_result) -> dict[str, str] | None:
        """E2B's metadata: the entry's `user.e2b.*` extended attributes (not of symlinks)."""
        if not (stat.S_ISREG(lst.st_mode) or stat.S_ISDIR(lst.st_mode)):
            return None
        try:
            fd = os.open(name or ".", _READ_FLAGS, dir_fd=parent)
        except OSError:
            return None
        try:
            if not os.path.samestat(os.fstat(fd), lst):  # swapped meanwhile: say nothing
                return None
            found = {
                key[len(XATTR_PREFIX) :]: os.getxattr(fd, key).decode("utf-8", "replace")
                for key in os.listxattr(fd)
                if key.startswith(XATTR_PREFIX)
            }
        except OSError:
            return None
        finally:
            os.close(fd)
        return found or None

    def _target(self, rel: str) -> tuple[str, os.stat_result] | None:
        """A symlink's resolved sandbox path and stat, only if it resolves inside the sandbox."""
        try:
            parent, name, folder = self._resolve_full(rel, follow_last=True)
        except (OSError, OutsideSandbox):
            return None
        try:
            st = os.fstat(parent) if name == "" else os.stat(name, dir_fd=parent, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                return None
            path = _join(*folder, name)
            return (f"{WORKDIR}/{path}" if path else WORKDIR), st
        except OSError:
            return None
        finally:
            os.close(parent)

    def exists(self, rel: str) -> bool:
        try:
            parent, name = self._resolve(rel, follow_last=False)
        except (FileNotFoundError, NotADirectoryError):
            return False
        try:
            if name == "":
                return True
            os.stat(name, dir_fd=parent, follow_symlinks=False)
            return True
        except FileNotFoundError:
            return False
        finally:
            os.close(parent)

    def list(
        self, rel: str, depth: int | None, max_entries: int, *, metadata: bool = False
    ) -> tuple[builtins.list[Entry], bool]:
        """Entries under a folder, parents before children in name order; (entries, truncated).

        `depth` None walks the whole tree. Symlinked folders are listed, never entered.
        """
        fd = self._open(rel, _DIR_FLAGS)
        base = _join(*_split(rel))
        out: builtins.list[Entry] = []
        self._with_metadata = metadata
        try:
            truncated = self._walk(fd, base, 1, depth, max_entries, out)
        finally:
            os.close(fd)
        return out, truncated

    def _walk(self, fd: int, base: str, level: int, depth: int | None, cap: int, out: builtins.list[Entry]) -> bool:
        try:
            names = sorted(os.listdir(fd))
        except OSError:
            return False
        for name in names:
            if len(out) >= cap:
                return True
            child = _join(base, name)
            try:
                lst = os.stat(name, dir_fd=fd, follow_symlinks=False)
                target = os.readlink(name, dir_fd=fd) if stat.S_ISLNK(lst.st_mode) else None
            except OSError:
                continue
            out.append(self._entry_of(child, lst, target, fd if self._with_metadata else None, name))
            if stat.S_ISDIR(lst.st_mode) and (depth is None or level < depth):
                try:
                    sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue
                try:
                    if self._walk(sub, child, level + 1, depth, cap, out):
                        return True
                finally:
                    os.close(sub)
        return False

    def usage(self, max_entries: int = 200_000) -> tuple[int, int, bool]:
        """(bytes really used on disk, entries seen, stopped at the cap) for the whole folder."""
        total = seen = 0
        stack = [os.dup(self._root_fd)]
        try:
            while stack:
                fd = stack.pop()
                try:
                    with os.scandir(fd) as it:
                        for item in it:
                            seen += 1
                            if seen > max_entries:
                                return total, seen, True
                            try:
                                st = item.stat(follow_symlinks=False)
                            except OSError:
                                continue
                            total += getattr(st, "st_blocks", 0) * 512
                            if stat.S_ISDIR(st.st_mode):
                                with contextlib.suppress(OSError):
                                    stack.append(os.open(item.name, _DIR_FLAGS, dir_fd=fd))
                except OSError:
                    pass
                finally:
                    os.close(fd)
        finally:
            for fd in stack:
                os.close(fd)
        return total, seen, False


def _set_xattrs(fd: int, metadata: dict[str, str] | None) -> None:
    """Replace the file's `user.e2b.*` attributes with `metadata` (keys lowercased, as envd)."""
    try:
        for key in os.listxattr(fd):
            if key.startswith(XATTR_PREFIX):
                os.removexattr(fd, key)
    except OSError:
        if not metadata:
            return  # a filesystem without user xattrs: nothing to clear
        raise
    for key, value in (metadata or {}).items():
        os.setxattr(fd, XATTR_PREFIX + key.lower(), value.encode())


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def _read_fd(fd: int, want: int) -> bytes:
    """Read up to `want` bytes (fewer if the file shrank meanwhile)."""
    chunks = []
    left = want
    while left > 0:
        chunk = os.read(fd, min(CHUNK, left))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _copy_fd(source_fd: int, fd: int, size: int, advanced: Callable[[int], None] | None) -> int:
    """At most `size` bytes from `source_fd` to `fd`; in the kernel where it can."""
    total = 0
    copy = _kernel_copy
    while total < size:
        step = min(COPY_STEP, size - total)
        try:
            moved = copy(source_fd, fd, step)
        except OSError as exc:
            if copy is _read_write or exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            copy = _read_write  # filesystems the kernel cannot copy between
            continue
        if moved == 0:
            break  # the source shrank
        total += moved
        if advanced is not None:
            advanced(moved)
    return total


def _kernel_copy(source: int, dest: int, count: int) -> int:
    return os.copy_file_range(source, dest, count) if hasattr(os, "copy_file_range") else os.sendfile(dest, source, None, count)


def _read_write(source: int, dest: int, count: int) -> int:
    chunk = os.read(source, min(count, CHUNK))
    view = memoryview(chunk)
    while view:
        view = view[os.write(dest, view):]
    return len(chunk)
