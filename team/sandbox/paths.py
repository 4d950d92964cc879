"""Map sandbox paths ("/home/user/x", "x") to host paths and refuse everything else.

The local backend's files live in an ordinary host folder, so every path the
model (or the UI) hands us must be confined to it: `..`, absolute paths outside
/home/user and symlinks that resolve outside are refused before any byte is
read or written. Usable by any backend that mirrors a folder.
"""

from __future__ import annotations

import os
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


def resolve(root: str, path: str, workdir: str = WORKDIR) -> str:
    """The host path for sandbox `path` under host folder `root`, symlinks checked.

    Symlinks are resolved (for the part of the path that exists) and the result
    must still lie inside `root`, so a link the sandboxed code planted pointing at
    /etc or the host's home cannot be followed from outside the sandbox.
    """
    rel = sandbox_relpath(path, workdir)
    real_root = os.path.realpath(root)
    host = os.path.join(real_root, rel) if rel else real_root
    real = os.path.realpath(host)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise PathOutsideSandbox(f"path {path!r} is outside the sandbox ({workdir})")
    return host
