"""The tools that run code in the sandbox: `run_code` and `install_package`.

Both wait for approval in approval mode (the user may edit the code or the
package name first), and both refuse to start once a stop was asked for: an
interrupt sent before a cell starts would be lost and the cell would run on.
"""

from __future__ import annotations

import asyncio
import base64
import posixpath
import re
from collections.abc import Callable
from typing import Any, Literal

from .. import events as ev
from ..sandbox.base import WORKDIR, SandboxError
from ..sanitize import shown_name
from ..session import CodeSession, absolute_path, relative_path
from .context import MAX_LIVE_OUTPUT, STOPPED, ToolContext, one_line, trim
from .registry import ToolSpec


async def run_code(ctx: ToolContext, code: str) -> str:
    session = ctx.session
    try:
        await session.initialize()
        sandbox = session.sandbox
        if ctx.stopping:
            return STOPPED

        shown = [0]  # live characters emitted so far for this call (both streams)

        def out(stream: Literal["stdout", "stderr"]) -> Callable[[Any], None]:
            def handler(msg: Any) -> None:
                # Code printing megabytes must not flood the transcript, the run
                # record and memory: live output stops at MAX_LIVE_OUTPUT (the
                # tool result still gets the trimmed head and tail).
                line = str(getattr(msg, "line", msg))
                room = MAX_LIVE_OUTPUT - shown[0]
                if room <= 0:
                    shown[0] += len(line)
                    return
                if len(line) > room:
                    line = line[:room] + (
                        f"\n… live output cut after {MAX_LIVE_OUTPUT:,} characters; "
                        "the tool result keeps its head and tail …\n"
                    )
                shown[0] += len(line)
                ctx.emit(ev.SandboxOutput(stream=stream, text=line, call_id=ctx.current_call_id))

            return handler

        execution = await sandbox.run_code(
            code, on_stdout=out("stdout"), on_stderr=out("stderr"), timeout=ctx.code_timeout
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return f"❌ error while running the code: {one_line(exc)}"
    return await format_execution(session, execution)


RUN_CODE = ToolSpec(
    name="run_code",
    func=run_code,
    needs_approval=True,
    editable_arg="code",
    editable_language="python",
    description="Run Python code in the sandbox (state persists between calls) and return its output.",
)


async def install_package(ctx: ToolContext, package_name: str) -> str:
    session = ctx.session
    try:
        await session.initialize()
        if ctx.stopping:
            return STOPPED
        ok, output = await session.sandbox.install_package(package_name)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return f"❌ could not install {package_name!r}: {one_line(exc)}"
    if ok:
        session.installed_packages.add(package_name.strip())
        return f"✅ installed {package_name}\n{trim(output, 1500)}".rstrip()
    return f"❌ could not install {package_name!r}: {trim(output, 1500)}"


INSTALL_PACKAGE = ToolSpec(
    name="install_package",
    func=install_package,
    needs_approval=True,
    editable_arg="package_name",
    description="Install a Python package into the sandbox with pip.",
)


async def format_execution(session: CodeSession, execution: Any) -> str:
    """The model's view of an Execution: output, main result, figures, error."""
    parts: list[str] = []
    stdout = "".join(execution.logs.stdout)
    stderr = "".join(execution.logs.stderr)
    figures: list[str] = []
    for index, result in enumerate(execution.results):
        saved_as = (getattr(result, "extra", None) or {}).get("sbteam/saved_as")
        if saved_as:  # the code saved this picture itself (savefig): name its file, no copy
            figures.append(relative_path(absolute_path(saved_as)) or saved_as)
        elif getattr(result, "png", None):
            figures.append(await _save_figure(session, result.png, execution.execution_count, index))
    error = execution.error
    if error is None:
        parts.append("✅ code ran successfully")
    else:
        parts.append(f"❌ {error.name}: {error.value}")
    if stdout:
        parts.append("stdout:\n" + stdout.rstrip("\n"))
    if stderr:
        parts.append("stderr:\n" + stderr.rstrip("\n"))
    if execution.text:
        parts.append("result:\n" + execution.text)
    if figures:
        parts.append("figures saved: " + ", ".join(shown_name(f) for f in figures if f))
    if error is not None and error.traceback:
        parts.append("traceback:\n" + _strip_ansi(error.traceback)[-3000:])
    return trim("\n".join(parts))


async def _save_figure(session: CodeSession, png_b64: str, count: Any, index: int) -> str:
    name = f"figure_{count or 0}_{index + 1}.png"
    try:
        await session.sandbox.files.write(posixpath.join(WORKDIR, name), base64.b64decode(png_b64))
    except (SandboxError, Exception):
        return ""
    return name


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
