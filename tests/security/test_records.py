"""A record that is whole or says why not (issue 12, point 3): a full disk under
SBTEAM_HOME, an I/O error, a copy cut short.

Each failure is met twice: on a real, tiny tmpfs (needs root to mount; CI runs as
root) and with the failure injected into the writes (runs everywhere). Either way
the run goes on, the transcript says what the record lacks, no partial file or
`.tmp` is left, run.json carries `record_incomplete` (or, when even run.json
cannot be written, the `record-incomplete` marker), `history` marks the run,
resume says exactly what is missing, and headless `run --out` exits 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from team import events as ev
from team import (
    records,
    session_transfers,  # where the copy-out lives
)
from team import session as session_mod
from team.config import Settings
from team.headless import run_headless
from team.history import list_runs, resume_problem, summarize
from team.records import INCOMPLETE_MARKER, RunRecord, atomic_write, load_team_state, read_events
from team.run import RunController
from team.scripted import Call, Say, Turn
from tests.reliability.conftest import collect, scripted

pytestmark = pytest.mark.timeout(90)

MB = 1 << 20
# What the sandbox makes: a picture larger than the tiny disk, then a small report.
MAKE_FILES = (
    "import os\n"
    "open('chart.png', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + os.urandom(1_500_000))\n"
    "open('report.txt', 'w').write('mean 0.1\\n')\n"
    "print('made the files')"
)
SMALL_FILES = (
    "import os\n"
    "open('chart.png', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + os.urandom(50_000))\n"
    "open('report.txt', 'w').write('mean 0.1\\n')\n"
    "print('made the files')"
)


def _responder(code: str, at_last_turn=None):
    """Planner → CodeAgent runs `code` → Planner; `at_last_turn()` runs as the Planner ends."""

    def responder(turn: Turn):
        if turn.agent == "Planner":
            if turn.index == 0:
                return Call("transfer_to_codeagent", thought="over to you")
            if at_last_turn is not None:
                at_last_turn()
                # more than the free end of the log's last page: the next appends need new space
                return Say("Done: " + "all went well. " * 700 + "TERMINATE")
            return Say("Done. TERMINATE")
        if turn.agent == "CodeAgent" and turn.index == 0:
            return Call("run_code", {"code": code})
        return Call("transfer_to_planner")

    return responder


async def _run(settings: Settings, responder) -> tuple[list[ev.Event], RunController]:
    controller = RunController(settings, model_factory=scripted(responder))
    try:
        controller.start("make a chart and a report")
        events = await asyncio.wait_for(collect(controller), 60)
        await controller._await_drive()
    finally:
        await controller.close()
    done = [e for e in events if isinstance(e, ev.RunFinished)]
    assert len(done) == 1 and isinstance(events[-1], ev.OutputsSaved)  # the files are saved after RunFinished
    assert done[0].reason == "terminate", done[0].message  # the run itself went on to its end
    made = [e for e in events if isinstance(e, ev.ToolResult) and e.name == "run_code"]
    assert made and "made the files" in made[0].content and not made[0].is_error
    return events, controller


def _notices(events: list[ev.Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, ev.Notice)]


def _leftovers(folder: Path) -> list[str]:
    """Temp and partial files anywhere in a run's folder (there must be none)."""
    return [
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.name.endswith((".tmp", ".partial"))
    ]


# -- a real, tiny filesystem ------------------------------------------------------------------


