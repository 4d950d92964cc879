"""The seed's six tools, with the seed's names and parameters, and the registry that declares them.

A tool is one `ToolSpec` next to its async function (the registry:
team/tools/registry.py); importing this package registers the six in the seed's
order, the order the model sees them. A seventh tool is its function and one
`register(ToolSpec(...))` call in any module imported before the run starts
(README, "Extending"); the workbench, approval, the dialog and the guards follow.

Every tool returns a string for the model and never raises into the team: a
sandbox error, a bad path or a dead kernel becomes a "❌ …" line the model can
act on. Every tool is cancellation-safe: on `CancelledError` (force stop) it
interrupts the kernel and returns "⏹ cancelled" at once instead of hanging.

`SandboxTool` and `build_tools` (AutoGen's FunctionTool) load on first use, so
the registry can be read without importing AutoGen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .chart import CHART_TYPES, GENERATE_CHART, chart_code
from .code import INSTALL_PACKAGE, RUN_CODE, format_execution
from .context import (
    CANCELLED,
    CODE_TIMEOUT,
    IMAGE_SUFFIXES,
    MAX_LIVE_OUTPUT,
    MAX_READ_BYTES,
    MAX_READ_CHARS,
    MAX_TOOL_OUTPUT,
    STOPPED,
    Emit,
    ToolContext,
    trim,
)
from .files import LIST_FILES, READ_FILE, WRITE_FILE
from .registry import (
    NEEDS_APPROVAL,
    READ_ONLY,
    ToolSpec,
    editable_arg,
    editable_language,
    get,
    is_read_only,
    needs_approval,
    register,
    specs,
    tool_names,
    unregister,
)

#: The seed's six tools, in the seed's order.
SEED_TOOLS = (RUN_CODE, INSTALL_PACKAGE, LIST_FILES, READ_FILE, WRITE_FILE, GENERATE_CHART)
for _spec in SEED_TOOLS:
    register(_spec)

if TYPE_CHECKING:
    from .sandbox_tool import SandboxTool, build_tools

_LAZY = {"SandboxTool", "build_tools"}

__all__ = [
    "CANCELLED", "CHART_TYPES", "CODE_TIMEOUT", "IMAGE_SUFFIXES", "MAX_LIVE_OUTPUT", "MAX_READ_BYTES",
    "MAX_READ_CHARS", "MAX_TOOL_OUTPUT", "NEEDS_APPROVAL", "READ_ONLY", "SEED_TOOLS", "STOPPED", "Emit", "SandboxTool",
    "ToolContext", "ToolSpec", "build_tools", "chart_code", "editable_arg", "editable_language",
    "format_execution", "get", "is_read_only", "needs_approval", "register", "specs", "tool_names", "trim",
    "unregister",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import sandbox_tool

        return getattr(sandbox_tool, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
