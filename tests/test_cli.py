"""The real `sbteam-tui` console script, run as a user would from a shell."""

from __future__ import annotations

import json
import os
import select
import selectors
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from team.demo import FILES
from team.events import EVENT_TYPES

EXE = shutil.which("sbteam-tui") or "sbteam-tui"  # installed by `pip install -e .` (README)

TASK = "Generate 100 random points, compute statistics, draw a histogram and find outliers"


def clean_env(home: Path) -> dict[str, str]:
    """The parent's environment without any model/sandbox keys, with a private SBTEAM_HOME."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "E2B_", "SBTEAM_")) and k != "PYTEST_CURRENT_TEST"
    }
    clean["SBTEAM_HOME"] = str(home / "home")
    clean["XDG_DATA_HOME"] = str(home / "xdg")
    clean["PYTHONUNBUFFERED"] = "1"
    return clean


def new_workdir(base: Path) -> Path:
    """An empty working folder (no .env) for the process."""
    folder = base / "cwd"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def workdir(tmp_path) -> Path:
    return new_workdir(tmp_path)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return clean_env(tmp_path)


def run_cli(
    args, env, cwd, stdin: str = "", timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args], env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=timeout
    )


def strict_json(line: str) -> dict:
    """json.loads that refuses NaN/Infinity (not JSON; other tools choke on them)."""

    def refuse(name: str):
        raise ValueError(f"non-JSON constant {name}")

    value = json.loads(line, parse_constant=refuse)
    assert isinstance(value, dict)
    return value


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and 'File "' not in stderr, stderr


# -- a whole demo run --------------------------------------------------------------------------


class Finished:
    """A finished CLI process, as a test sees it."""

    def __init__(self, popen: subprocess.Popen[str], env: dict[str, str], cwd: Path) -> None:
        self.stdout, self.stderr = popen.communicate(timeout=120)
        self.returncode = popen.returncode
        self.env, self.cwd = env, cwd


@pytest.fixture(scope="module")
def whole_runs(tmp_path_factory) -> dict[str, Finished]:
    """Two complete demo runs, started together to save wall time."""
    specs = {
        "demo": (["run", "--demo", TASK, "--out", "d", "--json"], {}),
        "limit": (["run", "--demo", TASK, "--json"], {"SBTEAM_MAX_MESSAGES": "3"}),
    }
    started = {}
    for name, (args, extra) in specs.items():
        base = tmp_path_factory.mktemp(name)
        env, cwd = {**clean_env(base), **extra}, new_workdir(base)
        popen = subprocess.Popen(
            [EXE, *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started[name] = (popen, env, cwd)
    return {name: Finished(*spec) for name, spec in started.items()}


def test_demo_run_json_out_dir(whole_runs):
    result = whole_runs["demo"]
    env, workdir = result.env, result.cwd
    assert result.returncode == 0, result.stderr[-2000:]
    no_traceback(result.stderr)
    out = workdir / "d"
    for name in FILES:
        assert (out / name).is_file(), name
    assert (out / "data_histogram.png").read_bytes().startswith(b"\x89PNG")
    assert len((out / "data_points.csv").read_text().splitlines()) == 100
    assert set(json.loads((out / "data_stats.json").read_text())) == {"mean", "std", "max", "min"}
    assert set(json.loads((out / "outlier_analysis.json").read_text())) == {"outliers", "count"}

    lines = result.stdout.splitlines()
    assert lines, "no events on stdout"
    events = [strict_json(line) for line in lines]  # every line is one JSON event
    assert all(e.get("type") in EVENT_TYPES for e in events)
    assert (
        events[0]["type"] == "run_started"
        and events[0]["task"] == TASK
        and events[0]["demo"] is True
    )
    assert events[0]["limits"].startswith("memory=")  # the sandbox's limits, and how they hold
    ready = [e for e in events if e["type"] == "sandbox_status" and e["state"] == "ready"]
    assert all("memory by " in e["limits"] for e in ready)
    finished = [e for e in events if e["type"] == "run_finished"]
    assert len(finished) == 1 and finished[0]["reason"] == "terminate"
    after = events[events.index(finished[0]) + 1 :]  # its FINISHED state, then the files saved into the record
    assert [e["type"] for e in after] == ["run_state", "outputs_saved"] and after[-1]["files"] >= len(FILES)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert len({e["run_id"] for e in events}) == 1
    handoffs = [(e["source"], e["target"]) for e in events if e["type"] == "handoff"]
    assert handoffs[0] == ("Planner", "CodeAgent") and handoffs[-1] == ("AnalystAgent", "Planner")

    # the run record in SBTEAM_HOME holds the same events, and the files
    record = Path(env["SBTEAM_HOME"]) / "runs" / events[0]["run_id"]
    recorded = [strict_json(line) for line in (record / "events.jsonl").read_text().splitlines()]
    assert [r["seq"] for r in recorded] == [e["seq"] for e in events]
    assert all((record / "files" / name).is_file() for name in FILES)
    # DEMO says so, and how to use a real model (on stderr, so stdout stays pure JSON)
    assert "DEMO" in result.stderr and "OPENAI_API_KEY" in result.stderr


def test_a_limit_ends_with_exit_1(whole_runs):
    result = whole_runs["limit"]
    assert result.returncode == 1, result.stderr[-2000:]
    no_traceback(result.stderr)
    finished = [
        e for e in map(strict_json, result.stdout.splitlines()) if e["type"] == "run_finished"
    ]
    assert [f["reason"] for f in finished] == ["max_messages"]
    assert finished[0]["messages"] == 3


# -- bad input and configuration: exit 2, one clear line, no traceback --------------------------


@pytest.mark.parametrize("task", ["", "   "])
def test_empty_task_exits_2(env, workdir, task):
    result = run_cli(["run", "--demo", task], env, workdir)
    assert result.returncode == 2
    assert "task is empty" in result.stderr
    assert result.stdout == ""
    no_traceback(result.stderr)


def test_empty_task_from_stdin_exits_2(env, workdir):
    result = run_cli(["run", "--demo", "-"], env, workdir, stdin="\n")
    assert result.returncode == 2 and "task is empty" in result.stderr


def test_missing_task_argument_exits_2(env, workdir):
    result = run_cli(["run"], env, workdir)
    assert result.returncode == 2 and "task" in result.stderr
    no_traceback(result.stderr)


def config_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "SBTEAM_SANDBOX" in line]


def test_bad_sandbox_in_environment_exits_2(env, workdir):
    result = run_cli(["run", TASK], {**env, "SBTEAM_SANDBOX": "docker"}, workdir)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = config_lines(result.stderr)
    assert (
        len(lines) == 1
        and "SBTEAM_SANDBOX must be 'local' or 'e2b'" in lines[0]
        and "docker" in lines[0]
    )
    no_traceback(result.stderr)


def test_bad_sandbox_in_dotenv_exits_2(env, workdir):
    (workdir / ".env").write_text("SBTEAM_SANDBOX=docker\n")
    result = run_cli(["run", "--demo", TASK], env, workdir)
    assert result.returncode == 2
    lines = config_lines(result.stderr)
    assert len(lines) == 1 and "SBTEAM_SANDBOX must be 'local' or 'e2b'" in lines[0]
    no_traceback(result.stderr)


def test_bad_sandbox_option_exits_2(env, workdir):
    result = run_cli(["run", "--sandbox", "docker", TASK], env, workdir)
    assert result.returncode == 2 and "docker" in result.stderr
    no_traceback(result.stderr)


def test_help(env, workdir):
    result = run_cli(["--help"], env, workdir)
    assert result.returncode == 0
    for word in ("sbteam-tui", "--task", "--demo", "run", "doctor"):
        assert word in result.stdout
    result = run_cli(["run", "--help"], env, workdir)
    assert result.returncode == 0
    for word in ("TASK", "--out", "--json", "--sandbox", "--demo"):
        assert word in result.stdout


def test_top_level_help_lists_every_command(env, workdir):
    from tui.cli import SUBCOMMANDS

    result = run_cli(["--help"], env, workdir)
    assert result.returncode == 0
    listed = [line.split()[1] for line in result.stdout.splitlines() if line.strip().startswith("sbteam-tui ")]
    assert sorted(listed) == sorted(SUBCOMMANDS) == ["batch", "doctor", "eval", "export", "history", "models", "run"]
    for command in SUBCOMMANDS:  # and each of them answers its own --help
        sub = run_cli([command, "--help"], env, workdir)
        assert sub.returncode == 0 and f"sbteam-tui {command}" in sub.stdout


# -- a .env that is not UTF-8 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code"),
    [(["run", "--demo", TASK], 2), (["doctor"], 1), (["history"], 2), (["export", "x"], 2)],
    ids=["run", "doctor", "history", "export"],
)
def test_undecodable_dotenv_is_one_line_naming_it_never_a_traceback(env, workdir, args, code):
    (workdir / ".env").write_bytes("OPENAI_MODEL=modèle\n".encode("latin-1"))
    result = run_cli(args, env, workdir)
    assert result.returncode == code
    no_traceback(result.stderr + result.stdout)
    lines = [line for line in (result.stderr + result.stdout).splitlines() if ".env" in line and "UTF" in line]
    assert len(lines) == 1 and "neither UTF-8 nor UTF-16" in lines[0] and "save it as UTF-8" in lines[0]


def test_utf16_dotenv_from_powershell_is_read(env, workdir):
    (workdir / ".env").write_bytes("SBTEAM_SANDBOX=docker\r\n".encode("utf-16"))  # BOM + UTF-16 LE
    result = run_cli(["run", "--demo", TASK], env, workdir)
    assert result.returncode == 2
    lines = config_lines(result.stderr)
    assert len(lines) == 1 and "SBTEAM_SANDBOX must be 'local' or 'e2b'" in lines[0] and "docker" in lines[0]
    no_traceback(result.stderr)
    (workdir / ".env").write_bytes("SBTEAM_PROMPTS=en\r\n".encode("utf-16"))
    result = run_cli(["history"], env, workdir)
    assert result.returncode == 0 and "no runs in" in result.stderr
    no_traceback(result.stderr)


# -- Ctrl+C: graceful, then forced; exit 130 --------------------------------------------------


class Proc:
    """A running CLI whose stdout is read line by line with a deadline.

    Unbuffered binary pipes: `readline` takes exactly one line off the pipe, so
    `communicate` afterwards gets everything that follows (nothing stuck in a buffer).
    """

    def __init__(self, args, env, cwd) -> None:
        self.p = subprocess.Popen(
            [EXE, *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.p.stdout, selectors.EVENT_READ)
        self.lines: list[str] = []
        self.err = b""

    def readline(self, timeout: float) -> str | None:
        if not self.sel.select(timeout):
            return None
        line = self.p.stdout.readline().decode()
        if line:
            self.lines.append(line)
        return line

    def wait_stderr(self, needle: str, timeout: float) -> bool:
        """Read stderr until `needle` shows up (kept for `finish`)."""
        deadline = time.monotonic() + timeout
        while needle not in self.err.decode(errors="replace"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.p.stderr], [], [], max(0.0, left))
            if not ready:
                return False
            chunk = os.read(self.p.stderr.fileno(), 4096)
            if not chunk:
                return False
            self.err += chunk
        return True

    def finish(self, timeout: float) -> tuple[int, str, str]:
        out, err = self.p.communicate(timeout=timeout)
        return self.p.returncode, "".join(self.lines) + out.decode(), (self.err + err).decode()

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def test_sigint_graceful_then_forced_with_exit_130(tmp_path):
    """Ctrl+C once: a graceful stop; twice: forced. Both exit 130 promptly, no traceback.

    The two processes run side by side to save wall time."""
    once = Proc(
        ["run", "--demo", TASK, "--json"], clean_env(tmp_path / "a"), new_workdir(tmp_path / "a")
    )
    twice = Proc(["run", "--demo", TASK], clean_env(tmp_path / "b"), new_workdir(tmp_path / "b"))
    try:
        first = once.readline(timeout=60)
        assert first and strict_json(first)["type"] == "run_started"  # the first event line
        once.p.send_signal(signal.SIGINT)
        t_once = time.monotonic()
        first = twice.readline(timeout=60)
        assert first and first.startswith("🚀 run")  # the readable transcript's first line
        twice.p.send_signal(signal.SIGINT)
        # the second press once the first has been seen (two signals sent back to
        # back to a busy process can merge into one)
        assert twice.wait_stderr("stopping", timeout=10)
        twice.p.send_signal(signal.SIGINT)
        t_twice = time.monotonic()
        code_once, out_once, err_once = once.finish(timeout=30)
        took_once = time.monotonic() - t_once
        code_twice, out_twice, err_twice = twice.finish(timeout=30)
        took_twice = time.monotonic() - t_twice
    finally:
        once.kill()
        twice.kill()

    assert code_once == 130, err_once[-2000:]
    assert took_once < 10
    no_traceback(err_once)
    assert "stopping" in err_once and "forcing" not in err_once
    events = [strict_json(line) for line in out_once.splitlines()]
    assert [e["reason"] for e in events if e["type"] == "run_finished"] == ["stopped"]

    assert code_twice == 130, err_twice[-2000:]
    assert took_twice < 10
    no_traceback(err_twice)
    assert "forcing stop" in err_twice
    assert out_twice.count("🏁 finished:") == 1 and "🏁 finished: STOPPED" in out_twice
    assert "\x1b[" not in out_twice  # not a terminal: no colour codes