@contextlib.contextmanager
def tiny_disk(folder: Path, size: str = "1m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `folder` (skips the test unless root may mount)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root (the injected-ENOSPC variant runs everywhere)")
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _fill(disk: Path) -> Path:
    """Fill the filesystem to the last byte (what another program might do mid-run)."""
    filler = disk / f"filler-{uuid.uuid4().hex}"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        block = b"\0" * 65536
        while True:
            try:
                os.write(fd, block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
        for size in (4096, 512, 1):  # the last partial pages too
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


async def test_tmpfs_full_copy_cut_short_leaves_no_partial_and_is_marked(tmp_path, monkeypatch):
    with tiny_disk(tmp_path / "disk") as disk:
        settings = Settings.load(env={"SBTEAM_HOME": str(disk)}, env_file=None)
        # the free-space check cannot see this disk fill up: the copy meets ENOSPC mid-file
        monkeypatch.setattr(session_transfers, "_free_space", lambda folder: None)
        events, controller = await _run(settings, _responder(MAKE_FILES))
        folder = settings.runs_dir / controller.run_id
        told = [t for t in _notices(events) if "run record incomplete" in t]
        assert len(told) == 1 and "chart.png" in told[0] and "No space left on device" in told[0], _notices(events)
        assert "\n" not in told[0]
        # what is there is whole: the picture's partial copy was removed, the report copied
        assert sorted(os.listdir(folder / "files")) == ["report.txt"]
        assert (folder / "files" / "report.txt").read_text() == "mean 0.1\n"
        assert _leftovers(folder) == []
        meta = json.loads((folder / "run.json").read_text())
        assert any("chart.png" in p for p in meta["record_incomplete"])
        assert [s["path"] for s in meta["files_skipped"]] == ["chart.png"]
        assert "cut short" in meta["files_skipped"][0]["reason"]
        # the log is whole and ends with the run's end; state.json is whole: resume can go on
        logged = read_events(folder / "events.jsonl")
        done = [e for e in logged if e["type"] == "run_finished"]  # then FINISHED and OutputsSaved
        assert len(done) == 1 and done[0]["reason"] == "terminate" and logged[-1]["type"] == "outputs_saved"
        assert isinstance(load_team_state(folder, controller.run_id), dict)
        summary = summarize(folder)
        assert summary is not None and summary.files == ["report.txt"]
        assert "chart.png" in summary.incomplete and summary.reason == "terminate"
        assert [r.run_id for r in list_runs(settings.runs_dir, "incomplete")] == [controller.run_id]


async def test_tmpfs_too_small_free_space_check_skips_and_marks(tmp_path):
    with tiny_disk(tmp_path / "disk") as disk:
        settings = Settings.load(env={"SBTEAM_HOME": str(disk)}, env_file=None)
        events, controller = await _run(settings, _responder(SMALL_FILES))
        folder = settings.runs_dir / controller.run_id
        assert not (folder / "files").exists() or os.listdir(folder / "files") == []
        assert any("not enough free space" in t for t in _notices(events))
        meta = json.loads((folder / "run.json").read_text())
        assert meta["record_incomplete"] and "not enough free space" in meta["record_incomplete"][0]
        summary = summarize(folder)
        assert summary is not None and summary.incomplete and summary.files == []


async def test_tmpfs_filled_mid_run_loses_json_files_but_history_and_resume_say_so(tmp_path):
    with tiny_disk(tmp_path / "disk") as disk:
        settings = Settings.load(env={"SBTEAM_HOME": str(disk)}, env_file=None)
        fillers: list[Path] = []
        events, controller = await _run(
            settings, _responder(SMALL_FILES, at_last_turn=lambda: fillers.append(_fill(disk)))
        )
        folder = settings.runs_dir / controller.run_id
        notices = _notices(events)
        assert any("run record stopped" in t and "No space left on device" in t for t in notices), notices
        final = [t for t in notices if "run record incomplete" in t]
        assert len(final) == 1 and "state.json not saved" in final[0] and "chart.png" in final[0]
        # nothing half-written: no run.json, no state.json, no temp files; the marker is there
        assert not (folder / "run.json").exists() and not (folder / "state.json").exists()
        assert (folder / INCOMPLETE_MARKER).exists()
        assert _leftovers(folder) == []
        # space comes back (the filler goes): history still marks the record
        for filler in fillers:
            filler.unlink()
        summary = summarize(folder)
        assert summary is not None and summary.incomplete and summary.reason == "interrupted"
        why = resume_problem(settings.runs_dir, controller.run_id)
        assert "cannot be resumed" in why and "state.json is missing" in why and "incomplete" in why
        with pytest.raises(ValueError, match="state.json is missing"):
            await RunController(settings).resume(controller.run_id, "go on")


async def test_headless_out_on_a_full_tmpfs_exits_1(tmp_path, capsys):
    with tiny_disk(tmp_path / "disk") as disk:
        settings = Settings.load(env={"SBTEAM_HOME": str(tmp_path / "home")}, env_file=None)
        code = await run_headless(settings, "the seed's example task", out_dir=disk / "out", stdout=io.StringIO())
        err = capsys.readouterr().err
        assert code == 1, err
        assert "output is incomplete" in err and "not enough free space" in err


# -- the same failures, injected (no mount needed) ---------------------------------------------


class _CutShort:
    """A file object whose writes fail with ENOSPC once `room` bytes are written."""

    def __init__(self, fh, room: int) -> None:
        self._fh, self._room = fh, room

    def write(self, data) -> int:
        if len(data) > self._room:
            self._fh.write(bytes(data[: self._room]))  # what a full disk takes before it says no
            self._room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room -= len(data)
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)


class _Disk:
    """An injected disk: `full` makes every further write of the record fail."""

    def __init__(self) -> None:
        self.full = False

    def open_log(self, path, mode="r", *args, **kw):  # records' open (events.jsonl)
        fh = open(path, mode, *args, **kw)  # noqa: SIM115
        return _WhenFull(fh, self)

    def write(self, fd, data):  # records' os.write (run.json, state.json, the marker)
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)


