"""`sbteam-tui doctor`: check each thing a run needs, and say how to fix what is broken.

Every check does the real thing once (list models, one tool-call round trip,
start a sandbox and run `1+1`) rather than inspecting configuration, because
the common failures — a wrong key, a server that is down, a model without
tool calling, a missing kernel package — only show up that way. Model and
sandbox checks run concurrently so the whole table takes about one kernel start.
Over the ~400-line guide: one row per failure a user meets, each with its own fix line.
"""

from __future__ import annotations

import asyncio
import shutil
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .agent_models import agent_specs
from .config import BENCH, SECRET_NAME, VARIABLES, ConfigError, Settings, mask
from .model import PLACEHOLDER_KEY
from .model_errors import OPENAI_DEFAULT_BASE, classify_model_error
from .models_config import AZURE, ClientSpec
from .redact import scrub
from .text_tools import TEXT_CALL_ID_PREFIX, describe_text_tool_call

if TYPE_CHECKING:
    from .sandbox.base import Sandbox

SandboxFactory = Callable[[Settings], Awaitable["Sandbox"]]
E2BStatus = Callable[[str | None], Awaitable[tuple[bool, str]]]

DEMO_DETAIL = (
    "DEMO mode: set OPENAI_API_KEY (and OPENAI_API_BASE for a local server) to use a real model"
)
ENDPOINT_TIMEOUT = 10.0
SANDBOX_TIMEOUT = 90.0

PING_TOOL: dict[str, Any] = {
    "name": "ping",
    "description": "Answer a health check. Call this tool when asked to ping.",
    "parameters": {"type": "object", "properties": {}, "required": []},
}


@dataclass
class Check:
    """One row of the doctor's table. `ok`: True, False, or None when skipped.

    `warn` marks an OK that deserves attention (runs, but e.g. without isolation);
    it does not make `doctor` exit non-zero.
    """

    name: str
    ok: bool | None
    detail: str = ""
    fix: str = ""
    warn: bool = False

    @property
    def status(self) -> str:
        if self.ok is None:
            return "SKIP"
        if not self.ok:
            return "FAIL"
        return "WARN" if self.warn else "OK"


def _fix_for(message: str) -> str:
    """The fix column for a classified model error: the variable the message names."""
    if "OPENAI_API_KEY" in message:
        return "check OPENAI_API_KEY"
    if "OPENAI_MODEL" in message:
        return "set OPENAI_MODEL to a model the endpoint serves, with tool calling"
    if "OPENAI_API_BASE" in message:
        return "start the model server, or correct OPENAI_API_BASE"
    return "see the detail; `sbteam-tui doctor` again after fixing"


# --------------------------------------------------------------------------- model

MODEL_ROWS = ("model endpoint reachable", "API key accepted", "model calls tools")


def _for_spec(message: str, spec: ClientSpec) -> str:
    """A classified error names the environment variable; a model file's entry names its line."""
    if not spec.file:
        return message
    return (
        message.replace("OPENAI_API_KEY", f"api_key, {spec.where('api_key')}")
        .replace("OPENAI_API_BASE", f"base_url, {spec.where('base_url')}")
        .replace("OPENAI_MODEL", f"model, {spec.where('model')}")
    )


def _spec_fix(message: str, spec: ClientSpec, agents: str) -> str:
    if not spec.file:
        return _fix_for(message)
    return f"fix {agents}'s entry in {spec.where()} (provider, config), then `sbteam-tui doctor` again"


async def _model_checks(settings: Settings) -> list[Check]:
    """Every configured client: reachable, key accepted, tool calling works; a model file's
    rows name the agents each client serves (one client for all agents: the plain names)."""
    if settings.is_demo:
        return [Check(name, None, DEMO_DETAIL) for name in MODEL_ROWS]
    specs = agent_specs(settings)
    groups: dict[int, tuple[ClientSpec, list[str]]] = {}
    for agent, spec in specs.items():
        groups.setdefault(id(spec), (spec, []))[1].append(agent)
    labelled = settings.models is not None
    checks = await asyncio.gather(
        *(_client_checks(settings, spec, agents, labelled) for spec, agents in groups.values())
    )
    return [row for rows in checks for row in rows]


