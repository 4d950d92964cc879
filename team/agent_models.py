"""Each agent's model, once the model file (team/models_config.py) or the environment has
been read: its client spec, price, label and spend-cap checks, the guard for tool calls it
writes as text, and the clients themselves, built with AutoGen's `load_component` (the heavy
imports happen only in `build_agent_clients` and `load_client`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import one_line
from .models_config import (
    AGENTS,
    ANTHROPIC,
    AZURE,
    OLLAMA,
    OPENAI,
    OURS,
    SECRET_KEY_NAME,
    VAR_REFERENCE,
    ClientSpec,
    ModelConfigError,
)

if TYPE_CHECKING:
    from autogen_core.models import ChatCompletionClient

    from .config import Settings
    from .cost import RunMeter


def env_spec(settings: Settings) -> ClientSpec:
    """The client the environment variables describe (one for every agent)."""
    from .model import PLACEHOLDER_KEY

    config: dict[str, Any] = {"model": settings.openai_model, "api_key": settings.openai_api_key or PLACEHOLDER_KEY}
    if settings.openai_api_base:
        config["base_url"] = settings.openai_api_base
    shown = dict(config)
    shown["api_key"] = "${OPENAI_API_KEY}" if settings.openai_api_key else "(none: local server)"
    return ClientSpec(
        entry="environment",
        provider=OPENAI,
        config=config,
        shown=shown,
        text_tools=settings.text_tools,
        max_tokens=settings.max_tokens,
        key_from="OPENAI_API_KEY" if settings.openai_api_key else "",
    )


def agent_specs(settings: Settings) -> dict[str, ClientSpec]:
    """Each agent's client spec (the model file's, else the environment's)."""
    models = settings.models
    out: dict[str, ClientSpec] = {}
    fallback: ClientSpec | None = None
    for agent in AGENTS:
        spec = models.agents.get(agent) if models is not None else None
        if spec is None:
            fallback = fallback or env_spec(settings)
            spec = fallback
        out[agent] = spec
    return out


def price_of(spec: ClientSpec, settings: Settings) -> tuple[float, float] | None:
    """USD per 1M tokens: the file's `price`, else the prices table, else 0 for a local server."""
    from .cost import price_for

    if spec.price is not None:
        return spec.price
    known = price_for(spec.model, settings.prices)
    if known is not None:
        return known
    return (0.0, 0.0) if spec.is_local else None


def agent_prices(settings: Settings) -> dict[str, tuple[float, float] | None]:
    return {agent: price_of(spec, settings) for agent, spec in agent_specs(settings).items()}


def agent_models(settings: Settings) -> dict[str, str]:
    """{agent: model name} (DEMO: empty)."""
    if settings.is_demo:
        return {}
    return {agent: spec.model for agent, spec in agent_specs(settings).items()}


def model_label(settings: Settings) -> str:
    """One model name when all agents share it, else `Planner=gpt-4o, CodeAgent=qwen2.5, …`."""
    if settings.is_demo:
        return "DEMO"
    models = agent_models(settings)
    names = set(models.values())
    if len(names) == 1:
        return names.pop()
    return ", ".join(f"{agent}={model}" for agent, model in models.items())


def budget_problems(settings: Settings) -> list[str]:
    """With SBTEAM_MAX_COST, every agent needs a price (else the cap could not hold)."""
    if settings.max_cost is None or settings.is_demo:
        return []
    problems = []
    for agent, spec in agent_specs(settings).items():
        if price_of(spec, settings) is None:
            where = f"price: [input, output] in {spec.where()}'s {spec.entry} entry, or " if spec.file else ""
            problems.append(
                f"SBTEAM_MAX_COST is set but {agent}'s model '{spec.model}' has no known price — add "
                f"{where}SBTEAM_PRICES={spec.model}=input/output (USD per 1M tokens)"
            )
    return problems


def text_tool_problem(settings: Settings, agent: str, text: str, tool_names: Iterable[str]) -> str | None:
    """The run's guard: one line when `agent` wrote a tool call as text that was not used."""
    from .text_tools import after_corrections, describe_text_tool_call

    text = after_corrections(text)  # a call the model corrected in the same reply is not judged again
    spec = agent_specs(settings).get(agent)
    on = spec.text_tools_on if spec is not None else False
    variable = "OPENAI_MODEL" if spec is None or not spec.file else f"{spec.where('model')}"
    return describe_text_tool_call(
        text, list(tool_names), text_tools=on, model=spec.model if spec else "", agent=agent, variable=variable
    )


# --------------------------------------------------------------------------- building the clients


class AgentClients(dict):
    """{agent: client}; `close()` closes every underlying client once."""

    def __init__(self, clients: Mapping[str, Any], inners: Iterable[Any]) -> None:
        super().__init__(clients)
        self._inners = list(inners)

    async def close(self) -> None:
        for inner in self._inners:
            try:
                await inner.close()
            except Exception:
                pass


def _component(spec: ClientSpec, settings: Settings) -> dict[str, Any]:
    config = dict(spec.config)
    if spec.openai_family:
        config.setdefault("timeout", settings.model_timeout)
        config.setdefault("max_retries", settings.model_retries)
    elif spec.provider == OLLAMA:
        options = dict(config.get("options") or {})
        options.setdefault("num_predict", spec.max_tokens)
        config["options"] = options
    elif spec.provider == ANTHROPIC:
        config.setdefault("max_tokens", spec.max_tokens)
    return {"provider": OURS.get(spec.provider, spec.provider), "component_type": "model", "config": config}


