"""Issue 12, point 2: a key split across streamed chunks is never shown or stored whole.

A model (or an echoing proxy) streams the API key in 5-character pieces, and code in
the sandbox prints another secret of the user's `.env` piece by piece. No
concatenation of what reaches stdout, `--json`, `events.jsonl` or the app's
transcript may contain either.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from team.config import Settings
from team.records import read_events
from tests.openai_server import FakeOpenAIServer, Reply, tool_call
from tests.tui.conftest import wait_for
from tui.app import SbteamApp

KEY = "sk-split-0123456789abcdefghijKLMNOP"
TOKEN = "ghp_SplitTokenFromDotEnv0123456789"  # any *_TOKEN the user keeps in .env


def _pieces(text: str, size: int = 5) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


PRINT_IN_PIECES = (
    "import sys, time\n"
    f"for part in {_pieces(TOKEN, 4)!r}:\n"
    "    sys.stdout.write(part); sys.stdout.flush(); time.sleep(0.25)\n"
    "print()"
)


def _script() -> list:
    said = f"Your key is {KEY} and the token {TOKEN}. TERMINATE"
    return [
        tool_call("transfer_to_codeagent", {}),
        tool_call("run_code", {"code": PRINT_IN_PIECES}),
        tool_call("transfer_to_planner", {}),
        Reply(content=said, chunks=_pieces(said)),
    ]


def _streams(events: list[dict]) -> list[str]:
    """Every concatenation a reader could make: token deltas per message, output per call."""
    joined: dict[tuple[str, str], str] = defaultdict(str)
    for e in events:
        if e["type"] == "token_delta":
            joined[("t", e["message_id"])] += e["text"]
        elif e["type"] == "sandbox_output":
            joined[("o", e["call_id"] + e["stream"])] += e["text"]
    return list(joined.values())


def _run(args: list[str], server: FakeOpenAIServer, tmp_path: Path) -> subprocess.CompletedProcess:
    (tmp_path / ".env").write_text(f"OPENAI_API_KEY={KEY}\nGITHUB_TOKEN={TOKEN}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "E2B_", "SBTEAM_"))}
    env.update(OPENAI_API_BASE=server.base_url, OPENAI_MODEL="fake-model", SBTEAM_HOME=str(tmp_path / "home"))
    return subprocess.run(
        [sys.executable, "-m", "tui", "run", *args, "look at the data"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )


def test_headless_readable_and_json_never_show_a_split_key(tmp_path: Path) -> None:
    for mode in ("readable", "json"):
        folder = tmp_path / mode
        folder.mkdir()
        with FakeOpenAIServer(_script()) as server:
            done = _run(["--json"] if mode == "json" else [], server, folder)
        out = done.stdout + done.stderr
        assert done.returncode == 0, done.stderr
        assert KEY not in out and TOKEN not in out
        assert "***" in out  # it was said, and scrubbed
        recorded = [e for run in (folder / "home" / "runs").iterdir() for e in read_events(run / "events.jsonl")]
        streams = _streams(recorded)
        assert any("***" in s for s in streams)
        assert not any(KEY in s or TOKEN in s for s in streams)
        if mode == "json":
            shown = _streams([json.loads(line) for line in done.stdout.splitlines()])
            assert shown and not any(KEY in s or TOKEN in s for s in shown)


async def test_the_app_never_shows_a_split_key(tmp_path: Path) -> None:
    with FakeOpenAIServer(_script()) as server:
        settings = Settings(
            openai_api_key=KEY, openai_api_base=server.base_url, openai_model="fake-model",
            home=tmp_path / "home", sandbox="local", model_retries=0, other_secrets=(TOKEN,),
        )
        app = SbteamApp(settings, output_dir=tmp_path / "out", cursor_blink=False)
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_for(pilot, lambda: app.ctrl is not None, limit=30)
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.run_state == "finished", limit=90)
            await app.transcript.flush_now()
            record = [e.to_dict() if hasattr(e, "to_dict") else json.loads(e.to_json()) for e in app.transcript.record]
            screen = app.export_screenshot()
    assert not any(KEY in s or TOKEN in s for s in _streams(record))
    assert KEY not in screen and TOKEN not in screen
