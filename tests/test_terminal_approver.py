"""`run --approve` on a terminal: the answers, and what closed input means (issue 12, point 7)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from team.headless import CLOSED_REASON, TerminalApprover


def approver(*lines: str) -> tuple[TerminalApprover, io.StringIO, list[int]]:
    """An approver reading `lines` then EOF; also counts the reads."""
    feed = [line + "\n" for line in lines]
    reads = [0]

    def read() -> str:
        reads[0] += 1
        return feed.pop(0) if feed else ""

    out = io.StringIO()
    return TerminalApprover(read, out), out, reads


async def test_answers() -> None:
    ask, _, _ = approver("a")
    assert await ask("CodeAgent", "c1", "run_code", {"code": "1+1"}) == ("approve", None)
    ask, _, _ = approver("maybe", "r", "too risky")
    assert await ask("CodeAgent", "c1", "run_code", {"code": "1+1"}) == ("reject", "too risky")
    ask, _, _ = approver("e", "print('edited')", "x = 2", ".")
    assert await ask("CodeAgent", "c1", "run_code", {"code": "1+1"}) == ("edit", {"code": "print('edited')\nx = 2"})


async def test_input_closed_during_an_edit_rejects_once_and_asks_no_more() -> None:
    ask, out, reads = approver("e", "half an edit")
    assert await ask("CodeAgent", "c1", "write_file", {"content": "x"}) == ("reject", CLOSED_REASON)
    before = reads[0]
    for _ in range(3):  # later requests: rejected at once, no prompt, no read
        assert await ask("CodeAgent", "c2", "run_code", {"code": "2"}) == ("reject", CLOSED_REASON)
    assert reads[0] == before
    assert out.getvalue().count("input closed") == 1


async def test_input_closed_at_the_reason_is_not_sent_as_the_reason() -> None:
    ask, _, _ = approver("r")
    assert await ask("CodeAgent", "c1", "run_code", {"code": "1"}) == ("reject", CLOSED_REASON)


def test_headless_approve_with_closed_input_ends(tmp_path: Path) -> None:
    """The CLI with stdin already closed: no endless loop, one notice, the DEMO stops (exit 1)."""
    env = {"SBTEAM_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "tui", "run", "--demo", "--approve", "analyse"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("input closed: rejected") == 1
    assert "input closed" in done.stdout  # the model was told why
