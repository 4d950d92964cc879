"""Export a recorded run as Markdown or as a Jupyter notebook.

Both are built from the run record alone (events.jsonl + files/), so any past
run can be exported, including one whose app crashed. The notebook holds the
code cells that ran (run_code calls), in order, with their stdout/stderr,
errors and the pictures they produced; it is plain nbformat 4 JSON, written
without the nbformat package.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from . import events as ev
from .history import load_events, summarize

FORMATS = ("md", "ipynb")


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


def to_markdown(runs_dir: Path, run_id: str, out_path: Path) -> str:
    """The transcript as Markdown: messages, tool calls with code, outputs, image links."""
    events = load_events(runs_dir, run_id)
    summary = summarize(Path(runs_dir) / run_id)
    files_dir = Path(runs_dir) / run_id / "files"
    rel_files = os.path.relpath(files_dir, Path(out_path).parent)
    lines = [f"# Run {run_id}", ""]
    if summary is not None:
        cost = f" · cost ${summary.cost:.4f}" if summary.cost else ""
        lines += [
            f"- **Task:** {summary.task.strip()}",
            f"- **Model:** {summary.model} · **finished:** {summary.reason} · {summary.duration:.1f} s · "
            f"{summary.messages} messages · tokens {summary.tokens_in}/{summary.tokens_out}{cost}",
            f"- **Files:** {', '.join(summary.files) or '—'}",
            "",
            "## Transcript",
            "",
        ]
    speaker = ""
    for event in events:
        if isinstance(event, ev.Message):
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
        elif isinstance(event, ev.ToolResult):
            lines += [("❌ " if event.is_error and not event.content.startswith("❌") else "") + "Result:", ""]
            lines += [_fence(event.content), ""]
            for image in event.images:
                lines += [f"![{image}]({rel_files}/{image})", ""]
        elif isinstance(event, ev.Handoff):
            lines += [f"*↪ {event.source} → {event.target}*", ""]
        elif isinstance(event, ev.RunFinished):
            detail = f": {event.message}" if event.message else ""
            lines += ["---", f"**Finished: {event.reason.upper()}{detail}**", ""]
    return "\n".join(lines).rstrip() + "\n"


def to_notebook(runs_dir: Path, run_id: str) -> dict[str, Any]:
    """The run_code cells that ran, with their outputs, as nbformat 4."""
    events = load_events(runs_dir, run_id)
    files_dir = Path(runs_dir) / run_id / "files"
    outputs = _outputs(events)
    results = {e.call_id: e for e in events if isinstance(e, ev.ToolResult)}
    task = next((e.task for e in events if isinstance(e, ev.RunStarted)), "")
    cells: list[dict[str, Any]] = [
        {"cell_type": "markdown", "metadata": {}, "source": _lines(f"# Run {run_id}\n\n{task.strip()}")}
    ]
    count = 0
    for event in events:
        if not (isinstance(event, ev.ToolCall) and event.name == "run_code"):
            continue
        count += 1
        cell_outputs: list[dict[str, Any]] = []
        for stream in ("stdout", "stderr"):
            text = "".join(o.text for o in outputs.get(event.call_id, []) if o.stream == stream)
            if text:
                cell_outputs.append({"output_type": "stream", "name": stream, "text": _lines(text)})
        result = results.get(event.call_id)
        if result is not None and result.content.startswith("❌"):
            first = result.content.splitlines()[0].lstrip("❌ ").strip()
            name, _, value = first.partition(": ")
            cell_outputs.append({"output_type": "error", "ename": name, "evalue": value, "traceback": []})
        for image in result.images if result else []:
            path = files_dir / image
            if path.suffix.lower() == ".png" and path.is_file():
                cell_outputs.append(
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {"image/png": base64.b64encode(path.read_bytes()).decode("ascii")},
                    }
                )
        cells.append(
            {
                "cell_type": "code",
                "execution_count": count,
                "metadata": {"agent": event.agent},
                "outputs": cell_outputs,
                "source": _lines(str(event.arguments.get("code", ""))),
            }
        )
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            "sbteam": {"run_id": run_id},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _lines(text: str) -> list[str]:
    parts = text.splitlines(keepends=True)
    return parts or [""]


def export_run(runs_dir: Path, run_id: str, fmt: str, out_path: Path | None = None) -> Path:
    """Write the export; default path: the run's folder, `transcript.md` / `notebook.ipynb`."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be 'md' or 'ipynb' (got {fmt!r})")
    run_dir = Path(runs_dir) / run_id
    if not (run_dir / "events.jsonl").is_file():
        raise FileNotFoundError(f"no run {run_id!r} in {runs_dir}")
    target = Path(out_path) if out_path else run_dir / ("transcript.md" if fmt == "md" else "notebook.ipynb")
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "md":
        target.write_text(to_markdown(runs_dir, run_id, target), encoding="utf-8")
    else:
        target.write_text(json.dumps(to_notebook(runs_dir, run_id), ensure_ascii=False, indent=1), encoding="utf-8")
    return target
