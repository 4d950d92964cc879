"""team.doctor against the fake OpenAI endpoint and a fake sandbox (plus one real local sandbox run)."""

from __future__ import annotations

from typing import Any

from e2b_code_interpreter.models import Execution, ExecutionError, Result

from team.config import ConfigError, Settings
from team.doctor import DEMO_DETAIL, Check, doctor_main, render_table, run_checks
from tests.openai_server import FakeOpenAIServer, tool_call, unused_port

KEY = "sk-doctor-0123456789abcdefghij"


class FakeSandbox:
    """Just the part of the `Sandbox` interface the doctor touches."""

    kind = "local"

    def __init__(self, isolation: str = "bwrap", answer: str = "2", fail: bool = False) -> None:
        self.isolation = isolation
        self.answer = answer
        self.fail = fail
        self.killed = False
        self.ran: list[str] = []

    async def run_code(self, code: str, **kw: Any) -> Execution:
        self.ran.append(code)
        if self.fail:
            return Execution(error=ExecutionError(name="NameError", value="boom", traceback=""))
        return Execution(results=[Result(text=self.answer, is_main_result=True)])

    async def kill(self) -> None:
        self.killed = True


def factory_for(sandbox: FakeSandbox):
    async def factory(settings: Settings) -> FakeSandbox:
        return sandbox

    return factory


