"""Past runs, read back from `SBTEAM_HOME/runs/`: summaries, search, replay.

Everything comes from the records a run wrote (events.jsonl, run.json,
files/), so history works for runs of crashed apps too: a run without a
RunFinished is shown as "interrupted", or "running" while a live process still
writes it (`records.in_progress`). A record that lacks something (a full
disk, an I/O error: see `records.record_problems`) has `incomplete` set to what
it lacks, in one line; the UI marks such runs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .events import Event, event_from_dict
from .records import in_progress, load_team_state, read_events, record_problems, run_dir


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    task: str
    started: str  # ISO date-time
    reason: str  # terminate / max_messages / … / "interrupted"
    duration: float
    files: list[str]
    messages: int
    tokens_in: int
    tokens_out: int
    cost: float | None
    model: str
    resumable: bool
    path: Path
    incomplete: str = ""  # what the record lacks, one line ("" when it is whole)
    turns: int = 1  # questions in the conversation (follow-ups add turns)

    def matches(self, text: str) -> bool:
        needle = text.lower().strip()
        return (
            not needle
            or needle in self.task.lower()
            or needle in self.run_id
            or needle in self.reason
            or (bool(self.incomplete) and needle in "incomplete")
        )


def summarize(run_dir: Path) -> RunSummary | None:
    """One run's summary, or None when the folder holds no events."""
    path = run_dir / "events.jsonl"
    if not path.is_file():
        return None
    events = read_events(path)
    if not events:
        return None
    start = next((e for e in events if e.get("type") == "run_started"), {})
    end = next((e for e in reversed(events) if e.get("type") == "run_finished"), None)
    meta: dict = {}
    if (run_dir / "run.json").is_file():
        try:
            loaded = json.loads((run_dir / "run.json").read_bytes().decode("utf-8"))
            meta = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            meta = {}
    files = saved_files(run_dir / "files")
    finishes = [e for e in events if e.get("type") == "run_finished"]
    turns = max([int(e.get("turn", 1)) for e in events] or [1])
    if finishes:  # the whole conversation: every turn's time, messages and tokens
        duration = sum(float(e.get("elapsed", 0.0)) for e in finishes)
        if turns > 1 and end is not None:
            end = {**end, **{k: sum(int(e.get(k, 0) or 0) for e in finishes) for k in ("messages", "tokens_in", "tokens_out")}}
            costs = [e.get("cost") for e in finishes]
            end["cost"] = None if any(c is None for c in costs) else sum(costs)
    else:
        duration = float(events[-1].get("ts", 0.0))
    running = in_progress(run_dir)  # a live process is writing it (a follow-up turn, too)
    return RunSummary(
        run_id=run_dir.name,
        task=str(start.get("task", meta.get("task", ""))),
        started=_started(meta, run_dir.name, duration),
        reason="running" if running else str(end.get("reason")) if end else "interrupted",
        duration=duration,
        files=files,
        messages=int(end.get("messages", 0)) if end else 0,
        tokens_in=int(end.get("tokens_in", 0)) if end else 0,
        tokens_out=int(end.get("tokens_out", 0)) if end else 0,
        cost=end.get("cost") if end else None,
        model=str(start.get("model", meta.get("model", ""))),
        resumable=(run_dir / "state.json").is_file(),
        path=run_dir,
        incomplete="; ".join(record_problems(run_dir)),
        turns=turns,
    )


def saved_files(files_dir: Path) -> list[str]:
    """The files a run's record holds (names as str, odd bytes as surrogate escapes),
    without partial copies a stopped app left behind."""
    if not files_dir.is_dir():
        return []
    return sorted(
        p.relative_to(files_dir).as_posix()
        for p in files_dir.rglob("*")
        if p.is_file() and not (p.name.startswith(".") and p.name.endswith(".partial"))
    )


def resume_problem(runs_dir: Path, run_id: str) -> str:
    """Why run `run_id` cannot be resumed, saying exactly what is missing; "" when it can."""
    try:
        load_team_state(run_dir(runs_dir, run_id), run_id)
    except ValueError as exc:
        return str(exc)
    return ""


def _started(meta: dict, run_id: str, duration: float) -> str:
    """When the run began. run.json is written as a run ends; records from before it
    had a "finished" field hold the *end* time under "started". Such a time lies
    `duration` after the run id's time stamp (taken at the start), which then wins."""
    stored = str(meta.get("started") or "")
    from_id = _date_from_id(run_id)
    if not stored or "finished" in meta or not from_id:
        return stored or from_id
    try:
        late = (datetime.fromisoformat(stored) - datetime.fromisoformat(from_id)).total_seconds()
    except ValueError:
        return stored
    return from_id if 0 <= late <= duration + 2 else stored


def plural(count: int, word: str) -> str:
    """`1 run`, `2 runs`, `0 files`."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _date_from_id(run_id: str) -> str:
    """Run ids start with YYYYmmdd-HHMMSS (the time the run was launched); "" otherwise."""
    match = re.match(r"(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})(?!\d)", run_id)
    if not match:
        return ""
    year, month, day, hour, minute, second = match.groups()
    return f"{year}-{month}-{day}T{hour}:{minute}:{second}"


def list_runs(runs_dir: Path, search: str = "") -> list[RunSummary]:
    """Newest first, filtered by text in the task, run id or reason."""
    if not Path(runs_dir).is_dir():
        return []
    found = []
    for folder in Path(runs_dir).iterdir():
        if folder.is_dir():
            summary = summarize(folder)
            if summary is not None and summary.matches(search):
                found.append(summary)
    return sorted(found, key=lambda s: s.run_id, reverse=True)


def load_events(runs_dir: Path, run_id: str) -> list[Event]:
    """A past run's events as typed events (for read-only replay)."""
    path = run_dir(runs_dir, run_id) / "events.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no run {run_id!r} in {runs_dir}")
    typed = []
    for data in read_events(path):
        try:
            typed.append(event_from_dict(data))
        except (KeyError, TypeError):
            continue
    return typed