async def _client_checks(settings: Settings, spec: ClientSpec, agents: list[str], labelled: bool) -> list[Check]:
    who = ", ".join(agents)
    names = tuple(f"{name} ({who})" for name in MODEL_ROWS) if labelled else MODEL_ROWS
    if not spec.openai_family or spec.provider == AZURE or (spec.base_url is None and not spec.openai_api):
        # no OpenAI-style GET /models: the tool-call round trip tells all three
        tools = await _tool_call_check(settings, spec, agents, names[2])
        if tools.ok is False and "cannot reach" in tools.detail:
            return [Check(names[0], False, tools.detail, tools.fix), Check(names[1], None, "endpoint not reachable"),
                    Check(names[2], None, "endpoint not reachable")]
        if tools.ok is False and ("API key" in tools.detail or "api_key" in tools.detail):
            return [Check(names[0], True, f"{spec.short_provider} answered"), Check(names[1], False, tools.detail, tools.fix),
                    Check(names[2], None, "API key rejected")]
        return [
            Check(names[0], True, f"{spec.short_provider} answered"),
            Check(names[1], True, "accepted (the round trip below used it)" if spec.key_from else "no key needed"),
            tools,
        ]
    import httpx

    secrets = settings.secrets()
    base = (spec.base_url or OPENAI_DEFAULT_BASE).rstrip("/")
    key = spec.config.get("api_key")
    headers = {"Authorization": f"Bearer {key}"} if key and key != PLACEHOLDER_KEY else {}
    try:
        async with httpx.AsyncClient(timeout=ENDPOINT_TIMEOUT) as http:
            response = await http.get(f"{base}/models", headers=headers)
    except httpx.HTTPError as exc:
        message = classify_model_error(exc, secrets=secrets, base_url=base, model=spec.model)
        if "OPENAI_API_BASE" not in message:  # a TLS or protocol failure: keep the cause
            message = f"cannot reach the model endpoint {base}: {scrub(str(exc) or type(exc).__name__, secrets)}"
        fix = (
            _spec_fix(message, spec, who) if spec.file else "start the model server, or correct OPENAI_API_BASE"
        )
        return [
            Check(names[0], False, _for_spec(message, spec), fix),
            Check(names[1], None, "endpoint not reachable"),
            Check(names[2], None, "endpoint not reachable"),
        ]

    reach = Check(names[0], True, f"{base} answered (HTTP {response.status_code})")
    status = response.status_code
    if status in (401, 403):
        message = _for_spec(f"the endpoint rejected the API key (HTTP {status})", spec)
        fix = _spec_fix("OPENAI_API_KEY", spec, who) if spec.file else "check OPENAI_API_KEY"
        return [reach, Check(names[1], False, message, fix), Check(names[2], None, "API key rejected")]
    if status == 200:
        detail = "accepted" if headers else "no key needed (local server)"
        key_row = Check(names[1], True, detail)
        listed = _model_ids(response)
        if listed and spec.model not in listed:
            shown = ", ".join(sorted(listed)[:8]) + (" …" if len(listed) > 8 else "")
            where = f"model, {spec.where('model')}" if spec.file else "OPENAI_MODEL"
            key_row = Check(
                names[1],
                True,
                f"{detail}; but '{spec.model}' is not among the endpoint's models: {shown}",
                f"set {where} to one of the listed models (a server may still answer under another name)",
                warn=True,
            )
    else:
        key_row = Check(names[1], None, f"GET /models answered HTTP {status}; the round trip below decides")
    return [reach, key_row, await _tool_call_check(settings, spec, agents, names[2])]


def _model_ids(response: Any) -> set[str]:
    try:
        return {
            m["id"] for m in response.json().get("data", []) if isinstance(m, dict) and "id" in m
        }
    except (ValueError, AttributeError, TypeError):
        return set()


