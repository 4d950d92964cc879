"""Typed events of a run: what the TUI renders, the headless CLI prints and the
run record stores (one JSON object per line, `type` as discriminator).

Plain frozen dataclasses so `team` stays free of Textual and pydantic models
of AutoGen never leak to the UI. `seq` is the event's position in its run and
`ts` seconds since the run started; both are filled by the controller.

File names are not always UTF-8 (Linux allows any bytes but `/` and NUL): the
engine keeps such a name as a `str` with surrogate escapes (what `os.listdir`
gives), and `to_json` writes those as `\\udcXX` escapes, so every JSON line is
valid UTF-8 and `json.loads` gives the very same name back.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

# Written as JSON `\u` escapes (e.g. `\u009b`) by json_text: lone surrogates (not encodable as UTF-8) and what
# `cat events.jsonl` must not send raw to a terminal (C1 controls, DEL, bidi overrides,
# line/paragraph separators). json.dumps(ensure_ascii=False) escapes only C0 itself.
_JSON_ESCAPE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def json_text(value: Any, **kw: Any) -> str:
    """`json.dumps` (non-ASCII kept readable) whose output is always encodable as UTF-8 and
    inert on a terminal: lone surrogates (a non-UTF-8 byte of a file name, kept by
    surrogateescape) and C1/bidi characters are written as `\\u` escapes (`\\udcff`), which
    `json.loads` turns back into the very same str."""
    text = json.dumps(value, ensure_ascii=False, default=str, **kw)
    return _JSON_ESCAPE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) if _JSON_ESCAPE.search(text) else text


def has_raw_bytes(text: str) -> bool:
    """The name holds bytes that are not UTF-8 (kept as surrogate escapes)."""
    return bool(_SURROGATE.search(text))


# Why a turn ended: `team.api.EndReason` (a StrEnum, so records of plain strings read back equal).
FinishReason = str


@dataclass(frozen=True, kw_only=True)
class Event:
    type: ClassVar[str] = "event"
    run_id: str = ""
    seq: int = 0
    ts: float = 0.0
    turn: int = 1  # which turn of the conversation (a follow-up question is turn 2, …)

    def to_dict(self) -> dict[str, Any]:
        data = {"type": self.type}
        for f in dataclasses.fields(self):
            data[f.name] = getattr(self, f.name)
        return data

    def to_json(self) -> str:
        return json_text(self.to_dict())


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    type: ClassVar[str] = "run_started"
    task: str
    model: str
    demo: bool
    sandbox: str
    isolation: str
    max_messages: int
    timeout: float
    prompts: str = "zh"
    resumed_from: str = ""  # run id this run continues, if any
    approve: bool = False  # code waits for the user's approval before it runs
    limits: str = ""  # the sandbox's limits and how they are enforced (local), or who sets them


@dataclass(frozen=True, kw_only=True)
class SandboxStatus(Event):
    """Sandbox life-cycle: starting, ready (with isolation), restarted, error."""

    type: ClassVar[str] = "sandbox_status"
    state: Literal["starting", "ready", "restarted", "error", "closed"]
    kind: str = "local"
    isolation: str = "none"
    detail: str = ""
    limits: str = ""  # as RunStarted.limits, once the sandbox is ready


@dataclass(frozen=True, kw_only=True)
class TokenDelta(Event):
    """A streamed piece of text; `message_id` is shared with the `Message` it becomes."""

    type: ClassVar[str] = "token_delta"
    agent: str
    text: str
    message_id: str


@dataclass(frozen=True, kw_only=True)
class Message(Event):
    """A finished text message of an agent (or the user's task, agent 'user')."""

    type: ClassVar[str] = "message"
    agent: str
    text: str
    message_id: str = ""


@dataclass(frozen=True, kw_only=True)
class ToolCall(Event):
    type: ClassVar[str] = "tool_call"
    agent: str
    call_id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ToolResult(Event):
    type: ClassVar[str] = "tool_result"
    agent: str
    call_id: str
    name: str
    content: str
    is_error: bool = False
    images: list[str] = field(default_factory=list)  # sandbox paths of PNGs it produced


@dataclass(frozen=True, kw_only=True)
class Handoff(Event):
    type: ClassVar[str] = "handoff"
    source: str
    target: str
    text: str = ""


@dataclass(frozen=True, kw_only=True)
class SandboxOutput(Event):
    """Live stdout/stderr of code while it runs."""

    type: ClassVar[str] = "sandbox_output"
    stream: Literal["stdout", "stderr"]
    text: str
    call_id: str = ""


@dataclass(frozen=True, kw_only=True)
class FilesChanged(Event):
    """Paths (relative to /home/user) added, changed or removed since the last look."""

    type: ClassVar[str] = "files_changed"
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Progress(Event):
    type: ClassVar[str] = "progress"
    agent: str
    messages: int
    max_messages: int
    elapsed: float
    timeout: float
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None  # USD, None when the model's price is unknown
    agent_tokens: dict[str, list[int]] = field(default_factory=dict)  # agent -> [in, out]
    # messages and elapsed are this turn's (the limits are per turn); these, the whole conversation's
    conversation_messages: int = 0
    conversation_elapsed: float = 0.0


@dataclass(frozen=True, kw_only=True)
class ApprovalRequested(Event):
    """Code waits for the user: approve, edit or reject (approval mode)."""

    type: ClassVar[str] = "approval_requested"
    agent: str
    call_id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ApprovalDecided(Event):
    type: ClassVar[str] = "approval_decided"
    call_id: str
    decision: Literal["approve", "edit", "reject"]
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class Notice(Event):
    """Something the user should know that is not part of the conversation."""

    type: ClassVar[str] = "notice"
    level: Literal["info", "warning", "error"] = "info"
    text: str = ""


@dataclass(frozen=True, kw_only=True)
class DataUploaded(Event):
    """Files of the user's copied into the sandbox (under /home/user/data/)."""

    type: ClassVar[str] = "data_uploaded"
    files: list[dict[str, Any]] = field(default_factory=list)  # {"path", "size", "sha256"}
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}


@dataclass(frozen=True, kw_only=True)
class RunStateChanged(Event):
    """The controller moved to another `team.api.RunState`; the app renders this, never
    infers it. `reason` says why when it is known: the cause of a stop (`stopped`,
    `timeout`, `budget`, …) on `stopping`, the end reason on `finished`."""

    type: ClassVar[str] = "run_state"
    state: str
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class OutputsSaved(Event):
    """The sandbox's files and the team state were copied into the run record. Sent after
    `RunFinished` (which does not wait for the copy, so a stop is quick whatever the
    sandbox holds); `problem` says what the record lacks, if anything."""

    type: ClassVar[str] = "outputs_saved"
    files: int = 0
    problem: str = ""


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    type: ClassVar[str] = "run_finished"
    reason: FinishReason
    message: str = ""
    messages: int = 0
    elapsed: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None
    agent_tokens: dict[str, list[int]] = field(default_factory=dict)


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        RunStarted,
        SandboxStatus,
        TokenDelta,
        Message,
        ToolCall,
        ToolResult,
        Handoff,
        SandboxOutput,
        FilesChanged,
        Progress,
        Notice,
        ApprovalRequested,
        ApprovalDecided,
        DataUploaded,
        RunStateChanged,
        OutputsSaved,
        RunFinished,
    )
}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Inverse of `Event.to_dict` (unknown keys are ignored for forward compatibility)."""
    cls = EVENT_TYPES[data["type"]]
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
