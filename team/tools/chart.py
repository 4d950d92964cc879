"""`generate_chart`: a PNG of a CSV or JSON file, drawn by pandas + matplotlib in the sandbox.

The drawing code is team/tools/chart_script.py, sent as source (the host needs
neither pandas nor matplotlib); `chart_code` is also what an exported notebook
shows for the step (team/export/notebook.py).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import posixpath

from ..sanitize import shown_name
from ..session import absolute_path, relative_path
from . import chart_script
from .context import STOPPED, ToolContext, one_line
from .registry import ToolSpec

CHART_TYPES = ("bar", "line", "scatter", "hist", "pie")
_DRAW = chart_script.__sbteam_chart


def chart_code(src: str, dst: str, kind: str) -> str:
    """The cell that draws `src` as a `kind` chart into `dst` and leaves no name behind."""
    name = _DRAW.__name__
    args = json.dumps({"src": src, "dst": dst, "kind": kind})  # a JSON object is a Python dict literal
    return f"\n{inspect.getsource(_DRAW)}{name}({args})\ndel {name}\n"


def chart_target(source: str, kind: str) -> str:
    """Where the PNG goes: beside the data, `<stem>_<kind>.png`."""
    stem = posixpath.splitext(posixpath.basename(source))[0] or "chart"
    return posixpath.join(posixpath.dirname(source), f"{stem}_{kind}.png")


async def generate_chart(ctx: ToolContext, data_file: str, chart_type: str = "bar") -> str:
    kind = (chart_type or "bar").strip().lower()
    if kind not in CHART_TYPES:
        return f"❌ chart_type must be one of {', '.join(CHART_TYPES)} (got {chart_type!r})"
    source = absolute_path(data_file)
    target = chart_target(source, kind)
    session = ctx.session
    try:
        await session.initialize()
        if ctx.stopping:
            return STOPPED
        execution = await session.sandbox.run_code(chart_code(source, target, kind), timeout=ctx.code_timeout)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return f"❌ cannot draw the chart: {one_line(exc)}"
    if execution.error is not None:
        return f"❌ cannot draw the chart of {data_file}: {execution.error.name}: {execution.error.value}"
    return f"✅ {kind} chart saved: {shown_name(relative_path(target) or target)}"


GENERATE_CHART = ToolSpec(
    name="generate_chart",
    func=generate_chart,
    description="Draw a bar/line/scatter/hist/pie chart of a CSV or JSON file; returns the PNG's path.",
)
