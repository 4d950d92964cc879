"""DABench's three accuracies over `results.jsonl` records, overall and by group.

- ABQ (accuracy by question): questions whose every sub-answer is right / questions;
- PSAQ (proportional by sub-question): the mean over questions of the share of
  its sub-answers that are right;
- UASQ (uniform by sub-question): right sub-answers / all sub-answers.

Exactly as `eval_closed_form.py` of InfiAgent-DABench computes them, with one
difference said in every report: a question that failed to run (no sandbox, the
model endpoint down) is counted, as wrong, instead of being left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def accuracies(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """{"questions", "correct", "sub_answers", "sub_correct", "abq", "psaq", "uasq"} (fractions, 4 places)."""
    questions = correct = subs = sub_right = 0
    proportional = 0.0
    for record in records:
        marks = list((record.get("correct") or {}).values())
        questions += 1
        subs += len(marks)
        sub_right += sum(bool(m) for m in marks)
        if marks and all(marks):
            correct += 1
        if marks:
            proportional += sum(bool(m) for m in marks) / len(marks)
    return {
        "questions": questions,
        "correct": correct,
        "sub_answers": subs,
        "sub_correct": sub_right,
        "abq": round(correct / questions, 4) if questions else 0.0,
        "psaq": round(proportional / questions, 4) if questions else 0.0,
        "uasq": round(sub_right / subs, 4) if subs else 0.0,
    }


def by_group(records: list[dict[str, Any]], field: str) -> dict[str, dict[str, Any]]:
    """Accuracies per level (`field="level"`) or per concept (`"concepts"`, a question counts in each)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        value = record.get(field)
        names = value if isinstance(value, list) else [value or "unknown"]
        for name in names or ["none"]:
            groups.setdefault(str(name), []).append(record)
    order = {"easy": 0, "medium": 1, "hard": 2}
    return {name: accuracies(groups[name]) for name in sorted(groups, key=lambda n: (order.get(n, 9), n))}
