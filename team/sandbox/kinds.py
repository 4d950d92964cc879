"""The sandbox kinds in one place: the names settings and every command line accept, and
the facts about each kind that other modules would otherwise spell out themselves.

A third backend (Docker, say) is one more `SandboxKind` here plus its module beside
`local.py` and `e2b.py` with an `async def start(settings)`: `create_sandbox`,
`SBTEAM_SANDBOX`'s check and default, the `--sandbox` choices of every command, the status
bar's NOT ISOLATED rule and batch's concurrency cap follow. A kernel-based backend reuses
the Jupyter client (`jupyter.py`) and E2B's `run_code` semantics (`kernel.KernelBackend`),
as `tests/test_kernel_backend.py` shows.

Cheap to import on purpose (no backend, no SDK): the argument parsers and the status bar
read it before anything heavy is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxKind:
    """One backend, as the rest of the app needs to know it."""

    name: str  # the value of SBTEAM_SANDBOX / --sandbox
    summary: str  # one line for help texts, .env.example and the README
    isolations: Mapping[str, bool]  # what `Sandbox.isolation` may say -> is the code isolated then
    key: str | None = None  # the variable it cannot start without; when set, this kind is the default
    key_from: str = ""  # where to get that key
    on_host: bool = False  # runs on this machine: runs at once are capped by its CPUs
    start: str = ""  # "module:function", an `async (Settings) -> Sandbox` imported on first use


KINDS: tuple[SandboxKind, ...] = (
    SandboxKind(
        "local",
        "an IPython kernel on this machine, isolated with bubblewrap on Linux",
        isolations={"bwrap": True, "none": False},
        on_host=True,
        start="team.sandbox.local:start",
    ),
    SandboxKind(
        "e2b",
        "an E2B cloud sandbox",
        isolations={"e2b": True},
        key="E2B_API_KEY",
        key_from="e2b.dev",
        start="team.sandbox.e2b:start",
    ),
)
SANDBOX_KINDS: tuple[str, ...] = tuple(kind.name for kind in KINDS)  # argparse `choices=`
FALLBACK = "local"  # the kind when no kind's key is set


def kind_named(name: str) -> SandboxKind:
    """The kind called `name`; KeyError for an unknown one."""
    for kind in KINDS:
        if kind.name == name:
            return kind
    raise KeyError(name)


def default_kind(env: Mapping[str, str | None]) -> str:
    """The first kind whose key is set (`e2b` with E2B_API_KEY), else `local`."""
    return next((kind.name for kind in KINDS if kind.key and env.get(kind.key)), FALLBACK)


def is_unisolated(isolation: str) -> bool:
    """True when a sandbox says its code runs with the user's own rights (the red
    NOT ISOLATED badge); False for an isolated one and for "unknown" or "starting…"."""
    return any(kind.isolations.get(isolation) is False for kind in KINDS)
