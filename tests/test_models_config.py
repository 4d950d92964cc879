"""The model file: a default client and per-agent clients, each an AutoGen component config
loaded with `ChatCompletionClient.load_component` (team/models_config.py)."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import pytest

from team import events as ev
from team.agent_models import (
    agent_models,
    agent_specs,
    build_agent_clients,
    load_client,
    model_label,
)
from team.config import ConfigError, Settings
from team.doctor import run_checks
from team.models_config import find_models_file
from team.run import RunController
from tests.openai_server import FakeOpenAIServer, tool_call, unused_port
from tests.run_events import collect
from tests.test_doctor import FakeSandbox, factory_for
from tests.test_run_openai import FINAL, asker, seed_flow

KEY_A = "sk-server-a-0123456789abcdef"
KEY_B = "sk-server-b-9876543210fedcba"


def write(folder: Path, text: str, name: str = "models.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def load(path: Path | None, tmp_path: Path, **env: str) -> Settings:
    values = {"SBTEAM_HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "no-config")}
    if path is not None:
        values["SBTEAM_MODELS"] = str(path)
    values.update(env)
    return Settings.load(env=values, env_file=tmp_path / ".env")


def problems(path: Path, tmp_path: Path, **env: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(path, tmp_path, **env)
    return caught.value.problems


THREE = """
    # Planner and AnalystAgent on server A (different models), CodeAgent on server B
    default:
      provider: openai
      config:
        model: analyst-model
        base_url: {a}
        api_key: ${{KEY_A}}
    agents:
      Planner:
        provider: autogen_ext.models.openai.OpenAIChatCompletionClient
        config:
          model: planner-model
          base_url: {a}
          api_key: ${{KEY_A}}
        price: [1, 2]
      CodeAgent:
        provider: OpenAIChatCompletionClient
        config:
          model: coder-model
          base_url: {b}
          api_key: ${{KEY_B}}
          temperature: 0.1
        text_tools: off
        max_tokens: 2048
