"""Settings: defaults, .env vs environment, aliases, one clear line per bad value, no secrets shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from team.config import ConfigError, Settings

OPENAI_SECRET = "sk-test-0123456789abcdefSECRET"
E2B_SECRET = "e2b_0123456789abcdefSECRETKEY"


def load(env: dict[str, str], env_file: Path | None = None) -> Settings:
    return Settings.load(env=env, env_file=env_file)


def problems_of(env: dict[str, str], env_file: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(env, env_file)
    # str() is the user's view: one line per problem, nothing else
    assert str(info.value).splitlines() == info.value.problems
    return info.value.problems


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    s = load({})
    assert s.openai_api_key is None and s.openai_api_base is None and s.e2b_api_key is None
    assert s.openai_model == "gpt-4o"
    assert s.sandbox == "local"
    assert s.prompts == "zh"
    assert s.max_messages == 30 and isinstance(s.max_messages, int)
    assert s.timeout == 600
    assert s.home == tmp_path / "xdg" / "sbteam"
    assert s.runs_dir == tmp_path / "xdg" / "sbteam" / "runs"
    assert s.is_demo


def test_home_without_xdg_is_under_local_share(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load({}).home == tmp_path / ".local" / "share" / "sbteam"


def test_values_are_read_and_normalised(tmp_path):
    s = load(
        {
            "OPENAI_API_KEY": "  k-1  ",
            "OPENAI_API_BASE": "http://127.0.0.1:11434/v1",
            "OPENAI_MODEL": "llama3.1",
            "SBTEAM_SANDBOX": "LOCAL",
            "SBTEAM_PROMPTS": "EN",
            "SBTEAM_MAX_MESSAGES": "12",
            "SBTEAM_TIMEOUT": "2.5",
            "SBTEAM_HOME": str(tmp_path / "h"),
        }
    )
    assert s.openai_api_key == "k-1"
    assert s.openai_api_base == "http://127.0.0.1:11434/v1"
    assert s.openai_model == "llama3.1"
    assert s.sandbox == "local" and s.prompts == "en"
    assert s.max_messages == 12 and s.timeout == 2.5
    assert s.home == tmp_path / "h"


def test_empty_values_count_as_unset():
    s = load({"OPENAI_API_KEY": "", "OPENAI_MODEL": "  ", "SBTEAM_MAX_MESSAGES": ""})
    assert s.openai_api_key is None and s.openai_model == "gpt-4o" and s.max_messages == 30


def test_environment_wins_over_dotenv(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# a comment\n"
        "OPENAI_MODEL=from-dotenv\n"
        "SBTEAM_MAX_MESSAGES=7\n"
        "export SBTEAM_PROMPTS=en\n"
        'OPENAI_API_KEY="dotenv-key"\n',
        encoding="utf-8",
    )
    s = load({"OPENAI_MODEL": "from-env"}, env_file)
    assert s.openai_model == "from-env"  # environment wins
    assert s.max_messages == 7  # .env fills what the environment lacks
    assert s.prompts == "en"
    assert s.openai_api_key == "dotenv-key"


def test_dotenv_saved_with_a_bom_is_read(tmp_path):
    """Windows editors save UTF-8 with a byte-order mark; the first variable must still count."""
    env_file = tmp_path / ".env"
    env_file.write_bytes("\ufeffOPENAI_MODEL=bom-model\nSBTEAM_TIMEOUT=30\n".encode())
    s = load({}, env_file)
    assert s.openai_model == "bom-model" and s.timeout == 30


def test_default_env_file_is_dotenv_in_the_working_folder(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("OPENAI_MODEL=cwd-model\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert Settings.load(env={}).openai_model == "cwd-model"
    assert Settings.load(env={}, env_file=None).openai_model == "gpt-4o"


def test_dotenv_is_not_copied_into_the_process_environment(tmp_path, monkeypatch):
    import os

    env_file = tmp_path / ".env"
    env_file.write_text(f"OPENAI_API_KEY={OPENAI_SECRET}\n", encoding="utf-8")
    s = load({}, env_file)
    assert s.openai_api_key == OPENAI_SECRET
    assert "OPENAI_API_KEY" not in os.environ  # child processes never inherit it by accident


def test_openai_base_url_alias():
    s = load({"OPENAI_BASE_URL": "http://localhost:8000/v1"})
    assert s.openai_api_base == "http://localhost:8000/v1"
    # the documented name wins when both are set
    both = load({"OPENAI_API_BASE": "http://a:1/v1", "OPENAI_BASE_URL": "http://b:2/v1"})
    assert both.openai_api_base == "http://a:1/v1"


def test_sandbox_docker_is_one_clear_line():
    problems = problems_of({"SBTEAM_SANDBOX": "docker"})
    assert len(problems) == 1
    assert problems[0].startswith("SBTEAM_SANDBOX must be 'local' or 'e2b'")
    assert "docker" in problems[0]


def test_sandbox_defaults_to_e2b_with_a_key_and_e2b_needs_a_key():
    assert load({"E2B_API_KEY": E2B_SECRET}).sandbox == "e2b"
    assert load({"E2B_API_KEY": E2B_SECRET, "SBTEAM_SANDBOX": "local"}).sandbox == "local"
    problems = problems_of({"SBTEAM_SANDBOX": "e2b"})
    assert len(problems) == 1 and "E2B_API_KEY" in problems[0] and "SBTEAM_SANDBOX" in problems[0]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SBTEAM_MAX_MESSAGES", "many"),
        ("SBTEAM_MAX_MESSAGES", "0"),
        ("SBTEAM_MAX_MESSAGES", "-5"),
        ("SBTEAM_MAX_MESSAGES", "2.5"),
        ("SBTEAM_TIMEOUT", "soon"),
        ("SBTEAM_TIMEOUT", "0"),
        ("SBTEAM_TIMEOUT", "-1"),
        ("SBTEAM_TIMEOUT", "nan"),
        ("SBTEAM_TIMEOUT", "inf"),
        ("SBTEAM_PROMPTS", "fr"),
        ("SBTEAM_NETWORK", "maybe"),
        ("OPENAI_API_BASE", "localhost:11434/v1"),
        ("OPENAI_API_BASE", "ftp://example.org/v1"),
    ],
)
def test_bad_value_names_the_variable(name, value):
    problems = problems_of({name: value})
    assert len(problems) == 1
    line = problems[0]
    assert line.startswith(f"{name} must be"), line
    assert repr(value) in line  # says what it got ...
    assert "\n" not in line


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("SBTEAM_MAX_MESSAGES", "whole number"),
        ("SBTEAM_TIMEOUT", "seconds"),
        ("SBTEAM_PROMPTS", "'zh' or 'en'"),
        ("OPENAI_API_BASE", "http"),
    ],
)
def test_bad_value_says_what_is_accepted(name, accepted):
    assert accepted in problems_of({name: "???"})[0]


def test_bad_alias_value_names_the_alias_the_user_set():
    problems = problems_of({"OPENAI_BASE_URL": "127.0.0.1:8000"})
    assert len(problems) == 1 and problems[0].startswith("OPENAI_BASE_URL must be")


def test_several_problems_are_reported_together_one_per_line():
    with pytest.raises(ConfigError) as info:
        load(
            {
                "SBTEAM_SANDBOX": "docker",
                "SBTEAM_MAX_MESSAGES": "x",
                "SBTEAM_TIMEOUT": "-3",
                "SBTEAM_PROMPTS": "de",
                "OPENAI_API_BASE": "nope",
            }
        )
    lines = str(info.value).splitlines()
    assert len(lines) == 5
    for name in (
        "SBTEAM_SANDBOX",
        "SBTEAM_MAX_MESSAGES",
        "SBTEAM_TIMEOUT",
        "SBTEAM_PROMPTS",
        "OPENAI_API_BASE",
    ):
        assert sum(line.startswith(name) for line in lines) == 1, name


def test_dotenv_with_a_bad_line_is_reported(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("OPENAI_MODEL=ok\nthis line is not an assignment\nSBTEAM_TIMEOUT=30\n")
    problems = problems_of({}, env_file)
    assert len(problems) == 1
    assert str(env_file) in problems[0] and "line 2" in problems[0]


def test_dotenv_bad_value_is_reported_like_an_environment_one(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SBTEAM_MAX_MESSAGES=lots\n")
    problems = problems_of({}, env_file)
    assert (
        problems == [p for p in problems if p.startswith("SBTEAM_MAX_MESSAGES must be")]
        and problems
    )


def test_repr_and_str_never_show_the_keys(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f"E2B_API_KEY={E2B_SECRET}\n")
    s = load({"OPENAI_API_KEY": OPENAI_SECRET}, env_file)
    assert s.openai_api_key == OPENAI_SECRET and s.e2b_api_key == E2B_SECRET
    for shown in (repr(s), str(s), f"{s}", repr([s]), repr(s.with_(openai_model="m"))):
        assert OPENAI_SECRET not in shown and E2B_SECRET not in shown
        assert "SECRET" not in shown
        assert (
            "openai_api_key=" in shown and "e2b_api_key=" in shown
        )  # the fields are there, masked
    assert sorted(s.secrets()) == sorted([OPENAI_SECRET, E2B_SECRET])


def test_short_keys_are_masked_completely():
    s = Settings(openai_api_key="abc123")
    assert "abc123" not in repr(s) and "abc" not in repr(s)


def test_config_error_never_echoes_a_key():
    # a key pasted into the wrong variable must not be printed back whole
    with pytest.raises(ConfigError) as info:
        load({"OPENAI_API_KEY": OPENAI_SECRET, "SBTEAM_SANDBOX": "e2b"})
    assert OPENAI_SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("env", "demo"),
    [
        ({}, True),
        ({"OPENAI_API_KEY": "k"}, False),
        ({"OPENAI_API_BASE": "http://127.0.0.1:8080/v1"}, False),  # local server, no key needed
        ({"OPENAI_BASE_URL": "http://127.0.0.1:8080/v1"}, False),
        ({"OPENAI_API_KEY": "k", "OPENAI_API_BASE": "http://127.0.0.1:8080/v1"}, False),
        ({"OPENAI_MODEL": "gpt-4o-mini"}, True),  # a model name alone is not a model endpoint
        ({"E2B_API_KEY": E2B_SECRET}, True),
    ],
)
def test_is_demo_rules(env, demo):
    assert load(env).is_demo is demo


def test_demo_can_be_forced():
    s = load({"OPENAI_API_KEY": "k"})
    assert not s.is_demo
    assert s.with_(demo=True).is_demo
    assert Settings.load(env={"OPENAI_API_KEY": "k"}, env_file=None, demo=True).is_demo


# -- .env encodings ----------------------------------------------------------------------------------

DOTENV_TEXT = "# written on Windows\r\nOPENAI_MODEL=modèle-ü\r\nSBTEAM_TIMEOUT=30\r\n"


@pytest.mark.parametrize(
    "data",
    [
        DOTENV_TEXT.encode("utf-16"),  # PowerShell 5: `"…" > .env` / Out-File (UTF-16 LE with a BOM)
        b"\xff\xfe" + DOTENV_TEXT.encode("utf-16-le"),
        b"\xfe\xff" + DOTENV_TEXT.encode("utf-16-be"),
        DOTENV_TEXT.encode("utf-8-sig"),
        DOTENV_TEXT.encode("utf-16-le"),  # no BOM at all
        DOTENV_TEXT.encode("utf-16-be"),
        DOTENV_TEXT.encode("utf-8"),
    ],
    ids=["utf16", "utf16le-bom", "utf16be-bom", "utf8-bom", "utf16le", "utf16be", "utf8"],
)
def test_dotenv_in_utf16_or_utf8_with_a_bom_is_read(tmp_path, data):
    env_file = tmp_path / ".env"
    env_file.write_bytes(data)
    s = load({}, env_file)
    assert s.openai_model == "modèle-ü" and s.timeout == 30


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ("OPENAI_MODEL=modèle\n".encode("latin-1"), "neither UTF-8 nor UTF-16"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "neither UTF-8 nor UTF-16"),
        (b"\xff\xfeO\x00=\x00\x00\xd8", "neither UTF-8 nor UTF-16"),  # a broken UTF-16 surrogate
        (b"OPENAI_MODEL=x\x00\x00\x00\n", "NUL"),
    ],
    ids=["latin1", "binary", "bad-utf16", "nul"],
)
def test_undecodable_dotenv_is_one_line_naming_the_file(tmp_path, data, says):
    env_file = tmp_path / ".env"
    env_file.write_bytes(data)
    problems = problems_of({"OPENAI_MODEL": "from-env"}, env_file)
    assert len(problems) == 1
    assert str(env_file) in problems[0] and says in problems[0] and "save it as UTF-8" in problems[0]


def test_unreadable_dotenv_is_one_line_naming_the_file(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("OPENAI_MODEL=x\n")

    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert problems_of({}, env_file) == [f"cannot read {env_file}: Permission denied"]


# -- .env.example -----------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent


def test_env_example_keeps_every_default_and_lists_every_variable(tmp_path):
    example = REPO / ".env.example"
    s = load({}, example)
    assert s == Settings(home=s.home)  # copying it unchanged changes nothing
    # with an E2B key the sandbox becomes e2b, as documented ("e2b when a key is set")
    assert load({"E2B_API_KEY": E2B_SECRET}, example).sandbox == "e2b"
    text = example.read_text(encoding="utf-8")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = "\n".join(line.split(" | ")[0] for line in readme.splitlines() if line.startswith("| `"))
    documented = set(re.findall(r"`((?:OPENAI|E2B|SBTEAM)_[A-Z_]+)`", table)) - {"OPENAI_BASE_URL"}  # an alias
    documented |= set(re.findall(r"`(SBTEAM_[A-Z_]+)=", readme))  # SBTEAM_IMAGE=auto|… in the prose
    assert {"SBTEAM_LOOP_LIMIT", "SBTEAM_PRICES", "SBTEAM_IMAGE"} <= documented
    for name in documented:
        assert re.search(rf"^{name}=", text, re.M), f"{name} missing from .env.example"


def test_sbteam_image_is_read_from_dotenv(tmp_path, monkeypatch):
    from tui.widgets import images

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SBTEAM_IMAGE", raising=False)
    monkeypatch.setattr(images, "_override", None)
    monkeypatch.setattr(images, "_from_dotenv", {})
    (tmp_path / ".env").write_text("SBTEAM_IMAGE=off\n")
    assert images.configured() == "off" and images.renderer() == "off"
    monkeypatch.setenv("SBTEAM_IMAGE", "unicode")  # the environment wins
    assert images.renderer() == "unicode"
    monkeypatch.delenv("SBTEAM_IMAGE")
    monkeypatch.setattr(images, "_from_dotenv", {})
    (tmp_path / ".env").write_bytes("SBTEAM_IMAGE=sixel\n".encode("utf-16"))
    assert images.renderer() == "sixel"
    monkeypatch.setattr(images, "_from_dotenv", {})
    (tmp_path / ".env").write_bytes(b"SBTEAM_IMAGE=\xe9\n")  # undecodable: auto, never a crash
    assert images.configured() == "auto"


# -- the table of variables -------------------------------------------------------------------------

VARIABLE_NAME = re.compile(r"\b(?:SBTEAM|OPENAI|E2B|JOB)_[A-Z0-9_]*[A-Z0-9]\b")


def test_env_example_is_generated_from_the_table():
    from team.config_docs import env_example

    assert (REPO / ".env.example").read_text(encoding="utf-8") == env_example(), (
        "run: python -m team.config --write"
    )


def test_every_variable_the_code_names_is_in_the_table():
    """A variable read anywhere in team/ or tui/ is a row of the table (constants named like
    one, such as OPENAI_DEFAULT_BASE, are assignments and do not count)."""
    from team.config import variable

    sources = [p.read_text(encoding="utf-8") for d in ("team", "tui") for p in (REPO / d).rglob("*.py")]
    named = {name for text in sources for name in VARIABLE_NAME.findall(text)}
    constants = {name for text in sources for name in re.findall(r"^\s*([A-Z0-9_]+)\s*[:=]", text, re.M)}
    missing = []
    for name in sorted(named - constants):
        try:
            variable(name)
        except KeyError:
            missing.append(name)
    assert not missing, f"add these to team/config.py VARIABLES: {missing}"


def test_settings_defaults_are_the_tables():
    from team.config import VARIABLES, default_of

    defaults = Settings()
    for var in VARIABLES:
        if var.field and var.default:
            assert getattr(defaults, var.field) == default_of(var.name), var.name
    assert defaults.max_messages == 30 and defaults.timeout == 600.0  # DESIGN.md's 30, 600 s


def test_readers_outside_settings_use_the_tables_defaults():
    from team.config import default_of, variable
    from team.models_config import DEFAULT_MAX_TOKENS, TEXT_TOOLS_MODES
    from team.sandbox.e2b import scale_limits
    from tui.widgets.images import RENDERERS

    assert scale_limits({}) == (
        int(default_of("SBTEAM_E2B_CONCURRENCY")), float(default_of("SBTEAM_E2B_RATE")), int(default_of("SBTEAM_E2B_RETRIES"))
    )
    assert default_of("SBTEAM_IMAGE") == RENDERERS[0] and all(r in variable("SBTEAM_IMAGE").help for r in RENDERERS)
    assert default_of("SBTEAM_MAX_TOKENS") == DEFAULT_MAX_TOKENS
    assert all(mode in variable("SBTEAM_TEXT_TOOLS").help for mode in TEXT_TOOLS_MODES)
    for var in (variable("SBTEAM_E2B_RATE"), variable("JOB_COMPLETIONS"), variable("SBTEAM_IMAGE")):
        assert var.field is None and (REPO / var.reader).is_file()


def test_an_alias_is_the_same_variable():
    from team.config import variable

    assert variable("OPENAI_BASE_URL") is variable("OPENAI_API_BASE")
    with pytest.raises(KeyError):
        variable("SBTEAM_TIMOUT")


def test_fix_hints_name_the_variables_of_the_problems():
    from team.config_docs import fix_hints

    hints = fix_hints(["SBTEAM_SANDBOX must be 'local' or 'e2b' (got 'docker')", "OPENAI_BASE_URL must be an http(s) URL"])
    assert [h.split()[0] for h in hints] == ["OPENAI_API_BASE", "SBTEAM_SANDBOX"]
    assert "local" in hints[1] and "e2b" in hints[1]
    timeout = fix_hints(["SBTEAM_TIMEOUT must be a number of seconds greater than 0 (got '0')"])
    assert len(timeout) == 1 and timeout[0].endswith("default 600")
    assert {h.split()[0] for h in fix_hints([".env has lines python-dotenv cannot parse"])} >= {"OPENAI_API_KEY", "SBTEAM_SANDBOX"}


def test_python_m_team_config_prints_what_the_table_generates(capsys):
    from team.config_docs import env_example, main, readme_table

    assert main(["--env-example"]) == 0 and capsys.readouterr().out == env_example()
    assert main(["--readme"]) == 0 and capsys.readouterr().out == readme_table() + "\n"
    assert main(["--nope"]) == 2


# -- sandbox kinds ----------------------------------------------------------------------------------


def test_every_sandbox_option_offers_the_kinds():
    import argparse

    from team.eval.command import eval_parser
    from team.sandbox.kinds import SANDBOX_KINDS
    from tui import cli

    parsers = [cli._app_parser(), cli._run_parser(), cli._batch_parser(), cli._doctor_parser(), eval_parser()]
    for parser in parsers:
        (option,) = [a for a in parser._actions if "--sandbox" in a.option_strings]
        assert tuple(option.choices) == SANDBOX_KINDS == ("local", "e2b"), parser.prog
    with pytest.raises(SystemExit):
        argparse.ArgumentParser.parse_args(cli._run_parser(), ["t", "--sandbox", "docker"])


def test_kinds_say_which_isolation_is_none_and_which_kind_needs_a_key():
    from team.sandbox.kinds import default_kind, is_unisolated, kind_named

    assert is_unisolated("none")
    assert not any(is_unisolated(i) for i in ("bwrap", "e2b", "unknown", "starting…", ""))
    assert kind_named("e2b").key == "E2B_API_KEY" and kind_named("local").on_host
    assert default_kind({}) == "local" and default_kind({"E2B_API_KEY": "k"}) == "e2b"
