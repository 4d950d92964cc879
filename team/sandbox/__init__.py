"""Sandbox backends behind one interface (`Sandbox`), chosen by settings.

Backends are imported lazily: `e2b_code_interpreter` costs ~1 s to import
and `jupyter_client` ~0.35 s, and the app must paint before paying that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import WORKDIR, KernelRestarted, Sandbox, SandboxError

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["WORKDIR", "KernelRestarted", "Sandbox", "SandboxError", "create_sandbox"]


async def create_sandbox(settings: Settings) -> Sandbox:
    """Start the sandbox the settings ask for."""
    if settings.sandbox == "e2b":
        from .e2b import E2BSandbox

        # E2B counts a sandbox's life from creation, not idleness (default 300 s):
        # give it an hour, or twice the run limit, so long sessions don't expire.
        lifetime = int(max(3600, 2 * settings.timeout))
        return await E2BSandbox.create(api_key=settings.e2b_api_key, timeout=lifetime)
    from .local import LocalSandbox

    return await LocalSandbox.create(network=settings.network)
