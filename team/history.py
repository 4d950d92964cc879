"""Past runs, read back from `SBTEAM_HOME/runs/`: summaries, search, replay.

Everything comes from the records a run wrote (events.jsonl, run.json,
files/), so history works for runs of crashed apps too: a run without a
RunFinished is shown as "interrupted".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .events import Event, event_from_dict
from .records import read_events


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

    def matches(self, text: str) -> bool:
        needle = text.lower().strip()
        return not needle or needle in self.task.lower() or needle in self.run_id or needle in self.reason


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
            meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            meta = {}
    files_dir = run_dir / "files"
    files = (
        sorted(p.relative_to(files_dir).as_posix() for p in files_dir.rglob("*") if p.is_file())
        if files_dir.is_dir()
        else []
    )
    return RunSummary(
        run_id=run_dir.name,
        task=str(start.get("task", meta.get("task", ""))),
        started=str(meta.get("started") or _date_from_id(run_dir.name)),
        reason=str(end.get("reason")) if end else "interrupted",
        duration=float(end.get("elapsed", 0.0)) if end else float(events[-1].get("ts", 0.0)),
        files=files,
        messages=int(end.get("messages", 0)) if end else 0,
        tokens_in=int(end.get("tokens_in", 0)) if end else 0,
        tokens_out=int(end.get("tokens_out", 0)) if end else 0,
        cost=end.get("cost") if end else None,
        model=str(start.get("model", meta.get("model", ""))),
        resumable=(run_dir / "state.json").is_file(),
        path=run_dir,
    )


def _date_from_id(run_id: str) -> str:
    """Run ids start with YYYYmmdd-HHMMSS."""
    try:
        day, clock = run_id.split("-")[:2]
        return f"{day[:4]}-{day[4:6]}-{day[6:8]}T{clock[:2]}:{clock[2:4]}:{clock[4:6]}"
    except (ValueError, IndexError):
        return ""


def list_runs(runs_dir: Path, search: str = "") -> list[RunSummary]:
    """Newest first, filtered by text in the task, run id or reason."""
    if not Path(runs_dir).is_dir():
        return []
    found = []
    for run_dir in Path(runs_dir).iterdir():
        if run_dir.is_dir():
            summary = summarize(run_dir)
            if summary is not None and summary.matches(search):
                found.append(summary)
    return sorted(found, key=lambda s: s.run_id, reverse=True)


def load_events(runs_dir: Path, run_id: str) -> list[Event]:
    """A past run's events as typed events (for read-only replay)."""
    path = Path(runs_dir) / run_id / "events.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no run {run_id!r} in {runs_dir}")
    typed = []
    for data in read_events(path):
        try:
            typed.append(event_from_dict(data))
        except (KeyError, TypeError):
            continue
    return typed