def rows(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def settings_for(base: str, key: str | None = KEY, **kw: Any) -> Settings:
    return Settings(
        openai_api_key=key,
        openai_api_base=base,
        openai_model="llama3.1:8b",
        model_retries=0,
        model_timeout=5.0,
        **kw,
    )


async def test_all_ok_against_fake_server() -> None:
    sandbox = FakeSandbox()
    with FakeOpenAIServer(script=tool_call("ping", {}), api_key=KEY, models=["llama3.1:8b"]) as srv:
        checks = await run_checks(settings_for(srv.base_url), sandbox_factory=factory_for(sandbox))
    by = rows(checks)
    assert [c.status for c in checks] == ["OK", "OK", "OK", "OK", "SKIP", "OK", "OK", "SKIP"], render_table(
        checks
    )
    assert "called ping" in by["model calls tools"].detail
    assert by["E2B key valid"].ok is None
    assert sandbox.ran == ["1+1"] and sandbox.killed
    body = srv.requests[0]
    assert body["tools"][0]["function"]["name"] == "ping" and body["parallel_tool_calls"] is False
    assert KEY not in render_table(checks)


async def test_wrong_key_fails_with_fix() -> None:
    with FakeOpenAIServer(api_key="the-right-key") as srv:
        checks = await run_checks(
            settings_for(srv.base_url), sandbox_factory=factory_for(FakeSandbox())
        )
    by = rows(checks)
    assert by["model endpoint reachable"].ok is True
    assert (
        by["API key accepted"].status == "FAIL"
        and by["API key accepted"].fix == "check OPENAI_API_KEY"
    )
    assert by["model calls tools"].status == "SKIP"
    assert srv.requests == []  # no chat request wasted on a rejected key


async def test_dead_url_fails_with_fix_and_exit_code(capsys: Any) -> None:
    base = f"http://127.0.0.1:{unused_port()}/v1"
    checks = await run_checks(settings_for(base), sandbox_factory=factory_for(FakeSandbox()))
    by = rows(checks)
    reach = by["model endpoint reachable"]
    assert reach.status == "FAIL" and base in reach.detail and "OPENAI_API_BASE" in reach.fix
    assert by["API key accepted"].ok is None and by["model calls tools"].ok is None


async def test_doctor_main_exit_codes(capsys: Any, monkeypatch: Any) -> None:
    import team.doctor as doctor

    async def fake_run_checks(settings: Any, **kw: Any) -> list[Check]:
        return (
            [Check("a", True, "fine"), Check("b", False, "broken", "do this")]
            if settings == "bad"
            else [
                Check("a", True, "fine"),
                Check("c", True, "unisolated", "apt-get install bubblewrap", warn=True),
            ]
        )

    monkeypatch.setattr(doctor, "run_checks", fake_run_checks)
    assert await doctor_main("bad") == 1  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert "FAIL" in out and "do this" in out and "1 check(s) failed" in out
    assert await doctor_main("good") == 0  # type: ignore[arg-type]
    assert "WARN" in capsys.readouterr().out


async def test_doctor_main_real_failure_is_nonzero(capsys: Any) -> None:
    base = f"http://127.0.0.1:{unused_port()}/v1"
    assert await doctor_main(settings_for(base), sandbox_factory=factory_for(FakeSandbox())) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "CHECK" in out and KEY not in out


async def test_model_answering_text_fails() -> None:
    with FakeOpenAIServer(script=["pong! I am healthy."]) as srv:
        checks = await run_checks(
            settings_for(srv.base_url), sandbox_factory=factory_for(FakeSandbox())
        )
    tools = rows(checks)["model calls tools"]
    assert tools.status == "FAIL" and "answered text instead of calling the tool" in tools.detail
    assert "OPENAI_MODEL" in tools.fix


async def test_model_writing_tool_call_as_text_fails() -> None:
    # text tool calls off: the same one-line wording as the run's guard (team/text_tools.py)
    with FakeOpenAIServer(script=['{"name": "ping", "arguments": {}}']) as srv:
        checks = await run_checks(
            settings_for(srv.base_url, text_tools="off"), sandbox_factory=factory_for(FakeSandbox())
        )
    tools = rows(checks)["model calls tools"]
    assert tools.status == "FAIL" and "wrote a tool call as plain text" in tools.detail
    assert 'received: {"name": "ping", "arguments": {}}' in tools.detail
    assert "SBTEAM_TEXT_TOOLS=on" in tools.detail and "SBTEAM_TEXT_TOOLS=on" in tools.fix


async def test_model_writing_tool_call_as_text_is_parsed_when_text_tools_are_on() -> None:
    with FakeOpenAIServer(script=['```json\n{"name": "ping", "arguments": {}}\n```']) as srv:
        checks = await run_checks(settings_for(srv.base_url), sandbox_factory=factory_for(FakeSandbox()))
    tools = rows(checks)["model calls tools"]
    assert tools.status == "OK" and "called ping (parsed from text" in tools.detail


async def test_model_not_listed_by_the_endpoint_is_a_warning_with_the_names() -> None:
    with FakeOpenAIServer(script=[tool_call("ping", {})], models=["qwen2.5-coder", "llama3.2"]) as srv:
        checks = await run_checks(settings_for(srv.base_url), sandbox_factory=factory_for(FakeSandbox()))
    key = rows(checks)["API key accepted"]
    assert key.status == "WARN" and "'llama3.1:8b' is not among the endpoint's models" in key.detail
    assert "llama3.2, qwen2.5-coder" in key.detail and "OPENAI_MODEL" in key.fix


async def test_model_404_names_the_model() -> None:
    from tests.openai_server import error

    reply = error(404, 'model "llama3.1:8b" not found, try pulling it first', type="api_error")
    with FakeOpenAIServer(script=reply) as srv:
        checks = await run_checks(
            settings_for(srv.base_url, key=None), sandbox_factory=factory_for(FakeSandbox())
        )
    by = rows(checks)
    assert by["API key accepted"].detail.startswith("no key needed")
    assert (
        by["model calls tools"].detail
        == "the endpoint does not know model 'llama3.1:8b' (OPENAI_MODEL)"
    )
    assert "OPENAI_MODEL" in by["model calls tools"].fix


async def test_demo_skips_model_checks() -> None:
    checks = await run_checks(Settings(), sandbox_factory=factory_for(FakeSandbox()))
    by = rows(checks)
    for name in ("model endpoint reachable", "API key accepted", "model calls tools"):
        assert by[name].ok is None and by[name].detail == DEMO_DETAIL
    assert by["sandbox runs 1+1"].ok is True


async def test_config_error_is_a_fail_row() -> None:
    error = ConfigError(["SBTEAM_SANDBOX must be 'local' or 'e2b' (got 'docker')"])
    checks = await run_checks(error)
    assert checks[0].status == "FAIL" and "SBTEAM_SANDBOX" in checks[0].detail
    assert all(c.ok is None for c in checks[1:])


async def test_sandbox_rows() -> None:
    checks = await run_checks(
        Settings(), sandbox_factory=factory_for(FakeSandbox(isolation="none"))
    )
    iso = rows(checks)["isolation"]
    assert iso.status == "WARN" and iso.fix == "apt-get install bubblewrap"

    checks = await run_checks(Settings(), sandbox_factory=factory_for(FakeSandbox(fail=True)))
    assert rows(checks)["sandbox runs 1+1"].status == "FAIL"

    async def broken(settings: Settings) -> Any:
        raise RuntimeError("No module named 'ipykernel'")

    checks = await run_checks(Settings(), sandbox_factory=broken)
    sandbox = rows(checks)["sandbox runs 1+1"]
    assert sandbox.status == "FAIL" and "ipykernel" in sandbox.detail and sandbox.fix
    assert rows(checks)["isolation"].ok is None


async def test_e2b_status_rows() -> None:
    settings = Settings(sandbox="e2b", e2b_api_key="e2b_secret_key_123")
    seen: list[str] = []

    async def bad(key: str | None) -> tuple[bool, str]:
        seen.append(key)
        return False, "401: invalid API key e2b_secret_key_123"

    checks = await run_checks(settings, sandbox_factory=factory_for(FakeSandbox()), e2b_status=bad)
    by = rows(checks)
    assert seen == ["e2b_secret_key_123"]
    assert by["E2B key valid"].status == "FAIL" and "E2B_API_KEY" in by["E2B key valid"].fix
    assert "e2b_secret_key_123" not in by["E2B key valid"].detail
    assert by["sandbox runs 1+1"].ok is None

    async def good(key: str | None) -> tuple[bool, str]:
        return True, "key accepted"

    sandbox = FakeSandbox(isolation="e2b")
    checks = await run_checks(settings, sandbox_factory=factory_for(sandbox), e2b_status=good)
    assert [rows(checks)[n].status for n in ("E2B key valid", "sandbox runs 1+1", "isolation")] == [
        "OK"
    ] * 3


def test_render_table_columns() -> None:
    table = render_table(
        [Check("one", True, "fine"), Check("two", False, "bad", "fix it"), Check("three", None)]
    )
    lines = table.splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "DETAIL", "FIX"]
    assert (
        lines[2].split()[:2] == ["one", "OK"] and lines[3].endswith("fix it") and "SKIP" in lines[4]
    )
    assert lines[2].index("OK") == lines[3].index("FAIL") == lines[4].index("SKIP")


