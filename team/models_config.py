"""Which model each agent talks to: a model file, or the environment variables.

Without a file: `OPENAI_API_KEY` / `OPENAI_API_BASE` / `OPENAI_MODEL`, one client for
all three agents (as before). With one (`--models FILE`, `SBTEAM_MODELS`, else
`sbteam.yaml` or `models.yaml` in the current folder, else in the config folder
`$XDG_CONFIG_HOME/sbteam/`): a `default` client and optional per-agent clients, each an
AutoGen component config, loaded with `ChatCompletionClient.load_component`, so every
provider autogen-ext ships works without code here::

    default:
      provider: openai            # or a class path: autogen_ext.models.openai.OpenAIChatCompletionClient
      config: {model: gpt-4o, api_key: "${OPENAI_API_KEY}"}
    agents:
      CodeAgent:
        provider: openai
        config:
          model: qwen2.5-coder:7b
          base_url: http://127.0.0.1:11434/v1
        price: [0, 0]             # USD per 1M tokens in/out (else the prices table)
        text_tools: on            # on | off | auto
        max_tokens: 4096          # cap per reply

`${VAR}` (or `${VAR:-default}`) in any string is read from the environment and
`.env`; keys are never required in the file (each provider's usual variable is used
when `api_key` is left out). Every problem is one line naming the file, the line and
the agent. The short provider names are `openai`, `azure`, `anthropic`, `ollama` and
`gemini` (Gemini through its OpenAI-compatible endpoint); AutoGen's own names and
any class path work too.

This module reads and checks the file without importing AutoGen (it runs inside
`Settings.load`); building the clients (team/agent_models.py) does the heavy imports.
Over the ~400-line guide: every check of the file is here so each problem is one line
naming the file, the line and the agent.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:

    pass

AGENTS = ("Planner", "CodeAgent", "AnalystAgent")
FILE_NAMES = ("sbteam.yaml", "models.yaml")
DEFAULT_MAX_TOKENS = 4096
TEXT_TOOLS_MODES = ("on", "off", "auto")

OPENAI = "autogen_ext.models.openai.OpenAIChatCompletionClient"
AZURE = "autogen_ext.models.openai.AzureOpenAIChatCompletionClient"
ANTHROPIC = "autogen_ext.models.anthropic.AnthropicChatCompletionClient"
OLLAMA = "autogen_ext.models.ollama.OllamaChatCompletionClient"

#: Short names (and AutoGen's well-known ones) -> class path.
PROVIDERS: dict[str, str] = {
    "openai": OPENAI,
    "gemini": OPENAI,  # OpenAI-compatible endpoint; AutoGen knows Google's base URL
    "azure": AZURE,
    "azure_openai": AZURE,
    "anthropic": ANTHROPIC,
    "ollama": OLLAMA,
    "openai_chat_completion_client": OPENAI,
    "OpenAIChatCompletionClient": OPENAI,
    "azure_openai_chat_completion_client": AZURE,
    "AzureOpenAIChatCompletionClient": AZURE,
    "AnthropicChatCompletionClient": ANTHROPIC,
    "OllamaChatCompletionClient": OLLAMA,
}
#: The OpenAI-family classes are loaded as this app's subclasses (request shaping, see team/model.py).
OURS = {OPENAI: "team.model.SbteamOpenAIClient", AZURE: "team.model.SbteamAzureOpenAIClient"}
#: provider -> (a module it needs, what to install)
NEEDS = {
    ANTHROPIC: ("anthropic", 'pip install "autogen-ext[anthropic]"'),
    OLLAMA: ("ollama", 'pip install "autogen-ext[ollama]"'),
}
#: provider -> the variable its key comes from when the file has no api_key
KEY_VARIABLES = {OPENAI: "OPENAI_API_KEY", AZURE: "AZURE_OPENAI_API_KEY", ANTHROPIC: "ANTHROPIC_API_KEY"}
#: Model names AutoGen's OpenAI client sends to another vendor's OpenAI-compatible endpoint
#: when no base_url is given: (prefix, vendor, key variable).
OPENAI_COMPATIBLE_VENDORS = (
    ("gemini-", "gemini", "GEMINI_API_KEY"),
    ("claude-", "anthropic (OpenAI-compatible)", "ANTHROPIC_API_KEY"),
    ("Llama-", "meta llama api", "LLAMA_API_KEY"),
)


def _vendor(model: str, base_url: Any) -> tuple[str, str, str] | None:
    if base_url:
        return None
    return next((v for v in OPENAI_COMPATIBLE_VENDORS if model.startswith(v[0])), None)

_ENTRY_KEYS = {"provider", "config", "component_type", "version", "component_version", "description", "label",
               "price", "text_tools", "max_tokens"}
SECRET_KEY_NAME = re.compile(r"(?:^|_)(?:api_key|key|token|secret|password|passwd)$", re.IGNORECASE)
VAR_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ModelConfigError(ValueError):
    """A model client could not be built (one line naming the file, line and agent)."""


@dataclass(frozen=True)
class ClientSpec:
    """One client: where it came from, its provider and its (expanded) config."""

    entry: str  # "default", an agent name, or "environment"
    provider: str  # class path
    config: dict[str, Any] = field(repr=False)  # ${VAR}s expanded: may hold keys
    shown: dict[str, Any] = field(default_factory=dict)  # as written (${VAR}s kept), for display
    price: tuple[float, float] | None = None  # from the file
    text_tools: str = "auto"
    max_tokens: int = DEFAULT_MAX_TOKENS
    file: str = ""  # "" for the environment
    line: int = 0
    lines: dict[str, int] = field(default_factory=dict, repr=False)  # config key -> line
    key_from: str = ""  # where the key came from ("${OPENAI_API_KEY}", "OPENAI_API_KEY", "")

    @property
    def model(self) -> str:
        cfg = self.config
        return str(cfg.get("model") or cfg.get("azure_deployment") or "?")

    @property
    def base_url(self) -> str | None:
        cfg = self.config
        if self.provider == OLLAMA:
            return str(cfg.get("host") or "http://localhost:11434")
        value = cfg.get("base_url") or cfg.get("azure_endpoint")
        return str(value) if value else None

    @property
    def short_provider(self) -> str:
        if self.provider == OPENAI:
            vendor = _vendor(self.model, self.base_url)
            return vendor[1] if vendor else "openai"
        for short in ("azure", "anthropic", "ollama"):
            if PROVIDERS[short] == self.provider:
                return short
        return self.provider

    @property
    def openai_api(self) -> bool:
        """OpenAI's own API (no base_url, a model name AutoGen does not route elsewhere)."""
        if self.provider != OPENAI:
            return False
        base = self.base_url
        if base is None:
            return _vendor(self.model, None) is None
        return (urlparse(base).hostname or "") == "api.openai.com"

    @property
    def openai_family(self) -> bool:
        return self.provider in (OPENAI, AZURE)

    def where(self, key: str | None = None) -> str:
        if not self.file:
            return "environment (OPENAI_API_KEY/OPENAI_API_BASE/OPENAI_MODEL)"
        return f"{self.file}:{self.lines.get(key or '', self.line) or self.line}"

    @property
    def is_local(self) -> bool:
        return is_local_url(self.base_url)

    @property
    def text_tools_on(self) -> bool:
        """`auto`: on for every endpoint but OpenAI's own API and Azure OpenAI."""
        if self.text_tools in ("on", "off"):
            return self.text_tools == "on"
        return not (self.provider == AZURE or self.openai_api)


