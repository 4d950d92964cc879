"""The pieces of `eval` that need no run: answer parsing, comparison, scores, files, shards."""

from __future__ import annotations

import json

import pytest

from team.eval.answers import find_answers, judge, parse_number, same
from team.eval.dabench import QuestionFileError, read_labels, read_questions, with_labels
from team.eval.score import accuracies, by_group
from team.scale import ResultLog, ScaleError, Shard, resolve_shard, text_keys

# -- finding answers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@mean_fare[34.65]", {"mean_fare": "34.65"}),
        ("The answer is @ mean_fare [ 34.65 ] .", {"mean_fare": "34.65"}),
        ("**@mean_fare[34.65]**", {"mean_fare": "34.65"}),
        ("`@mean_fare[34.65]`", {"mean_fare": "34.65"}),
        (r"@mean\_fare\[34.65\]", {"mean_fare": "34.65"}),
        ("@city[\"Paris\"] @flag['yes']", {"city": "Paris", "flag": "yes"}),
        ("@outliers[[1, 2], [3]]", {"outliers": "[1, 2], [3]"}),
        ("@a[1] then, after checking, @a[2]", {"a": "2"}),
        ("@a[1]\n@b[2]\n@c[three words  here]", {"a": "1", "b": "2", "c": "three words here"}),
        ("@a[**0.5**]", {"a": "0.5"}),
        ("@a[unclosed\n@b[2]", {"b": "2"}),
        ("no answers at all, e-mail me@example.com", {}),
        ("@empty[]", {"empty": ""}),
        ("@x[{'month_1': 7.17, 'month_2': 6.53}]", {"x": "{'month_1': 7.17, 'month_2': 6.53}"}),
    ],
)
def test_find_answers(text, expected):
    assert find_answers(text) == expected


def test_last_value_wins_and_keeps_the_order_of_last_values():
    found = find_answers("draft: @b[1] @a[1]\nfinal: @b[2]")
    assert list(found.items()) == [("a", "1"), ("b", "2")]


# -- comparing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("got", "expected", "ok"),
    [
        ("34.65", "34.65", True),
        ("34.650", "34.65", True),
        ("34.66", "34.65", False),
        ("34.6500001", "34.65", True),  # within 1e-6
        ("1,234.5", "1234.5", True),
        ("12.5%", "12.5", True),
        ("$9.50", "9.5", True),
        ("\u22120.30", "-0.3", True),  # Unicode minus
        ("-0.00", "0.0", True),
        ("1e-3", "0.001", True),
        ("Not Normal", "not normal", True),
        ("  normally   distributed ", "normally distributed", True),
        ('"linear"', "linear", True),
        ("nonlinear", "linear", False),
        ("[1, 2, 3]", "1, 2, 3", True),
        ("1,2,3.0", "1, 2, 3", True),
        ("1, 2", "1, 2, 3", False),
        ("Kuwait,Saudi Arabia", "Kuwait, Saudi Arabia", True),
        ("nan", "nan", True),
        ("inf", "1e400", False),
        (None, "1", False),
        ("", "", True),
    ],
)
def test_same(got, expected, ok):
    assert same(got, expected) is ok


def test_tolerance_is_what_the_user_states():
    assert not same("0.251", "0.25")
    assert same("0.251", "0.25", tolerance=0.005)
    assert not same("0.26", "0.25", tolerance=0.005)


def test_strict_is_dabench_rule():
    assert same("34.650", "34.65", strict=True)  # |a − b| < 1e-6
    assert not same("Linear", "linear", strict=True)
    assert not same("1,234", "1234", strict=True)


def test_parse_number():
    assert parse_number("1,234,567.25") == 1234567.25
    assert parse_number("12,3") is None  # not a thousands separator: a list or a decimal comma
    assert parse_number("abc") is None
    assert parse_number("NaN") is None


def test_judge_names_and_reason():
    expected = {"mean": "3.20", "kind": "linear"}
    verdict = judge(expected, {"MEAN": "3.2", "kind": "nonlinear"})
    assert verdict.correct == {"mean": True, "kind": False}
    assert not verdict.all_correct
    assert verdict.reason(expected) == "kind: got 'nonlinear', expected 'linear'"
    missing = judge(expected, {})
    assert missing.reason(expected).startswith("mean: no answer, expected '3.20'")
    assert judge(expected, {"MEAN": "3.2", "kind": "linear"}, strict=True).correct["mean"] is False


# -- scores ----------------------------------------------------------------------------