async def _tool_call_check(settings: Settings, spec: ClientSpec, agents: list[str], name: str) -> Check:
    """One real request with one tool, through the same client wrapper a run uses (so a call
    written as text is parsed when text tool calls are on): the team needs tool calls."""
    from autogen_core import FunctionCall
    from autogen_core.models import SystemMessage, UserMessage

    from .agent_models import load_client
    from .model import SbteamClient
    from .models_config import ModelConfigError

    who = ", ".join(agents)
    quiet = settings.with_(model_retries=0)
    fix = _spec_fix("OPENAI_MODEL", spec, who) if spec.file else "choose a model with function/tool calling (OPENAI_MODEL)"
    try:
        inner = load_client(spec, quiet, serves=who)
    except (ModelConfigError, ValueError) as exc:
        return Check(name, False, scrub(str(exc), settings.secrets()), fix)
    client = SbteamClient(inner, agent=agents[0], model=spec.model, text_tools=spec.text_tools_on,
                          max_tokens=min(spec.max_tokens, 256))
    messages = [
        SystemMessage(content="You are a health check. Use the tools you are given."),
        UserMessage(content="Call the ping tool now.", source="user"),
    ]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # AutoGen warns on empty answers; the row says it
            result = await asyncio.wait_for(
                client.create(messages, tools=[PING_TOOL]),
                timeout=settings.model_timeout + 5,
            )
    except Exception as exc:  # every failure becomes a row, never a traceback
        message = classify_model_error(exc, secrets=settings.secrets(), base_url=spec.base_url, model=spec.model)
        fix_for = _spec_fix(message, spec, who) if spec.file else _fix_for(message)
        return Check(name, False, _for_spec(message, spec), fix_for)
    finally:
        await client.close()
    content = result.content
    if isinstance(content, list) and content and all(isinstance(c, FunctionCall) for c in content):
        called = ", ".join(c.name for c in content)
        how = " (parsed from text: text tool calls are on)" if content[0].id.startswith(TEXT_CALL_ID_PREFIX) else ""
        return Check(name, True, f"'{spec.model}' called {called}{how}")
    text = content if isinstance(content, str) else str(content)
    variable = f"model, {spec.where('model')}" if spec.file else "OPENAI_MODEL"
    line = describe_text_tool_call(
        text, {"ping": PING_TOOL["parameters"]}, text_tools=spec.text_tools_on, model=spec.model,
        agent=who if spec.file else "", variable=variable,
    )
    if line:
        return Check(name, False, line, "" if spec.text_tools_on else "set SBTEAM_TEXT_TOOLS=on, or " + fix)
    said = " ".join(text.split())[:80] or "an empty answer"
    return Check(
        name,
        False,
        f"'{spec.model}' answered text instead of calling the tool: {said!r}",
        fix,
    )


# --------------------------------------------------------------------------- sandbox


async def _default_e2b_status(api_key: str | None) -> tuple[bool, str]:
    from .sandbox.e2b import check_e2b_status

    return await check_e2b_status(api_key)


async def _sandbox_checks(
    settings: Settings, sandbox_factory: SandboxFactory | None, e2b_status: E2BStatus | None
) -> list[Check]:
    secrets = settings.secrets()
    rows: list[Check] = []
    if settings.sandbox == "e2b":
        try:
            ok, detail = await (e2b_status or _default_e2b_status)(settings.e2b_api_key)
        except Exception as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        fix = "" if ok else "check E2B_API_KEY (e2b.dev/dashboard), or set SBTEAM_SANDBOX=local"
        rows.append(Check("E2B key valid", ok, scrub(detail, secrets), fix))
        if not ok:
            rows += [
                Check("sandbox runs 1+1", None, "E2B key not accepted"),
                Check("isolation", None, "no sandbox"),
                Check("limits", None, "no sandbox"),
            ]
            return rows
    else:
        rows.append(Check("E2B key valid", None, "SBTEAM_SANDBOX=local"))

    if sandbox_factory is None:
        from .sandbox import create_sandbox

        sandbox_factory = create_sandbox
    sandbox = None
    try:
        sandbox = await asyncio.wait_for(sandbox_factory(settings), SANDBOX_TIMEOUT)
        execution = await asyncio.wait_for(sandbox.run_code("1+1"), SANDBOX_TIMEOUT)
        if execution.error is not None:
            got = f"{execution.error.name}: {execution.error.value}"
            rows.append(Check("sandbox runs 1+1", False, scrub(got, secrets), _start_fix(settings, got)))
        elif execution.text != "2":
            rows.append(Check("sandbox runs 1+1", False, f"1+1 gave {execution.text!r}", _start_fix(settings, "")))
        else:
            rows.append(
                Check("sandbox runs 1+1", True, f"{settings.sandbox} sandbox started; 1+1 = 2")
            )
        rows.append(await _isolation_check(settings, sandbox))
        rows.append(_limits_check(sandbox))
    except Exception as exc:  # includes TimeoutError and a backend that is not importable
        what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        detail = scrub(f"{settings.sandbox} sandbox failed: {what}", secrets)[:300]
        rows.append(Check("sandbox runs 1+1", False, detail, _start_fix(settings, what)))
        rows.append(await _isolation_check(settings, None))
        rows.append(Check("limits", None, "no sandbox started"))
    finally:
        if sandbox is not None:
            try:
                await asyncio.wait_for(sandbox.kill(), 15)
            except Exception:
                pass  # the row above already tells the story
    return rows


