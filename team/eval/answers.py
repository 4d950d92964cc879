"""`@name[value]` answers: found in free text, compared with the expected ones.

DABench's own scorer takes `re.findall(r"@(\\w+)\\[(.*?)\\]")` over the response and
compares each expected sub-answer by exact string or `|a − b| < 1e-6`. Models
write answers less tidily than that, so `find_answers` also accepts:

- spaces: `@ name [ value ]`, `@name [value]`;
- Markdown around or inside: `**@name[value]**`, `` `@name[value]` ``,
  `@mean\\_fare[3.5]`, `@name\\[value\\]` (escaped by a Markdown-minded model);
- brackets inside the value: `@outliers[[1, 2], [3]]` (matched by depth);
- quotes around the value: `@city["Paris"]`.

A name given twice keeps its last value (the final answer after a draft).

`same(got, expected)` (the default, stated in every report):
- numbers are equal when |got − expected| ≤ tolerance (1e-6 unless asked), after
  dropping thousands separators (`1,234.5`), a `%` or `$`, a Unicode minus;
- text is compared ignoring case, spacing and surrounding quotes;
- comma-separated lists (`1, 2, 3`, `[a, b]`) are compared item by item.
`strict=True` is DABench's own rule, for numbers comparable with the paper.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

DEFAULT_TOLERANCE = 1e-6
_NAME = re.compile(r"@\s*([A-Za-z_][\w.\-]*?)\s*\[")
_UNESCAPE = re.compile(r"\\([\[\]_*`])")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_QUOTES = "\"'`“”‘’"


def rule_text(tolerance: float = DEFAULT_TOLERANCE, strict: bool = False) -> str:
    """The comparison rule in one sentence, for summaries and reports."""
    if strict:
        return "DABench's rule: the same text, or numbers with |got − expected| < 1e-6"
    return (
        f"numbers equal when |got − expected| ≤ {tolerance:g} (thousands separators, % and $ ignored); "
        "text ignoring case, spacing and surrounding quotes; comma-separated lists item by item"
    )


def find_answers(text: str) -> dict[str, str]:
    """Every `@name[value]` in `text`, the last value of each name, in order of appearance."""
    text = _UNESCAPE.sub(r"\1", text or "")
    found: dict[str, str] = {}
    pos = 0
    while True:
        match = _NAME.search(text, pos)
        if match is None:
            return found
        end = _closing(text, match.end())
        if end is None:
            pos = match.end()
            continue
        value = _clean(text[match.end() : end])
        name = match.group(1)
        found.pop(name, None)  # re-insert: the order is that of the last value
        found[name] = value
        pos = end + 1


def _closing(text: str, start: int) -> int | None:
    """Index of the `]` closing the `[` just before `start` (nested brackets allowed);
    without a balanced one, the first `]` (DABench's reading), else None."""
    depth = 1
    for i in range(start, len(text)):
        char = text[i]
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return i
        elif char == "\n" and text[i + 1 : i + 2] == "@":
            return None  # the next answer starts on a new line: this one was never closed
    first = text.find("]", start)
    return first if first >= 0 else None


def _clean(value: str) -> str:
    value = " ".join(value.split())
    for _ in range(3):
        value = value.strip().strip("*").strip()
        if len(value) >= 2 and value[0] in _QUOTES and value[-1] in _QUOTES:
            value = value[1:-1]
    return value.strip()


def parse_number(text: str) -> float | None:
    """A number written the ways people write them, or None."""
    value = text.strip().replace("\u2212", "-").replace("\u2009", "").replace("\u202f", "")
    if value.startswith("$") or value.startswith("-$"):
        value = value.replace("$", "", 1)
    if value.endswith("%"):
        value = value[:-1]
    value = value.strip()
    if _THOUSANDS.match(value):
        value = value.replace(",", "")
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _items(text: str) -> list[str] | None:
    """A comma-separated list (outer brackets dropped), or None for a single value."""
    value = text.strip()
    if len(value) >= 2 and value[0] + value[-1] in ("[]", "()", "{}"):
        value = value[1:-1]
    if "," not in value or _THOUSANDS.match(value.strip()):
        return None
    return [_clean(item) for item in value.split(",")]


def _norm(text: str) -> str:
    return _clean(text).casefold()


def same(got: str | None, expected: str, tolerance: float = DEFAULT_TOLERANCE, strict: bool = False) -> bool:
    """Whether the answer `got` matches `expected` (see the module docstring)."""
    if got is None:
        return False
    if strict:
        if got == expected:
            return True
        try:
            return abs(float(got) - float(expected)) < 1e-6
        except ValueError:
            return False
    return _same(got, expected, tolerance, nested=False)


def _same(got: str, expected: str, tolerance: float, nested: bool) -> bool:
    if _norm(got) == _norm(expected):
        return True
    a, b = parse_number(got), parse_number(expected)
    if a is not None and b is not None:
        return abs(a - b) <= tolerance + 1e-12 * max(abs(a), abs(b))  # + float noise
    if nested:
        return False
    mine, theirs = _items(got), _items(expected)
    if theirs is None or mine is None or len(mine) != len(theirs):
        return False
    return all(_same(x, y, tolerance, nested=True) for x, y in zip(mine, theirs, strict=True))


@dataclass
class Verdict:
    """How one question's answers compare with its labels."""

    correct: dict[str, bool]
    got: dict[str, str | None]

    @property
    def all_correct(self) -> bool:
        return bool(self.correct) and all(self.correct.values())

    def reason(self, expected: dict[str, str]) -> str:
        """One line: what was right, or what was wrong and how."""
        if self.all_correct:
            return f"all {len(self.correct)} sub-answer(s) right"
        wrong = []
        for name, ok in self.correct.items():
            if ok:
                continue
            got = self.got.get(name)
            shown = "no answer" if got is None else f"got {_short(got)}"
            wrong.append(f"{name}: {shown}, expected {_short(expected[name])}")
        return "; ".join(wrong)


def _short(value: str, width: int = 40) -> str:
    value = " ".join(value.split())
    return repr(value if len(value) <= width else value[: width - 1] + "…")


def judge(
    expected: dict[str, str], answers: dict[str, str], tolerance: float = DEFAULT_TOLERANCE, strict: bool = False
) -> Verdict:
    """Compare every expected sub-answer; a name matches exactly, else ignoring case
    (not in strict mode: DABench's names are exact)."""
    folded = {name.casefold(): value for name, value in answers.items()}
    correct: dict[str, bool] = {}
    got: dict[str, str | None] = {}
    for name, value in expected.items():
        answer = answers.get(name)
        if answer is None and not strict:
            answer = folded.get(name.casefold())
        got[name] = answer
        correct[name] = same(answer, value, tolerance, strict)
    return Verdict(correct, got)
