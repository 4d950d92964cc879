"""Run records: `SBTEAM_HOME/runs/<run-id>/events.jsonl`, `files/`, `state.json`, `run.json`.

Each event is written and flushed the moment it is emitted, so a SIGKILLed app
loses nothing it already showed (the OS keeps flushed data of a dead process;
we don't fsync per line: that protects against power loss, not crashes, at a
cost of milliseconds per token; the log is fsynced once as the run ends).
Writes are tiny and stay on the event loop so the file keeps the events'
order. Events arrive scrubbed of the configured secrets (the controller
scrubs each once, for screen and file alike); the other files are scrubbed here.

A record is whole or says why not. A write that fails (a full disk, an I/O
error, a read-only filesystem) never stops the run: the failure is told once
(the caller shows it as a Notice) and kept in `problems`, which the controller
writes into run.json as `record_incomplete`. run.json and state.json are
written atomically (temp file, fsync, rename, fsync of the folder), so they are
either the old version, the new one, or absent, never cut short; a temp file
left by a failed write is removed. When run.json itself cannot be written, the
empty marker file `record-incomplete` (an inode, no data blocks) still tells
`history` so.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import IO, Any

from .errors import one_line
from .events import Event, json_text
from .redact import scrub

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
INCOMPLETE_MARKER = "record-incomplete"  # in a run's folder: the record lacks something (see run.json)


def run_dir(runs_dir: Path, run_id: str) -> Path:
    """The folder of run `run_id` under `runs_dir`; ValueError for anything that is not
    a run id (a path, `..`, an empty or odd string), so no id a user or a file gives
    can reach outside `runs/`."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise ValueError(f"{run_id!r} is not a run id (letters, digits, '.', '_' and '-')")
    return Path(runs_dir) / run_id


