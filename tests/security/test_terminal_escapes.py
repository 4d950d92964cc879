"""Terminal escape injection (issue #12.1): what reaches a person is inert.

A model whose text, tool code, code output, file names and file contents carry
terminal control sequences — OSC 52 (set the clipboard), OSC 0 (retitle the
window), CSI 2J (clear the screen), a DCS query (the terminal's answer would be
typed into the app), a lone ESC, a C1 CSI (U+009B), a bidi override, a lone CR —
is played by a local OpenAI-compatible server (tests/openai_server.py) against
the real engine and the real local sandbox, then:

- the headless readable stream (`sbteam-tui run`, a real process): none of those
  bytes on stdout/stderr, their visible forms (`␛]52;…`, `\\x9b`, `\\u202e`) there;
- `--json`, `events.jsonl` and the notebook export: the exact text, JSON-escaped;
- the Markdown export and `sbteam-tui history`: inert bytes;
- the app under Pilot (transcript, tool output, file tree, previews, status bar,
  toasts, approval dialog, history): no raw control character in what any
  widget renders or in the bytes a full repaint sends to the terminal — with the
  app's last-resort line filter switched off, so every path is inert by itself.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
from pathlib import Path

import pytest

from team import events as ev
from team.sanitize import CONTROLS, InertStream, inert
from tests.openai_server import FakeOpenAIServer, Reply, text, tool_call
from tests.test_cli import EXE, clean_env, new_workdir

pytestmark = pytest.mark.timeout(120)

# -- the attack ------------------------------------------------------------------------------------

OSC52 = "\x1b]52;c;cHduZWQ=\x07"  # base64 "pwned" into the clipboard
OSC0 = "\x1b]0;pwned-title\x07"
CLEAR = "\x1b[2J"
DCS = "\x1bP+q544e\x1b\\"  # XTGETTCAP: the terminal answers on the app's input
ESC = "\x1b"
C1_CSI = "\x9b2J"  # the one-byte CSI of terminals that honour C1
BIDI = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "\u202egnp.exe" reads "exe.png"
CR = "\r"

ATTACK = f"clip{OSC52} title{OSC0} clear{CLEAR} dcs{DCS} esc{ESC} c1{C1_CSI} bidi{BIDI}gnp.exe cr{CR}over"

# What must never reach a terminal (as the terminal receives it: UTF-8 bytes) …
RAW = {
    "OSC 52": b"\x1b]52",
    "OSC 0": b"\x1b]0;",
    "CSI 2J": b"\x1b[2J",
    "DCS": b"\x1bP",
    "C1 CSI": "\x9b".encode(),  # b"\xc2\x9b"
    "bidi override": BIDI.encode(),
    "BEL": b"\x07",
    "CR": b"\r",
}
# … and what is shown instead.
VISIBLE = {
    "OSC 52": "clip␛]52;c;cHduZWQ=␇",
    "OSC 0": "title␛]0;pwned-title␇",
    "CSI 2J": "clear␛[2J",
    "DCS": "dcs␛P+q544e",
    "lone ESC": "esc␛ ",
    "C1 CSI": "c1\\x9b2J",
    "bidi override": "bidi\\u202egnp.exe",
    "CR": "cr␍over",
}

TASK = f"Task with an attack: {ATTACK}"
PLAN = f"Plan line1\r\nline2 {ATTACK} PLAN-MARK"
FINAL = f"Done: {ATTACK} TERMINATE"
MODEL = f"test-model{OSC0}"
KEY = "sk-test-escape-0123456789abcdef"
NAME = f"evil{OSC0}{CLEAR}{BIDI}.txt"  # a file name with escapes
RAW_NAME = b"raw\xff\x1b[2J.txt"  # and one that is not UTF-8 either
CSV = f"name{CLEAR}x,value\n{ATTACK.replace(CR, '')},1\n"  # (csv reads a CR as a line end)
CODE = "\n".join([
    f"# src: {ATTACK.replace(CR, '')}",  # the code itself carries raw escapes too (a CR would end the comment)
    "import json, sys",
    f"A = {ATTACK!r}",
    'print("out:" + A)',
    'sys.stderr.write("err:" + A + "\\n")',
    f"open({NAME!r}, 'w').write(A)",
    f"open('evil.csv', 'w').write({CSV!r})",
    "open('evil.json', 'w').write(json.dumps({'k': A}, ensure_ascii=False))",
    "open('evil.md', 'w').write('# Notes\\n\\n' + A + '\\n')",
])
# After list_files: a name that is not UTF-8 in a tool result sent to the model ends the run
# today (the OpenAI client cannot encode the lone surrogate; see the report of issue #12.1).
CODE_RAW_NAME = f"open({RAW_NAME!r}, 'wb').write(b'x')"


def _split(text: str) -> list[str]:
    """Chunks cut inside every escape sequence and inside the CRLF."""
    cuts = sorted({i + 1 for i, ch in enumerate(text) if ch in "\x1b\r\x9b"})
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True) if text[a:b]]


def tool_names(req: dict) -> set[str]:
    return {t["function"]["name"] for t in req.get("tools") or []}


def calls_so_far(req: dict) -> list[str]:
    return [
        call["function"]["name"]
        for message in req["messages"]
        if message.get("role") == "assistant"
        for call in message.get("tool_calls") or []
    ]


def hostile_model(req: dict) -> Reply:
    """Planner: a streamed plan, then hands over; CodeAgent: run_code, list_files, hands back;
    Planner: TERMINATE. Every text carries the attack."""
    names, done = tool_names(req), calls_so_far(req)
    said_plan = any(
        m.get("role") == "assistant" and "PLAN-MARK" in str(m.get("content") or "") for m in req["messages"]
    )
    if "transfer_to_codeagent" in names:  # the Planner
        if "transfer_to_codeagent" in done:
            return text(FINAL, chunks=_split(FINAL))
        if said_plan:
            return tool_call("transfer_to_codeagent", {})
        return text(PLAN, chunks=_split(PLAN))
    if "run_code" not in done:
        return tool_call("run_code", {"code": CODE})
    if "list_files" not in done:
        return tool_call("list_files", {"path": "/home/user"})
    if done.count("run_code") < 2:
        return tool_call("run_code", {"code": CODE_RAW_NAME})
    return tool_call("transfer_to_planner", {})


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer(script=hostile_model, api_key=KEY) as srv:
        yield srv


def assert_inert_bytes(data: bytes, where: str) -> None:
    for name, raw in RAW.items():
        assert raw not in data, f"{name} reached {where} raw"
    esc = data.find(b"\x1b")
    assert esc < 0, f"an ESC reached {where}: {data[max(0, esc - 40):esc + 40]!r}"
    found = CONTROLS.search(data.decode("utf-8"))
    assert found is None, f"{found.group()!r} reached {where}"


def assert_visible(shown: str, where: str, names: tuple[str, ...] = tuple(VISIBLE)) -> None:
    missing = [n for n in names if VISIBLE[n] not in shown]
    assert not missing, f"{where} does not show {missing}"


# -- the sanitiser itself --------------------------------------------------------------------------


def test_inert_rules():
    shown = inert(ATTACK)
    assert shown == (
        "clip␛]52;c;cHduZWQ=␇ title␛]0;pwned-title␇ clear␛[2J dcs␛P+q544e␛\\ esc␛ c1\\x9b2J "
        "bidi\\u202egnp.exe cr␍over"
    )
    assert inert("a\tb\nc\r\nd") == "a\tb\nc\nd"  # tabs and newlines stay; CRLF is a line end
    assert inert("\x00\x08\x7f\x85\u2066\u2069") == "␀␈␡\\x85\\u2066\\u2069"
    assert inert("raw\udcff\udc80 \ud800") == "raw\\xff\\x80 \\ud800"  # surrogateescape'd bytes
    assert inert("שלום \u200f مرحبا 数据 🚀") == "שלום \u200f مرحبا 数据 🚀"  # scripts and bidi marks stay
    plain = "nothing to do here\n" * 100
    assert inert(plain) is plain  # the common case: no copy
    every = "".join(map(chr, range(0x100))) + "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\udcff\ud800"
    once = inert(every)
    assert inert(once) == once  # idempotent
    assert CONTROLS.search(once) is None
    assert len(once) <= 6 * len(every)  # bounded growth


def test_inert_stream_equals_inert_of_the_whole():
    import random

    rng = random.Random(12)
    for _ in range(500):
        whole = "".join(rng.choice(["a", "\r", "\n", "\x1b", "\x9b", "\r\n", "é"]) for _ in range(rng.randint(0, 20)))
        stream, out, i = InertStream(), "", 0
        while i < len(whole):
            j = rng.randint(i + 1, len(whole))
            out += stream.feed(whole[i:j])
            i = j
        assert out + stream.flush() == inert(whole), repr(whole)


def test_readable_printer_in_colour_sends_only_its_own_sgr():
    """On a terminal the printer colours with fixed SGR codes around inert text: no other escape."""
    from team.headless import TranscriptPrinter

    out = io.StringIO()
    printer = TranscriptPrinter(out, colour=True)
    events = [
        ev.RunStarted(run_id="r", task=TASK, model=MODEL, demo=False, sandbox="local", isolation="bwrap",
                      max_messages=30, timeout=600.0),
        *[ev.TokenDelta(run_id="r", agent="Planner", text=c, message_id="m") for c in _split(PLAN)],
        ev.Message(run_id="r", agent="Planner", text=PLAN, message_id="m"),
        ev.ToolCall(run_id="r", agent=f"Code{ESC}", call_id="c", name="run_code", arguments={"code": CODE}),
        ev.SandboxOutput(run_id="r", stream="stdout", text="out:" + ATTACK, call_id="c"),
        ev.ToolResult(run_id="r", agent="CodeAgent", call_id="c", name="run_code", content=ATTACK, is_error=True),
        ev.Notice(run_id="r", level="warning", text=ATTACK),
        ev.RunFinished(run_id="r", reason="error", message=ATTACK),
    ]
    for event in events:
        printer.show(event)
    written = out.getvalue()
    own = re.compile(r"\x1b\[[0-9;]*m")
    assert own.search(written)  # it did colour
    assert_inert_bytes(own.sub("", written).encode(), "the coloured readable stream")
    assert_visible(written, "the coloured readable stream")
    assert "Plan line1\nline2" in written  # a CRLF split across two chunks is one line end


# -- headless: the real CLI ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_runs(server, tmp_path_factory):
    """`sbteam-tui run` readable and `--json`, side by side, against the hostile model."""
    base = tmp_path_factory.mktemp("escapes-cli")
    env = clean_env(base)
    env.update(OPENAI_API_BASE=server.base_url, OPENAI_API_KEY=KEY, OPENAI_MODEL=MODEL, SBTEAM_LOOP_LIMIT="0")
    workdir = new_workdir(base)
    procs = {
        name: subprocess.Popen([EXE, "run", TASK, *extra], env=env, cwd=workdir,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name, extra in (("readable", ["--out", "out"]), ("json", ["--json"]))
    }
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=100)
        results[name] = (proc.returncode, out, err)
    return env, workdir, results


def test_headless_readable_output_is_inert(cli_runs):
    _env, workdir, results = cli_runs
    code, out, err = results["readable"]
    assert code == 0, err.decode()[-2000:]
    assert_inert_bytes(out, "stdout")
    assert_inert_bytes(err, "stderr")
    shown = out.decode()
    assert_visible(shown, "stdout")
    assert "Plan line1\nline2" in shown
    assert f"model test-model{inert(OSC0)}" in shown  # the model's name, from OPENAI_MODEL
    assert inert(NAME) in shown  # a file name, in list_files' result
    assert "out:" + inert(ATTACK) in shown and "err:" + inert(ATTACK) in shown  # live output
    # the files themselves are copied out under their real names
    assert (workdir / "out" / NAME).read_bytes() == ATTACK.encode()
    assert (workdir / "out").joinpath(RAW_NAME.decode("utf-8", "surrogateescape")).is_file()


def test_json_lines_and_the_record_keep_the_exact_text(cli_runs):
    env, _workdir, results = cli_runs
    code, out, err = results["json"]
    assert code == 0, err.decode()[-2000:]
    assert b"\x1b" not in out and b"\x07" not in out  # JSON escapes C0 controls (\u001b)
    assert_inert_bytes(err, "stderr")
    events = [json.loads(line) for line in out.decode().splitlines()]
    texts = {e["agent"]: e["text"] for e in events if e["type"] == "message"}
    assert texts["user"] == TASK and texts["Planner"] == FINAL
    planned = [e["text"] for e in events if e["type"] == "message" and "PLAN-MARK" in e["text"]]
    assert planned == [PLAN]
    streamed = "".join(e["text"] for e in events if e["type"] == "sandbox_output" and e["stream"] == "stdout")
    assert "out:" + ATTACK in streamed
    call = next(e for e in events if e["type"] == "tool_call" and e["name"] == "run_code")
    assert any(e["type"] == "files_changed" and RAW_NAME.decode("utf-8", "surrogateescape") in e["added"]
               for e in events)
    assert call["arguments"]["code"] == CODE
    record = Path(env["SBTEAM_HOME"]) / "runs" / events[0]["run_id"] / "events.jsonl"
    recorded = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    assert [r["type"] for r in recorded] == [e["type"] for e in events]
    assert next(r for r in recorded if r["type"] == "message" and r["agent"] == "Planner" and "PLAN-MARK" in r["text"])["text"] == PLAN
    assert b"\x1b" not in record.read_bytes()


def test_exports_and_history_of_a_hostile_run(cli_runs):
    env, workdir, results = cli_runs
    run_id = json.loads(results["json"][1].decode().splitlines()[0])["run_id"]
    md = subprocess.run([EXE, "export", run_id, "--format", "md"], env=env, cwd=workdir, capture_output=True,
                        timeout=60)
    assert md.returncode == 0, md.stderr.decode()
    data = Path(md.stdout.decode().strip()).read_bytes()
    assert_inert_bytes(data, "transcript.md")  # `cat transcript.md` replays nothing
    assert_visible(data.decode(), "transcript.md")
    nb = subprocess.run([EXE, "export", run_id, "--format", "ipynb"], env=env, cwd=workdir, capture_output=True,
                        timeout=60)
    assert nb.returncode == 0, nb.stderr.decode()
    notebook = json.loads(Path(nb.stdout.decode().strip()).read_text(encoding="utf-8"))
    outputs = [o for c in notebook["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    stdout = "".join("".join(o["text"]) for o in outputs if o.get("name") == "stdout")
    assert "out:" + ATTACK in stdout  # the notebook keeps the exact text (JSON-escaped)
    listing = subprocess.run([EXE, "history"], env=env, cwd=workdir, capture_output=True, timeout=60)
    assert listing.returncode == 0
    assert_inert_bytes(listing.stdout + listing.stderr, "history")
    assert "clip␛]52;c;" in listing.stdout.decode()


# -- the app under Pilot ---------------------------------------------------------------------------

SIZE = (160, 48)
OWN = re.compile(r"\x1b\[(?:[0-9;:]*m|\d+;\d+H)")  # Textual's own: colours and cursor moves


def terminal_bytes(app) -> bytes:
    """The bytes a full repaint of the current screen sends to the terminal."""
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    return update.render_segments(app.console).encode("utf-8")


def widget_text(app) -> str:
    """What every widget of the current screen renders, each one whole (scrolled out of view or not)."""
    from textual.geometry import Region

    lines = []
    for widget in app.screen.walk_children(with_self=True):
        width, height = widget.outer_size
        if not widget.display or not width or not height:
            continue
        for strip in widget.render_lines(Region(0, 0, width, height)):
            lines.append("".join(segment.text for segment in strip if segment.control is None))
    return "\n".join(lines)


def check_screen(app, where: str, names: tuple[str, ...] = ()) -> str:
    painted = terminal_bytes(app)
    for name, raw in RAW.items():
        assert raw not in painted, f"{name} reached the terminal raw ({where})"
    assert_inert_bytes(OWN.sub("", painted.decode()).encode(), f"the terminal ({where})")
    shown = widget_text(app)
    found = CONTROLS.search(shown)
    assert found is None, f"a widget renders {found.group()!r} ({where}): {shown[found.start() - 60:found.end() + 20]!r}"
    if names:
        assert_visible(shown, where, names)
    return shown


@pytest.fixture
def strict_app():
    """The app's last-resort control filter off: every path must be inert by itself."""
    from tui.inert import CONTROL_FILTER
    from tui.widgets.images import set_renderer

    set_renderer("halfcell")
    CONTROL_FILTER.enabled = False
    yield
    CONTROL_FILTER.enabled = True
    set_renderer(None)


