"""Settings, and the one table of environment variables they come from.

`VARIABLES` lists every variable the app reads — name, default, a short help, the
parser — wherever it is read: most fill a `Settings` field here; a few are read where
they are used (`reader`: the E2B scale limits, the image renderer, a Kubernetes shard,
the bench's hooks). From the table come `Settings.load` and its one-line errors, the
hints of the configuration-error screen, `.env.example` and the README's table
(`python -m team.config --write`; team/config_docs.py) and the variables `doctor` lists;
a new variable is one `Var` here, and the tests keep the generated files in sync.

Plain frozen dataclasses rather than pydantic-settings: the variables are flat and
each bad value gets a custom one-line message, which is less code by hand than by
customising pydantic's error rendering. The `.env` file (team/envfile.py) is merged
under the environment and never copied into `os.environ`. Importing this module is
cheap on purpose (no AutoGen, E2B or Textual): the command line and the app's first
paint read it. Slightly over the ~400-line guide: a third of it is the table.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .envfile import dotenv_value, merged_env  # noqa: F401  # dotenv_value: re-exported for its readers
from .sandbox.kinds import KINDS, SANDBOX_KINDS, default_kind, kind_named
from .sandbox.limits import Limits

if TYPE_CHECKING:
    from .cost import SpendPool
    from .models_config import ModelsFile

SECRET_NAME = re.compile(r"(?:_KEY|_TOKEN|_SECRET|_PASSWORD|_PASSWD)$", re.IGNORECASE)  # values to scrub
PROMPT_LANGS = ("zh", "en")
TEXT_TOOLS_ALIASES = {"1": "on", "true": "on", "yes": "on", "0": "off", "false": "off", "no": "off"}
SWITCH = {"on": True, "1": True, "true": True, "yes": True, "off": False, "0": False, "false": False, "no": False}


class ConfigError(ValueError):
    """One or more bad settings; `str()` is one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# -- parsers: the raw text (stripped, never empty) -> the value; ValueError("must be …") or
# -- ConfigError(whole lines) when bad. `Settings.load` puts the variable's name in front.

Parser = Callable[[str], Any]


def _either(words: Sequence[str]) -> str:
    quoted = [f"'{word}'" for word in words]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}" if len(quoted) > 1 else quoted[0]


def one_of(accepted: Sequence[str], aliases: Mapping[str, str] | None = None) -> Parser:
    """A word from `accepted`, any case; `aliases` map other words onto them."""

    def parse(raw: str) -> str:
        value = raw.lower()
        value = (aliases or {}).get(value, value)
        if value not in accepted:
            raise ValueError(f"must be {_either(accepted)} (got {value!r})")
        return value

    return parse


def positive(kind: type[int] | type[float]) -> Parser:
    """A whole number (int) or a number of seconds (float) greater than 0."""

    def parse(raw: str) -> int | float:
        try:
            value: float | None = kind(raw)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value <= 0:  # nan/inf: not a limit, and not JSON
            noun = "a whole number" if kind is int else "a number of seconds"
            raise ValueError(f"must be {noun} greater than 0 (got {raw!r})")
        return value

    return parse


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError(f"must be an http(s) URL such as https://api.openai.com/v1 (got {raw!r})")
    return raw


def _switch(raw: str) -> bool:
    value = raw.lower()
    if value not in SWITCH:
        raise ValueError(f"must be 'on' or 'off' (got {value!r})")
    return SWITCH[value]


def _loop_limit(raw: str) -> int:
    if not raw.isdigit():
        raise ValueError(f"must be a whole number, 0 to turn the loop guard off (got {raw!r})")
    return int(raw)


def _dollars(raw: str) -> float:
    try:
        cost = float(raw.lstrip("$"))
    except ValueError:
        cost = math.nan
    if not math.isfinite(cost) or cost <= 0:
        raise ValueError(f"must be an amount in US dollars greater than 0, e.g. 1.50 (got {raw!r})")
    return cost


def _limits(raw: str) -> Limits:
    limits, problems = Limits.parse(raw)
    if problems:
        raise ConfigError(problems)
    return limits


def _prices(raw: str) -> dict[str, tuple[float, float]]:
    from .cost import parse_prices

    prices, problems = parse_prices(raw)
    if problems:
        raise ConfigError(problems)
    return prices


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


# -- the table ----------------------------------------------------------------------------

DOTENV = "environment or .env"  # scope: listed in .env.example and the README
ENVIRONMENT = "environment only"  # set by the platform (Kubernetes), not in .env.example
BENCH = "bench hook"  # internal: neither in .env.example nor in the README