def why(exc: BaseException) -> str:
    """An OSError's reason in a few words ("No space left on device"), else the first line."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return one_line(exc)


class RunRecord:
    """Append-only log of one run's events plus its files, team state and summary."""

    def __init__(self, runs_dir: Path, run_id: str, secrets: list[str]) -> None:
        self.dir = run_dir(runs_dir, run_id)
        self.secrets = list(secrets)
        self.error: str | None = None  # the first failure, as told to the user
        self.problems: list[str] = []  # what the record lacks, one line each (run.json's record_incomplete)
        self.told = 0  # how many of `problems` the user has been told about
        self.usable = False  # the folder exists (json files can still be tried after the log failed)
        self._fh: IO[bytes] | None = None
        self._lines = 0
        self._said: set[str] = set()  # kinds of failure already told
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.usable = True
            self._fh = open(self.events_path, "ab")  # noqa: SIM115
            _hold(self._fh)
        except OSError as exc:
            self.error = (
                f"cannot write the run record in {self.dir} ({why(exc)}); the run goes on in memory"
            )
            self.problems.append(f"nothing could be recorded in {self.dir}: {why(exc)}")
            self.told = 1  # the controller shows `error` as the run starts

    @property
    def events_path(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def files_dir(self) -> Path:
        return self.dir / "files"

    @property
    def incomplete(self) -> bool:
        return bool(self.problems)

    def problem(self, text: str) -> None:
        """Note something the record lacks (shown by the controller, kept in run.json)."""
        if text not in self.problems:
            self.problems.append(text)

    def untold(self) -> list[str]:
        """Problems the user has not been told about yet (and count them as told now)."""
        new, self.told = self.problems[self.told :], len(self.problems)
        return new

    def append(self, event: Event) -> str | None:
        """Write one event; returns an error line the first time writing fails.

        Never raises: an event that cannot be encoded is left out (and said), a
        failed write (disk full, I/O error) switches the log off for the rest of
        the run, leaving at most one torn last line, which `read_events` skips.
        """
        if self._fh is None:
            return None
        try:
            data = (json_text(event.to_dict()) + "\n").encode("utf-8")  # events come scrubbed
        except Exception as exc:  # an odd value in an event must not break the run
            self.problem(f"event {event.seq} ({event.type}) could not be recorded: {why(exc)}")
            return self._tell("encode", f"run record: event {event.seq} left out ({why(exc)})")
        try:
            self._fh.write(data)
            self._fh.flush()
        except (OSError, ValueError) as exc:
            self._drop_log()
            self.problem(f"events.jsonl stopped after {self._lines} events ({why(exc)}); later events are missing")
            return self._tell("stop", f"run record stopped ({why(exc)}); the run goes on in memory")
        self._lines += 1
        return None

    def _tell(self, kind: str, text: str) -> str | None:
        """`text` the first time a failure of this kind happens (the caller shows it), else None."""
        if kind in self._said:
            return None
        self._said.add(kind)
        self.error = self.error or text
        self.told = len(self.problems)
        return text

    def sync(self) -> None:
        """fsync the event log (a full disk may only say so now, for data already "written")."""
        if self._fh is None:
            return
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except (OSError, ValueError) as exc:
            self._drop_log()
            self.problem(f"events.jsonl could not be saved to disk ({why(exc)}); its end may be missing")

    def write_json(self, name: str, data: Any) -> str | None:
        """Write `name` atomically; returns an error line (also kept in `problems`) or None."""
        if not self.usable:
            return None
        try:
            text = scrub(json_text(data, indent=1), self.secrets)
        except Exception as exc:
            self.problem(f"{name} not saved: {why(exc)}")
            return f"cannot save {name}: {why(exc)}"
        try:
            atomic_write(self.dir / name, text.encode("utf-8"))
        except OSError as exc:
            self.problem(f"{name} not saved ({why(exc)})")
            return f"cannot save {name}: {why(exc)}"
        return None

    def finish(self, meta: dict[str, Any]) -> None:
        """Write run.json (the run's summary plus `record_incomplete`); when that fails,
        leave the marker file so `history` still shows the record as incomplete."""
        self.close()
        if not self.usable:
            return
        problem = self.write_json("run.json", {**meta, "record_incomplete": list(self.problems)})
        marker = self.dir / INCOMPLETE_MARKER
        if problem is None and not self.problems:
            with contextlib.suppress(OSError):
                marker.unlink(missing_ok=True)
            return
        if problem is None:
            return  # run.json says what is missing
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        except OSError:
            return  # not even an empty file: history still sees no run.json next to a finished log
        try:
            with contextlib.suppress(OSError):  # the reasons, if a few bytes still fit
                os.write(fd, ("\n".join(self.problems) + "\n").encode("utf-8", "backslashreplace"))
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._fh is not None:
            self.sync()
        self._drop_log()

    def _drop_log(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            try:
                fh.close()
            except (OSError, ValueError):
                pass


def _hold(fh: IO[bytes]) -> None:
    """Mark the log as being written (an flock, which dies with the process): `history`
    tells a run in progress from one a crash interrupted. Best effort."""
    with contextlib.suppress(OSError, ImportError, AttributeError, ValueError):  # (not a real file)
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def in_progress(folder: Path) -> bool:
    """Is a live process writing this run's events.jsonl now (see `_hold`)?"""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        fd = os.open(folder / "events.jsonl", os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # (releases our lock too)
    return False


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` whole or not at all: temp file, fsync, rename, fsync of
    the folder. On failure the temp file is removed and the old `path`, if any, stays."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself; a folder that cannot be fsynced is fine
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def read_events(path: Path) -> list[dict[str, Any]]:
    """Parse an events.jsonl, skipping a torn last line (a crash or a full disk mid-write),
    even one cut inside a multi-byte character."""
    events = []
    for raw in Path(path).read_bytes().splitlines():
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(value, dict):
            events.append(value)
    return events


def record_problems(folder: Path) -> list[str]:
    """What a run's record lacks, as far as its files tell ([] when it is whole).

    From run.json's `record_incomplete`, the marker file, a finished log without
    run.json (it could not be written), and files whose copy was cut short.
    """
    folder = Path(folder)
    found: list[str] = []
    meta: Any = None
    try:
        meta = json.loads((folder / "run.json").read_bytes().decode("utf-8"))
    except FileNotFoundError:
        meta = None
    except (OSError, ValueError) as exc:
        found.append(f"run.json is unreadable ({why(exc)})")
    if isinstance(meta, dict):
        listed = meta.get("record_incomplete")
        if isinstance(listed, list):
            found.extend(str(p) for p in listed if p)
        elif isinstance(listed, str) and listed:
            found.append(listed)
    marker = folder / INCOMPLETE_MARKER
    if marker.is_file():
        with contextlib.suppress(OSError, UnicodeDecodeError):
            found.extend(
                line for line in marker.read_bytes().decode("utf-8").splitlines() if line and line not in found
            )
        if meta is None:
            found.append("run.json could not be written")
    elif meta is None and (folder / "events.jsonl").is_file() and _log_finished(folder / "events.jsonl"):
        found.append("run.json is missing")
    files = folder / "files"
    if files.is_dir():
        cut = [p for p in files.rglob(".*.partial") if p.is_file()]
        if cut:
            found.append(f"{len(cut)} file copy(ies) cut short (the app stopped while copying)")
    return list(dict.fromkeys(found))


def _log_finished(path: Path) -> bool:
    """The log ends with the run's RunFinished (read from its end only)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 65536))
            tail = fh.read()
    except OSError:
        return False
    return b'"type": "run_finished"' in tail


def load_team_state(folder: Path, run_id: str) -> dict[str, Any]:
    """A run's saved team state (state.json), or ValueError saying exactly what is missing
    and why, as far as the record knows."""
    folder = Path(folder)
    path = folder / "state.json"
    if not (folder / "events.jsonl").is_file() and not path.exists():
        raise ValueError(f"there is no run {run_id} (no record in {folder})")
    problems = record_problems(folder)
    about_state = [p for p in problems if "state.json" in p]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if about_state:
            raise ValueError(
                f"run {run_id} cannot be resumed: its team state was not saved ({'; '.join(about_state)})"
            ) from None
        if problems:
            raise ValueError(
                f"run {run_id} cannot be resumed: state.json is missing and the record is incomplete "
                f"({'; '.join(problems)})"
            ) from None
        raise ValueError(
            f"run {run_id} cannot be resumed: it has no saved team state (no state.json: the team "
            "had not started, or the run was abandoned while stopping)"
        ) from None
    except OSError as exc:
        raise ValueError(f"run {run_id} cannot be resumed: state.json cannot be read ({why(exc)})") from None
    try:
        state = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise ValueError(f"run {run_id} cannot be resumed: state.json is damaged ({why(exc)})") from None
    if not isinstance(state, dict):
        raise ValueError(f"run {run_id} cannot be resumed: state.json holds no team state")
    return state

