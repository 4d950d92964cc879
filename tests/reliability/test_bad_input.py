"""Bad input of every kind: each gets one clear line, and nothing is lost.

Configuration, the model endpoint, the task, the model's tool arguments, files,
packages and hostile code. Runs share one local sandbox per module (a kernel
start costs ~1.3 s) and each run is checked for exactly one RunFinished and a
run record that holds every event shown.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from team import events as ev
from team.config import ConfigError, Settings
from team.records import read_events
from team.run import RunController
from team.scripted import Call
from team.session import CodeSession
from team.tools import MAX_LIVE_OUTPUT, MAX_TOOL_OUTPUT
from tests.openai_server import FakeOpenAIServer, error, garbage, text, unused_port

from .conftest import (
    alive,
    check_run,
    code_agent_does,
    collect,
    first_line,
    host_root,
    one_line,
    processes_mentioning,
    run_script,
    tool_results,
    wait_gone,
)

pytestmark = pytest.mark.timeout(60)
MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")  # the async tests share one sandbox

KEY = "sk-SENTINEL-" + uuid.uuid4().hex


# ---------------------------------------------------------------- configuration (no run)


def _problems(env: dict[str, str], env_file: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        Settings.load(env=env, env_file=env_file)
    for line in info.value.problems:
        one_line(line)
    return info.value.problems


def test_env_file_with_bad_syntax(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# ok\nOPENAI_MODEL=gpt-4o\nOPENAI_API_KEY sk-no-equals\n=nothing\nexport GOOD=1\n")
    [line] = _problems({}, env_file)
    assert str(env_file) in line and "line 3, 4" in line and "NAME=value" in line


def test_invalid_sbteam_sandbox() -> None:
    [line] = _problems({"SBTEAM_SANDBOX": "docker"})
    assert "SBTEAM_SANDBOX" in line and "'local' or 'e2b'" in line and "docker" in line


def test_e2b_chosen_without_key() -> None:
    [line] = _problems({"SBTEAM_SANDBOX": "e2b"})
    assert "E2B_API_KEY" in line and "SBTEAM_SANDBOX=local" in line


def test_base_url_that_is_not_a_url() -> None:
    [line] = _problems({"OPENAI_API_BASE": "localhost:11434"})
    assert "OPENAI_API_BASE" in line and "http" in line


@pytest.mark.parametrize(
    ("name", "value"), [("SBTEAM_MAX_MESSAGES", "lots"), ("SBTEAM_TIMEOUT", "-5")]
)
def test_limits_that_are_not_positive_numbers(name: str, value: str) -> None:
    [line] = _problems({name: value})
    assert name in line and repr(value) in line and "greater than 0" in line


def test_every_bad_value_is_reported_at_once() -> None:
    problems = _problems({"SBTEAM_SANDBOX": "docker", "SBTEAM_PROMPTS": "fr", "SBTEAM_TIMEOUT": "x"})
    assert len(problems) == 3


def _cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "E2B_", "SBTEAM_"))}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        env=full,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_cli_bad_config_exits_2_with_the_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SBTEAM_SANDBOX=docker\n")
    done = _cli(["run", "hello"], {"SBTEAM_HOME": str(tmp_path / "home")}, tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert "SBTEAM_SANDBOX must be 'local' or 'e2b' (got 'docker')" in done.stderr
    assert not (tmp_path / "home").exists()  # nothing started


def test_cli_empty_task_exits_2_with_one_line(tmp_path: Path) -> None:
    done = _cli(["run", "   "], {"SBTEAM_HOME": str(tmp_path / "home")}, tmp_path)
    assert done.returncode == 2
    assert one_line(done.stderr.strip()) == "sbteam-tui: the task is empty"


@MODULE_LOOP
async def test_empty_task_is_refused_and_the_controller_stays_usable(settings, shared_session) -> None:
    controller = RunController(settings, model_factory=lambda: None, session=shared_session)
    with pytest.raises(ValueError, match="the task is empty") as info:
        controller.start(" \n\t ")
    one_line(str(info.value))
    assert controller.state == "idle" and not settings.runs_dir.exists()
    _, done, _ = await run_script(settings, shared_session, code_agent_does(), "now a real one")
    assert done.reason == "terminate"


# ---------------------------------------------------------------- the model endpoint


def _model_settings(settings: Settings, server: FakeOpenAIServer | None, **changes) -> Settings:
    base = server.base_url if server is not None else None
    return settings.with_(
        openai_api_key=KEY, openai_api_base=base, openai_model="fake-model",
        model_retries=0, model_timeout=10, **changes,
    )


async def _real_model_run(settings: Settings, session: CodeSession):
    controller = RunController(settings, session=session)
    run_id = controller.start("say hi")
    events = await asyncio.wait_for(collect(controller), 60)
    await controller._await_drive()
    assert not controller._background
    done = check_run(settings, run_id, events)
    assert all(KEY not in e.to_json() for e in events)
    return events, done, controller


@MODULE_LOOP
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing key", "rejected the API key (OPENAI_API_KEY)"),
        ("blank key", "rejected the API key (OPENAI_API_KEY)"),
        ("wrong key", "rejected the API key (OPENAI_API_KEY)"),
    ],
)
async def test_bad_key(settings, shared_session, case: str, expected: str) -> None:
    with FakeOpenAIServer("hi TERMINATE", api_key="the-right-key") as server:
        if case == "wrong key":
            cfg = _model_settings(settings, server)
        else:
            env = {"OPENAI_API_BASE": server.base_url, "OPENAI_MODEL": "fake-model",
                   "SBTEAM_HOME": str(settings.home)}
            if case == "blank key":
                env["OPENAI_API_KEY"] = "   "
            cfg = Settings.load(env=env, env_file=None).with_(model_retries=0)
            assert cfg.openai_api_key is None and not cfg.is_demo
        _, done, _ = await _real_model_run(cfg, shared_session)
    assert done.reason == "error"
    assert expected in one_line(done.message)
    assert KEY not in done.message


@MODULE_LOOP
async def test_unreachable_base_url(settings, shared_session) -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1"
    cfg = _model_settings(settings, None).with_(openai_api_base=url)
    t0 = time.monotonic()
    _, done, _ = await _real_model_run(cfg, shared_session)
    assert done.reason == "error"
    assert one_line(done.message).startswith("cannot reach the model endpoint")
    assert url in done.message and "OPENAI_API_BASE" in done.message
    assert time.monotonic() - t0 < 15


@MODULE_LOOP
@pytest.mark.parametrize(
    "reply",
    [
        garbage("<html><body><h1>502 Bad Gateway</h1></body></html>"),
        garbage('{"choices": [{"delta": ', content_type="application/json"),
        garbage("data: {this is not json\n\n", content_type="text/event-stream"),
    ],
    ids=["html", "truncated-json", "broken-sse"],
)
async def test_endpoint_answers_garbage(settings, shared_session, reply) -> None:
    # every request gets the garbage, as a misconfigured proxy would answer
    with FakeOpenAIServer(lambda _req: reply) as server:
        _, done, _ = await _real_model_run(_model_settings(settings, server), shared_session)
        assert len(server.requests) == 1  # not retried into a loop of empty answers
    assert done.reason == "error"
    assert "not OpenAI-compatible" in one_line(done.message) and "OPENAI_API_BASE" in done.message


@MODULE_LOOP
async def test_model_name_rejected(settings, shared_session) -> None:
    reply = error(404, "The model `fake-model` does not exist or you do not have access to it.",
                  code="model_not_found")
    with FakeOpenAIServer(reply) as server:
        _, done, _ = await _real_model_run(_model_settings(settings, server), shared_session)
    assert done.reason == "error"
    assert one_line(done.message) == "the endpoint does not know model 'fake-model' (OPENAI_MODEL)"


@MODULE_LOOP
async def test_model_without_tool_calling(settings, shared_session) -> None:
    """A model that writes its tool call as text instead of calling the tool, with the
    text-call reader off: one line saying so and how to turn it on."""
    reply = text('```json\n{"name": "transfer_to_codeagent", "arguments": {}}\n```')
    with FakeOpenAIServer(lambda _req: reply) as server:
        events, done, _ = await _real_model_run(_model_settings(settings, server, text_tools="off"), shared_session)
    message = one_line(done.message)
    assert done.reason == "error"
    assert message.startswith("Planner's model 'fake-model' wrote a tool call as plain text instead of calling the tool")
    assert "set SBTEAM_TEXT_TOOLS=on" in message and message.endswith("(OPENAI_MODEL)")
    # what it wrote is still in the transcript, so the user can see why
    assert any(isinstance(e, ev.Message) and "transfer_to_codeagent" in e.text for e in events)


@MODULE_LOOP
async def test_model_writing_a_call_it_does_not_have(settings, shared_session) -> None:
    """With the reader on (a local endpoint), the Planner's written handoff becomes a real
    one; the CodeAgent then writes the same call, which it has no tool for: one line
    naming the agent, the tool and what it wrote."""
    reply = text('```json\n{"name": "transfer_to_codeagent", "arguments": {}}\n```')
    with FakeOpenAIServer(lambda _req: reply) as server:
        events, done, _ = await _real_model_run(_model_settings(settings, server), shared_session)
    message = one_line(done.message)
    assert done.reason == "error" and message.startswith("CodeAgent's model 'fake-model' wrote a tool call")
    assert "no tool named 'transfer_to_codeagent'" in message
    assert any(isinstance(e, ev.Handoff) and e.target == "CodeAgent" for e in events)  # the Planner's worked


# ---------------------------------------------------------------- the task


@MODULE_LOOP
async def test_one_megabyte_task_is_accepted_and_recorded(settings, shared_session) -> None:
    task = ("Analyse this data: " + "0123456789," * 95_000)[:1_000_000]
    events, done, controller = await run_script(settings, shared_session, code_agent_does(), task)
    assert done.reason == "terminate"
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    assert started.task == task
    recorded = read_events(settings.runs_dir / controller.run_id / "events.jsonl")
    assert recorded[0]["task"] == task
    assert json.loads((settings.runs_dir / controller.run_id / "run.json").read_text())["task"] == task


@MODULE_LOOP
async def test_chinese_and_emoji_task(settings, shared_session) -> None:
    task = "分析这100个随机数的分布 📊🔥，找出异常值 🧐 — naïve façade ✓"
    answer = "完成了 ✅ 所有文件都已生成 🎉 TERMINATE"
    events, done, controller = await run_script(
        settings, shared_session, code_agent_does(final=answer), task
    )
    assert done.reason == "terminate"
    record = settings.runs_dir / controller.run_id
    raw = (record / "events.jsonl").read_text(encoding="utf-8")
    assert task in raw and answer in raw  # stored as text, not \u escapes
    assert read_events(record / "events.jsonl")[0]["task"] == task
    assert any(isinstance(e, ev.Message) and e.text == answer for e in events)


# ---------------------------------------------------------------- the model's tool arguments


@MODULE_LOOP
@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("run_code", {"code": 5}, "code: Input should be a valid string (got 5)"),
        ("run_code", {}, "code is missing"),
        ("write_file", {"file_path": ["a"], "content": "x"}, "file_path: Input should be a valid string"),
        ("read_file", {"path": "a.txt"}, "file_path is missing"),
    ],
    ids=["wrong-type", "missing", "write-wrong-type", "read-misnamed"],
)
async def test_bad_tool_arguments_are_told_to_the_model(
    settings, shared_session, name, arguments, expected
) -> None:
    seen_by_model: list[str] = []

    def responder(turn):
        if turn.agent == "CodeAgent" and turn.index == 1:
            seen_by_model.extend(turn.tool_results())
        return script(turn)

    script = code_agent_does(Call(name, arguments), Call("run_code", {"code": "print(6 * 7)"}))
    events, done, _ = await run_script(settings, shared_session, responder)
    assert done.reason == "terminate"  # the run went on
    bad, good = tool_results(events)
    assert bad.is_error and one_line(bad.content).startswith(f"❌ invalid arguments for {name}: ")
    assert expected in bad.content
    assert seen_by_model and seen_by_model[-1] == bad.content  # the model was told
    assert not good.is_error and "42" in good.content


# ---------------------------------------------------------------- read_file


async def _one_tool(settings, session, call: Call) -> ev.ToolResult:
    events, done, _ = await run_script(settings, session, code_agent_does(call))
    assert done.reason == "terminate"
    [result] = tool_results(events)
    return result


@MODULE_LOOP
async def test_read_missing_file(settings, shared_session) -> None:
    result = await _one_tool(settings, shared_session, Call("read_file", {"file_path": "nope.csv"}))
    assert result.is_error
    assert one_line(result.content) == "❌ cannot read 'nope.csv': no such file (use list_files to see what exists)"


@MODULE_LOOP
async def test_read_a_directory(settings, shared_session) -> None:
    (host_root(shared_session) / "folder").mkdir(exist_ok=True)
    result = await _one_tool(settings, shared_session, Call("read_file", {"file_path": "folder"}))
    assert result.is_error and "folder" in one_line(result.content) and "list_files" in result.content


@MODULE_LOOP
async def test_read_a_binary_file(settings, shared_session) -> None:
    (host_root(shared_session) / "blob.bin").write_bytes(bytes(range(256)) * 40)
    result = await _one_tool(settings, shared_session, Call("read_file", {"file_path": "blob.bin"}))
    assert result.is_error
    assert one_line(result.content) == "❌ blob.bin is a binary data (10.0 KB); not shown as text"


@MODULE_LOOP
async def test_read_a_50_megabyte_file(settings, shared_session) -> None:
    line = b"1.2345,6.789,some text,another column\n"
    (host_root(shared_session) / "huge.csv").write_bytes(line * (50 * 1024 * 1024 // len(line)))
    rss0 = psutil.Process().memory_info().rss
    t0 = time.monotonic()
    result = await _one_tool(settings, shared_session, Call("read_file", {"file_path": "huge.csv"}))
    assert time.monotonic() - t0 < 15
    assert not result.is_error
    assert first_line(result.content) == "📄 huge.csv (first 4.8 MB of 50.0 MB):"
    assert "characters cut" in result.content and len(result.content) < 21_000
    assert psutil.Process().memory_info().rss - rss0 < 400 * 2**20
    (host_root(shared_session) / "huge.csv").unlink()


# ---------------------------------------------------------------- write_file


def _exists(path: str) -> bool:
    return os.path.exists(path)


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@MODULE_LOOP
async def test_write_outside_the_sandbox(settings, shared_session) -> None:
    target = "/etc/sbteam-probe-" + uuid.uuid4().hex[:8]
    result = await _one_tool(settings, shared_session, Call("write_file", {"file_path": target, "content": "x"}))
    assert result.is_error and "outside the sandbox" in one_line(result.content)
    assert not _exists(target)


@MODULE_LOOP
async def test_write_dot_dot_etc_passwd(settings, shared_session) -> None:
    before = _sha256("/etc/passwd")
    result = await _one_tool(
        settings, shared_session, Call("write_file", {"file_path": "../../etc/passwd", "content": "root::0:0::/:/bin/sh\n"})
    )
    assert result.is_error and "outside the sandbox" in one_line(result.content)
    assert _sha256("/etc/passwd") == before


@MODULE_LOOP
async def test_write_through_a_symlink_pointing_out(settings, shared_session, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("original")
    root = host_root(shared_session)
    (root / "link_dir").symlink_to(outside, target_is_directory=True)
    (root / "link_file").symlink_to(victim)
    try:
        for path in ("link_dir/new.txt", "link_file", "/home/user/link_dir/victim.txt"):
            result = await _one_tool(settings, shared_session, Call("write_file", {"file_path": path, "content": "pwned"}))
            assert result.is_error and "outside the sandbox" in one_line(result.content), path
        assert victim.read_text() == "original" and not (outside / "new.txt").exists()
    finally:
        (root / "link_dir").unlink()
        (root / "link_file").unlink()


@MODULE_LOOP
async def test_write_name_with_a_newline(settings, shared_session) -> None:
    result = await _one_tool(settings, shared_session, Call("write_file", {"file_path": "a\nb.txt", "content": "x"}))
    assert result.is_error
    assert one_line(result.content) == "❌ the file name contains a newline or NUL character; choose a plain name"
    assert not any("\n" in p.name for p in host_root(shared_session).iterdir())


@MODULE_LOOP
async def test_write_unicode_name(settings, shared_session) -> None:
    name = "数据_😀 résumé.txt"
    events, done, _ = await run_script(
        settings, shared_session,
        code_agent_does(Call("write_file", {"file_path": name, "content": "你好 🌍"}), Call("read_file", {"file_path": name})),
    )
    assert done.reason == "terminate"
    wrote, read = tool_results(events)
    assert not wrote.is_error and one_line(wrote.content).startswith("✅ file written: " + name)
    assert "你好 🌍" in read.content
    assert (host_root(shared_session) / name).read_text(encoding="utf-8") == "你好 🌍"
    assert any(isinstance(e, ev.FilesChanged) and name in e.added for e in events)


# ---------------------------------------------------------------- install_package


@pytest.fixture
def offline_pip(monkeypatch):
    """pip sees only a dead local index: fails in about a second, never downloads."""
    port = unused_port()
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{port}/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", f"http://127.0.0.1:{port}/extra")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", "")


@MODULE_LOOP
async def test_install_a_package_that_does_not_exist(settings, shared_session, offline_pip) -> None:
    name = "sbteam-no-such-package-" + uuid.uuid4().hex[:6]
    t0 = time.monotonic()
    result = await _one_tool(settings, shared_session, Call("install_package", {"package_name": name}))
    assert time.monotonic() - t0 < 30
    assert result.is_error
    assert first_line(result.content).startswith(f"❌ could not install {name!r}")
    assert "No matching distribution" in result.content or "Could not find" in result.content
    assert "Traceback" not in result.content
    assert name not in shared_session.installed_packages


@MODULE_LOOP
@pytest.mark.parametrize(
    "spec",
    ["numpy; rm -rf /", "https://evil.example/pkg-1.0.tar.gz", "--index-url=http://evil.example numpy", "numpy && curl x | sh"],
    ids=["shell", "url", "option", "pipe"],
)
async def test_install_refuses_what_is_not_a_package_name(settings, shared_session, spec) -> None:
    t0 = time.monotonic()
    result = await _one_tool(settings, shared_session, Call("install_package", {"package_name": spec}))
    assert time.monotonic() - t0 < 5  # refused before any pip runs
    assert result.is_error
    line = one_line(result.content)
    assert line.startswith(f"❌ could not install {spec!r}: refused")


# ---------------------------------------------------------------- hostile code


@MODULE_LOOP
async def test_code_printing_100_megabytes(settings, shared_session) -> None:
    code = "import sys\nchunk = 'x' * 1023 + '\\n'\nfor _ in range(100 * 1024):\n    sys.stdout.write(chunk)\nprint('END-MARK')"
    rss0 = psutil.Process().memory_info().rss
    t0 = time.monotonic()
    events, done, controller = await run_script(
        settings, shared_session, code_agent_does(Call("run_code", {"code": code}), Call("run_code", {"code": "print('still alive')"}))
    )
    elapsed = time.monotonic() - t0
    assert done.reason == "terminate" and elapsed < 30
    big, after = tool_results(events)
    assert not big.is_error and "characters cut" in big.content and big.content.rstrip().endswith("END-MARK")
    assert len(big.content) <= MAX_TOOL_OUTPUT + 200
    live = sum(len(e.text) for e in events if isinstance(e, ev.SandboxOutput))
    assert live <= MAX_LIVE_OUTPUT + 200
    assert any("live output cut" in e.text for e in events if isinstance(e, ev.SandboxOutput))
    assert "still alive" in after.content
    record = settings.runs_dir / controller.run_id / "events.jsonl"
    assert record.stat().st_size < 2 * MAX_LIVE_OUTPUT
    # memory: the 100 MB passes through once (the kernel client keeps the cell's log),
    # it is not multiplied into events, the record and the transcript
    assert psutil.Process().memory_info().rss - rss0 < 600 * 2**20


def _wait_for_processes(marker: str, count: int, seconds: float) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    while True:
        found = processes_mentioning(marker)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@MODULE_LOOP
async def test_code_forking_a_process_that_outlives_the_cell(settings) -> None:
    marker = "sbteam-orphan-" + uuid.uuid4().hex[:8]
    code = (
        "import os, subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', '{marker}'])\n"
        "if os.fork() == 0:\n"  # a daemon: own session, escapes the process group
        "    os.setsid()\n"
        f"    os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(300)', '{marker}'])\n"
        "print('forked')"
    )
    session = CodeSession(settings)
    try:
        events, done, _ = await run_script(settings, session, code_agent_does(Call("run_code", {"code": code})))
        assert done.reason == "terminate"
        assert "forked" in tool_results(events)[0].content
        orphans = await asyncio.to_thread(_wait_for_processes, marker, 2, 5)
        assert len(orphans) == 2, "both children should run after the cell ended"
    finally:
        await session.close()
    assert wait_gone(orphans, 5) == [], "a child of the code outlived the sandbox"


@MODULE_LOOP
async def test_code_calling_os_exit(settings, shared_session) -> None:
    seen: list[str] = []

    def responder(turn):
        if turn.agent == "CodeAgent" and turn.index == 2:
            seen.extend(turn.tool_results())
        return script(turn)

    script = code_agent_does(
        Call("run_code", {"code": "kept = 1"}),
        Call("run_code", {"code": "import os\nos._exit(1)"}),
        Call("run_code", {"code": "print(1 + 1)\nkept"}),
    )
    events, done, _ = await run_script(settings, shared_session, responder)
    assert done.reason == "terminate"
    _, died, after = tool_results(events)
    assert died.is_error
    assert one_line(first_line(died.content)).startswith("❌ KernelDied: the kernel died")
    assert "fresh kernel" in died.content and "lost" in died.content
    assert seen[-1] == died.content  # the model was told its state is gone
    assert "2" in after.content and "NameError" in after.content  # fresh kernel, `kept` gone


@MODULE_LOOP
async def test_code_filling_memory(settings, shared_session) -> None:
    """A modest 512 MB allocation (under the default memory limit) succeeds, is
    freed, and the kernel stays usable. tests/security has the limit itself."""
    code = "block = bytearray(512 * 1024 * 1024)\nblock[-1] = 7\nprint('allocated', len(block) // 2**20, 'MB')\ndel block"
    events, done, _ = await run_script(
        settings, shared_session, code_agent_does(Call("run_code", {"code": code}), Call("run_code", {"code": "print('ok after')"}))
    )
    assert done.reason == "terminate"
    hog, after = tool_results(events)
    assert ("allocated 512 MB" in hog.content) or ("MemoryError" in hog.content) or ("KernelDied" in hog.content)
    assert "ok after" in after.content
    kernel = shared_session.sandbox.kernel_process()  # type: ignore[attr-defined]
    tree = [psutil.Process(kernel.pid), *psutil.Process(kernel.pid).children(recursive=True)]
    assert sum(p.memory_info().rss for p in alive(tree)) < 1024 * 2**20
