"""The tool registry: one `ToolSpec` per tool is the only place a tool is declared.

Everything that treats tools differently reads it instead of keeping a list of
its own: the agents' workbenches (`build_tools`, team/swarm.py), approval mode
(which calls wait for the user), the file scan skipped after a read-only tool,
the written-tool-call guard (the tools an agent is offered), the approval
dialog (tui/screens/approval.py) and the terminal approver (team/headless.py).

Importing it needs neither AutoGen nor Textual: the app reads it while it paints.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator, Set
from dataclasses import dataclass
from typing import Any

CODE_AGENT = "CodeAgent"
ANALYST = "AnalystAgent"

#: `async def tool(ctx: ToolContext, <the tool's own parameters>) -> str`
ToolFunc = Callable[..., Awaitable[str]]


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its function and how the run, the approval and the UI treat it.

    `func` is the async implementation: its first parameter receives the
    `ToolContext` (session, event sink, stop flags) and the rest are the tool's
    parameters, whose names, type hints and defaults become the JSON schema
    the model sees, next to `description`. It returns a string for the model
    and never raises on purpose (an error is a "❌ …" line the model can act on).
    """

    name: str
    func: ToolFunc
    needs_approval: bool = False  # approval mode asks the user before it runs
    read_only: bool = False  # changes no file: the sandbox is not scanned after it
    editable_arg: str = ""  # the argument an approver may edit ("" = none)
    description: str = ""  # what the model is told the tool does
    agents: tuple[str, ...] = (CODE_AGENT,)  # whose workbench offers it
    editable_language: str = "text"  # its Pygments lexer in the dialog; "" = by file_path's extension

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"tool name {self.name!r} is not an identifier")
        if not inspect.iscoroutinefunction(self.func):
            raise TypeError(f"{self.name}: func must be an async function")
        if not self.description.strip():
            raise ValueError(f"{self.name}: a description is required (it is what the model sees)")
        params = list(inspect.signature(self.func).parameters)
        if not params:
            raise TypeError(f"{self.name}: func must take the ToolContext as its first parameter")
        if self.editable_arg and self.editable_arg not in params[1:]:
            raise ValueError(f"{self.name}: editable_arg {self.editable_arg!r} is not one of its parameters")


_TOOLS: dict[str, ToolSpec] = {}


def register(spec: ToolSpec) -> ToolSpec:
    """Add a tool (after the ones already there: the order is the order the model sees)."""
    known = _TOOLS.get(spec.name)
    if known is not None and known != spec:
        raise ValueError(f"a different tool named {spec.name!r} is already registered")
    _TOOLS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a tool (tests, or a plug-in that withdraws one); unknown names are ignored."""
    _TOOLS.pop(name, None)


def get(name: str) -> ToolSpec | None:
    return _TOOLS.get(name)


def specs(agent: str | None = None) -> tuple[ToolSpec, ...]:
    """The registered tools in order; only those `agent` is offered when given."""
    return tuple(s for s in _TOOLS.values() if agent is None or agent in s.agents)


def tool_names(agent: str | None = None) -> tuple[str, ...]:
    return tuple(s.name for s in specs(agent))


def needs_approval(name: str) -> bool:
    spec = _TOOLS.get(name)
    return spec is not None and spec.needs_approval


def is_read_only(name: str) -> bool:
    spec = _TOOLS.get(name)
    return spec is not None and spec.read_only


def editable_arg(name: str) -> str:
    """The argument an approver may edit, or "" (unknown tool, or nothing to edit)."""
    spec = _TOOLS.get(name)
    return spec.editable_arg if spec is not None else ""


def editable_language(name: str) -> str:
    spec = _TOOLS.get(name)
    return spec.editable_language if spec is not None else "json"


class ToolNames(Set[str]):
    """A live, read-only set of the names of the tools that match a rule.

    Kept for code that tests membership (`name in NEEDS_APPROVAL`): it follows
    the registry, so a tool registered later is in it too.
    """

    def __init__(self, rule: Callable[[ToolSpec], bool]) -> None:
        self._rule = rule

    def _names(self) -> list[str]:
        return [s.name for s in _TOOLS.values() if self._rule(s)]

    def __contains__(self, name: Any) -> bool:
        spec = _TOOLS.get(name) if isinstance(name, str) else None
        return spec is not None and self._rule(spec)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return f"ToolNames({self._names()!r})"


NEEDS_APPROVAL = ToolNames(lambda s: s.needs_approval)
READ_ONLY = ToolNames(lambda s: s.read_only)