class _WhenFull:
    def __init__(self, fh, disk: _Disk) -> None:
        self._fh, self._disk = fh, disk

    def write(self, data):
        if self._disk.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)


class _OsWith:
    """The `os` module with one function replaced (patched into one module only)."""

    def __init__(self, **replaced) -> None:
        self._replaced = replaced

    def __getattr__(self, name):
        return self._replaced.get(name) or getattr(os, name)


async def test_injected_enospc_mid_copy_removes_the_partial_file(settings, monkeypatch):
    real_open = open

    def cut_at_20k(path, mode="r", *args, **kw):  # the copy-out's open: a picture cut at 20 KB
        fh = real_open(path, mode, *args, **kw)
        return _CutShort(fh, 20_000) if "chart.png" in str(path) and "w" in mode else fh

    monkeypatch.setattr(session_transfers, "open", cut_at_20k, raising=False)
    events, controller = await _run(settings, _responder(SMALL_FILES))
    folder = settings.runs_dir / controller.run_id
    told = [t for t in _notices(events) if "run record incomplete" in t]
    assert len(told) == 1 and "chart.png" in told[0] and "cut short" in told[0]
    assert sorted(os.listdir(folder / "files")) == ["report.txt"]  # no 20 KB stub of the picture
    assert _leftovers(folder) == []
    meta = json.loads((folder / "run.json").read_text())
    assert meta["record_incomplete"] and "chart.png" in meta["record_incomplete"][0]
    summary = summarize(folder)
    assert summary is not None and "chart.png" in summary.incomplete and summary.files == ["report.txt"]
    assert resume_problem(settings.runs_dir, controller.run_id) == ""  # state.json is whole


async def test_injected_disk_full_at_the_end_leaves_a_marker_history_sees(settings, monkeypatch):
    disk = _Disk()
    monkeypatch.setattr(records, "open", disk.open_log, raising=False)
    monkeypatch.setattr(records, "os", _OsWith(write=disk.write))
    real_open = open

    def copy_open(path, mode="r", *args, **kw):
        fh = real_open(path, mode, *args, **kw)
        return _CutShort(fh, 0) if disk.full and "w" in mode else fh

    monkeypatch.setattr(session_transfers, "open", copy_open, raising=False)
    monkeypatch.setattr(session_transfers, "_free_space", lambda folder: None)

    def fill() -> None:
        disk.full = True

    events, controller = await _run(settings, _responder(SMALL_FILES, at_last_turn=fill))
    folder = settings.runs_dir / controller.run_id
    notices = _notices(events)
    assert sum("run record stopped" in t for t in notices) == 1, notices
    final = [t for t in notices if "run record incomplete" in t]
    assert len(final) == 1 and "state.json not saved (No space left on device)" in final[0]
    assert "chart.png" in final[0] and "report.txt" in final[0]
    assert not (folder / "run.json").exists() and not (folder / "state.json").exists()
    assert (folder / INCOMPLETE_MARKER).is_file()
    assert _leftovers(folder) == [] and os.listdir(folder / "files") == []
    summary = summarize(folder)
    assert summary is not None and summary.incomplete and summary.reason == "interrupted"
    assert "run.json could not be written" in summary.incomplete
    with pytest.raises(ValueError, match="cannot be resumed: state.json is missing and the record is incomplete"):
        load_team_state(folder, controller.run_id)
    listed = await asyncio.to_thread(  # `sbteam-tui history` marks it too
        subprocess.run, [sys.executable, "-m", "tui", "history"], capture_output=True, text=True, timeout=60,
        env={**os.environ, "SBTEAM_HOME": str(settings.home)},
    )
    line = next(ln for ln in listed.stdout.splitlines() if ln.startswith(controller.run_id))
    assert "⚠ record incomplete: run.json could not be written" in line


async def test_run_json_that_cannot_be_written_leaves_a_marker_with_reasons(settings, monkeypatch):
    real = records.atomic_write

    def no_room_for_run_json(path, data):
        if Path(path).name == "run.json":
            raise OSError(errno.EIO, "Input/output error")
        return real(path, data)

    monkeypatch.setattr(records, "atomic_write", no_room_for_run_json)
    events, controller = await _run(settings, _responder(SMALL_FILES))
    folder = settings.runs_dir / controller.run_id
    assert not (folder / "run.json").exists()
    assert "run.json not saved (Input/output error)" in (folder / INCOMPLETE_MARKER).read_text()
    summary = summarize(folder)
    assert summary is not None and summary.reason == "terminate"
    assert "run.json not saved (Input/output error)" in summary.incomplete
    assert summary.resumable and resume_problem(settings.runs_dir, controller.run_id) == ""


