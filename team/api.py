"""The contract between the engine and whoever drives it (the TUI, headless `run`, `batch`,
`eval`, the tests' fake controller).

Why a Protocol and not a base class: the fake controller in the tests and the real
`RunController` share no code, only this surface; a Protocol lets a type checker hold both
to it without an import of the engine's heavy parts (AutoGen, E2B) from the app.

Run state is *told*, not guessed: the controller emits `events.RunStateChanged` on every
transition of `RunState`, and the app renders that. End reasons are an enum (`EndReason`),
never English text matched by substring. Both are `StrEnum`s so a record written before
they existed (plain strings in `events.jsonl`) reads back equal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .events import Event


class RunState(StrEnum):
    """Where the controller is in a run's life-cycle (one turn at a time)."""

    IDLE = "idle"  # no run yet (or after a new task cleared it)
    STARTING = "starting"  # launched; the sandbox and team are being readied
    RUNNING = "running"  # the team is working
    STOPPING = "stopping"  # a stop was requested (user, timeout, halt); the turn is ending
    FINISHED = "finished"  # the turn ended; RunFinished says why


class EndReason(StrEnum):
    """Why a turn ended (`RunFinished.reason`)."""

    TERMINATE = "terminate"  # an agent said TERMINATE: the task is done
    MAX_MESSAGES = "max_messages"
    TIMEOUT = "timeout"
    STOPPED = "stopped"  # the user stopped it
    ERROR = "error"
    LOOP = "loop"  # the agents handed off in a loop
    BUDGET = "budget"  # the spend cap was reached
    DEGENERATE = "degenerate"  # a runaway reply was cut


#: A run is going: a new one is refused and Esc stops it (the app's "busy").
ACTIVE = frozenset({RunState.STARTING, RunState.RUNNING, RunState.STOPPING})

#: Every transition the controller may make; anything else is a bug (tests hold it to this).
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.IDLE: frozenset({RunState.STARTING}),
    RunState.STARTING: frozenset({RunState.RUNNING, RunState.STOPPING, RunState.FINISHED}),
    RunState.RUNNING: frozenset({RunState.STOPPING, RunState.FINISHED}),
    RunState.STOPPING: frozenset({RunState.FINISHED}),
    RunState.FINISHED: frozenset({RunState.STARTING}),
}


@runtime_checkable
class Controller(Protocol):
    """What the app, headless `run`, `batch` and the tests' fake controller share."""

    state: RunState
    run_id: str | None
    turn: int  # which turn of the conversation is (or was last) running, from 1
    demo: bool
    model_label: str
    agent_models: dict[str, str]  # agent -> the model it talks to
    approve: bool
    approver: Callable[..., Any] | None

    @property
    def sandbox_kind(self) -> str: ...

    @property
    def isolation(self) -> str: ...

    @property
    def cost(self) -> float | None: ...

    @property
    def limits_text(self) -> str: ...  # the sandbox's limits and how they hold

    async def warm_up(self) -> None: ...

    async def reset_sandbox(self) -> None: ...

    def start(self, task: str) -> str: ...

    def follow_up(self, text: str) -> str: ...

    def can_follow_up(self) -> bool: ...

    async def resume(self, run_id: str, instruction: str) -> str: ...

    def events(self) -> AsyncIterator[Event]: ...

    async def stop(self, force: bool = False) -> None: ...

    async def restart(self, *, keep_sandbox: bool = False) -> str: ...

    async def close(self) -> None: ...

    async def add_data(
        self, paths: list[str], *, progress: Any = None, consent: bool = False
    ) -> list[dict[str, Any]]: ...

    async def list_files(self) -> list[Any]: ...

    async def read_file(self, path: str, max_bytes: int = 1_000_000) -> bytes: ...

    async def table_preview(
        self, path: str, *, sheet: str | int = 0, stats: bool = False
    ) -> dict[str, Any]: ...

    async def save_file(self, path: str, dest_dir: Path) -> Path: ...
