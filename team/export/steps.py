"""The steps of a recorded run, as both export formats list them: each tool call with its
result, live output and approval, in order, and the paths and code made relative to the
sandbox's working folder so the export runs in any folder."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from .. import events as ev

FORMATS = ("md", "ipynb")
WORKDIR = "/home/user"  # the sandbox's working folder (team.sandbox.base.WORKDIR, without its import cost)
CODE_TOOLS = ("run_code", "write_file", "install_package", "generate_chart")
MAX_MD_RESULT = 4_000  # characters of a read_file / list_files result quoted in the notebook


def fenced(text: str, lang: str = "") -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def live_outputs(events: list[ev.Event]) -> dict[str, list[ev.SandboxOutput]]:
    by_call: dict[str, list[ev.SandboxOutput]] = {}
    for event in events:
        if isinstance(event, ev.SandboxOutput):
            by_call.setdefault(event.call_id, []).append(event)
    return by_call


class Step:
    """One tool call with what became of it."""

    def __init__(self, call: ev.ToolCall, result: ev.ToolResult | None, decision: ev.ApprovalDecided | None):
        self.call = call
        self.result = result
        self.decision = decision

    @property
    def rejected(self) -> bool:
        if self.decision is not None and self.decision.decision == "reject":
            return True
        return self.result is not None and self.result.content.startswith("❌ the user rejected")

    @property
    def edited(self) -> bool:
        return self.decision is not None and self.decision.decision == "edit"

    @property
    def stopped(self) -> bool:
        """Cancelled while it ran, or never finished (the app died)."""
        return self.result is None or self.result.content.startswith("⏹")

    @property
    def failed(self) -> bool:
        return self.result is not None and (self.result.is_error or self.result.content.startswith("❌"))

    @property
    def status(self) -> str:
        if self.rejected:
            return "rejected by the user"
        if self.result is None:
            return "never finished"
        if self.stopped:
            return "stopped"
        return "failed" if self.failed else "ok"


def collect_steps(events: list[ev.Event]) -> dict[str, Step]:
    results = {e.call_id: e for e in events if isinstance(e, ev.ToolResult) and e.call_id}
    decisions = {e.call_id: e for e in events if isinstance(e, ev.ApprovalDecided) and e.call_id}
    return {
        e.call_id: Step(e, results.get(e.call_id), decisions.get(e.call_id))
        for e in events
        if isinstance(e, ev.ToolCall)
    }


def step_of(steps: dict[str, Step], event: ev.ToolCall) -> Step:
    return steps.get(event.call_id) or Step(event, None, None)


# -- paths ------------------------------------------------------------------------------------------


def sandbox_relative(path: str) -> str:
    """A sandbox path as the notebook writes it: relative to /home/user, or absolute outside it."""
    path = (path or "").strip() or "."
    absolute = posixpath.normpath(path if path.startswith("/") else posixpath.join(WORKDIR, path))
    if absolute == WORKDIR:
        return "."
    if absolute.startswith(WORKDIR + "/"):
        return absolute[len(WORKDIR) + 1 :]
    return absolute


_HOME_IN = re.compile(r"(?<![\w./~-])/home/user/(?=[\w.-])")  # '/home/user/x' -> 'x'
_HOME_ALONE = re.compile(r"(?<![\w./~-])/home/user(/?)(?![\w.-])")  # '/home/user' -> '.', '/home/user/' -> './'


def relative_code(code: str) -> str:
    """Code with the sandbox's working folder written relative, so it runs in any folder."""
    code = _HOME_IN.sub("", code)
    return _HOME_ALONE.sub(lambda m: "./" if m.group(1) else ".", code)


def magic_arg(path: str) -> str | None:
    """A path as the argument of `%%writefile`, or None when IPython would change it
    (it expands `$name` and `{expr}` in magic lines, and its quoting is not the shell's)."""
    if re.fullmatch(r"[\w./+@,=-]+", path):
        return path
    if re.fullmatch(r"[\w./+@,= -]+", path):
        return f"'{path}'"
    return None


def image_file(files_dir: Path, image: str) -> Path | None:
    """A picture of the run, saved in its files/ folder (never outside it)."""
    rel = sandbox_relative(image)
    if rel.startswith("/") or rel == ".":
        return None
    root = files_dir.resolve()
    path = (root / rel).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


# -- Markdown ---------------------------------------------------------------------------------------


def step_line(number: int, step: Step) -> str:
    call = step.call
    args = call.arguments
    if call.name in ("write_file", "read_file"):
        what = f"`{args.get('file_path', '')}`"
    elif call.name == "install_package":
        what = f"`{args.get('package_name', '')}`"
    elif call.name == "list_files":
        what = f"`{args.get('path', '/')}`"
    elif call.name == "generate_chart":
        what = f"`{args.get('data_file', '')}` ({args.get('chart_type', 'bar')})"
    else:
        code_lines = [ln.strip() for ln in str(args.get("code", "")).splitlines() if ln.strip()]
        first = next((ln for ln in code_lines if not ln.startswith("#")), code_lines[0] if code_lines else "")
        what = f"`{first[:60].replace('`', '')}`" if first else ""
    mark = {"ok": "✅", "failed": "❌", "stopped": "⏹", "never finished": "⏹"}.get(step.status, "✋")
    note = "" if step.status == "ok" else f" ({step.status})"
    if step.edited:
        note += " (edited by the user)"
    return f"{number}. {mark} {call.agent} · `{call.name}` {what}{note}".rstrip()


def turn_starts(events: list[ev.Event]) -> list[ev.RunStarted]:
    """The turns' starts when the record is a conversation of several turns, else []."""
    starts = [e for e in events if isinstance(e, ev.RunStarted)]
    return starts if any(e.turn > 1 for e in starts) else []


def turn_title(start: ev.RunStarted) -> str:
    question = " ".join(start.task.split())
    if len(question) > 120:
        question = question[:119] + "…"
    return f"Turn {start.turn}: {question}"