@dataclass(frozen=True)
class ModelsFile:
    """A parsed model file: the spec each agent uses, and the secrets it expanded."""

    path: Path
    agents: dict[str, ClientSpec]  # every agent the file covers
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def __repr__(self) -> str:
        return f"ModelsFile({str(self.path)!r}, agents={sorted(self.agents)})"


def is_local_url(url: str | None) -> bool:
    if not url:
        return False
    host = (urlparse(url if "://" in url else f"http://{url}").hostname or "").lower()
    if host in ("localhost", "0.0.0.0") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- finding the file


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    xdg = (os.environ if env is None else env).get("XDG_CONFIG_HOME")
    if xdg:
        return Path(xdg) / "sbteam"
    if os.name == "posix":
        return Path.home() / ".config" / "sbteam"
    import platformdirs

    return Path(platformdirs.user_config_dir("sbteam"))


def find_models_file(
    explicit: str | None, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> Path | None:
    """`--models`/`SBTEAM_MODELS`, else sbteam.yaml / models.yaml here, else in the config folder."""
    if explicit:
        return Path(explicit).expanduser()
    for folder in (cwd or Path.cwd(), config_dir(env)):
        for name in FILE_NAMES:
            path = folder / name
            if path.is_file():
                return path
    return None


# --------------------------------------------------------------------------- reading it


def _lines_of(node: Any, path: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    import yaml

    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = str(key.value)
            out[(*path, name)] = key.start_mark.line + 1
            _lines_of(value, (*path, name), out)
            out[(*path, name)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines_of(item, (*path, str(i)), out)


def _expand(value: Any, env: Mapping[str, str], problems: list[str], where: str, key: str,
            secrets: list[str]) -> Any:
    """${VAR} / ${VAR:-default} in every string; secret-looking values are collected."""
    if isinstance(value, dict):
        return {k: _expand(v, env, problems, where, f"{key}.{k}" if key else str(k), secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, problems, where, f"{key}[{i}]", secrets) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        got = env.get(name)
        if got is None or got.strip() == "":
            if default is not None:
                return default
            problems.append(f"{where}: {key}: ${{{name}}} is not set (set {name} in the environment or .env)")
            return ""
        from .config import SECRET_NAME

        if SECRET_NAME.search(name) or SECRET_KEY_NAME.search(key.rsplit(".", 1)[-1]):
            secrets.append(got.strip())
        return got.strip()

    expanded = VAR_REFERENCE.sub(sub, value)
    if SECRET_KEY_NAME.search(key.rsplit(".", 1)[-1]) and expanded and len(expanded) >= 8:
        secrets.append(expanded)
    return expanded


def _price(value: Any) -> tuple[float, float] | None:
    if isinstance(value, str) and "/" in value:
        value = value.split("/", 1)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        try:
            pair = (float(value[0]), float(value[1]))
        except (TypeError, ValueError):
            return None
        return pair if all(p >= 0 for p in pair) else None
    return None


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


def resolve_provider(name: str) -> str | None:
    """The class path for a provider name, or None when nothing by that name exists."""
    path = PROVIDERS.get(name) or PROVIDERS.get(name.lower())
    if path:
        return path
    if "." not in name or not re.fullmatch(r"[A-Za-z_][\w.]*", name):
        return None
    module = name.rsplit(".", 1)[0]
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    return name if found is not None else None


def _spec_from(
    entry: str,
    raw: Any,
    *,
    file: str,
    lines: dict[tuple[str, ...], int],
    path: tuple[str, ...],
    env: Mapping[str, str],
    defaults: Mapping[str, Any],
    problems: list[str],
    secrets: list[str],
    serves: str,
) -> ClientSpec | None:
    line = lines.get(path, 0)
    where = f"{file}:{line}: {serves}"
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping with provider: and config: (got {type(raw).__name__})")
        return None
    unknown = sorted(set(map(str, raw)) - _ENTRY_KEYS)
    if unknown:
        key_line = lines.get((*path, unknown[0]), line)
        problems.append(
            f"{file}:{key_line}: {serves}: unknown key '{unknown[0]}' "
            f"(an entry has provider, config, price, text_tools, max_tokens)"
        )
    provider_name = raw.get("provider")
    p_line = lines.get((*path, "provider"), line)
    if not isinstance(provider_name, str) or not provider_name.strip():
        problems.append(f"{file}:{line}: {serves}: no provider (e.g. provider: openai)")
        return None
    provider = resolve_provider(provider_name.strip())
    if provider is None:
        problems.append(
            f"{file}:{p_line}: {serves}: unknown provider '{provider_name}' — use openai, azure, anthropic, "
            "ollama, gemini, or a class path such as autogen_ext.models.openai.OpenAIChatCompletionClient"
        )
        return None
    need = NEEDS.get(provider)
    if provider == AZURE and isinstance(raw.get("config"), dict) and "azure_ad_token_provider" in raw["config"]:
        need = ("azure.identity", 'pip install "autogen-ext[azure]" (for azure_ad_token_provider)')
    if need is not None and _missing(need[0]):
        problems.append(f"{file}:{p_line}: {serves}: provider '{provider_name}' needs the {need[0]} package: {need[1]}")
    if raw.get("component_type", "model") != "model":
        problems.append(f"{file}:{lines.get((*path, 'component_type'), line)}: {serves}: component_type must be model")
    config = raw.get("config", {})
    if config is None:
        config = {}
    if not isinstance(config, dict):
        problems.append(f"{file}:{lines.get((*path, 'config'), line)}: {serves}: config must be a mapping")
        return None
    before = len(problems)
    config_where = f"{file}:{lines.get((*path, 'config'), line)}: {serves}"
    expanded: dict[str, Any] = {}
    for key, value in config.items():
        key_where = f"{file}:{lines.get((*path, 'config', str(key)), line)}: {serves}"
        expanded[str(key)] = _expand(value, env, problems, key_where, f"config.{key}", secrets)
    del config_where
    if len(problems) > before:
        return None
    if provider in (OPENAI, AZURE, ANTHROPIC, OLLAMA) and not expanded.get("model"):
        problems.append(f"{file}:{lines.get((*path, 'config'), line)}: {serves}: config has no model")
        return None
    key_from = ""
    raw_key = config.get("api_key")
    if isinstance(raw_key, str) and VAR_REFERENCE.search(raw_key):
        key_from = VAR_REFERENCE.search(raw_key).group(0)  # type: ignore[union-attr]  # the variable reference was matched just above
    elif raw_key:
        key_from = "the file"
    elif provider in KEY_VARIABLES and not (provider == AZURE and ("azure_ad_token_provider" in expanded or "azure_ad_token" in expanded)):
        variable = KEY_VARIABLES[provider]
        vendor = _vendor(str(expanded.get("model", "")), expanded.get("base_url")) if provider == OPENAI else None
        if vendor is not None:
            variable = vendor[2]
        value = (env.get(variable) or "").strip()
        if value:
            expanded["api_key"] = value
            key_from = variable
            secrets.append(value)
        elif provider == OPENAI and expanded.get("base_url"):
            from .model import PLACEHOLDER_KEY

            expanded["api_key"] = PLACEHOLDER_KEY  # a local server needs none; the SDK needs one
        else:
            problems.append(
                f"{file}:{lines.get((*path, 'config'), line)}: {serves}: no API key — set {variable} "
                f"(environment or .env) or write api_key: ${{{variable}}}"
            )
            return None
    price = None
    if "price" in raw:
        price = _price(raw["price"])
        if price is None:
            problems.append(
                f"{file}:{lines.get((*path, 'price'), line)}: {serves}: price must be [input, output] in USD "
                f"per 1M tokens (got {raw['price']!r})"
            )
    text_tools = str(raw.get("text_tools", defaults["text_tools"])).lower()
    if raw.get("text_tools") is True:
        text_tools = "on"
    elif raw.get("text_tools") is False:
        text_tools = "off"
    if text_tools not in TEXT_TOOLS_MODES:
        problems.append(f"{file}:{lines.get((*path, 'text_tools'), line)}: {serves}: text_tools must be on, off or auto")
        text_tools = "auto"
    max_tokens = raw.get("max_tokens", expanded.get("max_tokens", defaults["max_tokens"]))
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens <= 0:
        problems.append(f"{file}:{lines.get((*path, 'max_tokens'), line)}: {serves}: max_tokens must be a whole number > 0")
        max_tokens = DEFAULT_MAX_TOKENS
    key_lines = {str(k): lines.get((*path, "config", str(k)), line) for k in config}
    key_lines["provider"] = p_line
    return ClientSpec(
        entry=entry,
        provider=provider,
        config=expanded,
        shown={str(k): v for k, v in config.items()},
        price=price,
        text_tools=text_tools,
        max_tokens=max_tokens,
        file=file,
        line=line,
        lines=key_lines,
        key_from=key_from,
    )


def load_models_file(
    path: Path,
    env: Mapping[str, str],
    *,
    text_tools: str = "auto",
    max_tokens: int = DEFAULT_MAX_TOKENS,
    env_fallback: bool = False,
) -> tuple[ModelsFile | None, list[str]]:
    """Parse and check a model file: (the file, []) or (None, one line per problem).

    `env`: the environment merged with .env (for ${VAR}s and default keys).
    `env_fallback`: the environment variables configure a model, so agents the file
    leaves out may use it (else every agent needs an entry or a default).
    """
    import yaml

    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return None, [f"{shown}: no such model file (SBTEAM_MODELS / --models)"]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{shown}: cannot read the model file ({getattr(exc, 'strerror', None) or exc})"]
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return None, [f"{shown}{line}: not valid YAML ({problem})"]
    if data is None:
        return None, [f"{shown}: the model file is empty (it needs default: or agents:)"]
    if not isinstance(data, dict):
        return None, [f"{shown}:1: the model file must be a mapping with default: and/or agents:"]
    lines: dict[tuple[str, ...], int] = {}
    _lines_of(node, (), lines)
    problems: list[str] = []
    secrets: list[str] = []
    defaults = {"text_tools": text_tools, "max_tokens": max_tokens}
    entries: dict[str, tuple[Any, tuple[str, ...]]] = {}
    for key, value in data.items():
        key = str(key)
        if key == "default":
            entries["default"] = (value, ("default",))
        elif key == "agents":
            if not isinstance(value, dict):
                problems.append(f"{shown}:{lines.get(('agents',), 1)}: agents: must map agent names to clients")
                continue
            for agent, spec in value.items():
                entries[str(agent)] = (spec, ("agents", str(agent)))
        else:
            entries[key] = (value, (key,))
    specs: dict[str, ClientSpec] = {}
    for name, (raw, path_) in entries.items():
        if name != "default" and name not in AGENTS:
            problems.append(
                f"{shown}:{lines.get(path_, 1)}: unknown agent '{name}' (the agents are "
                f"{', '.join(AGENTS)}; 'default' serves the others)"
            )
            continue
        served = [a for a in AGENTS if a not in entries] if name == "default" else [name]
        serves = f"default ({', '.join(served)})" if name == "default" else name
        spec = _spec_from(name, raw, file=shown, lines=lines, path=path_, env=env, defaults=defaults,
                          problems=problems, secrets=secrets, serves=serves)
        if spec is not None:
            specs[name] = spec
    agents: dict[str, ClientSpec] = {}
    for agent in AGENTS:
        spec = specs.get(agent) or specs.get("default")
        if spec is not None:
            agents[agent] = spec
        elif agent not in entries and "default" not in entries and not env_fallback:
            problems.append(
                f"{shown}: {agent} has no model: add a default: entry or agents: {agent}: "
                "(or set OPENAI_API_KEY / OPENAI_API_BASE for the agents the file leaves out)"
            )
    if problems:
        return None, list(dict.fromkeys(problems))
    return ModelsFile(path=Path(path), agents=agents, secrets=tuple(dict.fromkeys(s for s in secrets if s))), []
