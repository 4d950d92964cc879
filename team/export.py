"""Export a recorded run as Markdown or as a Jupyter notebook.

Both are built from the run record alone (events.jsonl + files/), so any past
run can be exported, including one whose app crashed, and both list every
step the agents took, in order.

The notebook re-runs top to bottom in a fresh kernel, in any folder:

- every `write_file` is a `%%writefile` cell (after a cell that makes its
  folder, if it has one), every `install_package` a `%pip install` cell,
  every `run_code` its code and every `generate_chart` the code the tool ran;
- paths under /home/user (the sandbox's working folder) are made relative;
- a `run_code` that raised in the run is tagged `raises-exception`, so
  nbclient / `jupyter nbconvert --execute` go on past it as the run did;
- steps that did nothing in the run (rejected by the user, failed before
  acting, stopped half-way) stay visible but commented out;
- the agents' messages, handoffs, reads and listings are Markdown cells.

Cells carry ids (nbformat 4.5) and the outputs recorded in the run: stdout,
stderr, the value of the last expression, errors and the pictures. It is
plain nbformat JSON, written without the nbformat package.
"""

from __future__ import annotations

import base64
import os
import posixpath
import re
import shlex
from pathlib import Path
from typing import Any

from . import events as ev
from .events import json_text
from .history import load_events, plural, summarize
from .records import run_dir as record_dir
from .sanitize import inert

FORMATS = ("md", "ipynb")
WORKDIR = "/home/user"  # the sandbox's working folder (team.sandbox.base.WORKDIR, without its import cost)
CODE_TOOLS = ("run_code", "write_file", "install_package", "generate_chart")
MAX_MD_RESULT = 4_000  # characters of a read_file / list_files result quoted in the notebook


def _fence(text: str, lang: str = "") -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def _outputs(events: list[ev.Event]) -> dict[str, list[ev.SandboxOutput]]:
    by_call: dict[str, list[ev.SandboxOutput]] = {}
    for event in events:
        if isinstance(event, ev.SandboxOutput):
            by_call.setdefault(event.call_id, []).append(event)
    return by_call


class _Step:
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


def _steps(events: list[ev.Event]) -> dict[str, _Step]:
    results = {e.call_id: e for e in events if isinstance(e, ev.ToolResult) and e.call_id}
    decisions = {e.call_id: e for e in events if isinstance(e, ev.ApprovalDecided) and e.call_id}
    return {
        e.call_id: _Step(e, results.get(e.call_id), decisions.get(e.call_id))
        for e in events
        if isinstance(e, ev.ToolCall)
    }


def _step_of(steps: dict[str, _Step], event: ev.ToolCall) -> _Step:
    return steps.get(event.call_id) or _Step(event, None, None)


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


def _magic_arg(path: str) -> str | None:
    """A path as the argument of `%%writefile`, or None when IPython would change it
    (it expands `$name` and `{expr}` in magic lines, and its quoting is not the shell's)."""
    if re.fullmatch(r"[\w./+@,=-]+", path):
        return path
    if re.fullmatch(r"[\w./+@,= -]+", path):
        return f"'{path}'"
    return None


def _image_file(files_dir: Path, image: str) -> Path | None:
    """A picture of the run, saved in its files/ folder (never outside it)."""
    rel = sandbox_relative(image)
    if rel.startswith("/") or rel == ".":
        return None
    root = files_dir.resolve()
    path = (root / rel).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


# -- Markdown ---------------------------------------------------------------------------------------


def _step_line(number: int, step: _Step) -> str:
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


def _turn_starts(events: list[ev.Event]) -> list[ev.RunStarted]:
    """The turns' starts when the record is a conversation of several turns, else []."""
    starts = [e for e in events if isinstance(e, ev.RunStarted)]
    return starts if any(e.turn > 1 for e in starts) else []


def _turn_title(start: ev.RunStarted) -> str:
    question = " ".join(start.task.split())
    if len(question) > 120:
        question = question[:119] + "…"
    return f"Turn {start.turn}: {question}"