async def test_app_shows_a_hostile_run_inert(server, tmp_path, strict_app):
    from team.config import Settings
    from tests.tui.conftest import wait_for
    from tui.app import SbteamApp
    from tui.screens.history import HistoryScreen, RunViewScreen

    settings = Settings(openai_api_key=KEY, openai_api_base=server.base_url, openai_model=MODEL,
                        model_retries=0, model_timeout=20.0, loop_limit=0, sandbox="local", home=tmp_path / "home")
    app = SbteamApp(settings, task=TASK, autostart=True, output_dir=tmp_path / "out", cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.run_state == "finished", limit=90)
        await app.transcript.flush_now()
        assert "finished: TERMINATE" in app.status.plain, app.status.plain
        await wait_for(pilot, lambda: {NAME, "evil.csv", "evil.json", "evil.md"} <= set(app.file_tree.entries))
        await pilot.pause(0.1)
        # transcript (task, streamed plan, code, live output, results), tree, status bar, header
        shown = check_screen(app, "main screen", tuple(VISIBLE))
        assert "Plan line1\nline2" in shown or "line1" in shown
        assert inert(NAME) in shown and "raw\\xff␛[2J.txt" in shown  # tree labels
        assert f"test-model{inert(OSC0)}" in shown  # status bar / header
        assert "out:" + inert(ATTACK)[:40] in "".join(shown.split("\n"))  # tool output, whole
        # previews: text, CSV (a table), JSON, Markdown; the title is the file's name
        for path in (NAME, "evil.csv", "evil.json", "evil.md"):
            app.file_tree.select_node(app.file_tree.node_for(path))
            await wait_for(pilot, lambda p=path: app.preview.path == p and app.preview.kind not in (None, "error"))
            await pilot.pause(0.1)
            wanted = ("OSC 52", "CSI 2J", "DCS", "bidi override") if path != "evil.json" else ("OSC 52", "C1 CSI")
            check_screen(app, f"preview of {path!r}", wanted)
        # the Markdown export of the run
        run_id = app.run_id
        app._export("md")
        target = settings.runs_dir / run_id / "transcript.md"
        await wait_for(pilot, target.is_file)
        await pilot.pause(0.2)
        assert_inert_bytes(target.read_bytes(), "the app's Markdown export")
        check_screen(app, "export toast")
        # history: the table, then the run read-only
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded)
        await pilot.pause(0.1)
        check_screen(app, "history", ("OSC 52",))  # the task, cut to its column
        app.screen.open_run(run_id)
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen) and app.screen.loaded)
        await pilot.pause(0.2)
        check_screen(app, "a past run", tuple(VISIBLE))