def _start_fix(settings: Settings, message: str) -> str:
    """The fix for a sandbox that did not start, from what actually went wrong."""
    if settings.sandbox == "e2b":
        return "check E2B_API_KEY and network access, or set SBTEAM_SANDBOX=local"
    lowered = message.lower()
    if "no module named" in lowered:
        module = message.split("No module named", 1)[-1].strip(" '\"")
        return f"install the missing module in the app's environment: pip install {module or 'ipykernel'}"
    if "bwrap" in lowered or "namespace" in lowered:
        return (
            "bubblewrap could not start the kernel (detail); run `bwrap --version` and check user "
            "namespaces are allowed, or report this with the detail"
        )
    if "did not answer" in lowered or "did not listen" in lowered:
        return "the kernel started too slowly: is the machine overloaded? try again"
    return "see the detail; run `sbteam-tui doctor` again after fixing it"


def _limits_check(sandbox: Any) -> Check:
    report = getattr(sandbox, "limits_report", None)
    if report is None:
        kind = getattr(sandbox, "isolation", "")
        return Check("limits", True if kind == "e2b" else None, "set by E2B" if kind == "e2b" else "not reported")
    limits = report()
    weak = [f"{name}: {how}" for name, how in limits.items() if "not enforced" in str(how)]
    how = f"memory by {limits['memory']}, processes by {limits['processes']}"
    detail = f"{limits['limits']} ({how})"
    if weak:
        return Check("limits", True, f"{detail}; {'; '.join(weak)}", "run as a normal user, or allow cgroups", warn=True)
    return Check("limits", True, detail)


async def _isolation_check(settings: Settings, sandbox: Any) -> Check:
    isolation = getattr(sandbox, "isolation", None)
    if isolation == "bwrap":
        return await _privileges_check(sandbox)
    if isolation == "e2b":
        return Check("isolation", True, "code runs in an E2B cloud sandbox")
    if isolation == "none":
        why = getattr(sandbox, "isolation_reason", "") or "bubblewrap not available"
        return Check(
            "isolation",
            True,
            f"code runs NOT isolated, with this user's rights ({why})",
            "apt-get install bubblewrap" if "not installed" in why or why == "bubblewrap not available"
            else "allow unprivileged user namespaces (or install a setuid bwrap)",
            warn=True,
        )
    if settings.sandbox == "local" and shutil.which("bwrap") is None:
        return Check(
            "isolation", None, "no sandbox started; bwrap not found", "apt-get install bubblewrap"
        )
    return Check("isolation", None, "no sandbox started")


async def _privileges_check(sandbox: Any) -> Check:
    """What the code inside really gets: uid, capabilities, secrets it could read."""
    from pathlib import Path

    probe_fn = getattr(sandbox, "security_probe", None)
    if probe_fn is None:
        return Check("isolation", True, "code runs in a bubblewrap namespace")
    hidden = [str(Path.home()), str(Path.cwd())]
    try:
        probe = await asyncio.wait_for(probe_fn(hidden), SANDBOX_TIMEOUT)
    except Exception as exc:
        return Check("isolation", False, f"cannot probe the sandbox: {exc}", "see the detail")
    status = probe.get("status", {})
    problems = []
    if probe.get("uid") != 1000:
        problems.append(f"code runs as uid {probe.get('uid')}, not 1000")
    if status.get("CapEff", "0" * 16).strip("0"):
        problems.append(f"code has capabilities (CapEff {status.get('CapEff')})")
    if status.get("NoNewPrivs") != "1":
        problems.append("code can gain privileges (NoNewPrivs 0)")
    if probe.get("shadow_readable"):
        problems.append("/etc/shadow is readable")
    if probe.get("can_make_user_namespace"):
        problems.append("code can create user namespaces")
    for path in probe.get("visible", []):
        problems.append(f"{path} is visible inside")
    if problems:
        return Check("isolation", False, "; ".join(problems), "update bubblewrap (0.8 or later) and report this")
    return Check(
        "isolation",
        True,
        "bubblewrap: uid 1000, CapEff 0, NoNewPrivs 1, no user namespaces; /etc/shadow, your home "
        "and this folder unreadable",
    )


# --------------------------------------------------------------------------- entry points