class LeakySandbox(FakeSandbox):
    """A bwrap sandbox whose code runs with rights it should not have."""

    def limits_report(self) -> dict[str, str]:
        return {"limits": "memory=4.0G", "memory": "RLIMIT_AS", "processes": "not enforced (root without a cgroup)"}

    async def security_probe(self, hidden: list[str]) -> dict[str, Any]:
        return {
            "uid": 0,
            "status": {"CapEff": "000001fffeffffff", "NoNewPrivs": "0"},
            "shadow_readable": True,
            "can_make_user_namespace": True,
            "visible": hidden[:1],
        }


async def test_privileges_inside_are_checked_not_assumed() -> None:
    checks = await run_checks(Settings(), sandbox_factory=factory_for(LeakySandbox()))
    iso, limits = rows(checks)["isolation"], rows(checks)["limits"]
    assert iso.status == "FAIL"
    for words in ("uid 0", "CapEff 000001fffeffffff", "NoNewPrivs 0", "/etc/shadow", "user namespaces", "visible"):
        assert words in iso.detail, words
    assert limits.status == "WARN" and "not enforced" in limits.detail


async def test_real_local_sandbox() -> None:
    """No fake: `create_sandbox` starts the real LocalSandbox and runs 1+1 (~1.5 s)."""
    checks = await run_checks(Settings(sandbox="local"))
    by = rows(checks)
    assert by["sandbox runs 1+1"].status == "OK", render_table(checks)
    assert by["isolation"].status in ("OK", "WARN")
    if by["isolation"].status == "OK":  # bwrap here: the rights were measured inside
        assert "uid 1000, CapEff 0" in by["isolation"].detail
    assert by["limits"].status in ("OK", "WARN") and "memory=" in by["limits"].detail


def test_variables_table_lists_what_is_set_where_with_secrets_masked() -> None:
    from team.config import BENCH, VARIABLES
    from team.doctor import variables_table

    table = variables_table(
        {"OPENAI_API_KEY": KEY, "SBTEAM_TIMEOUT": "60", "SBTEAM_TIMOUT": "5", "PATH": "/bin", "E2B_DOMAIN": "x"},
        {"SBTEAM_TIMEOUT": "30", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "SBTEAM_PROMPTS": "\x1b[2Jen"},
        {"SBTEAM_SANDBOX": "local"},
    )
    rows = {line.split()[0]: line for line in table.splitlines()[1:-1]}
    assert KEY not in table and "sk-" in rows["OPENAI_API_KEY"] and rows["OPENAI_API_KEY"].endswith("environment")
    assert "60" in rows["SBTEAM_TIMEOUT"] and rows["SBTEAM_TIMEOUT"].endswith("environment")  # the environment wins
    assert rows["OPENAI_BASE_URL"].endswith(".env") and rows["SBTEAM_SANDBOX"].endswith("command line")
    assert "\x1b" not in table  # values are shown inert
    assert "not a variable sbteam-tui reads (did you mean SBTEAM_TIMEOUT?)" in rows["SBTEAM_TIMOUT"]
    assert "PATH" not in rows and "E2B_DOMAIN" not in rows  # only SBTEAM_* names are ours to question
    listed = 5  # OPENAI_API_KEY, OPENAI_API_BASE (by its alias), SBTEAM_SANDBOX, SBTEAM_PROMPTS, SBTEAM_TIMEOUT
    others = sum(var.scope != BENCH for var in VARIABLES) - listed
    assert table.splitlines()[-1].startswith(f"{others} other variable(s) at their defaults")


async def test_doctor_main_prints_the_variables_when_given(capsys: Any) -> None:
    base = f"http://127.0.0.1:{unused_port()}/v1"
    await doctor_main(settings_for(base), sandbox_factory=factory_for(FakeSandbox()), variables="VARIABLE  VALUE  FROM")
    out = capsys.readouterr().out
    assert out.index("CHECK") < out.index("VARIABLE  VALUE  FROM") < out.index("check(s) failed")
