"""Sandbox backends behind one interface (`Sandbox`), chosen by settings.

Backends are imported lazily (`from team.sandbox import LocalSandbox` works and
costs nothing until used): `e2b_code_interpreter` costs ~0.5-1 s to import and
`jupyter_client` ~0.35 s, and the app must paint before paying that. Starting
the local kernel imports neither the E2B SDK nor AutoGen
(tests/test_import_hygiene.py): the SDK's models come with the first `run_code`,
or earlier: the app imports them in its engine thread (tui/boot.py HEAVY_MODULES).

Modules: `base` (the interface); the kernel client, shared by every kernel-based
backend: `jupyter` (the Jupyter protocol), `kernel` (E2B's `run_code`, contexts
and interrupt over it), `cell` (one cell's run), `output` (E2B's result shapes,
bounded output); `local` (LocalSandbox = `local_kernel` launching each kernel,
under bubblewrap as `launcher` builds it with `limits`/`cgroups`, + that client
+ `files` over `safefs` + `commands`; `guest` is the code that runs inside);
`e2b` (E2BSandbox over the SDK, with `e2b_files`, `e2b_errors`, `e2b_gate`).
A third kernel-based backend subclasses `kernel.KernelBackend` and says only how
a kernel starts (see tests/test_kernel_backend.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import WORKDIR, KernelRestarted, Sandbox, SandboxError

if TYPE_CHECKING:
    from ..config import Settings
    from .e2b import E2BSandbox
    from .local import LocalSandbox

__all__ = [
    "WORKDIR",
    "E2BSandbox",
    "KernelRestarted",
    "LocalSandbox",
    "Sandbox",
    "SandboxError",
    "create_sandbox",
]


def __getattr__(name: str) -> Any:
    if name == "LocalSandbox":
        from .local import LocalSandbox

        return LocalSandbox
    if name == "E2BSandbox":
        from .e2b import E2BSandbox

        return E2BSandbox
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


async def create_sandbox(settings: Settings) -> Sandbox:
    """Start the sandbox the settings ask for: its kind's `start` (team/sandbox/kinds.py),
    whose module is imported only now (the E2B SDK only for an E2B sandbox)."""
    import importlib

    from .kinds import kind_named

    module, _, function = kind_named(settings.sandbox).start.partition(":")
    start = getattr(importlib.import_module(module), function)
    return await start(settings)