def _one_line_error(exc: BaseException) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic: name the field
        try:
            first = errors()[0]
            loc = ".".join(str(p) for p in first.get("loc", ())) or "config"
            return f"config.{loc}: {first.get('msg', 'invalid')}"
        except Exception:
            pass
    line = one_line(exc, 10_000)
    if isinstance(exc, ModuleNotFoundError):
        line = f"{line} (install the provider's package, e.g. pip install \"autogen-ext[{exc.name or ''}]\")"
    return line[:300]


def load_client(spec: ClientSpec, settings: Settings, *, serves: str = "") -> ChatCompletionClient:
    """The provider's own client for `spec`, through `ChatCompletionClient.load_component`.

    Model names AutoGen has no table entry for get a generic `model_info` (tool
    calling on), as for the environment variables.
    """
    from autogen_core.models import ChatCompletionClient

    from .model import unknown_model_info
    from .redact import scrub

    component = _component(spec, settings)
    try:
        try:
            return ChatCompletionClient.load_component(component)
        except ValueError as exc:
            if "model_info" not in str(exc) or "model_info" in component["config"]:
                raise
        component["config"]["model_info"] = dict(unknown_model_info())
        return ChatCompletionClient.load_component(component)
    except Exception as exc:
        who = serves or spec.entry
        line = scrub(_one_line_error(exc), settings.secrets())
        raise ModelConfigError(f"{spec.where()}: {who}: {line}") from None


def build_agent_clients(settings: Settings, meter: RunMeter | None = None) -> AgentClients:
    """One client per agent (wrapped: text tool calls, reply cap, repetition, spend), sharing
    the underlying provider client when agents share a spec."""
    from .agent_client import _wrapper_class

    SbteamClient = _wrapper_class()  # built on first use (AutoGen imported lazily)

    specs = agent_specs(settings)
    prices = agent_prices(settings)
    inners: dict[int, Any] = {}
    clients: dict[str, Any] = {}
    for agent, spec in specs.items():
        key = id(spec)
        if key not in inners:
            served = [a for a, s in specs.items() if s is spec]
            inners[key] = load_client(spec, settings, serves=", ".join(served))
        clients[agent] = SbteamClient(
            inners[key],
            agent=agent,
            model=spec.model,
            text_tools=spec.text_tools_on,
            max_tokens=spec.max_tokens,
            meter=meter,
            price=prices.get(agent),
            owns_inner=False,
            your_turn=not (spec.provider == AZURE or spec.openai_api),
        )
    return AgentClients(clients, inners.values())


# --------------------------------------------------------------------------- `sbteam-tui models`


def _mask(value: str) -> str:
    return f"{value[:3]}…{value[-2:]}" if len(value) > 12 else "***"


def _shown_value(key: str, value: Any, secrets: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _shown_value(str(k), v, secrets) for k, v in value.items()}
    if isinstance(value, str):
        if VAR_REFERENCE.search(value):
            return value  # a reference, not the key
        if SECRET_KEY_NAME.search(key) and value:
            return _mask(value)
        from .redact import scrub

        return scrub(value, secrets)
    return value


def describe(settings: Settings) -> str:
    """The resolved configuration, keys masked (`sbteam-tui models`)."""
    from .cost import format_cost

    secrets = settings.secrets()
    if settings.is_demo:
        return "DEMO mode: no model file and no OPENAI_API_KEY / OPENAI_API_BASE (scripted agents, real code)"
    source = f"model file {settings.models.path}" if settings.models is not None else "environment variables"
    out = [f"models from {source}"]
    specs = agent_specs(settings)
    for agent, spec in specs.items():
        price = price_of(spec, settings)
        price_text = "unknown price" if price is None else f"${price[0]:g}/${price[1]:g} per 1M tokens"
        out.append("")
        out.append(f"{agent}: {spec.model} via {spec.short_provider}  ({spec.where()}, entry {spec.entry})")
        if spec.base_url:
            out.append(f"  endpoint     {spec.base_url}")
        key = spec.config.get("api_key")
        if spec.key_from and spec.key_from != "the file":
            out.append(f"  key          {spec.key_from} = {_mask(str(key)) if key else 'not set'}")
        elif key and spec.key_from == "the file":
            out.append(f"  key          written in the file: {_mask(str(key))}")
        else:
            out.append("  key          none (local server)")
        out.append(f"  price        {price_text}")
        out.append(f"  text tools   {'on' if spec.text_tools_on else 'off'} ({spec.text_tools})")
        out.append(f"  max tokens   {spec.max_tokens} per reply")
        extra = {k: v for k, v in spec.shown.items() if k not in ("model", "api_key", "base_url")}
        for key_name, value in extra.items():
            out.append(f"  {key_name:<12} {_shown_value(key_name, value, secrets)}")
    cap = "none" if settings.max_cost is None else format_cost(settings.max_cost)
    out.append("")
    out.append(f"spend cap (SBTEAM_MAX_COST): {cap} per run and per batch")
    return "\n".join(out)
