"""The user's tables, read where they are: in the sandbox (see team/table_guest.py).

`describe` tells the Planner what uploaded data holds; `preview` gives the app the
first rows of a CSV/TSV/Parquet/Excel/JSON-lines file with its row count, sheets
and, on demand, column statistics. Both run through the sandbox's `run_side`
(a code context of their own) when the backend has one, so they do not wait for
the team's running cell and leave no trace in its kernel.
"""

from __future__ import annotations

import functools
import inspect
import json
import posixpath
from typing import Any

from . import table_guest
from .sandbox.base import WORKDIR

TABLE_KINDS = frozenset(table_guest.KINDS.values())
PREVIEW_ROWS = 200
DESCRIBE_ROWS = 3
READ_CAP = 500 << 20  # bytes of a table read in full for a description; beyond: the first 1M rows


@functools.cache
def _source() -> str:
    return inspect.getsource(table_guest)


def _call(function: str, *args: Any) -> str:
    return (
        f"exec({_source()!r}, __sbteam_t := {{'__name__': 'sbteam_tables'}})\n"
        f"__sbteam_t[{function!r}]{args!r}\n"
        "del __sbteam_t\n"
    )


async def _run(sandbox: Any, code: str, timeout: float) -> dict[str, Any] | list[Any]:  # noqa: ASYNC109
    runner = getattr(sandbox, "run_side", None)
    execution = await (runner(code, timeout=timeout) if runner else sandbox.run_code(code, timeout=timeout))
    if execution.error is not None:
        raise RuntimeError(f"{execution.error.name}: {execution.error.value}")
    lines = "".join(execution.logs.stdout).strip().splitlines()
    if not lines:
        raise RuntimeError("the sandbox printed nothing")
    return json.loads(lines[-1])


async def describe(sandbox: Any, paths: list[str]) -> list[dict[str, Any]]:
    """Facts about each file (see table_guest.describe), computed in the sandbox."""
    if not paths:
        return []
    try:
        result = await _run(sandbox, _call("describe", [_absolute(p) for p in paths], READ_CAP, DESCRIBE_ROWS), 120)
    except Exception as exc:
        return [{"path": p, "error": str(exc)[:200]} for p in paths]
    if not isinstance(result, list):
        return []
    return [{**item, "path": path} for item, path in zip(result, paths, strict=False)]  # as the user names them


async def preview(sandbox: Any, path: str, *, sheet: str | int = 0, stats: bool = False) -> dict[str, Any]:
    """The first rows of a table and what is known of the rest (see table_guest.preview)."""
    result = await _run(sandbox, _call("preview", _absolute(path), PREVIEW_ROWS, sheet, stats), 120)
    return result if isinstance(result, dict) else {"error": "unexpected answer"}


def _absolute(path: str) -> str:
    """Under /home/user: the side context's working folder is not ours to assume (the
    team's code may have changed it)."""
    return path if path.startswith("/") else posixpath.join(WORKDIR, path)


def is_table(path: str) -> bool:
    return table_guest.kind_of(path) in TABLE_KINDS
