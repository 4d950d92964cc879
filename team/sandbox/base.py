"""The one async sandbox interface both backends implement.

It is the E2B `AsyncSandbox` surface (so code written for E2B works unchanged)
plus the few things the app needs that E2B spells differently or not at all:
`kind`, `isolation`, `interrupt()` (stop a running cell without losing state)
and `install_package()` (pip with a long timeout and a requirement check).
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # the SDK costs ~0.35 s to import: only where code runs, not to start a kernel
    from e2b_code_interpreter.models import Execution, ExecutionError, OutputMessage, Result

OutputHandler = Callable[["OutputMessage"], Awaitable[Any] | Any]
ResultHandler = Callable[["Result"], Awaitable[Any] | Any]
ErrorHandler = Callable[["ExecutionError"], Awaitable[Any] | Any]

WORKDIR = "/home/user"


class SandboxError(RuntimeError):
    """A sandbox failure with a message fit to show a user in one line."""


class KernelRestarted(SandboxError):
    """The kernel died (os._exit, segfault, OOM); a fresh one replaced it and state was lost."""


@runtime_checkable
class Files(Protocol):
    async def read(self, path: str, format: str = "text", **kw: Any) -> Any: ...
    async def write(self, path: str, data: Any, **kw: Any) -> Any: ...
    async def list(self, path: str, depth: int | None = 1, **kw: Any) -> list[Any]: ...
    async def exists(self, path: str, **kw: Any) -> bool: ...
    async def remove(self, path: str, **kw: Any) -> None: ...
    async def make_dir(self, path: str, **kw: Any) -> bool: ...
    async def read_head(self, path: str, max_bytes: int) -> tuple[bytes, int]:
        """(at most `max_bytes` from the start, the real size): never the whole file."""
    async def walk(self, path: str, max_entries: int) -> tuple[builtins.list[Any], bool]:
        """(entries of the whole tree, truncated): no depth limit, a count limit."""


@runtime_checkable
class Sandbox(Protocol):
    """What `CodeSession` and the tools rely on."""

    kind: str  # "local" | "e2b"
    isolation: str  # "bwrap" | "none" | "e2b"

    @property
    def files(self) -> Files: ...  # read-only here, so each backend's own Files class fits

    async def run_code(
        self,
        code: str,
        *,
        on_stdout: OutputHandler | None = None,
        on_stderr: OutputHandler | None = None,
        on_result: ResultHandler | None = None,
        on_error: ErrorHandler | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Execution: ...

    async def interrupt(self) -> None:
        """Stop the running cell (if any); the kernel keeps its state."""

    async def install_package(self, package_name: str, timeout: float = 600) -> tuple[bool, str]:
        """pip-install one requirement; returns (ok, output). Refuses invalid requirements."""

    async def is_running(self) -> bool: ...

    async def kill(self) -> None: ...
