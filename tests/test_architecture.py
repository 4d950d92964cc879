"""The architecture and the types hold, checked the way CI checks them: import-linter's
contract from pyproject.toml (`team` never imports `tui`, Textual or rich), mypy on `team/`
and `tui/`, and every `type: ignore` names its error code and says why on the same line."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IGNORE = re.compile(r"#\s*type:\s*ignore(?P<code>\[[^\]]*\])?(?P<rest>.*)$")


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is not installed in this venv (it is in the test extra)"
    return found


def test_engine_never_imports_the_ui_per_the_import_contract():
    proc = subprocess.run(
        [_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 kept, 0 broken" in proc.stdout


def test_mypy_is_clean_on_the_engine_and_the_app():
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_every_type_ignore_names_its_code_and_why():
    unexplained = []
    for path in sorted([*ROOT.joinpath("team").rglob("*.py"), *ROOT.joinpath("tui").rglob("*.py")]):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = IGNORE.search(line)
            if match and (not match["code"] or not re.search(r"\w", match["rest"])):
                unexplained.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not unexplained, "\n".join(unexplained)
