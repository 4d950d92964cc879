"""The seed's six tools, with the seed's names and parameters.

Every tool returns a string for the model and never raises into the team: a
sandbox error, a bad path or a dead kernel becomes a "❌ …" line the model can
act on. Every tool is cancellation-safe: on `CancelledError` (force stop) it
interrupts the kernel and returns "⏹ cancelled" at once instead of hanging.

The tools also tell the run what happens while they work, in order: the tool
call itself (before any output, which AutoGen's own request event cannot
guarantee), live stdout/stderr, the files that changed, and the result.
`list_files(path="/")` keeps the seed's default; "/" means the sandbox's
working folder /home/user, which is the only place the model's files live.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import posixpath
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any

from autogen_core import CancellationToken
from autogen_core.tools import (
    FunctionTool,
    StaticStreamWorkbench,
    TextResultContent,
    ToolResult,
    ToolSchema,
)

from . import events as ev
from .filetypes import binary_kind, human_size
from .sandbox.base import WORKDIR, SandboxError
from .sandbox.kernel import split_not_kept
from .sanitize import raw_name, shown_name
from .session import CodeSession, absolute_path, relative_path

MAX_TOOL_OUTPUT = 8_000
MAX_READ_CHARS = 20_000
MAX_READ_BYTES = 5_000_000
MAX_LIVE_OUTPUT = 200_000  # characters of live stdout/stderr shown per tool call
CODE_TIMEOUT = 300.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg")
CHART_TYPES = ("bar", "line", "scatter", "hist", "pie")

CANCELLED = "⏹ cancelled: the run was stopped while this tool was running"
NEEDS_APPROVAL = ("run_code", "install_package", "write_file")
READ_ONLY = ("list_files", "read_file")
STOPPED = "⏹ cancelled: the run is stopping, the code was not run"

Emit = Callable[[ev.Event], None]


def trim(text: str, limit: int = MAX_TOOL_OUTPUT) -> str:
    """Keep the head and tail of long output and say how much was cut.

    The count includes what the sandbox itself did not keep of a flood of
    output (its own marker is folded into this one).
    """
    if len(text) <= limit:
        return text
    text, dropped = split_not_kept(text)
    head = text[: limit * 2 // 3]
    tail = text[-(limit // 3) :]
    cut = len(text) - len(head) - len(tail) + dropped
    return f"{head}\n… [{cut:,} characters cut] …\n{tail}"


class ToolContext:
    """What the tools share: the session, the event sink and per-run bookkeeping."""

    def __init__(self, session: CodeSession, emit: Emit | None = None, code_timeout: float = CODE_TIMEOUT):
        self.session = session
        self.emit: Emit = emit or (lambda _e: None)
        self.code_timeout = code_timeout
        self.announced_calls: set[str] = set()
        self.finished_calls: set[str] = set()
        self.current_call_id = ""
        self.busy = False
        self.closed = False  # set by a force stop: late tool calls of an abandoned team do nothing
        self.stopping = False  # set by any stop: no new code starts (an interrupt sent
        # before a cell starts would be lost and the cell would run on)
        self._requested: dict[str, asyncio.Event] = {}
        # approval mode: (agent, call_id, name, args) -> (decision, new args | reason)
        self.approver: Callable[[str, str, str, dict[str, Any]], Awaitable[tuple[str, Any]]] | None = None

    def requested(self, call_id: str) -> asyncio.Event:
        """Set once the run has shown this call's request (and everything before it)."""
        return self._requested.setdefault(call_id, asyncio.Event())

    def announce(self, agent: str, call_id: str, name: str, arguments: Mapping[str, Any]) -> None:
        if call_id and call_id in self.announced_calls:
            return
        if call_id:
            self.announced_calls.add(call_id)
        self.emit(ev.ToolCall(agent=agent, call_id=call_id, name=name, arguments=dict(arguments)))

    def finish(
        self, agent: str, call_id: str, name: str, content: str, is_error: bool, images: list[str]
    ) -> None:
        if call_id and call_id in self.finished_calls:
            return
        if call_id:
            self.finished_calls.add(call_id)
        self.emit(
            ev.ToolResult(
                agent=agent, call_id=call_id, name=name, content=content, is_error=is_error, images=images
            )
        )

    async def report_files(self) -> list[str]:
        """Emit FilesChanged if anything changed; return new/changed image paths."""
        try:
            added, changed, removed = await self.session.file_changes()
        except Exception:
            return []
        if added or changed or removed:
            self.emit(ev.FilesChanged(added=added, changed=changed, removed=removed))
        return [p for p in added + changed if p.lower().endswith(IMAGE_SUFFIXES)]


