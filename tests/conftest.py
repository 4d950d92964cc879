"""Shared fixtures: every test gets its own SBTEAM_HOME and no real keys or .env."""

from __future__ import annotations

import pytest

from team.config import Settings

KEY_VARS = (
    "OPENAI_API_KEY", "OPENAI_API_BASE", "OPENAI_BASE_URL", "OPENAI_MODEL", "E2B_API_KEY",
    "SBTEAM_SANDBOX", "SBTEAM_PROMPTS", "SBTEAM_MAX_MESSAGES", "SBTEAM_TIMEOUT", "SBTEAM_HOME",
    "SBTEAM_MODELS", "SBTEAM_MAX_COST", "SBTEAM_TEXT_TOOLS", "SBTEAM_MAX_TOKENS", "SBTEAM_LIMITS",
    "SBTEAM_NETWORK", "SBTEAM_LOOP_LIMIT", "SBTEAM_PRICES",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """Keep the developer's keys, .env and run records out of every test."""
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SBTEAM_HOME", str(tmp_path / "sbteam-home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))  # no model file of the developer's
    yield


@pytest.fixture
def settings(tmp_path) -> Settings:
    """DEMO settings with the local sandbox and a private home."""
    return Settings.load(env={"SBTEAM_HOME": str(tmp_path / "home")}, env_file=None)
