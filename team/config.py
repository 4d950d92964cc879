"""Settings: the environment variables of DESIGN.md, read from the process
environment and a `.env` file (the environment wins).

Plain frozen dataclass rather than pydantic-settings: there are a dozen flat
variables, two aliases and custom one-line messages per bad value, which is
less code by hand than by customising pydantic's error rendering. `.env` is
read with python-dotenv's `dotenv_values` and *not* copied into `os.environ`,
so keys never spill into child processes by accident.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .sandbox.limits import Limits

if TYPE_CHECKING:
    from .cost import SpendPool
    from .models_config import ModelsFile

DEFAULT_MODEL = "gpt-4o"
SECRET_NAME = re.compile(r"(?:_KEY|_TOKEN|_SECRET|_PASSWORD|_PASSWD)$", re.IGNORECASE)  # values to scrub
DEFAULT_MAX_MESSAGES = 30
DEFAULT_TIMEOUT = 600.0
SANDBOX_KINDS = ("local", "e2b")
PROMPT_LANGS = ("zh", "en")


class ConfigError(ValueError):
    """One or more bad settings; `str()` is one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _mask(secret: str | None) -> str:
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
    """Validated configuration. `repr()` masks the keys."""

    openai_api_key: str | None = field(default=None, repr=False)
    openai_api_base: str | None = None
    openai_model: str = DEFAULT_MODEL
    e2b_api_key: str | None = field(default=None, repr=False)
    sandbox: str = "local"
    prompts: str = "zh"
    max_messages: int = DEFAULT_MAX_MESSAGES
    timeout: float = DEFAULT_TIMEOUT
    home: Path = field(default_factory=default_home)
    network: bool = True
    demo: bool = False
    model_timeout: float = 60.0
    model_retries: int = 2
    loop_limit: int = 4
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits.default)
    other_secrets: tuple[str, ...] = field(default=(), repr=False)
    # Models (team/models_config.py): the model file, text tool calls, reply cap, spend cap.
    models: ModelsFile | None = None
    text_tools: str = "auto"  # on | off | auto (on for every endpoint but OpenAI's own and Azure)
    max_tokens: int = 4096  # per reply
    max_cost: float | None = None  # USD per run (and per batch)
    spend_pool: SpendPool | None = field(default=None, repr=False, compare=False)  # a batch's shared spend

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "other_secrets":
                shown = f"<{len(value)} hidden>"
            else:
                shown = _mask(value) if f.name.endswith("_key") else repr(value)
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

    def with_(self, **changes: object) -> Settings:
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
        merged: dict[str, str] = {}
        problems: list[str] = []
        if env_file is not None and Path(env_file).is_file():
            merged.update(_read_env_file(Path(env_file), problems))
        merged.update(os.environ if env is None else env)

        def get(*names: str) -> str | None:
            for name in names:
                value = merged.get(name)
                if value is not None and value.strip() != "":
                    return value.strip()
            return None

        kwargs: dict[str, object] = {}
        kwargs["openai_api_key"] = get("OPENAI_API_KEY")
        base = get("OPENAI_API_BASE", "OPENAI_BASE_URL")
        if base is not None and not base.startswith(("http://", "https://")):
            # name the variable the user actually set (OPENAI_BASE_URL is an alias)
            base_name = "OPENAI_API_BASE" if get("OPENAI_API_BASE") else "OPENAI_BASE_URL"
            problems.append(
                f"{base_name} must be an http(s) URL such as https://api.openai.com/v1 (got {base!r})"
            )
        kwargs["openai_api_base"] = base
        kwargs["openai_model"] = get("OPENAI_MODEL") or DEFAULT_MODEL
        kwargs["e2b_api_key"] = get("E2B_API_KEY")
        kwargs["other_secrets"] = tuple(
            sorted({v.strip() for k, v in merged.items() if SECRET_NAME.search(k) and len(v.strip()) >= 8})
        )

        sandbox = get("SBTEAM_SANDBOX")
        if sandbox is None:
            sandbox = "e2b" if kwargs["e2b_api_key"] else "local"
        sandbox = sandbox.lower()
        if sandbox not in SANDBOX_KINDS:
            problems.append(f"SBTEAM_SANDBOX must be 'local' or 'e2b' (got {sandbox!r})")
        elif sandbox == "e2b" and not kwargs["e2b_api_key"]:
            problems.append(
                "SBTEAM_SANDBOX=e2b needs E2B_API_KEY (get one at e2b.dev) — or set SBTEAM_SANDBOX=local"
            )
        kwargs["sandbox"] = sandbox

        prompts = (get("SBTEAM_PROMPTS") or "zh").lower()
        if prompts not in PROMPT_LANGS:
            problems.append(f"SBTEAM_PROMPTS must be 'zh' or 'en' (got {prompts!r})")
        kwargs["prompts"] = prompts

        kwargs["max_messages"] = _positive(
            get("SBTEAM_MAX_MESSAGES"), "SBTEAM_MAX_MESSAGES", DEFAULT_MAX_MESSAGES, int, problems
        )
        kwargs["timeout"] = _positive(
            get("SBTEAM_TIMEOUT"), "SBTEAM_TIMEOUT", DEFAULT_TIMEOUT, float, problems
        )
        home = get("SBTEAM_HOME")
        kwargs["home"] = Path(home).expanduser() if home else default_home()

        network = (get("SBTEAM_NETWORK") or "on").lower()
        if network not in ("on", "off", "1", "0", "true", "false", "yes", "no"):
            problems.append(f"SBTEAM_NETWORK must be 'on' or 'off' (got {network!r})")
        kwargs["network"] = network in ("on", "1", "true", "yes")

        loop = get("SBTEAM_LOOP_LIMIT")
        if loop is None:
            kwargs["loop_limit"] = 4
        elif loop.isdigit():
            kwargs["loop_limit"] = int(loop)
        else:
            problems.append(f"SBTEAM_LOOP_LIMIT must be a whole number, 0 to turn the loop guard off (got {loop!r})")

        limits, limit_problems = Limits.parse(get("SBTEAM_LIMITS"))
        kwargs["limits"] = limits
        problems.extend(limit_problems)

        from .cost import parse_prices

        prices, price_problems = parse_prices(get("SBTEAM_PRICES"))
        kwargs["prices"] = prices
        problems.extend(price_problems)

        _model_settings(get, merged, kwargs, problems)

        kwargs.update(overrides)
        if problems:
            raise ConfigError(problems)
        settings = cls(**kwargs)  # type: ignore[arg-type]
        from .models_config import budget_problems

        problems.extend(budget_problems(settings))
        if problems:
            raise ConfigError(problems)
        return settings