def hostile_script(run_id: str, task: str) -> list[ev.Event]:
    """For the fake controller: notices, a sandbox failure and an error end that carry the attack,
    and a write_file that waits for approval."""
    return [
        ev.Message(run_id=run_id, agent="user", text=task, message_id="u"),
        *[ev.TokenDelta(run_id=run_id, agent="Planner", text=c, message_id="p") for c in _split(PLAN)],
        ev.Message(run_id=run_id, agent="Planner", text=PLAN, message_id="p"),
        ev.Handoff(run_id=run_id, source="Planner", target="CodeAgent"),
        ev.ToolCall(run_id=run_id, agent="CodeAgent", call_id="w", name="write_file",
                    arguments={"file_path": NAME, "content": ATTACK}),
        ev.ToolResult(run_id=run_id, agent="CodeAgent", call_id="w", name="write_file", content=f"wrote {NAME}"),
        ev.Notice(run_id=run_id, level="warning", text=f"notice {ATTACK}"),
        ev.SandboxStatus(run_id=run_id, state="error", kind="local", detail=f"detail {ATTACK}"),
        ev.RunFinished(run_id=run_id, reason="error", message=f"finished {ATTACK}", elapsed=1.0),
    ]


async def test_app_toasts_status_and_approval_dialog_are_inert(tmp_path, strict_app):
    from team.config import Settings
    from tests.tui.conftest import dialog_shown, wait_for
    from tests.tui.fake_controller import FakeController, make_files
    from tui.app import SbteamApp
    from tui.screens.approval import ApprovalScreen

    settings = Settings(demo=True, home=tmp_path / "home", sandbox="local")
    files = make_files(tmp_path / "sandbox")
    holder: dict[str, FakeController] = {}

    def build(s: Settings) -> FakeController:
        holder["ctrl"] = FakeController(s, files_dir=files, script=hostile_script, delay=0.002)
        return holder["ctrl"]

    app = SbteamApp(settings, task=TASK, autostart=True, controller_factory=build, output_dir=tmp_path / "out",
                    cursor_blink=False, approve=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: dialog_shown(app, ApprovalScreen))
        await pilot.pause(0.1)
        check_screen(app, "approval dialog", ("OSC 52", "CSI 2J", "DCS", "C1 CSI", "bidi override"))
        dialog = app.screen
        assert isinstance(dialog, ApprovalScreen)
        await pilot.press("e")  # the editor shows the same inert text …
        await pilot.pause(0.1)
        check_screen(app, "approval editor", ("OSC 52", "CSI 2J"))
        assert dialog.decision() == ("approve", None)  # … and unchanged, it approves the original
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.run_state == "finished")
        await app.transcript.flush_now()
        await pilot.pause(0.2)
        shown = check_screen(app, "toasts and status bar", ("OSC 52", "CSI 2J"))
        assert "notice clip␛]52" in shown and "finished clip␛]52" in shown  # toasts / transcript
        assert "FAILED" in app.status.plain and "detail clip␛]52" in (app.status.tooltip or "")
        assert holder["ctrl"].decisions == [("w", "approve", None)]
    await asyncio.sleep(0)