"""


async def test_three_agents_three_clients_each_reaches_its_own_server_with_its_own_model(tmp_path: Path) -> None:
    with FakeOpenAIServer(script=seed_flow, api_key=KEY_A) as a, FakeOpenAIServer(script=seed_flow, api_key=KEY_B) as b:
        (tmp_path / ".env").write_text(f"KEY_A={KEY_A}\nKEY_B={KEY_B}\n")
        path = write(tmp_path, THREE.format(a=a.base_url, b=b.base_url))
        settings = load(path, tmp_path, SBTEAM_SANDBOX="local")
        assert model_label(settings) == "Planner=planner-model, CodeAgent=coder-model, AnalystAgent=analyst-model"
        controller = RunController(settings)
        controller.start("Analyse 100 random points")
        events = await asyncio.wait_for(collect(controller), 90)
        await controller.close()
        on_a = [(asker(r), r["model"]) for r in a.requests]
        on_b = [(asker(r), r["model"], r.get("max_tokens"), r.get("temperature")) for r in b.requests]
    done = [e for e in events if isinstance(e, ev.RunFinished)][-1]  # then FINISHED and OutputsSaved
    assert isinstance(done, ev.RunFinished) and done.reason == "terminate", done
    assert set(on_a) == {("Planner", "planner-model"), ("AnalystAgent", "analyst-model")}
    assert set(on_b) == {("CodeAgent", "coder-model", 2048, 0.1)}
    assert len(on_b) == 3 and len(on_a) == 5
    started = events[0]
    assert isinstance(started, ev.RunStarted) and started.model == model_label(settings)
    # each agent at its own price: the Planner's $1/$2, the local models' $0
    planner_in, planner_out = done.agent_tokens["Planner"]
    assert done.cost == pytest.approx((planner_in * 1 + planner_out * 2) / 1e6)
    record = json.loads((settings.runs_dir / controller.run_id / "run.json").read_text())  # type: ignore[operator]
    assert record["models"] == {"Planner": "planner-model", "CodeAgent": "coder-model", "AnalystAgent": "analyst-model"}
    for key in (KEY_A, KEY_B):  # keys from ${VAR}s are secrets: never in the record
        assert key not in (settings.runs_dir / controller.run_id / "events.jsonl").read_text()  # type: ignore[operator]
        assert key in settings.secrets()
    assert [e.text for e in events if isinstance(e, ev.Message) and e.agent == "Planner"][-1] == FINAL


def test_a_default_serves_the_agents_without_an_entry_and_one_client_is_shared(tmp_path: Path) -> None:
    path = write(tmp_path, """
        default:
          provider: openai
          config: {model: qwen2.5-coder, base_url: "http://127.0.0.1:9/v1"}
        agents:
          CodeAgent:
            provider: openai
            config: {model: qwen2.5-coder:7b, base_url: "http://127.0.0.1:9/v1"}
    """)
    settings = load(path, tmp_path)
    assert agent_models(settings) == {"Planner": "qwen2.5-coder", "CodeAgent": "qwen2.5-coder:7b",
                                      "AnalystAgent": "qwen2.5-coder"}
    specs = agent_specs(settings)
    assert specs["Planner"] is specs["AnalystAgent"] and specs["CodeAgent"] is not specs["Planner"]
    assert specs["Planner"].config["api_key"] == "not-needed"  # a local server needs no key
    clients = build_agent_clients(settings)
    assert clients["Planner"].inner is clients["AnalystAgent"].inner
    assert clients["CodeAgent"].inner is not clients["Planner"].inner
    assert type(clients["Planner"].inner).__name__ == "SbteamOpenAIClient"  # loaded through load_component
    asyncio.run(clients.close())


def test_keys_come_from_the_usual_variables_when_the_file_has_none(tmp_path: Path) -> None:
    path = write(tmp_path, """
        default:
          provider: openai
          config: {model: gpt-4o}
        agents:
          AnalystAgent:
            provider: gemini
            config: {model: gemini-2.0-flash}
    """)
    settings = load(path, tmp_path, OPENAI_API_KEY="sk-openai-0123456789", GEMINI_API_KEY="gm-0123456789abcdef")
    specs = agent_specs(settings)
    assert specs["Planner"].config["api_key"] == "sk-openai-0123456789" and specs["Planner"].key_from == "OPENAI_API_KEY"
    assert specs["AnalystAgent"].config["api_key"] == "gm-0123456789abcdef"
    assert specs["AnalystAgent"].short_provider == "gemini" and specs["AnalystAgent"].text_tools_on
    assert not specs["Planner"].text_tools_on  # OpenAI's own API returns real tool calls
    gemini = load_client(specs["AnalystAgent"], settings)
    assert "generativelanguage.googleapis.com" in str(gemini._client.base_url)  # type: ignore[attr-defined]
    asyncio.run(gemini.close())
    with pytest.raises(ConfigError) as caught:
        load(path, tmp_path, GEMINI_API_KEY="gm-0123456789abcdef")
    assert caught.value.problems == [
        f"{path}:3: default (Planner, CodeAgent): no API key — set OPENAI_API_KEY (environment or .env) "
        "or write api_key: ${OPENAI_API_KEY}"
    ]


def test_azure_loads_as_this_apps_client(tmp_path: Path) -> None:
    path = write(tmp_path, """
        default:
          provider: azure
          config:
            model: gpt-4o
            azure_endpoint: https://example.openai.azure.com
            azure_deployment: gpt-4o-prod
            api_version: "2024-06-01"
    """)
    settings = load(path, tmp_path, AZURE_OPENAI_API_KEY="az-0123456789abcdef")
    spec = agent_specs(settings)["Planner"]
    assert spec.short_provider == "azure" and not spec.text_tools_on and spec.config["api_key"] == "az-0123456789abcdef"
    client = load_client(spec, settings)
    assert type(client).__name__ == "SbteamAzureOpenAIClient"
    asyncio.run(client.close())


def test_providers_whose_package_is_missing_say_what_to_install(tmp_path: Path) -> None:
    import importlib.util

    path = write(tmp_path, """
        default:
          provider: anthropic
          config: {model: claude-3-5-sonnet-20241022, api_key: "${ANTHROPIC_API_KEY}"}
        agents:
          CodeAgent:
            provider: ollama
            config: {model: "qwen2.5-coder:7b", host: "http://127.0.0.1:11434"}
    """)
    env = {"ANTHROPIC_API_KEY": "sk-ant-0123456789"}
    if importlib.util.find_spec("anthropic") and importlib.util.find_spec("ollama"):
        settings = load(path, tmp_path, **env)
        assert agent_specs(settings)["CodeAgent"].short_provider == "ollama"
        return
    found = problems(path, tmp_path, **env)
    expected = []
    if importlib.util.find_spec("anthropic") is None:
        expected.append(f'{path}:2: default (Planner, AnalystAgent): provider \'anthropic\' needs the anthropic '
                        'package: pip install "autogen-ext[anthropic]"')
    if importlib.util.find_spec("ollama") is None:
        expected.append(f'{path}:6: CodeAgent: provider \'ollama\' needs the ollama package: '
                        'pip install "autogen-ext[ollama]"')
    assert found == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            """
            default:
              provider: openai
              config: {model: m, base_url: "http://127.0.0.1:9/v1"}
            agents:
              CodeAgent:
                provider: llamafile
                config: {model: m}
            """,
            "{path}:6: CodeAgent: unknown provider 'llamafile' — use openai, azure, anthropic, ollama, gemini, "
            "or a class path such as autogen_ext.models.openai.OpenAIChatCompletionClient",
        ),
        (
            """
            default:
              provider: openai
              config:
                model: m
                base_url: "http://127.0.0.1:9/v1"
            agents:
              AnalystAgent:
                provider: openai
                config:
                  model: m
                  api_key: ${NOT_SET_ANYWHERE}
            """,
            "{path}:11: AnalystAgent: config.api_key: ${{NOT_SET_ANYWHERE}} is not set (set NOT_SET_ANYWHERE "
            "in the environment or .env)",
        ),
        (
            """
            agents:
              Coder:
                provider: openai
                config: {model: m}
            """,
            "{path}:2: unknown agent 'Coder' (the agents are Planner, CodeAgent, AnalystAgent; 'default' serves "
            "the others)",
        ),
        (
            """
            default:
              provider: openai
              config: {model: m, base_url: "http://127.0.0.1:9/v1"}
              temprature: 0.2
            """,
            "{path}:4: default (Planner, CodeAgent, AnalystAgent): unknown key 'temprature' (an entry has "
            "provider, config, price, text_tools, max_tokens)",
        ),
        (
            """
            default:
              provider: openai
              config: {model: m, base_url: "http://127.0.0.1:9/v1"
            """,
            "{path}:4: not valid YAML (expected ',' or '}}', but got '<stream end>')",
        ),
        (
            """
            agents:
              Planner:
                provider: openai
                config: {model: m, base_url: "http://127.0.0.1:9/v1"}
            """,
            "{path}: CodeAgent has no model: add a default: entry or agents: CodeAgent: (or set OPENAI_API_KEY / "
            "OPENAI_API_BASE for the agents the file leaves out)",
        ),
    ],
    ids=["unknown-provider", "missing-env-var", "unknown-agent", "unknown-key", "bad-yaml", "agent-without-model"],
)
def test_a_broken_file_is_one_clear_line_naming_file_line_and_agent(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path, body)
    found = problems(path, tmp_path)
    assert found[0] == expected.format(path=path), found
    assert all("\n" not in line for line in found)


def test_a_missing_file_named_by_models_is_a_problem(tmp_path: Path) -> None:
    assert problems(tmp_path / "nope.yaml", tmp_path) == [
        f"{tmp_path / 'nope.yaml'}: no such model file (SBTEAM_MODELS / --models)"
    ]


def test_where_the_file_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config" / "sbteam"
    config.mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert find_models_file(None, work) is None
    assert find_models_file(None, work, env={"XDG_CONFIG_HOME": str(tmp_path / "elsewhere")}) is None
    write(config, "default: {}\n", "models.yaml")
    assert find_models_file(None, work) == config / "models.yaml"
    assert find_models_file(None, work, env={"XDG_CONFIG_HOME": str(tmp_path / "config")}) == config / "models.yaml"
    write(work, "default: {}\n", "models.yaml")
    assert find_models_file(None, work) == work / "models.yaml"
    write(work, "default: {}\n", "sbteam.yaml")
    assert find_models_file(None, work) == work / "sbteam.yaml"
    assert find_models_file(str(tmp_path / "x.yaml"), work) == tmp_path / "x.yaml"


def test_without_a_file_the_environment_variables_keep_working(tmp_path: Path) -> None:
    settings = load(None, tmp_path, OPENAI_API_BASE="http://127.0.0.1:9/v1", OPENAI_MODEL="qwen")
    assert settings.models is None and model_label(settings) == "qwen"
    specs = agent_specs(settings)
    assert len({id(s) for s in specs.values()}) == 1 and specs["Planner"].entry == "environment"


async def test_a_client_that_cannot_be_built_ends_the_run_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, """
        default:
          provider: openai
          config:
            model: m
            base_url: "http://127.0.0.1:9/v1"
            max_retries: many
    """)
    settings = load(path, tmp_path, SBTEAM_SANDBOX="local")
    controller = RunController(settings)
    controller.start("task")
    events = await asyncio.wait_for(collect(controller), 60)
    await controller.close()
    done = [e for e in events if isinstance(e, ev.RunFinished)][-1]  # then FINISHED and OutputsSaved
    assert isinstance(done, ev.RunFinished) and done.reason == "error"
    assert done.message.startswith(f"{path}:1: Planner, CodeAgent, AnalystAgent: config.max_retries: Input should be")
    assert "\n" not in done.message


def test_models_command_prints_the_configuration_with_keys_masked(tmp_path: Path, capsys, monkeypatch) -> None:
    from tui.cli import main

    path = write(tmp_path, THREE.format(a="http://127.0.0.1:9/v1", b="http://127.0.0.1:10/v1"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEY_A", KEY_A)
    monkeypatch.setenv("KEY_B", KEY_B)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    assert main(["models", "--models", str(path)]) == 0
    out = capsys.readouterr().out
    assert KEY_A not in out and KEY_B not in out
    assert f"models from model file {path}" in out
    assert "Planner: planner-model via openai" in out and "CodeAgent: coder-model via openai" in out
    assert "${KEY_A} = sk-…ef" in out and "price        $1/$2 per 1M tokens" in out
    assert "text tools   off (off)" in out and "max tokens   2048 per reply" in out
    assert "temperature  0.1" in out
    (tmp_path / "bad.yaml").write_text("default:\n  provider: nope\n  config: {model: m}\n")
    assert main(["models", "--models", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'bad.yaml'}:2: default (Planner, CodeAgent, AnalystAgent): unknown provider 'nope'" in err


async def test_doctor_checks_every_client_and_names_the_agents(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{unused_port()}/v1"
    with FakeOpenAIServer(script=lambda req: tool_call("ping", {}), api_key=KEY_A, models=["planner-model"]) as a:
        path = write(tmp_path, THREE.format(a=a.base_url, b=dead))
        settings = load(path, tmp_path, KEY_A=KEY_A, KEY_B=KEY_B)
        checks = await run_checks(settings, sandbox_factory=factory_for(FakeSandbox()))
    by = {c.name: c for c in checks}
    assert by["settings valid"].detail.startswith(f"models from {path}: Planner 'planner-model' (openai)")
    assert by["model calls tools (Planner)"].status == "OK"
    assert by["model calls tools (AnalystAgent)"].status == "OK"
    assert by["API key accepted (AnalystAgent)"].status == "WARN"  # analyst-model is not listed by server A
    down = by["model endpoint reachable (CodeAgent)"]
    assert down.status == "FAIL" and f"cannot reach the model endpoint {dead}" in down.detail
    assert f"base_url, {path}:" in down.detail and "CodeAgent's entry" in down.fix
    assert KEY_A not in str(checks) and KEY_B not in str(checks)


def test_the_status_bar_shows_the_speaking_agents_model() -> None:
    from tui.widgets.status_bar import StatusBar

    bar = StatusBar()
    bar.models = {"Planner": "gpt-4o", "CodeAgent": "qwen2.5-coder:7b", "AnalystAgent": "gpt-4o-mini"}
    bar.model = "Planner=gpt-4o, CodeAgent=qwen2.5-coder:7b, AnalystAgent=gpt-4o-mini"
    bar.agent = "CodeAgent"
    assert "qwen2.5-coder:7b" in bar.build(width=0).plain and "gpt-4o" not in bar.build(width=0).plain
    bar.agent = "AnalystAgent"
    assert "gpt-4o-mini" in bar.build(width=0).plain


def test_azure_with_an_aad_token_provider_needs_the_azure_packages(tmp_path: Path) -> None:
    import importlib.util

    path = write(tmp_path, """
        default:
          provider: AzureOpenAIChatCompletionClient
          config:
            model: gpt-4o
            azure_endpoint: https://example.openai.azure.com
            api_version: "2024-06-01"
            azure_ad_token_provider:
              provider: autogen_ext.auth.azure.AzureTokenProvider
              config:
                provider_kind: DefaultAzureCredential
                scopes: ["https://cognitiveservices.azure.com/.default"]
    """)
    try:
        missing = importlib.util.find_spec("azure.identity") is None
    except ImportError:
        missing = True
    if not missing:
        assert agent_specs(load(path, tmp_path))["Planner"].short_provider == "azure"
        return
    assert problems(path, tmp_path) == [
        f"{path}:2: default (Planner, CodeAgent, AnalystAgent): provider 'AzureOpenAIChatCompletionClient' needs the "
        'azure.identity package: pip install "autogen-ext[azure]" (for azure_ad_token_provider)'
    ]
