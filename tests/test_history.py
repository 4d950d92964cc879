"""History: when a run started (run.json), counts in the singular, as a user sees them."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from textual.app import App
from textual.widgets import DataTable, Static

from team import events as ev
from team.history import list_runs, plural, summarize
from team.run import RunController
from team.scripted import Call, Say, ScriptedChatCompletionClient, Turn
from tests.test_run import collect, finished


def write_record(runs_dir: Path, run_id: str, *, elapsed: float, meta: dict | None = None, files=()) -> Path:
    folder = runs_dir / run_id
    folder.mkdir(parents=True)
    events = [
        ev.RunStarted(task=f"task of {run_id}", model="DEMO", demo=True, sandbox="local", isolation="bwrap",
                      max_messages=30, timeout=600),
        ev.RunFinished(reason="terminate", messages=3, elapsed=elapsed),
    ]
    with (folder / "events.jsonl").open("w", encoding="utf-8") as fh:
        for seq, event in enumerate(events):
            fh.write(json.dumps({**event.to_dict(), "run_id": run_id, "seq": seq}) + "\n")
    if meta is not None:
        (folder / "run.json").write_text(json.dumps(meta), encoding="utf-8")
    for name in files:
        (folder / "files").mkdir(exist_ok=True)
        (folder / "files" / name).write_text("x")
    return folder


def _slow_coder(turn: Turn):
    if turn.agent == "Planner":
        return Call("transfer_to_codeagent") if turn.index == 0 else Say("TERMINATE")
    if turn.index == 0:
        return Call("run_code", {"code": "import time\ntime.sleep(2.5)\nprint('slept')"})
    return Call("transfer_to_planner")


async def test_run_json_records_when_the_run_began_not_when_it_ended(settings):
    controller = RunController(settings, model_factory=lambda: ScriptedChatCompletionClient(_slow_coder))
    try:
        run_id = controller.start("sleep a little")
        events = await collect(controller)
    finally:
        await controller.close()
    assert finished(events)[0].reason == "terminate" and finished(events)[0].elapsed >= 2.5
    meta = json.loads((settings.runs_dir / run_id / "run.json").read_text(encoding="utf-8"))
    began, ended = datetime.fromisoformat(meta["started"]), datetime.fromisoformat(meta["finished"])
    launched = datetime.strptime(run_id[:15], "%Y%m%d-%H%M%S")  # the run id is stamped at launch
    assert abs((began - launched).total_seconds()) <= 1
    assert (ended - began).total_seconds() >= 2
    [summary] = list_runs(settings.runs_dir)
    assert summary.started == meta["started"]


def test_records_that_stored_the_end_time_as_started_show_the_start(tmp_path):
    # run.json of older versions: "started" was written when the run ended, no "finished"
    old = write_record(tmp_path, "20250101-100000-abcdef", elapsed=45.2,
                       meta={"run_id": "20250101-100000-abcdef", "started": "2025-01-01T10:00:45"})
    assert summarize(old).started == "2025-01-01T10:00:00"
    new = write_record(tmp_path, "20250101-110000-abcdef", elapsed=45.2,
                       meta={"started": "2025-01-01T11:00:00", "finished": "2025-01-01T11:00:45"})
    assert summarize(new).started == "2025-01-01T11:00:00"
    # a time that is not "id + duration" is taken as it is; no run.json: the id's time
    other = write_record(tmp_path, "20250101-120000-abcdef", elapsed=3, meta={"started": "2025-01-01T09:30:00"})
    assert summarize(other).started == "2025-01-01T09:30:00"
    bare = write_record(tmp_path, "20250101-130000-abcdef", elapsed=3)
    assert summarize(bare).started == "2025-01-01T13:00:00"
    odd = write_record(tmp_path, "run-001", elapsed=3)
    assert summarize(odd).started == ""  # not a made-up date


def test_plural():
    assert [plural(n, "run") for n in (0, 1, 2)] == ["0 runs", "1 run", "2 runs"]


def test_cli_history_counts_files_in_the_singular(tmp_path, monkeypatch, capsys):
    from tui.cli import main

    home = tmp_path / "home"
    write_record(home / "runs", "20250101-100000-aaaaaa", elapsed=1, files=["a.csv"])
    write_record(home / "runs", "20250102-100000-bbbbbb", elapsed=1, files=["a.csv", "b.png"])
    monkeypatch.setenv("SBTEAM_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    assert main(["history"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "  2 files  " in lines[0] and "  1 file   " in lines[1] and "1 files" not in lines[1]
    assert lines[0].index("2 files") == lines[1].index("1 file")  # the columns stay aligned
    assert len(lines[0].split("task of")[0]) == len(lines[1].split("task of")[0])


class _HistoryApp(App[None]):
    def __init__(self, runs_dir: Path) -> None:
        super().__init__()
        self.runs_dir = runs_dir

    def on_mount(self) -> None:
        from tui.screens.history import HistoryScreen

        self.push_screen(HistoryScreen(self.runs_dir))


async def test_history_screen_says_1_run_and_shows_the_start_time(tmp_path):
    from tui.screens.history import HistoryScreen, RunViewScreen

    write_record(tmp_path, "20250101-100000-abcdef", elapsed=45.2, files=["only.csv"],
                 meta={"started": "2025-01-01T10:00:45"})  # an older record: the end time as "started"
    app = _HistoryApp(tmp_path)
    async with app.run_test(size=(140, 30)) as pilot:
        for _ in range(100):
            if isinstance(app.screen, HistoryScreen) and app.screen.loaded:
                break
            await pilot.pause(0.02)
        screen = app.screen
        assert str(screen.query_one("#history-count", Static).render()) == "1 run"
        row = [str(c) for c in screen.query_one(DataTable).get_row_at(0)]
        assert row[0] == "2025-01-01 10:00"
        screen.apply_filter("task")
        assert str(screen.query_one("#history-count", Static).render()) == "1 of 1 run"
        screen.open_run("20250101-100000-abcdef")
        await pilot.pause()
        assert isinstance(app.screen, RunViewScreen)
        label = str(app.screen.query_one("#run-label", Static).render())
        assert "2025-01-01 10:00" in label and "1 file" in label and "1 files" not in label


def test_a_run_being_written_shows_running_and_a_dead_one_interrupted(tmp_path):
    """`history` while another process runs: "running", not "interrupted 0.0 s"; once the
    writer is gone without a RunFinished (a crash), "interrupted"."""
    import subprocess
    import sys
    import textwrap

    runs = tmp_path / "runs"
    writer = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from team import events as ev
        from team.records import RunRecord
        record = RunRecord(Path({str(runs)!r}), "20261201-120000-abcdef", [])
        record.append(ev.RunStarted(task="t", model="m", demo=True, sandbox="local", isolation="none",
                                    max_messages=30, timeout=600, run_id="20261201-120000-abcdef"))
        record.sync()
        print("ready", flush=True)
        sys.stdin.read()
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert summarize(runs / "20261201-120000-abcdef").reason == "running"
    finally:
        proc.kill()
        proc.wait()
    assert summarize(runs / "20261201-120000-abcdef").reason == "interrupted"
