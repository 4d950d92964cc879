"""The README's commands are what CI runs, and they install exactly the locked packages."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def _locked() -> dict[str, str]:
    """name -> version for every lock line that applies to this interpreter and platform."""
    pins: dict[str, str] = {}
    for raw in (REPO / "requirements.lock").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        spec, _, marker = line.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate():
            continue
        name, _, version = spec.strip().partition("==")
        assert version, f"requirements.lock line is not an exact pin: {raw!r}"
        pins[canonicalize_name(name)] = version.strip()
    return pins


def test_ci_runs_the_readmes_test_command_exactly() -> None:
    readme = (REPO / "README.md").read_text()
    test_command = next(b for b in _bash_blocks(readme) if "pytest" in b)
    ci_lines = [ln for ln in (REPO / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert ci_lines[-1] == test_command


def test_the_readme_installs_from_the_lock_file() -> None:
    blocks = _bash_blocks((REPO / "README.md").read_text())
    install = [b for b in blocks if "pip install" in b]
    assert len(install) >= 2 and all("-c requirements.lock" in b for b in install[:2])


def test_every_declared_dependency_is_locked() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"]) + list(project["optional-dependencies"]["test"])
    pins = _locked()
    for text in declared:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is declared in pyproject.toml but not locked"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"lock pins {req.name}=={pins[name]}, outside pyproject's {req.specifier}"
        )


def test_installed_packages_are_the_locked_ones() -> None:
    """CI installs with -c requirements.lock into a new venv: every locked package must match."""
    mismatched = []
    for name, version in _locked().items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # locked for an extra or a platform this install did not need
        if installed != version:
            mismatched.append(f"{name}: installed {installed}, locked {version}")
    assert not mismatched, "; ".join(mismatched)


def test_the_readmes_variables_are_the_tables() -> None:
    """The configuration table is generated from team/config.py (`python -m team.config --write`):
    every variable of the table is in it, with the table's default."""
    from team.config import BENCH, VARIABLES
    from team.config_docs import README_BEGIN, README_END, readme_table

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme.count(README_BEGIN) == 1 and readme.count(README_END) == 1
    section = readme.split(README_BEGIN, 1)[1].split(README_END, 1)[0].strip()
    assert section == readme_table(), "run: python -m team.config --write"
    rows = {row.split("`")[1]: row for row in section.splitlines()[2:]}
    for var in VARIABLES:
        if var.scope != BENCH:
            assert rows[var.name].rstrip(" |").endswith(var.shown or f"`{var.default}`"), var.name