def test_accuracies_as_dabench_computes_them():
    records = [
        {"correct": {"a": True}, "level": "easy", "concepts": ["X"]},
        {"correct": {"a": True, "b": False}, "level": "easy", "concepts": ["X", "Y"]},
        {"correct": {"a": False, "b": False, "c": True, "d": True}, "level": "hard", "concepts": ["Y"]},
        {"correct": {"a": False}, "status": "failed", "level": "hard", "concepts": []},
    ]
    result = accuracies(records)
    assert result["abq"] == 0.25  # 1 of 4 questions all right
    assert result["psaq"] == round((1 + 0.5 + 0.5 + 0) / 4, 4)
    assert result["uasq"] == round(4 / 8, 4)
    levels = by_group(records, "level")
    assert list(levels) == ["easy", "hard"] and levels["easy"]["abq"] == 0.5
    concepts = by_group(records, "concepts")
    assert concepts["X"]["questions"] == 2 and concepts["Y"]["questions"] == 2 and concepts["none"]["questions"] == 1


# -- files -----------------------------------------------------------------------------


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_reads_dabench_files(tmp_path):
    questions = tmp_path / "da-dev-questions.jsonl"
    _write(questions, [
        {"id": 0, "question": "Mean fare?", "concepts": ["Summary Statistics"], "constraints": "2 decimals",
         "format": "@mean_fare[value]", "file_name": "test_ave.csv", "level": "easy"},
        {"id": 5, "question": "r?", "concepts": ["Correlation Analysis"], "constraints": "",
         "format": "@r[value]", "file_name": "test_ave.csv", "level": "medium"},
    ])
    labels = tmp_path / "da-dev-labels.jsonl"
    _write(labels, [{"id": 0, "common_answers": [["mean_fare", "34.65"]]}, {"id": 5, "common_answers": [["r", "0.21"]]}])
    qs = with_labels(read_questions(questions), read_labels(labels))
    assert [q.id for q in qs] == ["0", "5"] and qs[0].expected_dict() == {"mean_fare": "34.65"}
    prompt = qs[0].prompt()
    assert "Mean fare?" in prompt and "/home/user/data/test_ave.csv" in prompt and "@mean_fare[value]" in prompt
    assert qs[0].task_hash != qs[1].task_hash


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 1: not JSON"),
        ('{"id": 1, "format": "@a[x]", "file_name": "a.csv"}', "line 1: 'question' is missing"),
        ('{"id": 1, "question": "q", "format": "@a[x]", "file_name": "../../etc/passwd"}', "must be a name inside --data"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_question_files_say_where(tmp_path, line, message):
    path = tmp_path / "q.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(QuestionFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_questions(path)


def test_questions_without_labels_are_named(tmp_path):
    questions = tmp_path / "q.jsonl"
    _write(questions, [{"id": i, "question": "q", "format": "@a[x]", "file_name": "a.csv"} for i in range(3)])
    labels = tmp_path / "l.jsonl"
    _write(labels, [{"id": 1, "common_answers": [["a", "1"]]}])
    with pytest.raises(QuestionFileError, match="no labels for question id 0, 2"):
        with_labels(read_questions(questions), read_labels(labels))


def test_result_log_survives_a_torn_line(tmp_path):
    log = ResultLog(tmp_path)
    log.append({"key": "a", "status": "scored"})
    with open(log.path, "a", encoding="utf-8") as fh:
        fh.write('{"key": "b", "stat')  # a crash mid-write
    assert set(log.load()) == {"a"} and log.torn == 1
    log.append({"key": "b", "status": "scored"})
    log.append({"key": "a", "status": "failed"})
    records = log.load()
    assert set(records) == {"a", "b"} and records["a"]["status"] == "failed" and log.torn == 1


# -- shards and keys --------------------------------------------------------------------


def test_shards_partition_the_work():
    items = list(range(10))
    parts = [Shard(i, 3).take(items) for i in range(3)]
    assert sorted(sum(parts, [])) == items and parts[0] == [0, 3, 6, 9]
    assert Shard.parse("1/4") == Shard(1, 4)
    for bad in ("4/4", "x/2", "1", "-1/2", "0/0"):
        with pytest.raises(ScaleError):
            Shard.parse(bad)


def test_shard_from_kubernetes_indexed_job():
    assert resolve_shard(None, {"JOB_COMPLETION_INDEX": "2", "JOB_COMPLETIONS": "5"}) == Shard(2, 5)
    assert resolve_shard("0/2", {"JOB_COMPLETION_INDEX": "2", "JOB_COMPLETIONS": "5"}) == Shard(0, 2)
    assert resolve_shard(None, {}) is None
    with pytest.raises(ScaleError, match="JOB_COMPLETIONS is not"):
        resolve_shard(None, {"JOB_COMPLETION_INDEX": "1"})


def test_text_keys_are_stable_and_tell_repeats_apart():
    keys = text_keys(["a", "b", "a"])
    assert keys == text_keys(["a", "b", "a"]) and len(set(keys)) == 3 and keys[2] == keys[0] + "#2"
