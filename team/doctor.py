"""`sbteam-tui doctor`: check each thing a run needs, and say how to fix what is broken.

Every check does the real thing once (list models, one tool-call round trip,
start a sandbox and run `1+1`) rather than inspecting configuration, because
the common failures — a wrong key, a server that is down, a model without
tool calling, a missing kernel package — only show up that way. Model and
sandbox checks run concurrently so the whole table takes about one kernel start.
"""

from __future__ import annotations

import asyncio
import shutil
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import ConfigError, Settings
from .model import (
    MODEL_TOOL_TEXT_ERROR,
    OPENAI_DEFAULT_BASE,
    build_model_client,
    classify_model_error,
    looks_like_text_tool_call,
)
from .redact import scrub

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


async def _model_checks(settings: Settings) -> list[Check]:
    names = ("model endpoint reachable", "API key accepted", "model calls tools")
    if settings.is_demo:
        return [Check(name, None, DEMO_DETAIL) for name in names]
    import httpx

    secrets = settings.secrets()
    base = (settings.openai_api_base or OPENAI_DEFAULT_BASE).rstrip("/")
    headers = (
        {"Authorization": f"Bearer {settings.openai_api_key}"} if settings.openai_api_key else {}
    )
    try:
        async with httpx.AsyncClient(timeout=ENDPOINT_TIMEOUT) as http:
            response = await http.get(f"{base}/models", headers=headers)
    except httpx.HTTPError as exc:
        message = classify_model_error(exc, settings)
        if "OPENAI_API_BASE" not in message:  # a TLS or protocol failure: keep the cause
            message = f"cannot reach the model endpoint {base}: {scrub(str(exc) or type(exc).__name__, secrets)}"
        return [
            Check(names[0], False, message, "start the model server, or correct OPENAI_API_BASE"),
            Check(names[1], None, "endpoint not reachable"),
            Check(names[2], None, "endpoint not reachable"),
        ]

    reach = Check(names[0], True, f"{base} answered (HTTP {response.status_code})")
    status = response.status_code
    if status in (401, 403):
        return [
            reach,
            Check(
                names[1],
                False,
                f"the endpoint rejected the API key (HTTP {status})",
                "check OPENAI_API_KEY",
            ),
            Check(names[2], None, "API key rejected"),
        ]
    if status == 200:
        detail = "accepted" if settings.openai_api_key else "no key needed (local server)"
        listed = _model_ids(response)
        if listed and settings.openai_model not in listed:
            shown = ", ".join(sorted(listed)[:5]) + (" …" if len(listed) > 5 else "")
            detail += f"; '{settings.openai_model}' is not among the listed models ({shown})"
        key = Check(names[1], True, detail)
    else:
        key = Check(
            names[1], None, f"GET /models answered HTTP {status}; the round trip below decides"
        )
    return [reach, key, await _tool_call_check(settings, names[2])]


def _model_ids(response: Any) -> set[str]:
    try:
        return {
            m["id"] for m in response.json().get("data", []) if isinstance(m, dict) and "id" in m
        }
    except (ValueError, AttributeError, TypeError):
        return set()


async def _tool_call_check(settings: Settings, name: str) -> Check:
    """One real request with one tool: the team cannot work unless the model calls tools."""
    from autogen_core import FunctionCall
    from autogen_core.models import SystemMessage, UserMessage

    fix = "choose a model with function/tool calling (OPENAI_MODEL)"
    try:
        client = build_model_client(settings.with_(model_retries=0))
    except ValueError as exc:
        return Check(name, False, scrub(str(exc), settings.secrets()), fix)
    messages = [
        SystemMessage(content="You are a health check. Use the tools you are given."),
        UserMessage(content="Call the ping tool now.", source="user"),
    ]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # AutoGen warns on empty answers; the row says it
            result = await asyncio.wait_for(
                client.create(messages, tools=[PING_TOOL]),  # type: ignore[list-item]
                timeout=settings.model_timeout + 5,
            )
    except Exception as exc:  # every failure becomes a row, never a traceback
        message = classify_model_error(exc, settings)
        return Check(name, False, message, _fix_for(message))
    finally:
        await client.close()
    content = result.content
    if isinstance(content, list) and content and all(isinstance(c, FunctionCall) for c in content):
        called = ", ".join(c.name for c in content)
        return Check(name, True, f"'{settings.openai_model}' called {called}")
    text = content if isinstance(content, str) else str(content)
    if looks_like_text_tool_call(text, ["ping"]):
        return Check(name, False, MODEL_TOOL_TEXT_ERROR, fix)
    said = " ".join(text.split())[:80] or "an empty answer"
    return Check(
        name,
        False,
        f"'{settings.openai_model}' answered text instead of calling the tool: {said!r}",
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
    summary = (
        f"model '{settings.openai_model}' at {where}; sandbox {settings.sandbox}"
        if not settings.is_demo
        else f"DEMO mode; sandbox {settings.sandbox}"
    )
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


async def doctor_main(
    settings: Settings | ConfigError,
    *,
    sandbox_factory: SandboxFactory | None = None,
    e2b_status: E2BStatus | None = None,
) -> int:
    """Print the table; 0 when nothing FAILed, else 1 (the CLI's exit code)."""
    checks = await run_checks(settings, sandbox_factory=sandbox_factory, e2b_status=e2b_status)
    print(render_table(checks))
    failed = [c for c in checks if c.ok is False]
    print(f"\n{len(failed)} check(s) failed." if failed else "\nAll checks passed.")
    return 1 if failed else 0