async def test_headless_out_that_cannot_be_written_exits_1(tmp_path, capsys):
    settings = Settings.load(env={"SBTEAM_HOME": str(tmp_path / "home")}, env_file=None)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = await run_headless(settings, "the seed's example task", out_dir=blocker / "out", stdout=io.StringIO())
    err = capsys.readouterr().err
    assert code == 1, err
    assert "output is incomplete" in err
    # the run itself ended well and its record is whole: only --out failed
    (run,) = list_runs(settings.runs_dir)
    assert run.reason == "terminate" and run.incomplete == ""


# -- the pieces ---------------------------------------------------------------------------------


def test_atomic_write_failure_keeps_the_old_file_and_removes_the_temp(tmp_path, monkeypatch):
    target = tmp_path / "run.json"
    atomic_write(target, b'{"old": true}')
    def fail(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    for broken in ("write", "fsync", "replace"):
        with monkeypatch.context() as patch:
            patch.setattr(records, "os", _OsWith(**{broken: fail}))
            with pytest.raises(OSError):
                atomic_write(target, b'{"new": true}' * 1000)
        assert target.read_bytes() == b'{"old": true}', broken
        assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"], broken


def test_record_write_json_reports_and_cleans_up(tmp_path, monkeypatch):
    record = RunRecord(tmp_path / "runs", "20250101-000000-abcdef", [])

    def read_only(fd, data):
        raise OSError(errno.EROFS, "Read-only file system")

    with monkeypatch.context() as patch:
        patch.setattr(records, "os", _OsWith(write=read_only))
        assert record.write_json("state.json", {"a": 1}) == "cannot save state.json: Read-only file system"
    assert record.problems == ["state.json not saved (Read-only file system)"]
    assert sorted(p.name for p in record.dir.iterdir()) == ["events.jsonl"]
    record.close()


def test_read_events_skips_a_line_torn_inside_a_character(tmp_path):
    path = tmp_path / "events.jsonl"
    whole = ev.Message(agent="Planner", text="数据", seq=1).to_json().encode()
    torn = ev.Message(agent="Planner", text="数据分析", seq=2).to_json().encode()
    path.write_bytes(whole + b"\n" + torn[: torn.index("分".encode()) + 1])  # cut inside 分
    assert [e["seq"] for e in read_events(path)] == [1]
    assert summarize(tmp_path) is not None


async def test_history_marks_incomplete_runs_in_the_table(tmp_path):
    """HistoryScreen: the Reason cell of an incomplete record carries the mark; the run's view says why."""
    from textual.widgets import DataTable

    from tests.tui.conftest import SIZE, wait_for
    from tests.tui.fake_controller import FakeController, make_files, write_record
    from tui.app import SbteamApp
    from tui.screens.history import INCOMPLETE_MARK, HistoryScreen, RunViewScreen

    settings = Settings(demo=True, home=tmp_path / "home", sandbox="local")
    whole = write_record(settings.runs_dir, "20250102-093000-abc123", "whole")
    broken = write_record(settings.runs_dir, "20250103-093000-def456", "broken")
    meta = json.loads((broken / "run.json").read_text())
    meta["record_incomplete"] = ["state.json not saved (No space left on device)"]
    (broken / "run.json").write_text(json.dumps(meta))
    assert summarize(whole).incomplete == ""  # type: ignore[union-attr]
    assert "state.json" in summarize(broken).incomplete  # type: ignore[union-attr]

    files_dir = make_files(tmp_path / "sandbox")
    app = SbteamApp(settings, controller_factory=lambda s: FakeController(s, files_dir=files_dir), cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ctrl is not None and not app.warming)
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded)
        table = app.screen.query_one(DataTable)
        cells = {row.value: str(table.get_cell(row, "reason")) for row in table.rows}
        assert INCOMPLETE_MARK in cells["20250103-093000-def456"]
        assert INCOMPLETE_MARK not in cells["20250102-093000-abc123"]
        table.move_cursor(row=0)  # newest first: the incomplete one
        app.screen.action_open()
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen) and app.screen.loaded)
        label = str(app.screen.query_one("#run-label").render())
        assert INCOMPLETE_MARK in label and "state.json not saved" in label


async def test_copy_out_that_cannot_list_the_sandbox_says_so_instead_of_raising(settings, tmp_path):
    class Unlistable:
        kind = "local"

        class files:  # noqa: N801 - the sandbox's `files` attribute
            @staticmethod
            async def walk(path, max_entries):
                raise session_mod.SandboxError("the sandbox went away")

        async def kill(self):
            return None

    async def factory():
        return Unlistable()

    session = session_mod.CodeSession(settings, factory=factory)
    try:
        report = await session.download_all(tmp_path / "files")
    finally:
        await session.close()
    assert report.saved == [] and "the sandbox went away" in report.error
    assert "not copied" in report.incomplete and "the sandbox went away" in report.summary()