async def run_checks(
    settings: Settings | ConfigError,
    *,
    sandbox_factory: SandboxFactory | None = None,
    e2b_status: E2BStatus | None = None,
) -> list[Check]:
    """All checks, in table order. Pass the `ConfigError` from `Settings.load()` to report it.

    `sandbox_factory(settings)` and `e2b_status(api_key)` replace the real
    backends in tests.
    """
    if isinstance(settings, ConfigError):
        problems = "; ".join(settings.problems)
        rows = [
            Check(
                "settings valid",
                False,
                problems,
                "fix the variables named here (environment or .env)",
            )
        ]
        rest = (
            "model endpoint reachable",
            "API key accepted",
            "model calls tools",
            "E2B key valid",
            "sandbox runs 1+1",
            "isolation",
            "limits",
        )
        return rows + [Check(name, None, "settings invalid") for name in rest]

    where = settings.openai_api_base or OPENAI_DEFAULT_BASE
    if settings.is_demo:
        summary = f"DEMO mode; sandbox {settings.sandbox}"
    elif settings.models is not None:
        models = "; ".join(f"{agent} '{spec.model}' ({spec.short_provider})" for agent, spec in agent_specs(settings).items())
        summary = f"models from {settings.models.path}: {models}; sandbox {settings.sandbox}"
    else:
        summary = f"model '{settings.openai_model}' at {where}; sandbox {settings.sandbox}"
    if settings.max_cost is not None:
        summary += f"; spend cap ${settings.max_cost:g} per run"
    model_rows, sandbox_rows = await asyncio.gather(
        _model_checks(settings), _sandbox_checks(settings, sandbox_factory, e2b_status)
    )
    return [Check("settings valid", True, summary), *model_rows, *sandbox_rows]


def render_table(checks: list[Check]) -> str:
    """A plain-text table (no colour codes, so it pipes and logs cleanly); details come
    from endpoints and the sandbox, so they are made inert (team/sanitize.py)."""
    from .sanitize import inert

    header = ("CHECK", "STATUS", "DETAIL", "FIX")
    rows = [(c.name, c.status, inert(c.detail or "-"), inert(c.fix or "-")) for c in checks]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]

    def line(r: tuple[str, str, str, str]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(r[:3], widths, strict=True)) + "  " + r[3]

    return "\n".join([line(header), "  ".join("-" * w for w in widths) + "  ---", *map(line, rows)])


def variables_table(
    env: Mapping[str, str], dotenv: Mapping[str, str], options: Mapping[str, str] | None = None
) -> str:
    """The variables of the table (team/config.py) that are set and where from — a
    command-line option, the environment or `.env`, in that order of precedence — with
    secrets masked; and each `SBTEAM_*` name the table does not know, which would
    otherwise be ignored without a word (a typo, say)."""
    import difflib

    from .sanitize import inert

    layers = (("command line", options or {}), ("environment", env), (".env", dotenv))
    secret = {name for var in VARIABLES if var.secret for name in var.names}
    known = {name for var in VARIABLES for name in var.names}
    rows: list[tuple[str, str, str]] = []
    for name in [*(n for var in VARIABLES for n in var.names), *sorted({n for _, v in layers for n in v} - known)]:
        where, raw = next(((w, v[name].strip()) for w, v in layers if v.get(name, "").strip()), ("", ""))
        if not where or (name not in known and not name.startswith("SBTEAM_")):
            continue
        if name not in known:
            guess = difflib.get_close_matches(name, known, n=1)
            where += ": not a variable sbteam-tui reads" + (f" (did you mean {guess[0]}?)" if guess else "")
        shown = mask(raw) if name in secret or SECRET_NAME.search(name) else raw
        rows.append((name, inert(shown)[:60], where))
    header = ("VARIABLE", "VALUE", "FROM")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(2)]
    lines = ["  ".join((r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2])).rstrip() for r in [header, *rows]]
    listed = {row[0] for row in rows}
    others = sum(var.scope != BENCH and not listed.intersection(var.names) for var in VARIABLES)
    lines.append(f"{others} other variable(s) at their defaults; .env.example lists them all.")
    return "\n".join(lines)


async def doctor_main(
    settings: Settings | ConfigError,
    *,
    sandbox_factory: SandboxFactory | None = None,
    e2b_status: E2BStatus | None = None,
    variables: str | None = None,
) -> int:
    """Print the table (then `variables`, the `variables_table`, when given); 0 when
    nothing FAILed, else 1 (the CLI's exit code)."""
    checks = await run_checks(settings, sandbox_factory=sandbox_factory, e2b_status=e2b_status)
    print(render_table(checks))
    if variables:
        print(f"\n{variables}")
    failed = [c for c in checks if c.ok is False]
    print(f"\n{len(failed)} check(s) failed." if failed else "\nAll checks passed.")
    return 1 if failed else 0