def _model_settings(get, merged: Mapping[str, str], kwargs: dict[str, object], problems: list[str]) -> None:
    """SBTEAM_TEXT_TOOLS, SBTEAM_MAX_TOKENS, SBTEAM_MAX_COST and the model file (SBTEAM_MODELS,
    else sbteam.yaml / models.yaml here or in the config folder)."""
    from .models_config import (
        DEFAULT_MAX_TOKENS,
        TEXT_TOOLS_MODES,
        find_models_file,
        load_models_file,
    )

    text_tools = (get("SBTEAM_TEXT_TOOLS") or "auto").lower()
    if text_tools in ("1", "true", "yes"):
        text_tools = "on"
    elif text_tools in ("0", "false", "no"):
        text_tools = "off"
    if text_tools not in TEXT_TOOLS_MODES:
        problems.append(f"SBTEAM_TEXT_TOOLS must be 'on', 'off' or 'auto' (got {text_tools!r})")
        text_tools = "auto"
    kwargs["text_tools"] = text_tools
    kwargs["max_tokens"] = _positive(get("SBTEAM_MAX_TOKENS"), "SBTEAM_MAX_TOKENS", DEFAULT_MAX_TOKENS, int, problems)
    raw_cost = get("SBTEAM_MAX_COST")
    if raw_cost is not None:
        try:
            cost = float(raw_cost.lstrip("$"))
        except ValueError:
            cost = math.nan
        if not math.isfinite(cost) or cost <= 0:
            problems.append(f"SBTEAM_MAX_COST must be an amount in US dollars greater than 0, e.g. 1.50 (got {raw_cost!r})")
        else:
            kwargs["max_cost"] = cost
    path = find_models_file(get("SBTEAM_MODELS"), env=merged)
    if path is not None:
        env_model = bool(kwargs.get("openai_api_key") or kwargs.get("openai_api_base"))
        models, file_problems = load_models_file(
            path, merged, text_tools=text_tools, max_tokens=int(kwargs["max_tokens"]),  # type: ignore[call-overload]
            env_fallback=env_model,
        )
        problems.extend(file_problems)
        kwargs["models"] = models


