"""The transcript as Markdown (inert text: team/sanitize.py)."""

from __future__ import annotations

import os
from pathlib import Path

from .. import events as ev
from ..history import load_events, plural, summarize
from ..sanitize import inert
from .steps import collect_steps, fenced, live_outputs, step_line, turn_starts, turn_title


def to_markdown(runs_dir: Path, run_id: str, out_path: Path) -> str:
    """The transcript as Markdown: every step listed, then messages, tool calls with code,
    outputs, approvals and image links; inert (team/sanitize.py), unlike the notebook,
    which is JSON and keeps the exact text."""
    events = load_events(runs_dir, run_id)
    summary = summarize(Path(runs_dir) / run_id)
    files_dir = Path(runs_dir) / run_id / "files"
    rel_files = Path(os.path.relpath(files_dir, Path(out_path).parent)).as_posix()
    steps = collect_steps(events)
    outputs = live_outputs(events)
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
        lines += [step_line(n, step) for n, step in enumerate(steps.values(), 1)]
        lines += [""]
    turns = turn_starts(events)
    if not turns:
        lines += ["## Transcript", ""]
    speaker = ""
    for event in events:
        if isinstance(event, ev.RunStarted) and turns:
            speaker = ""
            lines += [f"## {turn_title(event)}", ""]
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
                lines += [fenced(str(code), "python"), ""]
            if content:
                lang = "python" if str(args.get("file_path", "")).endswith(".py") else ""
                lines += [fenced(str(content), lang), ""]
        elif isinstance(event, ev.ApprovalDecided):
            if event.decision == "reject":
                lines += [f"✋ *rejected by the user: {event.reason or 'no reason given'}*", ""]
            elif event.decision == "edit":
                lines += ["✋ *edited by the user before it ran (the record keeps the original above)*", ""]
            else:
                lines += ["✋ *approved by the user*", ""]
        elif isinstance(event, ev.ToolResult):
            lines += [("❌ " if event.is_error and not event.content.startswith("❌") else "") + "Result:", ""]
            lines += [fenced(event.content), ""]
            live = "".join(o.text for o in outputs.get(event.call_id, []))
            if live.strip() and event.content.startswith("⏹"):  # its output before the stop
                lines += ["Output before the stop:", "", fenced(live), ""]
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
