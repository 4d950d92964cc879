"""The protocol every `bench/bench_*.py` follows, so `python -m bench` can merge them.

A benchmark builds `Row`s and ends with `emit(rows)`: a readable table for a
person, then one machine line `BENCH_JSON: [...]` for the runner (which runs
each file in its own process, so imports of one do not flatter another's
start-up). A row compares `ours` with a `baseline` measured in the same run
where there is one, and checks it against a `goal`; a row with no goal is
information (`passed is None`).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

MARKER = "BENCH_JSON: "


@dataclass
class Row:
    """One measured metric. `ratio` is ours/baseline (filled in when both are known)."""

    metric: str
    ours: float
    baseline: float | None = None
    unit: str = ""
    ratio: float | None = None
    goal: str = ""
    passed: bool | None = None
    note: str = ""
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.ratio is None and self.baseline not in (None, 0) and _finite(self.ours):
            self.ratio = self.ours / self.baseline  # type: ignore[operator]

    @property
    def verdict(self) -> str:
        return "info" if self.passed is None else ("PASS" if self.passed else "FAIL")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("ours", "baseline", "ratio"):
            if isinstance(data[key], float) and not math.isfinite(data[key]):
                data[key] = None  # JSON has no inf/nan
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Row:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if known.get("ours") is None:
            known["ours"] = math.nan
        return cls(**known)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


# -- building rows --------------------------------------------------------------------

def at_most(metric: str, ours: float, limit: float, unit: str, *, baseline: float | None = None,
            goal: str | None = None, note: str = "") -> Row:
    """Passes when `ours <= limit` (in the row's unit)."""
    return Row(metric, ours, baseline, unit, goal=goal or f"≤{limit:g} {unit}".strip(),
               passed=_finite(ours) and ours <= limit, note=note)


def at_least(metric: str, ours: float, limit: float, unit: str, *, baseline: float | None = None,
             goal: str | None = None, note: str = "") -> Row:
    """Passes when `ours >= limit`."""
    return Row(metric, ours, baseline, unit, goal=goal or f"≥{limit:g} {unit}".strip(),
               passed=_finite(ours) and ours >= limit, note=note)


def ratio_at_most(metric: str, ours: float, baseline: float, limit: float, unit: str,
                  note: str = "") -> Row:
    """Passes when `ours / baseline <= limit`."""
    row = Row(metric, ours, baseline, unit, goal=f"≤{limit:g}×", note=note)
    row.passed = row.ratio is not None and row.ratio <= limit
    return row


def info(metric: str, ours: float, unit: str, *, baseline: float | None = None, note: str = "") -> Row:
    """A number worth showing, with no goal of its own."""
    return Row(metric, ours, baseline, unit, note=note)


# -- statistics -----------------------------------------------------------------------

def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): p95 of 10 samples is the 10th smallest."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# -- output ---------------------------------------------------------------------------

def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if not math.isfinite(value):
        return "n/a" if math.isnan(value) else "∞"
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def cells(row: Row) -> list[str]:
    unit = f" {row.unit}" if row.unit else ""
    ours = _fmt(row.ours) + unit
    baseline = "—" if row.baseline is None else _fmt(row.baseline) + unit
    ratio = "—" if row.ratio is None else f"{row.ratio:.2f}×"
    return [row.metric, ours, baseline, ratio, row.goal or "—", row.verdict]


HEADER = ["metric", "ours", "baseline", "ratio", "goal", "result"]


def table(rows: Iterable[Row], notes: bool = True) -> str:
    """A Markdown pipe table, aligned, readable in a terminal and pasteable in a README."""
    rows = list(rows)
    body = [cells(r) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(HEADER)]
    right = {1, 2, 3}

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))]
        return "| " + " | ".join(parts) + " |"

    out = [line(HEADER), "|" + "|".join(("-" * (w + 1) + ":" if i in right else "-" * (w + 2))
                                          for i, w in enumerate(widths)) + "|"]
    out += [line(b) for b in body]
    if notes:
        marked = [r for r in rows if r.note]
        if marked:
            out.append("")
            out += [f"- {r.metric}: {r.note}" for r in marked]
    return "\n".join(out)


def emit(rows: Sequence[Row], title: str = "") -> None:
    """Print the human table, then the one line the runner parses (always last)."""
    if title:
        print(title)
    print(table(rows))
    print(MARKER + json.dumps([r.to_dict() for r in rows], ensure_ascii=False), flush=True)
