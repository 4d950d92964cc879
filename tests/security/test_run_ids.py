"""Attack 7 (run ids): a run id given on the command line, in the app or in a file
reached outside `runs/`: `export ../../x` and `--resume ../../x` read whatever was
there. Every place that takes an id now refuses anything that is not one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from team.export import export_run
from team.history import load_events
from team.records import RunRecord, run_dir


def _planted(home: Path) -> Path:
    """A folder outside runs/ that looks like a run (what a traversal would reach)."""
    outside = home / "elsewhere"
    outside.mkdir(parents=True)
    (outside / "events.jsonl").write_text(json.dumps({"type": "message", "seq": 1, "agent": "x", "text": "secret"}) + "\n")
    (outside / "state.json").write_text("{}")
    (home / "runs").mkdir()
    return outside


@pytest.mark.parametrize("bad", ["../elsewhere", "../../etc", "/etc", "a/b", "..", ".", "", "x\n", "-rf"])
def test_every_reader_refuses_what_is_not_a_run_id(tmp_path: Path, bad: str) -> None:
    _planted(tmp_path)
    runs = tmp_path / "runs"
    for call in (
        lambda: run_dir(runs, bad),
        lambda: load_events(runs, bad),
        lambda: export_run(runs, bad, "md", tmp_path / "out.md"),
        lambda: RunRecord(runs, bad, []),
    ):
        with pytest.raises(ValueError, match="is not a run id"):
            call()
    assert not (tmp_path / "out.md").exists()


def test_real_run_ids_are_accepted(tmp_path: Path) -> None:
    assert run_dir(tmp_path, "20261201-141530-a1b2c3") == tmp_path / "20261201-141530-a1b2c3"


@pytest.mark.parametrize(
    "args",
    [
        ["export", "../elsewhere", "--format", "md"],
        ["run", "--demo", "--resume", "../elsewhere", "go on"],
    ],
    ids=["export", "resume"],
)
def test_the_cli_refuses_a_traversal_in_one_line(tmp_path: Path, args: list[str]) -> None:
    _planted(tmp_path)
    env = {"SBTEAM_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "tui", *args], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stderr
    assert "is not a run id" in proc.stderr.strip().splitlines()[-1] and "Traceback" not in proc.stderr
    assert "secret" not in proc.stdout + proc.stderr
