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


def _loaded_after(code: str, packages: tuple[str, ...]) -> str:
    """Run `code` in a fresh interpreter: which of `packages` (or their submodules) it loaded."""
    script = (
        f"{code}\nimport sys\n"
        f"wanted = {packages!r}\n"
        "print(','.join(sorted(m for m in sys.modules if m in wanted or m.startswith(tuple(p + '.' for p in wanted)))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return (proc.stdout.strip().splitlines() or [""])[-1]


def test_every_engine_module_imports_without_textual():
    assert "team.run" in ENGINE_MODULES and "team.sandbox.local" in ENGINE_MODULES
    code = f"import importlib\nfor name in {ENGINE_MODULES!r}:\n    importlib.import_module(name)"
    loaded = _loaded_after(code, ("textual", "tui"))
    assert loaded == "", f"the engine pulled in: {loaded}"


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


def test_local_kernel_starts_without_the_e2b_sdk_or_autogen():
    """The app starts the sandbox right after its first paint, while AutoGen loads: the
    local kernel must start (and run code through the kernel client) without the E2B SDK
    (~0.4-1 s of imports; its models come with the first `run_code`) or AutoGen."""
    code = (
        "import asyncio, sys\n"
        "from team.config import Settings\n"
        "from team.session import CodeSession\n"
        "async def main():\n"
        "    session = CodeSession(Settings.load(env={'SBTEAM_SANDBOX': 'local'}, env_file=None))\n"
        "    await session.initialize()\n"
        "    try:\n"
        "        print(await session.sandbox.evaluate('1+1'))\n"
        "    finally:\n"
        "        await session.close()\n"
        "asyncio.run(main())\n"
        "heavy = ('e2b', 'e2b_code_interpreter', 'autogen_agentchat', 'autogen_core', 'textual')\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    value, loaded = (proc.stdout.splitlines() + ["", ""])[:2]
    assert value == "2"
    assert loaded == "", f"starting the local kernel imported: {loaded}"


def test_the_app_paints_before_its_heavy_imports():
    """What the first frame does not show is imported on first use: the engine's events (their
    frozen dataclasses, ~15 ms), the file pane (mounted after the first paint), the preview's
    DataTable, Pygments, textual-image, AutoGen and the E2B SDK. Each would add to the time
    before the first paint (bench/bench_tui.py)."""
    heavy = ("team.events", "team.run", "pygments", "textual_image", "textual.widgets._data_table",
             "textual.widgets._markdown", "autogen_agentchat", "autogen_core", "e2b", "e2b_code_interpreter",
             "openai", "PIL", "tui.widgets.file_tree", "tui.widgets.preview", "csv", "json")
    loaded = _loaded_after("import tui.cli, tui.app", heavy)
    assert loaded == "", f"imported before the first paint: {loaded}"


def test_panes_name_real_event_types():
    """A pane lists the events it takes by `type` name (tui/messages.py): a misspelt name would
    silently starve the pane, so every name must be an event type of the engine."""
    from team.events import EVENT_TYPES
    from tui.app import SbteamApp
    from tui.widgets.file_tree import FileTree
    from tui.widgets.status_bar import StatusBar

    for owner in (SbteamApp, FileTree, StatusBar):
        names = owner.ENGINE_EVENTS
        assert names and isinstance(names, frozenset), owner
        assert names <= set(EVENT_TYPES), f"{owner.__name__}: {sorted(names - set(EVENT_TYPES))}"