def _positive(raw: str | None, name: str, default, kind, problems: list[str]):
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value <= 0:  # nan/inf: not a limit, and not JSON
        noun = "a whole number" if kind is int else "a number of seconds"
        problems.append(f"{name} must be {noun} greater than 0 (got {raw!r})")
        return default
    return value


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),  # Notepad, PowerShell 7's `-Encoding utf8BOM`
    (b"\xff\xfe", "utf-16"),  # UTF-16 LE: PowerShell 5's `>` and `Out-File`
    (b"\xfe\xff", "utf-16"),  # UTF-16 BE
)


def decode_env_file(path: Path) -> str:
    """The text of a `.env`: UTF-8, UTF-8 with a BOM, or UTF-16 (with a BOM, or plain
    ASCII-range UTF-16 without one, as some Windows tools write it).

    Raises `ConfigError` with one line naming the file for anything else (another
    encoding, a binary file, a file that cannot be read).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror or exc}"]) from None
    encoding = "utf-8"
    for bom, name in _BOMS:
        if data.startswith(bom):
            encoding = name
            break
    else:
        if len(data) >= 2 and len(data) % 2 == 0 and b"\x00" in data:
            # UTF-16 without a BOM: every other byte of ASCII text is NUL
            if data[1::2].count(0) > len(data) // 4:
                encoding = "utf-16-le"
            elif data[0::2].count(0) > len(data) // 4:
                encoding = "utf-16-be"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [
                f"{path} is neither UTF-8 nor UTF-16 text (undecodable byte at offset {exc.start}); "
                "save it as UTF-8"
            ]
        ) from None
    if "\x00" in text:
        raise ConfigError([f"{path} is not a text file (it holds NUL bytes); save it as UTF-8"])
    return text


def _read_env_file(path: Path, problems: list[str]) -> dict[str, str]:
    """Parse `.env`; python-dotenv only warns on bad lines, so we check ourselves.

    The bytes are decoded here (`decode_env_file`) and python-dotenv parses the
    text, so a `.env` saved as UTF-16 by PowerShell works and an undecodable one
    is one line naming the file, never a `UnicodeDecodeError`.
    """
    import io
    import logging

    from dotenv import dotenv_values

    try:
        text = decode_env_file(path)
    except ConfigError as error:
        problems.extend(error.problems)
        return {}
    bad: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[7:].lstrip()
        if "=" not in stripped or not stripped.split("=", 1)[0].strip().replace("_", "a").isalnum():
            bad.append(number)
    if bad:
        problems.append(
            f"{path} has lines python-dotenv cannot parse (line {', '.join(map(str, bad[:5]))}); "
            "use NAME=value, one per line"
        )
    logging.getLogger("dotenv.main").setLevel(logging.ERROR)
    values = dotenv_values(stream=io.StringIO(text))
    return {k: v for k, v in values.items() if v is not None}


def dotenv_value(name: str, env_file: str | Path = ".env") -> str | None:
    """One variable from `.env` alone (for settings read outside `Settings`, such as
    SBTEAM_IMAGE); None when unset, empty or the file is unreadable. Problems with
    the file are reported by `Settings.load`, not here."""
    path = Path(env_file)
    if not path.is_file():
        return None
    value = _read_env_file(path, []).get(name)
    return value.strip() if value and value.strip() else None
