"""InfiAgent-DABench's files: questions, labels, and the task the team is given.

Questions (`da-dev-questions.jsonl`), one JSON object per line:
`{"id": 0, "question": …, "constraints": …, "format": "@mean_fare[mean_fare_value] …",
"file_name": "test_ave.csv", "level": "easy", "concepts": ["Summary Statistics"]}`.
Labels (`da-dev-labels.jsonl`): `{"id": 0, "common_answers": [["mean_fare", "34.65"]]}`.
The data files (`da-dev-tables/`) are what `--data DIR` points at.

Every problem is reported as one line naming the file and the line number.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA_DIR_IN_SANDBOX = "/home/user/data"


class QuestionFileError(ValueError):
    """A questions or labels file that cannot be used (one line: file, line, why)."""


@dataclass(frozen=True)
class Question:
    id: str  # DABench's ids are numbers; kept as text so any id works
    question: str
    format: str
    file_name: str
    constraints: str = ""
    level: str = "unknown"
    concepts: tuple[str, ...] = ()
    order: int = 0  # position in the questions file
    expected: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def key(self) -> str:
        return f"id:{self.id}"

    def expected_dict(self) -> dict[str, str]:
        return dict(self.expected)

    def prompt(self) -> str:
        """The task the team gets: DABench's fields and where the data is."""
        parts = [self.question.strip(), ""]
        parts.append(f"Data file: {DATA_DIR_IN_SANDBOX}/{Path(self.file_name).name} (already in the sandbox).")
        if self.constraints.strip():
            parts.append(f"Constraints: {self.constraints.strip()}")
        parts.append(f"Answer format: {self.format.strip()}")
        parts.append(
            "Compute the answer by running code on the data file. End with a message that gives "
            "every answer in exactly that format, one @name[value] per sub-answer."
        )
        return "\n".join(parts)

    @property
    def task_hash(self) -> str:
        """Changes when anything the team is told or scored on changes (resume re-runs it)."""
        payload = json.dumps([self.prompt(), list(self.expected)], ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise QuestionFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise QuestionFileError(f"{path} is not UTF-8 text") from None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionFileError(f"{path}, line {number}: not JSON ({exc.msg})") from None
        if not isinstance(value, dict):
            raise QuestionFileError(f"{path}, line {number}: expected a JSON object")
        rows.append((number, value))
    return rows


def _text(row: dict[str, Any], name: str, where: str, required: bool = True) -> str:
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise QuestionFileError(f"{where}: '{name}' is missing")
        return ""
    if not isinstance(value, (str, int, float)):
        raise QuestionFileError(f"{where}: '{name}' must be text")
    return str(value)


def read_questions(path: Path) -> list[Question]:
    """The questions, in file order; QuestionFileError on the first bad line."""
    questions: list[Question] = []
    seen: set[str] = set()
    for number, row in _jsonl(path):
        where = f"{path}, line {number}"
        qid = _text(row, "id", where)
        if qid in seen:
            raise QuestionFileError(f"{where}: id {qid} appears twice")
        seen.add(qid)
        concepts = row.get("concepts") or []
        if isinstance(concepts, str):
            concepts = [concepts]
        if not isinstance(concepts, list) or not all(isinstance(c, str) for c in concepts):
            raise QuestionFileError(f"{where}: 'concepts' must be a list of text")
        file_name = _text(row, "file_name", where)
        if Path(file_name).is_absolute() or ".." in Path(file_name).parts:
            raise QuestionFileError(f"{where}: 'file_name' must be a name inside --data, not {file_name!r}")
        questions.append(
            Question(
                id=qid,
                question=_text(row, "question", where),
                format=_text(row, "format", where),
                file_name=file_name,
                constraints=_text(row, "constraints", where, required=False),
                level=_text(row, "level", where, required=False) or "unknown",
                concepts=tuple(concepts),
                order=len(questions),
            )
        )
    if not questions:
        raise QuestionFileError(f"{path} holds no questions")
    return questions


def read_labels(path: Path) -> dict[str, tuple[tuple[str, str], ...]]:
    """id -> ((answer name, expected value), …)."""
    labels: dict[str, tuple[tuple[str, str], ...]] = {}
    for number, row in _jsonl(path):
        where = f"{path}, line {number}"
        qid = _text(row, "id", where)
        answers = row.get("common_answers")
        if not isinstance(answers, list) or not answers:
            raise QuestionFileError(f"{where}: 'common_answers' must be a list of [name, value] pairs")
        pairs = []
        for pair in answers:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                raise QuestionFileError(f"{where}: each answer must be [name, value], got {pair!r}")
            pairs.append((pair[0], str(pair[1])))
        labels[qid] = tuple(pairs)
    return labels


def default_labels_path(questions: Path) -> Path | None:
    """DABench's naming: `…-questions.jsonl` has its labels in `…-labels.jsonl` beside it."""
    name = questions.name
    if "questions" not in name:
        return None
    candidate = questions.with_name(name.replace("questions", "labels"))
    return candidate if candidate.is_file() else None


def with_labels(questions: list[Question], labels: dict[str, tuple[tuple[str, str], ...]]) -> list[Question]:
    """Questions carrying their expected answers; QuestionFileError names those without."""
    missing = [q.id for q in questions if q.id not in labels]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise QuestionFileError(f"no labels for question id {shown}")
    from dataclasses import replace

    return [replace(q, expected=labels[q.id]) for q in questions]


def check_data(questions: list[Question], data_dir: Path) -> None:
    """Every data file the questions name is in `data_dir` (one line naming the missing ones)."""
    missing = sorted({q.file_name for q in questions if not (data_dir / q.file_name).is_file()})
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise QuestionFileError(f"not in {data_dir}: {shown}")
