"""The run as a Jupyter notebook that re-runs top to bottom in a fresh kernel (see the
package's docstring for the rules); plain nbformat 4.5 JSON."""

from __future__ import annotations

import base64
import posixpath
import re
import shlex
from pathlib import Path
from typing import Any

from .. import events as ev
from ..history import load_events
from .steps import (
    CODE_TOOLS,
    MAX_MD_RESULT,
    Step,
    collect_steps,
    fenced,
    image_file,
    live_outputs,
    magic_arg,
    relative_code,
    sandbox_relative,
    step_of,
    turn_starts,
    turn_title,
)


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
            path = image_file(self.files_dir, image)
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


def _tool_source(step: Step) -> str:
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
        arg = magic_arg(path)
        if arg is None:  # a name %%writefile would mangle: the same write in Python
            return (
                f"# write_file({path!r}) (this file name does not survive %%writefile)\n"
                f"from pathlib import Path\n\nPath({path!r}).write_text({content!r}, encoding=\"utf-8\")"
            )
        return f"%%writefile {arg}\n{content}"
    # generate_chart: the code the tool ran in the sandbox, with relative paths
    from ..tools.chart import chart_code  # the tool's own code; imported only when needed

    kind = str(args.get("chart_type") or "bar").strip().lower()
    source = sandbox_relative(str(args.get("data_file", "")))
    stem = posixpath.splitext(posixpath.basename(source))[0] or "chart"
    target = posixpath.join(posixpath.dirname(source), f"{stem}_{kind}.png")
    header = f"# generate_chart(data_file={source!r}, chart_type={kind!r})"
    return header + chart_code(source, target, kind)


def _add_step(nb: _Notebook, step: Step, live: list[ev.SandboxOutput]) -> None:
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
    outputs = live_outputs(events)
    steps = collect_steps(events)
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
    turns = turn_starts(events)
    for event in events:
        if isinstance(event, ev.RunStarted) and turns:
            nb.flush()
            nb.note(f"## {turn_title(event)}")
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
            step = step_of(steps, event)
            if event.name in CODE_TOOLS:
                _add_step(nb, step, outputs.get(event.call_id, []))
            else:  # read_file, list_files: what the agent looked at
                args = ", ".join(f"{k}={v!r}" for k, v in event.arguments.items())
                text = step.result.content if step.result is not None else "(no result)"
                if len(text) > MAX_MD_RESULT:
                    text = text[:MAX_MD_RESULT] + f"\n… ({len(text) - MAX_MD_RESULT:,} more characters)"
                nb.note(f"🔎 **{event.agent}** · `{event.name}({args})`\n\n{fenced(text)}")
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
