"""`team` is the engine: it must never import Textual or the app, so it stays usable headless
and the app can paint before the engine's heavy imports (Harlequin's rule, enforced).
Rich is allowed in `sys.modules` only because third-party dependencies (the E2B SDK) pull it
in; the engine's own source never imports it."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import team

ENGINE_MODULES = sorted(
    m.name for m in pkgutil.walk_packages(team.__path__, prefix="team.") if "._" not in m.name
)


def test_every_engine_module_imports_without_textual():
    assert "team.run" in ENGINE_MODULES and "team.sandbox.local" in ENGINE_MODULES
    code = (
        "import importlib, sys\n"
        f"for name in {ENGINE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'tui'))\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"the engine pulled in: {proc.stdout.strip()}"


def test_headless_commands_do_not_import_textual():
    code = (
        "import sys\n"
        "from tui import cli\n"
        "from team import headless, doctor, export, batch, history\n"
        "print('textual' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr


def test_engine_source_never_imports_ui_libraries():
    from pathlib import Path

    root = Path(team.__file__).parent
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip().startswith(("import textual", "from textual", "import rich", "from rich", "from tui", "import tui"))
    ]
    assert offenders == []
