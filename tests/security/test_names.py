"""File names that are not UTF-8 (issue 12, point 4), legal on Linux: b'bad_\\xff\\xfe_name.txt'.

Inside the engine such a name is a str with surrogate escapes (what os.listdir
gives); it must survive end to end: the run goes on (the model gets run_code's
output), events.jsonl holds it as an escaped JSON string (valid UTF-8, read back
as the same name), files/ holds the file under its real bytes, history lists it,
people see it escaped (`\\xff`), and the app does not crash. For the local sandbox
and for E2B (whose envd API cannot carry such names: played here by a wrapper
over the local sandbox that fails exactly where envd and the SDK fail).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from team import events as ev
from team.config import Settings
from team.history import list_runs, summarize
from team.records import read_events
from team.run import RunController
from team.sandbox.base import SandboxError
from team.sandbox.local import LocalSandbox
from team.sanitize import shown_name
from team.scripted import Call, Say, ScriptedChatCompletionClient, Turn
from team.session import CodeSession
from tests.reliability.conftest import collect

from .conftest import needs_bwrap

pytestmark = pytest.mark.timeout(90)

RAW = b"bad_\xff\xfe_name.txt"
NAME = RAW.decode("utf-8", "surrogateescape")  # 'bad_\udcff\udcfe_name.txt', as os.listdir gives it
ESCAPED_JSON = b'"bad_\\udcff\\udcfe_name.txt"'  # how events.jsonl / run.json hold it
SHOWN = "bad_\\xff\\xfe_name.txt"  # how a person sees it
MAKE = (
    "with open(b'bad_\\xff\\xfe_name.txt', 'w') as f:\n"
    "    f.write('odd name, plain text\\n')\n"
    "print('made the odd file')"
)
CONTENT = b"odd name, plain text\n"


class Script:
    """Planner → CodeAgent: run_code(MAKE), list_files → Planner: TERMINATE; keeps what the model saw."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, turn: Turn):
        if turn.agent == "Planner":
            return Call("transfer_to_codeagent", thought="over to you") if turn.index == 0 else Say("Done. TERMINATE")
        self.seen = turn.tool_results()
        if turn.index == 0:
            return Call("run_code", {"code": MAKE})
        if turn.index == 1:
            return Call("list_files", {"path": "/"})
        return Call("transfer_to_planner")


async def _run(settings: Settings, *, record: bool = True, session: CodeSession | None = None):
    script = Script()
    controller = RunController(
        settings,
        model_factory=lambda: ScriptedChatCompletionClient(script),
        session=session,
        record=record,
    )
    try:
        controller.start("make a file with an odd name")
        events = await asyncio.wait_for(collect(controller), 60)
        await controller._await_drive()
    finally:
        if session is None:
            await controller.close()
    done = [e for e in events if isinstance(e, ev.RunFinished)]
    assert len(done) == 1 and done[0].reason == "terminate", done[0].message
    return events, script, controller


def _check_the_run_went_on(events: list[ev.Event], script: Script) -> None:
    results = {e.name: e for e in events if isinstance(e, ev.ToolResult)}
    assert "made the odd file" in results["run_code"].content and not results["run_code"].is_error
    assert SHOWN in results["list_files"].content and not results["list_files"].is_error
    # the model got run_code's output (and the listing), not an encoding error
    assert any("made the odd file" in r for r in script.seen), script.seen
    assert not any("codec" in r or "surrogates" in r for r in script.seen), script.seen
    changed = [e for e in events if isinstance(e, ev.FilesChanged)]
    assert changed and changed[0].added == [NAME]
    assert not [e for e in events if isinstance(e, ev.Notice)]  # nothing went wrong with the record