def to_markdown(runs_dir: Path, run_id: str, out_path: Path) -> str:
    """The transcript as Markdown: every step listed, then messages, tool calls with code,
    outputs, approvals and image links; inert (team/sanitize.py), unlike the notebook,
    which is JSON and keeps the exact text."""
    events = load_events(runs_dir, run_id)
    summary = summarize(Path(runs_dir) / run_id)
    files_dir = Path(runs_dir) / run_id / "files"
    rel_files = Path(os.path.relpath(files_dir, Path(out_path).parent)).as_posix()
    steps = _steps(events)
    outputs = _outputs(events)
    lines = [f"# Run {run_id}", ""]
    if summary is not None:
        cost = f" · cost ${summary.cost:.4f}" if summary.cost else ""
        lines += [
            f"- **Task:** {summary.task.strip()}",
            f"- **Model:** {summary.model} · **finished:** {summary.reason} · {summary.duration:.1f} s · "
            f"{plural(summary.messages, 'message')} · tokens {summary.tokens_in}/{summary.tokens_out}{cost}",
            f"- **Files:** {', '.join(summary.files) or '—'}",
            "",
        ]
    if steps:
        lines += ["## Steps", ""]
        lines += [_step_line(n, step) for n, step in enumerate(steps.values(), 1)]
        lines += [""]
    turns = _turn_starts(events)
    if not turns:
        lines += ["## Transcript", ""]
    speaker = ""
    for event in events:
        if isinstance(event, ev.RunStarted) and turns:
            speaker = ""
            lines += [f"## {_turn_title(event)}", ""]
        elif isinstance(event, ev.Message):
            if event.agent != speaker:
                speaker = event.agent
                lines += [f"### {speaker}", ""]
            lines += [event.text.strip(), ""]
        elif isinstance(event, ev.ToolCall):
            args = dict(event.arguments)
            code = args.pop("code", None)
            content = args.pop("content", None) if event.name == "write_file" else None
            shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
            lines += [f"**🔧 {event.name}**({shown})", ""]
            if code:
                lines += [_fence(str(code), "python"), ""]
            if content:
                lang = "python" if str(args.get("file_path", "")).endswith(".py") else ""
                lines += [_fence(str(content), lang), ""]
        elif isinstance(event, ev.ApprovalDecided):
            if event.decision == "reject":
                lines += [f"✋ *rejected by the user: {event.reason or 'no reason given'}*", ""]
            elif event.decision == "edit":
                lines += ["✋ *edited by the user before it ran (the record keeps the original above)*", ""]
            else:
                lines += ["✋ *approved by the user*", ""]
        elif isinstance(event, ev.ToolResult):
            lines += [("❌ " if event.is_error and not event.content.startswith("❌") else "") + "Result:", ""]
            lines += [_fence(event.content), ""]
            live = "".join(o.text for o in outputs.get(event.call_id, []))
            if live.strip() and event.content.startswith("⏹"):  # its output before the stop
                lines += ["Output before the stop:", "", _fence(live), ""]
            for image in event.images:
                lines += [f"![{image}]({rel_files}/{image})", ""]
        elif isinstance(event, ev.Handoff):
            lines += [f"*↪ {event.source} → {event.target}*", ""]
        elif isinstance(event, ev.Notice):
            lines += [f"> **{event.level}:** {event.text.strip()}", ""]
        elif isinstance(event, ev.RunFinished):
            detail = f": {event.message}" if event.message else ""
            lines += ["---", f"**Finished: {event.reason.upper()}{detail}**", ""]
    # A person reads this file (`cat transcript.md` replays any control sequence in it):
    # every control character, escape sequence and bidi override is made visible.
    return inert("\n".join(lines).rstrip() + "\n")


# -- notebook ---------------------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    parts = text.splitlines(keepends=True)
    return parts or [""]


def _commented(text: str) -> str:
    return "\n".join(f"# {line}".rstrip() for line in text.splitlines())


def _result_value(content: str, stdout: str, stderr: str) -> str:
    """The value of the cell's last expression, from the tool result ("result:\\n…")."""
    head, sep, value = content.rpartition("\nresult:\n")
    if not sep:
        return ""
    streams = [s.rstrip("\n") for s in (stdout, stderr) if s]
    # only when what precedes it is exactly the status line and the streams (not stdout text)
    if streams and not head.endswith(streams[-1]):
        return ""
    if not streams and "\n" in head:
        return ""
    value = re.split(r"\n(?:figures saved: |traceback:\n)", value, maxsplit=1)[0]
    return value