def test_control_filter_removes_what_a_widget_forgot():
    """The last resort: control characters left in a rendered line are removed (Rich measured
    them zero cells wide), a lone surrogate becomes U+FFFD, terminal-control segments stay."""
    from rich.segment import Segment
    from textual.color import Color

    from tui.inert import CONTROL_FILTER

    control = Segment("\x1b[5;5H", None, [(1, 5, 5)])  # type: ignore[list-item]
    lines = CONTROL_FILTER.apply([Segment("a" + ATTACK), Segment("\x1b\x07"), control, Segment("x\udcff")],
                                 Color(0, 0, 0))
    assert [s.text for s in lines] == [
        "aclip]52;c;cHduZWQ= title]0;pwned-title clear[2J dcsP+q544e\\ esc c12J bidignp.exe crover",
        "\x1b[5;5H",
        "x\ufffd",
    ]
    plain = [Segment("nothing here")]
    assert CONTROL_FILTER.apply(plain, Color(0, 0, 0)) is plain


async def test_the_filter_keeps_raw_text_in_an_editor_off_the_terminal(tmp_path):
    """Text that reached a widget raw (here: loaded into the task editor around `inert`) is
    not sent to the terminal while the filter is on (it is, by default)."""
    from team.config import Settings
    from tests.tui.fake_controller import FakeController, make_files
    from tui.app import SbteamApp
    from tui.widgets.task_input import TaskInput

    settings = Settings(demo=True, home=tmp_path / "home", sandbox="local")
    files = make_files(tmp_path / "sandbox")
    app = SbteamApp(settings, controller_factory=lambda s: FakeController(s, files_dir=files),
                    output_dir=tmp_path / "out", cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(TaskInput).load_text(ATTACK)
        await pilot.pause(0.1)
        painted = terminal_bytes(app)
        for name, raw in RAW.items():
            assert raw not in painted, f"{name} reached the terminal raw"
        assert_inert_bytes(OWN.sub("", painted.decode()).encode(), "the terminal")
        assert "clip]52;c;cHduZWQ=" in OWN.sub("", painted.decode())  # shown, less its controls