async def test_local_run_records_a_non_utf8_name_end_to_end(settings, tmp_path):
    events, script, controller = await _run(settings)
    _check_the_run_went_on(events, script)
    folder = settings.runs_dir / controller.run_id
    # events.jsonl: valid UTF-8, the name as an escaped JSON string, read back intact
    raw = (folder / "events.jsonl").read_bytes()
    raw.decode("utf-8")  # strict
    assert ESCAPED_JSON in raw
    assert any(e.get("added") == [NAME] for e in read_events(folder / "events.jsonl"))
    # files/: the file under its real byte name, whole
    assert os.listdir(os.fsencode(folder / "files")) == [RAW]
    with open(os.fsencode(folder / "files") + b"/" + RAW, "rb") as fh:
        assert fh.read() == CONTENT
    meta = json.loads((folder / "run.json").read_bytes())
    assert meta["record_incomplete"] == [] and meta["files_skipped"] == []
    # history lists it; a person sees it escaped
    summary = summarize(folder)
    assert summary is not None and summary.files == [NAME] and summary.incomplete == ""
    assert shown_name(summary.files[0]) == SHOWN
    cli = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tui.cli", "history"],
        env={**os.environ, "SBTEAM_HOME": str(settings.home)},
        capture_output=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    out = cli.stdout.decode("utf-8")  # strict: nothing unencodable reached stdout
    assert controller.run_id in out and "1 file " in out


async def test_local_run_without_records_goes_on_too(settings):
    events, script, _controller = await _run(settings, record=False)
    _check_the_run_went_on(events, script)
    assert not settings.runs_dir.exists() or not any(settings.runs_dir.iterdir())


def test_json_lines_of_such_names_round_trip():
    event = ev.FilesChanged(added=[NAME, "数据.csv"], seq=3)
    line = event.to_json()
    assert line.encode("utf-8") and "数据.csv" in line and '"bad_\\udcff\\udcfe_name.txt"' in line
    assert ev.event_from_dict(json.loads(line)) == event
    assert shown_name(NAME) == SHOWN and shown_name("数据.csv") == "数据.csv"


# -- E2B: envd's API and the SDK cannot carry such a name ------------------------------------------


