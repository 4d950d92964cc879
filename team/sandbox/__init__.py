"""Sandbox backends behind one interface (`Sandbox`), chosen by settings.

Backends are imported lazily (`from team.sandbox import LocalSandbox` works and
costs nothing until used): `e2b_code_interpreter` costs ~1 s to import and
`jupyter_client` ~0.35 s, and the app must paint before paying that.

Modules: `base` (the interface), `local` (LocalSandbox: `launcher` starts its
processes under bubblewrap with `limits`/`cgroups`, `kernel` speaks Jupyter,
`files` over `safefs` serves its files, `commands` runs shell commands, `guest`
is the code that runs inside), `e2b` (E2BSandbox over the SDK).
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
    """Start the sandbox the settings ask for."""
    if settings.sandbox == "e2b":
        from .e2b import E2BSandbox

        # E2B counts a sandbox's life from creation, not idleness (default 300 s):
        # give it an hour, or twice the run limit, so long sessions don't expire.
        lifetime = int(max(3600, 2 * settings.timeout))
        return await E2BSandbox.create(api_key=settings.e2b_api_key, timeout=lifetime)
    from .local import LocalSandbox

    return await LocalSandbox.create(network=settings.network, limits=settings.limits)