class SandboxTool(FunctionTool):
    """A FunctionTool that reports its call, result and file changes to the run."""

    def __init__(
        self, func: Callable[..., Any], name: str, description: str, ctx: ToolContext, agent: str
    ):
        super().__init__(func, description=description, name=name, strict=False)
        self._ctx = ctx
        self.agent = agent
        self._schema: ToolSchema | None = None

    @property
    def schema(self) -> ToolSchema:
        """Built once: AutoGen asks for it on every model call (~50 times a run),
        and pydantic regenerates the JSON schema each time."""
        if self._schema is None:
            self._schema = super().schema
        return self._schema

    async def run_json(
        self, args: Mapping[str, Any], cancellation_token: CancellationToken, call_id: str | None = None
    ) -> Any:
        try:
            return await self._run_json(args, cancellation_token, call_id)
        except asyncio.CancelledError:
            # Cancelled outside the tool function itself (e.g. while waiting for its
            # request to be shown). AutoGen runs tools in a task whose CancelledError
            # escapes its `except Exception`, and the agent then waits forever for the
            # tool's end-of-stream marker: a team that can never finish. Return instead.
            ctx = self._ctx
            ctx.busy = False
            text = "⏹ cancelled: the run was stopped while this tool was starting"
            ctx.finish(self.agent, call_id or "", self.name, text, True, [])
            return text

    async def _run_json(
        self, args: Mapping[str, Any], cancellation_token: CancellationToken, call_id: str | None
    ) -> Any:
        ctx = self._ctx
        cid = call_id or ""
        if ctx.closed:
            return "⏹ cancelled: the run was stopped"
        if cid:
            # AutoGen runs the tool before its request event reaches the run's
            # stream; wait (briefly) so the transcript shows the call, and what
            # came before it, ahead of the tool's output.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ctx.requested(cid).wait(), 1.0)
        ctx.announce(self.agent, cid, self.name, args)
        note = ""
        if ctx.approver is not None and self.name in NEEDS_APPROVAL:
            try:
                decision, detail = await ctx.approver(self.agent, cid, self.name, dict(args))
            except asyncio.CancelledError:
                decision, detail = "reject", "the run was stopped"
            if decision == "reject":
                text = f"❌ the user rejected this {self.name}: {detail or 'no reason given'}"
                ctx.finish(self.agent, cid, self.name, text, True, [])
                return text
            if decision == "edit" and isinstance(detail, Mapping):
                args = {**args, **detail}
                note = "\n(note: the user edited the arguments before they were used)"
        ctx.current_call_id = cid
        ctx.busy = True
        images: list[str] = []
        try:
            result = await super().run_json(args, cancellation_token, call_id=call_id)
        except asyncio.CancelledError:
            await ctx.session.interrupt()
            result = CANCELLED
        except Exception as exc:  # bad arguments from the model: tell it, keep going
            result = f"❌ invalid arguments for {self.name}: {_describe_arguments_error(exc)}"
        finally:
            ctx.busy = False
        text = str(result) + note
        if self.name not in READ_ONLY:  # listing the whole tree after a read is wasted I/O
            with contextlib.suppress(asyncio.CancelledError):
                images = await ctx.report_files()
        ctx.finish(self.agent, cid, self.name, text, text.startswith(("❌", "⏹")), images)
        return text