@dataclass(frozen=True)
class Var:
    """One environment variable."""

    name: str
    default: str  # the value that gives the default, as .env.example writes it ("" = unset)
    help: str  # a short phrase: the README's table, doctor, the configuration-error hints
    parse: Parser | None = None  # None: the text as it is
    field: str | None = None  # the `Settings` field it fills; None: read where `reader` says
    shown: str = ""  # the default in words, when `default` alone cannot say it
    note: str = ""  # more words for .env.example's comment
    aliases: tuple[str, ...] = ()
    secret: bool = False
    scope: str = DOTENV
    reader: str = "team/config.py"

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    @property
    def default_text(self) -> str:
        """The default as the README and the hints say it."""
        return self.shown or self.default

    def value(self, raw: str | None) -> Any:
        """`raw` parsed (the default's value for None); ValueError/ConfigError when bad."""
        text = self.default if raw is None else raw
        if text == "":
            return None
        return self.parse(text) if self.parse else text


def _kinds_help() -> str:
    return "which sandbox runs the code: " + " or ".join(f"{k.name} ({k.summary})" for k in KINDS)


VARIABLES: tuple[Var, ...] = (
    Var("OPENAI_API_KEY", "", "key for the model endpoint (OpenAI or any OpenAI-compatible server)",
        field="openai_api_key", shown="none → DEMO", secret=True),
    Var("OPENAI_API_BASE", "", "any OpenAI-compatible endpoint: OpenAI, Azure-compatible proxies, Ollama, "
        "vLLM, LM Studio, llama.cpp server", parse=_url, field="openai_api_base", shown="OpenAI",
        note="A local server needs no key, e.g. http://127.0.0.1:11434/v1", aliases=("OPENAI_BASE_URL",)),
    Var("OPENAI_MODEL", "gpt-4o", "model name (must support tool calling)", field="openai_model"),
    Var("E2B_API_KEY", "", "E2B cloud sandbox key (e2b.dev); when set, the sandbox defaults to e2b",
        field="e2b_api_key", shown="none", secret=True),
    Var("SBTEAM_SANDBOX", "", _kinds_help(), parse=one_of(SANDBOX_KINDS), field="sandbox",
        shown=", ".join(f"{k.name} with {k.key}" for k in KINDS if k.key) + f", else {default_kind({})}"),
    Var("SBTEAM_PROMPTS", "zh", "agent system prompts: zh (the seed's, verbatim) or en (a faithful translation)",
        parse=one_of(PROMPT_LANGS), field="prompts"),
    Var("SBTEAM_MAX_MESSAGES", "30", "termination limit: messages in a run", parse=positive(int), field="max_messages"),
    Var("SBTEAM_TIMEOUT", "600", "termination limit: seconds before a run times out", parse=positive(float),
        field="timeout"),
    Var("SBTEAM_LOOP_LIMIT", "4", "end a run as loop when the same handoff repeats this often with no tool "
        "call in between (0 = off)", parse=_loop_limit, field="loop_limit"),
    Var("SBTEAM_PRICES", "", "override model prices: model=input/output in USD per 1M tokens, comma-separated, "
        "e.g. gpt-4o=2.5/10,my-local-model=0/0", parse=_prices, field="prices", shown="the built-in table"),
    Var("SBTEAM_HOME", "", "where run records live (events.jsonl, files/, state.json)", parse=_path, field="home",
        shown="$XDG_DATA_HOME/sbteam or ~/.local/share/sbteam"),
    Var("SBTEAM_NETWORK", "on", "network inside the local sandbox: on (like E2B) or off", parse=_switch,
        field="network"),
    Var("SBTEAM_LIMITS", "", "limits of the local sandbox, any subset of "
        "memory=4G,processes=256,file=2G,tmp=1G,disk=10G,cell=300 (0 or off turns one off)", parse=_limits,
        field="limits",
        shown="as listed; memory is the smaller of 4G and half the RAM"),
    Var("SBTEAM_IMAGE", "auto", "how pictures are drawn in the terminal: auto, sixel, tgp (Kitty graphics), "
        "halfcell, unicode or off", reader="tui/widgets/images.py"),
    Var("SBTEAM_MODELS", "", "model file (YAML): a default and per-agent AutoGen model clients "
        "(see Models in the README); --models FILE wins",
        shown="sbteam.yaml or models.yaml here, else in ~/.config/sbteam/; none: the OPENAI_* variables"),
    Var("SBTEAM_TEXT_TOOLS", "auto", "tool calls a model writes as text (fenced JSON, <tool_call> tags) become "
        "real calls: on, off or auto (on for every endpoint but OpenAI's own API and Azure)",
        parse=one_of(("on", "off", "auto"), TEXT_TOOLS_ALIASES), field="text_tools"),
    Var("SBTEAM_MAX_TOKENS", "4096", "cap on each model reply, in tokens (a model file may set max_tokens "
        "per client)", parse=positive(int), field="max_tokens"),
    Var("SBTEAM_MAX_COST", "", "spend cap in US dollars per run, and for all the runs of a batch or an eval "
        "together: a run ends as budget before the model call that would pass it", parse=_dollars, field="max_cost",
        shown="no cap"),
    Var("SBTEAM_E2B_CONCURRENCY", "20", "E2B sandboxes alive at once in this process (0 = no cap)",
        note="The E2B defaults fit the Hobby tier (Pro: 100 at once, 5 per second).",
        reader="team/sandbox/e2b.py"),
    Var("SBTEAM_E2B_RATE", "1", "E2B sandbox creations per second (0 = no limit)", reader="team/sandbox/e2b.py"),
    Var("SBTEAM_E2B_RETRIES", "6", "retries of a refused E2B sandbox creation, with exponential backoff",
        reader="team/sandbox/e2b.py"),
    Var("JOB_COMPLETION_INDEX", "", "batch and eval take this shard (0-based) of a Kubernetes Indexed Job; "
        "--shard wins", shown="none", scope=ENVIRONMENT, reader="team/scale.py"),
    Var("JOB_COMPLETIONS", "", "the number of shards, with JOB_COMPLETION_INDEX (the Job's spec.completions)",
        shown="none", scope=ENVIRONMENT, reader="team/scale.py"),
    Var("SBTEAM_PAINT_FILE", "", "bench/bench_tui.py: the app writes the time of its first paint here",
        scope=BENCH, reader="tui/app.py"),
    Var("SBTEAM_PAINT_STAY", "", "bench/bench_tui.py: keep the app open after the first paint",
        scope=BENCH, reader="tui/app.py"),
    Var("SBTEAM_READY_FILE", "", "bench/bench_tui.py: the app writes the time its sandbox is ready here",
        scope=BENCH, reader="tui/boot.py"),
)
_BY_NAME = {name: var for var in VARIABLES for name in var.names}


