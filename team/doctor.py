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
            ]
            return rows
    else:
        rows.append(Check("E2B key valid", None, "SBTEAM_SANDBOX=local"))

    if sandbox_factory is None:
        from .sandbox import create_sandbox

        sandbox_factory = create_sandbox
    start_fix = (
        "check E2B_API_KEY and network access, or set SBTEAM_SANDBOX=local"
        if settings.sandbox == "e2b"
        else "pip install ipykernel jupyter_client (in the app's environment)"
    )
    sandbox = None
    try:
        sandbox = await asyncio.wait_for(sandbox_factory(settings), SANDBOX_TIMEOUT)
        execution = await asyncio.wait_for(sandbox.run_code("1+1"), SANDBOX_TIMEOUT)
        if execution.error is not None:
            got = f"{execution.error.name}: {execution.error.value}"
            rows.append(Check("sandbox runs 1+1", False, scrub(got, secrets), start_fix))
        elif execution.text != "2":
            rows.append(Check("sandbox runs 1+1", False, f"1+1 gave {execution.text!r}", start_fix))
        else:
            rows.append(
                Check("sandbox runs 1+1", True, f"{settings.sandbox} sandbox started; 1+1 = 2")
            )
    except Exception as exc:  # includes TimeoutError and a backend that is not importable
        what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        detail = scrub(f"{settings.sandbox} sandbox failed: {what}", secrets)[:300]
        rows.append(Check("sandbox runs 1+1", False, detail, start_fix))
    finally:
        if sandbox is not None:
            try:
                await asyncio.wait_for(sandbox.kill(), 15)
            except Exception:
                pass  # the row above already tells the story
    rows.append(_isolation_check(settings, sandbox))
    return rows


def _isolation_check(settings: Settings, sandbox: Any) -> Check:
    isolation = getattr(sandbox, "isolation", None)
    if isolation == "bwrap":
        return Check(
            "isolation",
            True,
            "code runs in a bubblewrap namespace (read-only system, no host home)",
        )
    if isolation == "e2b":
        return Check("isolation", True, "code runs in an E2B cloud sandbox")
    if isolation == "none":
        return Check(
            "isolation",
            True,
            "code runs NOT isolated, with this user's rights (bubblewrap not available)",
            "apt-get install bubblewrap",
            warn=True,
        )
    if settings.sandbox == "local" and shutil.which("bwrap") is None:
        return Check(
            "isolation", None, "no sandbox started; bwrap not found", "apt-get install bubblewrap"
        )
    return Check("isolation", None, "no sandbox started")


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
    """A plain-text table (no colour codes, so it pipes and logs cleanly)."""
    header = ("CHECK", "STATUS", "DETAIL", "FIX")
    rows = [(c.name, c.status, c.detail or "-", c.fix or "-") for c in checks]
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
