"""Sandbox paths ("/home/user/x", "x") made relative to /home/user, lexically.

The first gate for every path the model (or the UI) hands the local backend:
`..` past /home/user and absolute paths elsewhere are refused before anything
is touched. Symlinks are the second gate's job (`safefs.py`), which follows
them only inside the sandbox.

The refusal is `PathOutsideSandbox`, also the SDK's `InvalidArgumentException`
(what E2B raises). The SDK costs ~0.4 s to import, so that class is made on
first use (a refused path, or `paths.PathOutsideSandbox` looked up); the engine
raises it with `outside(…)` and catches its SDK-free base `OutsideSandbox`.
"""

from __future__ import annotations

import functools
import posixpath
from typing import Any

from .base import WORKDIR, SandboxError


class OutsideSandbox(SandboxError):
    """Base of `PathOutsideSandbox` that needs no SDK: what the engine catches."""


@functools.cache
def _path_outside_sandbox() -> type[OutsideSandbox]:
    from e2b.exceptions import InvalidArgumentException

    class PathOutsideSandbox(OutsideSandbox, InvalidArgumentException):
        """A path that would leave the sandbox folder (also an E2B InvalidArgumentException)."""

    PathOutsideSandbox.__module__ = __name__
    return PathOutsideSandbox


def outside(message: str) -> OutsideSandbox:
    """A `PathOutsideSandbox` to raise (the SDK is imported now, if it was not yet)."""
    return _path_outside_sandbox()(message)


def __getattr__(name: str) -> Any:
    if name == "PathOutsideSandbox":
        return _path_outside_sandbox()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def sandbox_relpath(path: str, workdir: str = WORKDIR) -> str:
    """The path relative to `workdir` ("" for workdir itself); raise if it leaves it.

    Purely lexical: relative paths resolve against `workdir` like a shell in it would.
    """
    if not isinstance(path, str) or "\x00" in path:
        raise outside(f"path {path!r} is not a valid path")
    text = path.strip() or "."
    full = posixpath.normpath(posixpath.join(workdir, text))
    if full == workdir:
        return ""
    if not full.startswith(workdir + "/"):
        raise outside(f"path {path!r} is outside the sandbox ({workdir})")
    return full[len(workdir) + 1 :]