def variable(name: str) -> Var:
    """The table's entry for `name` (or one of its aliases); KeyError for an unknown one."""
    return _BY_NAME[name]


def default_of(name: str) -> Any:
    """The parsed default of a variable (None when it has none to write down)."""
    return variable(name).value(None)


DEFAULT_MODEL: str = default_of("OPENAI_MODEL")
DEFAULT_MAX_MESSAGES: int = default_of("SBTEAM_MAX_MESSAGES")
DEFAULT_TIMEOUT: float = default_of("SBTEAM_TIMEOUT")


def mask(secret: str | None) -> str:
    if not secret:
        return "None"
    return f"'{secret[:3]}…{secret[-2:]}'" if len(secret) > 8 else "'***'"


def default_home() -> Path:
    """`$XDG_DATA_HOME/sbteam`, else `~/.local/share/sbteam` (platformdirs on other OSes)."""
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg:
        return Path(xdg) / "sbteam"
    if os.name == "posix":
        return Path.home() / ".local" / "share" / "sbteam"
    import platformdirs

    return Path(platformdirs.user_data_dir("sbteam"))


@dataclass(frozen=True)
class Settings:
    """Validated configuration. `repr()` masks the keys. Defaults: the table's."""

    openai_api_key: str | None = field(default=None, repr=False)
    openai_api_base: str | None = None
    openai_model: str = DEFAULT_MODEL
    e2b_api_key: str | None = field(default=None, repr=False)
    sandbox: str = default_kind({})
    prompts: str = default_of("SBTEAM_PROMPTS")
    max_messages: int = DEFAULT_MAX_MESSAGES
    timeout: float = DEFAULT_TIMEOUT
    home: Path = field(default_factory=default_home)
    network: bool = default_of("SBTEAM_NETWORK")
    demo: bool = False
    model_timeout: float = 60.0
    model_retries: int = 2
    loop_limit: int = default_of("SBTEAM_LOOP_LIMIT")
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits.default)
    other_secrets: tuple[str, ...] = field(default=(), repr=False)
    # Models (team/models_config.py): the model file, text tool calls, reply cap, spend cap.
    models: ModelsFile | None = None
    text_tools: str = default_of("SBTEAM_TEXT_TOOLS")  # on | off | auto
    max_tokens: int = default_of("SBTEAM_MAX_TOKENS")  # per reply
    max_cost: float | None = None  # USD per run (and per batch)
    spend_pool: SpendPool | None = field(default=None, repr=False, compare=False)  # a batch's shared spend

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "other_secrets":
                shown = f"<{len(value)} hidden>"
            else:
                shown = mask(value) if f.name.endswith("_key") else repr(value)
            parts.append(f"{f.name}={shown}")
        return f"Settings({', '.join(parts)})"

    __str__ = __repr__

    @property
    def is_demo(self) -> bool:
        """DEMO: asked for, or no key, no custom endpoint and no model file to talk to."""
        return self.demo or (not self.openai_api_key and not self.openai_api_base and self.models is None)

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    def secrets(self) -> list[str]:
        """Values that must never appear in the sandbox, transcript or records: the two
        keys, and every `*_KEY`/`*_TOKEN`/`*_SECRET`/`*_PASSWORD` of the environment and `.env`."""
        model_file = self.models.secrets if self.models is not None else ()
        return list(
            dict.fromkeys(s for s in (self.openai_api_key, self.e2b_api_key, *self.other_secrets, *model_file) if s)
        )

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def load(
        cls,
        env: Mapping[str, str] | None = None,
        env_file: str | Path | None = ".env",
        **overrides: object,
    ) -> Settings:
        """Read settings; raise `ConfigError` listing every bad value.

        `env` defaults to `os.environ`; `env_file` is merged underneath it.
        A `.env` that python-dotenv cannot parse is reported, not ignored.
        """
        problems: list[str] = []
        merged = merged_env(env, env_file, problems)  # problems: a .env that cannot be read
        kwargs: dict[str, object] = {}
        for var in VARIABLES:
            if var.field is None:
                continue
            name, raw = lookup(merged, var)
            if raw is None:
                continue  # the field's default, which is the table's
            try:
                kwargs[var.field] = var.value(raw)
            except ConfigError as error:
                problems.extend(error.problems)
            except ValueError as error:
                problems.append(f"{name} {error}")  # the name the user set (an alias, maybe)
        kwargs["other_secrets"] = tuple(
            sorted({v.strip() for k, v in merged.items() if SECRET_NAME.search(k) and len(v.strip()) >= 8})
        )
        _sandbox_kind(merged, kwargs, problems)
        _model_file(merged, kwargs, problems)

        kwargs.update(overrides)
        if problems:
            raise ConfigError(problems)
        settings = cls(**kwargs)  # type: ignore[arg-type]  # kwargs are the fields, by construction
        from .agent_models import budget_problems

        problems.extend(budget_problems(settings))
        if problems:
            raise ConfigError(problems)
        return settings