class EnvdLikeFiles:
    """The local sandbox's files, failing where E2B's do on a name that is not UTF-8:
    a listing that holds one fails whole (envd's protojson refuses invalid UTF-8), and
    a path that holds one cannot be sent at all (the SDK encodes it as UTF-8)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.refused: list[str] = []

    def _check(self, path: str) -> None:
        try:
            path.encode("utf-8")
        except UnicodeEncodeError as exc:
            self.refused.append(path)
            raise SandboxError(f"E2B error: {exc}") from None

    async def walk(self, path: str, max_entries: int):
        entries, truncated = await self._inner.walk(path, max_entries)
        for entry in entries:
            try:
                entry.path.encode("utf-8")
            except UnicodeEncodeError:
                self.refused.append(entry.path)
                raise SandboxError("internal: string field contains invalid UTF-8") from None
        return entries, truncated

    def __getattr__(self, name: str):
        method = getattr(self._inner, name)

        async def checked(path: str, *args: Any, **kw: Any):
            self._check(path)
            return await method(path, *args, **kw)

        return checked


class EnvdLikeSandbox:
    """A LocalSandbox that says it is E2B and has EnvdLikeFiles."""

    kind = "e2b"

    def __init__(self, inner: LocalSandbox) -> None:
        self._inner = inner
        self.files = EnvdLikeFiles(inner.files)

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


@needs_bwrap  # the in-sandbox fallback reads /home/user, which is the sandbox folder only under bwrap
async def test_e2b_like_sandbox_lists_copies_and_uploads_such_names(settings, tmp_path):
    inner = await LocalSandbox.create()
    sandbox = EnvdLikeSandbox(inner)

    async def factory():
        return sandbox

    session = CodeSession(settings, factory=factory)
    try:
        events, script, controller = await _run(settings, session=session)
        _check_the_run_went_on(events, script)
        assert sandbox.files.refused  # the envd-like API did refuse the name: the fallbacks carried it
        folder = settings.runs_dir / controller.run_id
        assert os.listdir(os.fsencode(folder / "files")) == [RAW]
        with open(os.fsencode(folder / "files") + b"/" + RAW, "rb") as fh:
            assert fh.read() == CONTENT
        assert ESCAPED_JSON in (folder / "events.jsonl").read_bytes()
        # previews read it too; no transfer link is left behind
        assert await session.read_bytes(NAME, 100) == CONTENT
        host = os.fsencode(inner.root)
        assert sorted(os.listdir(host)) == [RAW]
        # resume's upload puts it back under its real name
        source = tmp_path / "saved"
        (source / "sub").mkdir(parents=True)
        with open(os.fsencode(source / "sub") + b"/" + RAW, "wb") as fh:
            fh.write(b"uploaded\n")
        assert await session.upload_dir(source) == 1
        with open(host + b"/sub/" + RAW, "rb") as fh:
            assert fh.read() == b"uploaded\n"
        assert sorted(os.listdir(host)) == [RAW, b"sub"]
        assert (await session.download_all(tmp_path / "out")).incomplete == ""
        assert sorted(os.listdir(os.fsencode(tmp_path / "out" / "sub"))) == [RAW]
    finally:
        await session.close()


async def test_app_shows_the_run_and_the_tree_without_crashing(tmp_path):
    """The TUI, driven by the real engine: the name arrives intact in FilesChanged and the
    file tree, the app keeps running, and history's read-only view lists the saved file."""
    from tests.tui.conftest import SIZE, wait_for
    from tui.app import SbteamApp
    from tui.screens.history import HistoryScreen, RunViewScreen
    from tui.widgets.file_tree import FileTree

    settings = Settings(demo=True, home=tmp_path / "home", sandbox="local")
    script = Script()

    def factory(s: Settings) -> RunController:
        return RunController(s, model_factory=lambda: ScriptedChatCompletionClient(script), demo_pace=0)

    app = SbteamApp(settings, task="make a file with an odd name", controller_factory=factory,
                    output_dir=tmp_path / "out", cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ctrl is not None and not app.warming, limit=30)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_state == "finished", limit=30)
        assert "finished: TERMINATE" in app.status.plain
        changed = [e for e in app.transcript.record if isinstance(e, ev.FilesChanged)]
        assert changed and changed[0].added == [NAME]
        await wait_for(pilot, lambda: NAME in app.query_one(FileTree).entries, limit=10)
        await pilot.pause()
        assert app.is_running
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen) and app.screen.loaded, limit=10)
        assert NAME in app.screen.query_one(FileTree).entries
        await pilot.pause()
        assert app.is_running
        ctrl = app.ctrl
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: not app.is_running, limit=20)
    assert not ctrl.session.initialized
    (run,) = list_runs(settings.runs_dir)
    assert run.files == [NAME]


@needs_bwrap
async def test_a_real_openai_client_is_told_the_name_escaped_and_can_read_it_back(tmp_path) -> None:
    """Through HTTP a lone surrogate cannot be sent: list_files says `\\xff`, read_file takes it back."""
    from tests.openai_server import FakeOpenAIServer, text, tool_call

    script = [
        tool_call("transfer_to_codeagent", {}),
        tool_call("run_code", {"code": MAKE}),
        tool_call("list_files", {"path": "/"}),
        tool_call("read_file", {"file_path": SHOWN}),
        tool_call("transfer_to_planner", {}),
        text("Done. TERMINATE"),
    ]
    with FakeOpenAIServer(script) as server:
        settings = Settings(
            openai_api_key="sk-names-0123456789abcdef", openai_api_base=server.base_url, openai_model="fake",
            home=tmp_path / "home", sandbox="local", model_retries=0,
        )
        controller = RunController(settings)
        try:
            controller.start("make an odd file and read it")
            events = await asyncio.wait_for(collect(controller), 60)
        finally:
            await controller.close()
        sent = json.dumps(server.requests)
    done = [e for e in events if isinstance(e, ev.RunFinished)][0]
    assert done.reason == "terminate", done.message
    results = {e.name: e.content for e in events if isinstance(e, ev.ToolResult)}
    assert SHOWN in results["list_files"]
    assert CONTENT.decode() in results["read_file"]
    assert "\\\\xff" in sent  # the model was told the escaped form
