"""`summary.json` and `report.md` of an evaluation (one run, one shard, or merged shards).

Both are computed from `results.jsonl` records alone, so merging shards is reading
their records and summarising again. Records are re-judged with the summary's
comparison rule (their raw answers and labels are kept), so a summary never
mixes two rules.
"""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import Any

from ..scale import clock
from .answers import DEFAULT_TOLERANCE, judge, rule_text
from .score import accuracies, by_group


def rejudge(record: dict[str, Any], tolerance: float, strict: bool) -> dict[str, Any]:
    """The record with `correct`/`all_correct`/`verdict` for this rule (failed records: all wrong)."""
    expected = dict(record.get("expected") or {})
    answers = dict(record.get("answers") or {})
    verdict = judge(expected, answers, tolerance, strict)
    out = dict(record)
    out["correct"] = verdict.correct
    out["all_correct"] = verdict.all_correct
    if record.get("status") != "failed":
        out["verdict"] = verdict.reason(expected)
    return out


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"total": 0, "mean": 0, "median": 0, "max": 0}
    return {
        "total": round(sum(values), 3),
        "mean": round(statistics.fmean(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def summarize(
    records: list[dict[str, Any]],
    meta: dict[str, Any],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    strict: bool = False,
    planned: int | None = None,
    wall_seconds: float | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary, the records re-judged and in question order)."""
    judged = sorted((rejudge(r, tolerance, strict) for r in records), key=lambda r: (r.get("order", 0), str(r.get("id"))))
    failed = [r for r in judged if r.get("status") == "failed"]
    costs = [r.get("cost") for r in judged]
    known_costs = [c for c in costs if isinstance(c, (int, float))]
    summary: dict[str, Any] = dict(meta)
    summary.update(
        {
            "generated": datetime.now().isoformat(timespec="seconds"),
            "rule": rule_text(tolerance, strict),
            "tolerance": tolerance,
            "strict": strict,
            "questions_planned": planned if planned is not None else len(judged),
            "questions_with_results": len(judged),
            "not_run": max(0, (planned if planned is not None else len(judged)) - len(judged)),
            "failed": len(failed),
            "overall": accuracies(judged),
            "by_level": by_group(judged, "level"),
            "by_concept": by_group(judged, "concepts"),
            "tokens_in": sum(int(r.get("tokens_in") or 0) for r in judged),
            "tokens_out": sum(int(r.get("tokens_out") or 0) for r in judged),
            "cost": round(sum(known_costs), 6) if len(known_costs) == len(costs) and costs else None,
            "seconds_per_question": _stats([float(r.get("seconds") or 0) for r in judged if r.get("status") != "failed"]),
            "tokens_per_question": _stats(
                [float((r.get("tokens_in") or 0) + (r.get("tokens_out") or 0)) for r in judged if r.get("status") != "failed"]
            ),
            "failures": [{"id": r.get("id"), "reason": r.get("verdict", "")} for r in failed],
        }
    )
    if wall_seconds is not None:
        summary["wall_seconds"] = round(wall_seconds, 2)
    return summary, judged


def _pct(value: float) -> str:
    return f"{value * 100:.1f} %"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in row) + " |" for row in rows]
    return lines


def markdown(summary: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """report.md: scores overall, by level and concept, then every question."""
    overall = summary["overall"]
    title = summary.get("title") or "Evaluation"
    lines = [f"# {title}", ""]
    facts = [
        ("model", summary.get("model", "?")),
        ("sandbox", summary.get("sandbox", "?")),
        ("questions", f"{summary.get('questions_file', '?')} (labels {summary.get('labels_file', '?')})"),
        ("shard", summary.get("shard") or "all"),
        ("comparison", summary.get("rule", "")),
        ("generated", summary.get("generated", "")),
    ]
    lines += [f"- **{k}**: {v}" for k, v in facts] + [""]
    planned = summary.get("questions_planned", overall["questions"])
    lines.append(
        f"**ABQ {_pct(overall['abq'])}** ({overall['correct']}/{overall['questions']} questions) · "
        f"PSAQ {_pct(overall['psaq'])} · UASQ {_pct(overall['uasq'])} "
        f"({overall['sub_correct']}/{overall['sub_answers']} sub-answers)"
    )
    notes = []
    if summary.get("failed"):
        notes.append(f"{summary['failed']} question(s) failed to run and count as wrong")
    if summary.get("not_run"):
        notes.append(f"{summary['not_run']} of {planned} planned question(s) have no result yet (not counted)")
    if notes:
        lines.append("")
        lines.append("⚠ " + "; ".join(notes) + ".")
    cost = summary.get("cost")
    wall = summary.get("wall_seconds")
    secs = summary.get("seconds_per_question", {})
    lines += [
        "",
        f"Tokens {summary.get('tokens_in', 0):,} in / {summary.get('tokens_out', 0):,} out · "
        f"cost {'n/a' if cost is None else f'${cost:.4f}'} · "
        f"per question {secs.get('mean', 0):.1f} s mean, {secs.get('max', 0):.1f} s max"
        + (f" · wall {clock(wall)}" if wall is not None else ""),
        "",
        "## By level",
        "",
    ]

    def group_rows(groups: dict[str, dict[str, Any]]) -> list[list[str]]:
        return [
            [name, f"{g['correct']}/{g['questions']}", _pct(g["abq"]), _pct(g["psaq"]), _pct(g["uasq"])]
            for name, g in groups.items()
        ]

    head = ["group", "right", "ABQ", "PSAQ", "UASQ"]
    lines += _table(["level", *head[1:]], group_rows(summary.get("by_level", {})))
    lines += ["", "## By concept", ""]
    lines += _table(["concept", *head[1:]], group_rows(summary.get("by_concept", {})))
    lines += ["", "## Questions", ""]
    rows = []
    for r in records:
        marks = r.get("correct") or {}
        mark = "⚠" if r.get("status") == "failed" else ("✓" if r.get("all_correct") else "✗")
        cost = r.get("cost")
        rows.append([
            str(r.get("id")), r.get("level", ""), mark, f"{sum(marks.values())}/{len(marks)}",
            f"{float(r.get('seconds') or 0):.1f}", f"{int(r.get('tokens_in') or 0) + int(r.get('tokens_out') or 0):,}",
            "n/a" if cost is None else f"${cost:.4f}", r.get("run_id") or "—", str(r.get("verdict", "")),
        ])
    lines += _table(["id", "level", "", "sub", "s", "tokens", "cost", "run", "verdict"], rows)
    return "\n".join(lines) + "\n"