def lookup(env: Mapping[str, str], var: Var) -> tuple[str, str | None]:
    """(the name that is set, its stripped value) — the first of the name and its aliases
    with a non-empty value; (`var.name`, None) when none is set."""
    for name in var.names:
        value = env.get(name)
        if value is not None and value.strip() != "":
            return name, value.strip()
    return var.name, None


def _sandbox_kind(env: Mapping[str, str], kwargs: dict[str, object], problems: list[str]) -> None:
    """SBTEAM_SANDBOX unset: the kind whose key is set; a kind with a key needs the key."""
    if "sandbox" not in kwargs:
        if lookup(env, variable("SBTEAM_SANDBOX"))[1] is None:
            kwargs["sandbox"] = default_kind({k.key: lookup(env, variable(k.key))[1] for k in KINDS if k.key})
        return
    kind = kind_named(str(kwargs["sandbox"]))
    if kind.key and lookup(env, variable(kind.key))[1] is None:
        problems.append(
            f"SBTEAM_SANDBOX={kind.name} needs {kind.key} (get one at {kind.key_from}) "
            f"— or set SBTEAM_SANDBOX={default_kind({})}"
        )


def _model_file(env: Mapping[str, str], kwargs: dict[str, object], problems: list[str]) -> None:
    """The model file: SBTEAM_MODELS, else sbteam.yaml / models.yaml here or in the config folder."""
    from .models_config import find_models_file, load_models_file

    path = find_models_file(lookup(env, variable("SBTEAM_MODELS"))[1], env=env)
    if path is None:
        return
    text_tools, max_tokens = kwargs.get("text_tools"), kwargs.get("max_tokens")  # unset or bad: the defaults
    models, file_problems = load_models_file(
        path,
        env,
        text_tools=text_tools if isinstance(text_tools, str) else default_of("SBTEAM_TEXT_TOOLS"),
        max_tokens=max_tokens if isinstance(max_tokens, int) else default_of("SBTEAM_MAX_TOKENS"),
        env_fallback=bool(kwargs.get("openai_api_key") or kwargs.get("openai_api_base")),
    )
    problems.extend(file_problems)
    kwargs["models"] = models


if __name__ == "__main__":  # `python -m team.config --env-example | --readme | --write`
    from .config_docs import main

    sys.exit(main())