class _Notebook:
    def __init__(self, files_dir: Path) -> None:
        self.files_dir = files_dir
        self.cells: list[dict[str, Any]] = []
        self.markdown: list[str] = []
        self.count = 0
        self.folders: set[str] = set()
        self.written: set[str] = set()

    def _id(self) -> str:
        return f"cell-{len(self.cells) + 1}"

    def note(self, text: str) -> None:
        if text.strip():
            self.markdown.append(text.strip())

    def flush(self) -> None:
        if self.markdown:
            text = "\n\n".join(self.markdown)
            self.markdown = []
            self.cells.append({"cell_type": "markdown", "id": self._id(), "metadata": {}, "source": _lines(text)})

    def code(
        self,
        source: str,
        outputs: list[dict[str, Any]],
        metadata: dict[str, Any],
        *,
        runs: bool = True,
        tags: list[str] | None = None,
    ) -> None:
        self.flush()
        count: int | None = None
        if runs:
            self.count += 1
            count = self.count
            for output in outputs:
                if output["output_type"] == "execute_result":
                    output["execution_count"] = count
        if tags:
            metadata = {**metadata, "tags": tags}
        self.cells.append(
            {
                "cell_type": "code",
                "execution_count": count,
                "id": self._id(),
                "metadata": metadata,
                "outputs": outputs,
                "source": _lines(source),
            }
        )

    def images(self, result: ev.ToolResult | None) -> list[dict[str, Any]]:
        found = []
        for image in result.images if result else []:
            path = _image_file(self.files_dir, image)
            if path is not None and path.suffix.lower() in (".png", ".jpg", ".jpeg"):
                mime = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
                found.append(
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {mime: base64.b64encode(path.read_bytes()).decode("ascii"), "text/plain": [image]},
                    }
                )
        return found


