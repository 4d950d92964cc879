"""Sandbox paths ("/home/user/x", "x") made relative to /home/user, lexically.

The first gate for every path the model (or the UI) hands the local backend:
`..` past /home/user and absolute paths elsewhere are refused before anything
is touched. Symlinks are the second gate's job (`safefs.py`), which follows
them only inside the sandbox.
"""

from __future__ import annotations

import posixpath

from e2b.exceptions import InvalidArgumentException

from .base import WORKDIR, SandboxError


class PathOutsideSandbox(SandboxError, InvalidArgumentException):
    """A path that would leave the sandbox folder (also an E2B InvalidArgumentException)."""


def sandbox_relpath(path: str, workdir: str = WORKDIR) -> str:
    """The path relative to `workdir` ("" for workdir itself); raise if it leaves it.

    Purely lexical: relative paths resolve against `workdir` like a shell in it would.
    """
    if not isinstance(path, str) or "\x00" in path:
        raise PathOutsideSandbox(f"path {path!r} is not a valid path")
    text = path.strip() or "."
    full = posixpath.normpath(posixpath.join(workdir, text))
    if full == workdir:
        return ""
    if not full.startswith(workdir + "/"):
        raise PathOutsideSandbox(f"path {path!r} is outside the sandbox ({workdir})")
    return full[len(workdir) + 1 :]


def to_sandbox_path(rel: str, workdir: str = WORKDIR) -> str:
    """The sandbox-side absolute path for a path relative to the sandbox folder."""
    return f"{workdir}/{rel}" if rel else workdir
