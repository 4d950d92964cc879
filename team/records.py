"""Run records: `SBTEAM_HOME/runs/<run-id>/events.jsonl`, `files/`, `state.json`.

Each event is written and flushed the moment it is emitted, so a SIGKILLed app
loses nothing it already showed (the OS keeps flushed data of a dead process;
we don't fsync per line: that protects against power loss, not crashes, at a
cost of milliseconds per token). Writes are tiny and stay on the event loop so
the file keeps the events' order. Events arrive scrubbed of the configured
secrets (the controller scrubs each once, for screen and file alike); the
other files are scrubbed here. A full disk does not stop the run: recording
is switched off and the caller is told once.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import IO, Any

from .events import Event
from .redact import scrub

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def run_dir(runs_dir: Path, run_id: str) -> Path:
    """The folder of run `run_id` under `runs_dir`; ValueError for anything that is not
    a run id (a path, `..`, an empty or odd string), so no id a user or a file gives
    can reach outside `runs/`."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise ValueError(f"{run_id!r} is not a run id (letters, digits, '.', '_' and '-')")
    return Path(runs_dir) / run_id


class RunRecord:
    """Append-only log of one run's events plus its files and team state."""

    def __init__(self, runs_dir: Path, run_id: str, secrets: list[str]) -> None:
        self.dir = run_dir(runs_dir, run_id)
        self.secrets = list(secrets)
        self.error: str | None = None
        self._fh: IO[str] | None = None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.events_path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            self.error = (
                f"cannot write the run record in {self.dir} ({exc.strerror or exc}); "
                "the run goes on in memory"
            )

    @property
    def events_path(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def files_dir(self) -> Path:
        return self.dir / "files"

    def append(self, event: Event) -> str | None:
        """Write one event; returns an error line the first time writing fails."""
        if self._fh is None:
            return None
        try:
            self._fh.write(event.to_json() + "\n")  # events come scrubbed from the controller
            self._fh.flush()
        except OSError as exc:
            self.close()
            self.error = f"run record stopped ({exc.strerror or exc}); the run goes on in memory"
            return self.error
        return None

    def write_json(self, name: str, data: Any) -> None:
        if self._fh is None and self.error:
            return
        text = scrub(json.dumps(data, ensure_ascii=False, default=str, indent=1), self.secrets)
        tmp = self.dir / f".{name}.tmp"
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.dir / name)
        except OSError as exc:
            self.error = f"cannot save {name}: {exc.strerror or exc}"

    def close(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            try:
                fh.close()
            except OSError:
                pass


def read_events(path: Path) -> list[dict[str, Any]]:
    """Parse an events.jsonl, ignoring a torn last line (a crash mid-write)."""
    events = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events