def _stream(name: str, text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": _lines(text)}


def _tool_source(step: _Step) -> str:
    """What a code-bearing step runs, as notebook source (paths made relative)."""
    call = step.call
    args = call.arguments
    if call.name == "run_code":
        return relative_code(str(args.get("code", "")))
    if call.name == "install_package":
        return f"%pip install {shlex.quote(str(args.get('package_name', '')).strip())}"
    if call.name == "write_file":
        path = sandbox_relative(str(args.get("file_path", "")))
        content = str(args.get("content", ""))
        if path.endswith(".py"):
            content = relative_code(content)
        arg = _magic_arg(path)
        if arg is None:  # a name %%writefile would mangle: the same write in Python
            return (
                f"# write_file({path!r}) (this file name does not survive %%writefile)\n"
                f"from pathlib import Path\n\nPath({path!r}).write_text({content!r}, encoding=\"utf-8\")"
            )
        return f"%%writefile {arg}\n{content}"
    # generate_chart: the code the tool ran in the sandbox, with relative paths
    from .tools.chart import chart_code  # the tool's own code; imported only when needed

    kind = str(args.get("chart_type") or "bar").strip().lower()
    source = sandbox_relative(str(args.get("data_file", "")))
    stem = posixpath.splitext(posixpath.basename(source))[0] or "chart"
    target = posixpath.join(posixpath.dirname(source), f"{stem}_{kind}.png")
    header = f"# generate_chart(data_file={source!r}, chart_type={kind!r})"
    return header + chart_code(source, target, kind)


def _add_step(nb: _Notebook, step: _Step, live: list[ev.SandboxOutput]) -> None:
    call, result = step.call, step.result
    meta: dict[str, Any] = {"agent": call.agent, "sbteam": {"tool": call.name, "call_id": call.call_id}}
    source = _tool_source(step)
    if step.edited:
        edited = "the user edited this step before it ran; the record keeps the arguments as proposed"
        if source.startswith("%%"):  # a cell magic must stay the cell's first line
            nb.note(f"✎ *{call.name} below: {edited}*")
        else:
            source = f"# ✎ {edited}\n{source}"
    stdout = "".join(o.text for o in live if o.stream == "stdout")
    stderr = "".join(o.text for o in live if o.stream == "stderr")
    outputs: list[dict[str, Any]] = []
    if step.rejected:
        reason = step.decision.reason if step.decision is not None and step.decision.reason else "no reason given"
        nb.code(f"# ✋ rejected by the user ({reason}); not run\n{_commented(source)}", [], meta, runs=False)
        return
    if step.stopped and call.name == "run_code":
        outputs = [_stream(n, t) for n, t in (("stdout", stdout), ("stderr", stderr)) if t]
        header = "# ⏹ stopped during the run" if result is not None else "# ⏹ never finished in the run"
        nb.code(f"{header}; commented out so the notebook re-runs\n{_commented(source)}", outputs, meta, runs=False)
        return
    if call.name != "run_code" and (step.stopped or step.failed):
        why = result.content.splitlines()[0] if result is not None and result.content else step.status
        nb.code(f"# {why}\n# (did nothing in the run; commented out)\n{_commented(source)}", [], meta, runs=False)
        return
    if call.name == "write_file":
        path = sandbox_relative(str(call.arguments.get("file_path", "")))
        folder = posixpath.dirname(path)
        if folder and folder not in nb.folders and not path.startswith("/"):
            nb.code(f"import os\nos.makedirs({folder!r}, exist_ok=True)", [], {"sbteam": {"tool": "mkdir"}})
        nb.folders.add(folder)
        outputs = [_stream("stdout", f"{'Overwriting' if path in nb.written else 'Writing'} {path}\n")]
        nb.written.add(path)
        nb.code(source, outputs, meta)
        return
    if call.name == "install_package":
        text = result.content.split("\n", 1)[1] if result is not None and "\n" in result.content else ""
        nb.code(source, [_stream("stdout", text)] if text.strip() else [], meta)
        return
    # run_code, generate_chart
    outputs = [_stream(n, t) for n, t in (("stdout", stdout), ("stderr", stderr)) if t]
    tags = None
    if result is not None and call.name == "run_code":
        value = _result_value(result.content, stdout, stderr)
        if value:
            outputs.append({"output_type": "execute_result", "metadata": {}, "data": {"text/plain": _lines(value)}})
        if step.failed:
            first = result.content.splitlines()[0].lstrip("❌ ").strip()
            name, _, text = first.partition(": ")
            outputs.append({"output_type": "error", "ename": name, "evalue": text, "traceback": []})
            tags = ["raises-exception"]  # it raised in the run too: re-runs go on past it
    outputs += nb.images(result)
    nb.code(source, outputs, meta, tags=tags)


def to_notebook(runs_dir: Path, run_id: str) -> dict[str, Any]:
    """The whole run as nbformat 4.5: every code-bearing step as a cell that re-runs, the
    conversation as Markdown, the recorded outputs."""
    events = load_events(runs_dir, run_id)
    nb = _Notebook(Path(runs_dir) / run_id / "files")
    outputs = _outputs(events)
    steps = _steps(events)
    started = next((e for e in events if isinstance(e, ev.RunStarted)), None)
    task = started.task.strip() if started else ""
    header = [f"# Run {run_id}", "", task]
    if started is not None:
        header += ["", f"*{started.model} · {started.sandbox} sandbox · recorded by sbteam-tui*"]
    header += [
        "",
        "Every step the agents took, in order: files they wrote are `%%writefile` cells, packages "
        "`%pip install` cells, and paths under `/home/user` (the sandbox's working folder) are "
        "relative, so this notebook re-runs top to bottom in any folder. Steps that did nothing in "
        "the run are commented out; cells that raised in the run are tagged `raises-exception`.",
    ]
    nb.note("\n".join(header))
    nb.flush()
    user_seen = False
    turns = _turn_starts(events)
    for event in events:
        if isinstance(event, ev.RunStarted) and turns:
            nb.flush()
            nb.note(f"## {_turn_title(event)}")
            nb.flush()
            task, user_seen = event.task.strip(), False
        elif isinstance(event, ev.Message):
            if event.agent == "user" and not user_seen and event.text.strip() == task:
                user_seen = True  # the task, already in the title cell (or the turn's heading)
                continue
            nb.note(f"**{event.agent}:**\n\n{event.text.strip()}")
        elif isinstance(event, ev.Handoff):
            nb.note(f"*↪ {event.source} → {event.target}*")
        elif isinstance(event, ev.ToolCall):
            step = _step_of(steps, event)
            if event.name in CODE_TOOLS:
                _add_step(nb, step, outputs.get(event.call_id, []))
            else:  # read_file, list_files: what the agent looked at
                args = ", ".join(f"{k}={v!r}" for k, v in event.arguments.items())
                text = step.result.content if step.result is not None else "(no result)"
                if len(text) > MAX_MD_RESULT:
                    text = text[:MAX_MD_RESULT] + f"\n… ({len(text) - MAX_MD_RESULT:,} more characters)"
                nb.note(f"🔎 **{event.agent}** · `{event.name}({args})`\n\n{_fence(text)}")
        elif isinstance(event, ev.Notice):
            nb.note(f"> **{event.level}:** {event.text.strip()}")
        elif isinstance(event, ev.RunFinished):
            detail = f": {event.message}" if event.message else ""
            nb.note(f"---\n\n**Finished: {event.reason.upper()}{detail}**")
    nb.flush()
    return {
        "cells": nb.cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            "sbteam": {"run_id": run_id},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def export_run(runs_dir: Path, run_id: str, fmt: str, out_path: Path | None = None) -> Path:
    """Write the export; default path: the run's folder, `transcript.md` / `notebook.ipynb`."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be 'md' or 'ipynb' (got {fmt!r})")
    run_dir = record_dir(runs_dir, run_id)
    if not (run_dir / "events.jsonl").is_file():
        raise FileNotFoundError(f"no run {run_id!r} in {runs_dir}")
    target = Path(out_path) if out_path else run_dir / ("transcript.md" if fmt == "md" else "notebook.ipynb")
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "md":
        target.write_text(to_markdown(runs_dir, run_id, target), encoding="utf-8")
    else:
        # json_text: a file name that is not UTF-8 is written escaped (and read back the same)
        target.write_text(json_text(to_notebook(runs_dir, run_id), indent=1), encoding="utf-8")
    return target
