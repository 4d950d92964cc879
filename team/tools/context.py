"""What every tool function receives: the session, the event sink and per-run bookkeeping.

Also the limits and texts the tools share (output trimming, the "cancelled"
and "stopping" answers), so a new tool words them the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from team import errors

from .. import events as ev
from ..sandbox.output import split_not_kept
from ..session import CodeSession

MAX_TOOL_OUTPUT = 8_000
MAX_READ_CHARS = 20_000
MAX_READ_BYTES = 5_000_000
MAX_LIVE_OUTPUT = 200_000  # characters of live stdout/stderr shown per tool call
CODE_TIMEOUT = 300.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg")

CANCELLED = "⏹ cancelled: the run was stopped while this tool was running"
STOPPED = "⏹ cancelled: the run is stopping, the code was not run"

Emit = Callable[[ev.Event], None]
#: approval mode: (agent, call_id, name, args) -> (decision, new args | reason)
Approver = Callable[[str, str, str, dict[str, Any]], Awaitable[tuple[str, Any]]]


def trim(text: str, limit: int = MAX_TOOL_OUTPUT) -> str:
    """Keep the head and tail of long output and say how much was cut.

    The count includes what the sandbox itself did not keep of a flood of
    output (its own marker is folded into this one).
    """
    if len(text) <= limit:
        return text
    text, dropped = split_not_kept(text)
    head = text[: limit * 2 // 3]
    tail = text[-(limit // 3) :]
    cut = len(text) - len(head) - len(tail) + dropped
    return f"{head}\n… [{cut:,} characters cut] …\n{tail}"


def one_line(exc: BaseException) -> str:
    """An exception as the one line a tool result carries (team/errors.py, 300 characters)."""
    return errors.one_line(exc, 300)


class ToolContext:
    """What the tools share: the session, the event sink and per-run bookkeeping."""

    def __init__(self, session: CodeSession, emit: Emit | None = None, code_timeout: float = CODE_TIMEOUT):
        self.session = session
        self.emit: Emit = emit or (lambda _e: None)
        self.code_timeout = code_timeout
        self.announced_calls: set[str] = set()
        self.finished_calls: set[str] = set()
        self.current_call_id = ""
        self.busy = False
        self.closed = False  # set by a force stop: late tool calls of an abandoned team do nothing
        self.stopping = False  # set by any stop: no new code starts (an interrupt sent
        # before a cell starts would be lost and the cell would run on)
        self._requested: dict[str, asyncio.Event] = {}
        self.approver: Approver | None = None

    def requested(self, call_id: str) -> asyncio.Event:
        """Set once the run has shown this call's request (and everything before it)."""
        return self._requested.setdefault(call_id, asyncio.Event())

    def announce(self, agent: str, call_id: str, name: str, arguments: Mapping[str, Any]) -> None:
        if call_id and call_id in self.announced_calls:
            return
        if call_id:
            self.announced_calls.add(call_id)
        self.emit(ev.ToolCall(agent=agent, call_id=call_id, name=name, arguments=dict(arguments)))

    def finish(
        self, agent: str, call_id: str, name: str, content: str, is_error: bool, images: list[str]
    ) -> None:
        if call_id and call_id in self.finished_calls:
            return
        if call_id:
            self.finished_calls.add(call_id)
        self.emit(
            ev.ToolResult(
                agent=agent, call_id=call_id, name=name, content=content, is_error=is_error, images=images
            )
        )

    async def report_files(self) -> list[str]:
        """Emit FilesChanged if anything changed; return new/changed image paths."""
        try:
            added, changed, removed = await self.session.file_changes()
        except Exception:
            return []
        if added or changed or removed:
            self.emit(ev.FilesChanged(added=added, changed=changed, removed=removed))
        return [p for p in added + changed if p.lower().endswith(IMAGE_SUFFIXES)]