class CancelSafeWorkbench(StaticStreamWorkbench):
    """AutoGen's workbench, except that a cancelled tool call yields a result.

    AssistantAgent runs tool calls in a task and waits on a queue for the task's
    end-of-tools marker; if the token cancels the tool's future before our
    `run_json` even starts, CancelledError escapes the workbench, the marker is
    never sent and the agent waits forever (a leaked task after a force stop).
    """

    async def call_tool_stream(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        cancellation_token: CancellationToken | None = None,
        call_id: str | None = None,
    ) -> AsyncGenerator[Any, None]:
        try:
            async for item in super().call_tool_stream(name, arguments, cancellation_token, call_id):
                yield item
        except asyncio.CancelledError:
            yield ToolResult(name=name, result=[TextResultContent(content=CANCELLED)], is_error=True)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _describe_arguments_error(exc: BaseException) -> str:
    """One line naming each bad argument (pydantic's own first line names none)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return _one_line(exc)
    try:
        problems = []
        for err in errors()[:5]:
            name = ".".join(str(part) for part in err.get("loc", ())) or "arguments"
            if err.get("type") == "missing":
                problems.append(f"{name} is missing")
            else:
                got = repr(err.get("input"))
                got = got if len(got) <= 40 else got[:39] + "…"
                problems.append(f"{name}: {err.get('msg', 'invalid')} (got {got})")
    except Exception:
        return _one_line(exc)
    return "; ".join(problems).replace("\n", " ")[:300] or _one_line(exc)


def build_tools(ctx: ToolContext, agent: str = "CodeAgent") -> dict[str, SandboxTool]:
    """The six tools bound to one session and the agent that uses them; the seed's names and parameters."""
    session = ctx.session

    async def run_code(code: str) -> str:
        """Run Python code in the sandbox (state persists between calls) and return its output."""
        try:
            await session.initialize()
            sandbox = session.sandbox
            if ctx.stopping:
                return STOPPED

            shown = [0]  # live characters emitted so far for this call (both streams)

            def out(stream: str) -> Callable[[Any], None]:
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
            return f"❌ error while running the code: {_one_line(exc)}"
        return await format_execution(session, execution)

    async def install_package(package_name: str) -> str:
        """Install a Python package into the sandbox with pip."""
        try:
            await session.initialize()
            if ctx.stopping:
                return STOPPED
            ok, output = await session.sandbox.install_package(package_name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return f"❌ could not install {package_name!r}: {_one_line(exc)}"
        if ok:
            session.installed_packages.add(package_name.strip())
            return f"✅ installed {package_name}\n{trim(output, 1500)}".rstrip()
        return f"❌ could not install {package_name!r}: {trim(output, 1500)}"

    async def list_files(path: str = "/") -> str:
        """List the files in a sandbox folder ('/' means the working folder /home/user)."""
        target = WORKDIR if path.strip() in ("", "/", ".") else absolute_path(path)
        try:
            entries = await session.list_entries(target)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return f"❌ cannot list {path!r}: {_one_line(exc)}"
        base = relative_path(target) or ""
        lines = []
        for entry in entries:
            rel = entry.path[len(base) + 1 :] if base and entry.path.startswith(base + "/") else entry.path
            if base and not entry.path.startswith(base + "/"):
                continue
            name = shown_name(rel)  # a non-UTF-8 byte as \xNN: an API request cannot carry it raw
            lines.append(f"📁 {name}/" if entry.is_dir else f"📄 {name} ({human_size(entry.size)})")
        shown = target if target != WORKDIR else WORKDIR
        if not lines:
            return f"📂 {shown} is empty"
        return trim(f"📂 {shown} ({len(lines)} entries)\n" + "\n".join(lines))

    async def read_file(file_path: str) -> str:
        """Read a text file from the sandbox."""
        try:
            try:
                data, size = await session.read_head(file_path, MAX_READ_BYTES)
            except Exception:
                if raw_name(file_path) == file_path:
                    raise
                # a name list_files showed with \xNN for bytes that are not UTF-8
                data, size = await session.read_head(raw_name(file_path), MAX_READ_BYTES)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return f"❌ cannot read {file_path!r}: {_describe_read_error(exc)}"
        kind = binary_kind(data)
        if kind:
            return f"❌ {file_path} is a {kind} ({human_size(size)}); not shown as text"
        text = data.decode("utf-8", errors="replace")
        note = f" (first {human_size(len(data))} of {human_size(size)})" if size > len(data) else ""
        return f"📄 {file_path}{note}:\n{trim(text, MAX_READ_CHARS)}"

    async def write_file(file_path: str, content: str) -> str:
        """Write text content to a file in the sandbox (folders are created)."""
        if "\n" in file_path or "\r" in file_path or "\x00" in file_path:
            return "❌ the file name contains a newline or NUL character; choose a plain name"
        try:
            await session.initialize()
            await session.sandbox.files.write(absolute_path(file_path), content)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return f"❌ cannot write {file_path!r}: {_one_line(exc)}"
        return f"✅ file written: {file_path} ({human_size(len(content.encode('utf-8')))})"

    async def generate_chart(data_file: str, chart_type: str = "bar") -> str:
        """Draw a bar/line/scatter/hist/pie chart of a CSV or JSON file; returns the PNG's path."""
        kind = (chart_type or "bar").strip().lower()
        if kind not in CHART_TYPES:
            return f"❌ chart_type must be one of {', '.join(CHART_TYPES)} (got {chart_type!r})"
        source = absolute_path(data_file)
        stem = posixpath.splitext(posixpath.basename(source))[0] or "chart"
        target = posixpath.join(posixpath.dirname(source), f"{stem}_{kind}.png")
        # replace, not str.format: the chart code has literal braces (dicts, f-strings)
        code = CHART_CODE.replace("{args}", json.dumps({"src": source, "dst": target, "kind": kind}))
        try:
            await session.initialize()
            if ctx.stopping:
                return STOPPED
            execution = await session.sandbox.run_code(code, timeout=ctx.code_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return f"❌ cannot draw the chart: {_one_line(exc)}"
        if execution.error is not None:
            return f"❌ cannot draw the chart of {data_file}: {execution.error.name}: {execution.error.value}"
        return f"✅ {kind} chart saved: {shown_name(relative_path(target) or target)}"

    specs = [
        (run_code, "run_code"),
        (install_package, "install_package"),
        (list_files, "list_files"),
        (read_file, "read_file"),
        (write_file, "write_file"),
        (generate_chart, "generate_chart"),
    ]
    return {name: SandboxTool(func, name, func.__doc__ or name, ctx, agent) for func, name in specs}


def _describe_read_error(exc: Exception) -> str:
    text = _one_line(exc)
    lowered = text.lower()
    if "not found" in lowered or "no such file" in lowered or type(exc).__name__.endswith("NotFoundException"):
        return "no such file (use list_files to see what exists)"
    if "is a directory" in lowered or "isadirectory" in lowered:
        return "it is a folder; use list_files"
    return text


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
    import base64

    name = f"figure_{count or 0}_{index + 1}.png"
    try:
        await session.sandbox.files.write(posixpath.join(WORKDIR, name), base64.b64decode(png_b64))
    except (SandboxError, Exception):
        return ""
    return name


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


CHART_CODE = r'''
def __sbteam_chart(args):
    import json as _json, os as _os
    import pandas as _pd
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as _plt
    src, dst, kind = args["src"], args["dst"], args["kind"]
    if src.lower().endswith(".json"):
        with open(src) as fh:
            raw = _json.load(fh)
        if isinstance(raw, dict) and all(not isinstance(v, (list, dict)) for v in raw.values()):
            df = _pd.DataFrame({"value": list(raw.values())}, index=[str(k) for k in raw])
        else:
            df = _pd.DataFrame(raw)
    else:
        df = _pd.read_csv(src)

        def _is_number(text):
            try:
                float(text)
            except ValueError:
                return False
            return True

        if all(_is_number(str(c)) for c in df.columns):  # no header (np.savetxt): row 1 is data
            df = _pd.read_csv(src, header=None)
            df.columns = [f"column_{i + 1}" for i in range(len(df.columns))]
    num = df.select_dtypes("number")
    if num.empty:
        raise ValueError("no numeric column to plot")
    fig, ax = _plt.subplots(figsize=(8, 5))
    if kind == "hist":
        num.plot.hist(ax=ax, bins=20, alpha=0.7, edgecolor="black")
    elif kind == "pie":
        num.iloc[:, 0].abs().plot.pie(ax=ax, autopct="%1.1f%%")
        ax.set_ylabel("")
    elif kind == "scatter":
        if num.shape[1] >= 2:
            num.plot.scatter(x=num.columns[0], y=num.columns[1], ax=ax)
        else:
            ax.scatter(range(len(num)), num.iloc[:, 0])
    elif kind == "line":
        num.plot.line(ax=ax)
    else:
        num.head(50).plot.bar(ax=ax)
    ax.set_title(_os.path.basename(src) + " (" + kind + ")")
    fig.tight_layout()
    fig.savefig(dst)
    _plt.close(fig)
__sbteam_chart({args})
del __sbteam_chart
'''
