"""DEMO with the user's own data: scripted agents, real code on the uploaded files.

Played when the task carries a description of uploaded data (team/uploads.py), so
`sbteam-tui --data examples --demo` shows an upload and a follow-up turn without a
key. The words are scripted and say so; the numbers are the ones the code really
computed and the analyst really read back. A follow-up question cannot be
understood by a script: it says so, and computes the columns' correlations instead.
"""

from __future__ import annotations

import json
import math

from .demo import STOPPED, quote_task
from .scripted import Call, Reply, Say, ScriptStopped, ToolOutcome, Turn
from .uploads import TEXT as UPLOAD_TEXT

DATA_HEADS = tuple(t["head"] for t in UPLOAD_TEXT.values())

SUMMARY_CODE = '''# Summarise every table the user uploaded (data/): shape and numeric columns
import csv, glob, json, os
import pandas as pd

def read_table(path):
    """CSV/TSV (separator sniffed), Parquet, Excel or JSON lines."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".parquet":
        return pd.read_parquet(path)
    if ext in (".xlsx", ".xls"):
        return pd.read_excel(path)
    if ext in (".jsonl", ".ndjson"):
        return pd.read_json(path, lines=True)
    with open(path, newline="", errors="replace") as fh:
        sample = fh.read(65536)
    try:
        sep = csv.Sniffer().sniff(sample, delimiters=",;\\t|").delimiter
    except csv.Error:
        sep = "\\t" if ext == ".tsv" else ","
    return pd.read_csv(path, sep=sep)

summary = {}
for path in sorted(glob.glob("data/**/*", recursive=True)):
    if not os.path.isfile(path) or os.path.splitext(path)[1].lower() not in (
            ".csv", ".tsv", ".parquet", ".xlsx", ".xls", ".jsonl", ".ndjson"):
        continue
    df = read_table(path)
    numeric = df.select_dtypes("number")
    summary[path] = {
        "rows": int(len(df)),
        "columns": int(df.shape[1]),
        "missing": int(df.isna().sum().sum()),
        "numeric": {c: {k: round(float(v), 4) for k, v in numeric[c].agg(["mean", "std", "min", "max"]).items()}
                    for c in numeric.columns},
    }
    print(f"{path}: {len(df):,} rows × {df.shape[1]} columns, {len(numeric.columns)} numeric")

with open("data_summary.json", "w") as fh:
    json.dump(summary, fh, indent=1)
print("saved data_summary.json")
'''

CORRELATION_CODE = '''# The follow-up: correlations between the numeric columns of each table
import json
import pandas as pd

summary = json.load(open("data_summary.json"))
pairs = {}
for path in summary:
    df = read_table(path) if "read_table" in globals() else pd.read_csv(path)
    numeric = df.select_dtypes("number")
    if numeric.shape[1] < 2:
        continue
    corr = numeric.corr()
    best = max(((a, b) for i, a in enumerate(corr.columns) for b in corr.columns[i + 1:]),
               key=lambda p: abs(corr.loc[p[0], p[1]]))
    pairs[path] = {"columns": list(best), "r": round(float(corr.loc[best[0], best[1]]), 4)}
    print(f"{path}: strongest correlation {best[0]} ~ {best[1]}: r = {pairs[path]['r']}")

with open("data_correlations.json", "w") as fh:
    json.dump(pairs, fh, indent=1)
'''

TEXT = {
    "en": {
        "banner": "> **DEMO with your data**: scripted agents, real code on your files. Set OPENAI_API_KEY to use a real model.",
        "plan": "Your data is in `/home/user/data/`. CodeAgent: summarise every table (shape, numeric columns).",
        "run": "I read each table with pandas and save a summary to `data_summary.json`.",
        "back": "Done: `data_summary.json` is saved. Back to the Planner.",
        "to_analyst": "AnalystAgent: read `data_summary.json` and tell the user what the data holds.",
        "read": "Reading `data_summary.json`.",
        "table": "- **{path}**: {rows:,} rows × {columns} columns, {missing} missing values{numeric}",
        "numeric": "; {col}: mean {mean:,.2f} (from {min:,.2f} to {max:,.2f})",
        "analysis": "### What your data holds\n\n{tables}\n\nThese are the numbers the code computed; ask a follow-up to go on. Back to the Planner.",
        "done": "Summary of your data is done (see above and `data_summary.json`).\n\nTERMINATE",
        "done_follow": "The follow-up is done: correlations above and in `data_correlations.json`.\n\nTERMINATE",
        "follow": "> ↻ **DEMO follow-up**: scripted agents cannot understand “{task}”; as a follow-up they compute the strongest correlation between numeric columns of each table (real code, the same kernel and files).",
        "run_corr": "Computing correlations between the numeric columns (`data_correlations.json`).",
        "read_corr": "Reading `data_correlations.json`.",
        "corr": "- **{path}**: {a} and {b}, r = {r:+.3f} ({strength})",
        "corr_none": "No table has two numeric columns to correlate.",
        "corr_done": "### Follow-up: correlations\n\n{lines}\n\nBack to the Planner.",
        "strong": "strong", "moderate": "moderate", "weak": "weak",
        "failed": "❌ `{tool}` did not work: {detail}. I will not claim results. Back to the Planner.",
    },
    "zh": {
        "banner": "> **DEMO（你的数据）**：脚本化的代理，在你的文件上运行真实代码。配置 OPENAI_API_KEY 即可使用真实模型。",
        "plan": "你的数据在 `/home/user/data/`。CodeAgent：汇总每个表格（行列数、数值列）。",
        "run": "用 pandas 读取每个表格，并把汇总保存到 `data_summary.json`。",
        "back": "完成：`data_summary.json` 已保存。交回给 Planner。",
        "to_analyst": "AnalystAgent：读取 `data_summary.json`，告诉用户数据里有什么。",
        "read": "读取 `data_summary.json`。",
        "table": "- **{path}**：{rows:,} 行 × {columns} 列，缺失值 {missing} 个{numeric}",
        "numeric": "；{col}：均值 {mean:,.2f}（从 {min:,.2f} 到 {max:,.2f}）",
        "analysis": "### 你的数据\n\n{tables}\n\n以上数字都是代码实际计算的；可以继续追问。交回给 Planner。",
        "done": "数据汇总已完成（见上文和 `data_summary.json`）。\n\nTERMINATE",
        "done_follow": "追问已完成：相关性见上文和 `data_correlations.json`。\n\nTERMINATE",
        "follow": "> ↻ **DEMO 追问**：脚本化的代理无法理解「{task}」；作为追问，它们计算每个表格数值列之间最强的相关性（真实代码，同一个内核和文件）。",
        "run_corr": "计算数值列之间的相关性（`data_correlations.json`）。",
        "read_corr": "读取 `data_correlations.json`。",
        "corr": "- **{path}**：{a} 与 {b}，r = {r:+.3f}（{strength}）",
        "corr_none": "没有表格有两个数值列可以计算相关性。",
        "corr_done": "### 追问：相关性\n\n{lines}\n\n交回给 Planner。",
        "strong": "强", "moderate": "中等", "weak": "弱",
        "failed": "❌ `{tool}` 没有成功：{detail}。我不会声称有结果。交回给 Planner。",
    },
}


def carries_data(users: list[str]) -> bool:
    """The conversation began with a description of uploaded data."""
    return bool(users) and any(head in users[0] for head in DATA_HEADS)


def _json_after_header(text: str) -> dict:
    start = text.find("{")
    try:
        value = json.loads(text[start:]) if start >= 0 else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _last(turn: Turn, name: str) -> ToolOutcome:
    for outcome in reversed(turn.tool_outcomes()):
        if outcome.name == name:
            return outcome
    return ToolOutcome(name, f"❌ no result of {name} came back", True)


class DataDemoScript:
    """Planner → CodeAgent (summary) → Planner → AnalystAgent → Planner; a follow-up
    turn: the same with correlations. Follows what the tools really returned."""

    def __init__(self, lang: str = "zh") -> None:
        self.t = TEXT.get(lang, TEXT["zh"])

    def __call__(self, turn: Turn) -> Reply:
        users = turn.user_texts()
        follow_up = len(users) > 1
        after = self._since_question(turn)  # what happened since the newest question
        if turn.agent == "Planner":
            return self._planner(users, follow_up, after)
        if turn.agent == "CodeAgent":
            return self._code(turn, follow_up, after)
        return self._analyst(turn, follow_up, after)

    @staticmethod
    def _since_question(turn: Turn) -> list[str]:
        """Tool names called since the newest user message (this turn's progress)."""
        last_user = max((i for i, m in enumerate(turn.messages) if getattr(m, "source", "") == "user"), default=0)
        names: list[str] = []
        for message in turn.messages[last_user + 1 :]:
            for item in getattr(message, "content", []) if isinstance(getattr(message, "content", None), list) else []:
                name = getattr(item, "name", "")
                if name:
                    names.append(name)
        return names

    def _planner(self, users: list[str], follow_up: bool, after: list[str]) -> Reply:
        t = self.t
        if "transfer_to_analystagent" in after:  # the analyst has been and come back
            return Say(t["done_follow"] if follow_up else t["done"])
        if "transfer_to_codeagent" in after:
            return Call("transfer_to_analystagent", thought=t["to_analyst"])
        intro = t["banner"] + "\n\n"
        if follow_up:
            intro += t["follow"].format(task=quote_task(users[-1])) + "\n\n"
        return Call("transfer_to_codeagent", thought=intro + t["plan"])

    def _code(self, turn: Turn, follow_up: bool, after: list[str]) -> Reply:
        t = self.t
        if "run_code" not in after:
            code = CORRELATION_CODE if follow_up else SUMMARY_CODE
            return Call("run_code", {"code": code}, t["run_corr"] if follow_up else t["run"])
        ran = _last(turn, "run_code")
        if ran.failed or "❌" in ran.content.split("\n", 1)[0]:
            raise ScriptStopped(STOPPED.format(what="run_code failed"))
        return Call("transfer_to_planner", thought=t["back"])

    def _analyst(self, turn: Turn, follow_up: bool, after: list[str]) -> Reply:
        t = self.t
        name = "data_correlations.json" if follow_up else "data_summary.json"
        if "read_file" not in after:
            return Call("read_file", {"file_path": name}, t["read_corr"] if follow_up else t["read"])
        read = _last(turn, "read_file")
        data = {} if read.failed else _json_after_header(read.content)
        if read.failed:
            raise ScriptStopped(STOPPED.format(what=f"the analyst could not read {name}"))
        if follow_up:
            lines = []
            for path, item in data.items():
                r = item.get("r")
                if not (isinstance(r, (int, float)) and math.isfinite(r)):
                    continue
                strength = t["strong"] if abs(r) >= 0.7 else t["moderate"] if abs(r) >= 0.4 else t["weak"]
                a, b = item.get("columns", ["?", "?"])[:2]
                lines.append(t["corr"].format(path=path, a=a, b=b, r=r, strength=strength))
            return Call("transfer_to_planner", thought=t["corr_done"].format(lines="\n".join(lines) or t["corr_none"]))
        tables = []
        for path, item in data.items():
            numeric = "".join(
                t["numeric"].format(col=col, **stats)
                for col, stats in list(item.get("numeric", {}).items())[:3]
                if all(isinstance(stats.get(k), (int, float)) and math.isfinite(stats[k]) for k in ("mean", "min", "max"))
            )
            tables.append(t["table"].format(path=path, rows=item.get("rows", 0), columns=item.get("columns", 0),
                                            missing=item.get("missing", 0), numeric=numeric))
        return Call("transfer_to_planner", thought=t["analysis"].format(tables="\n".join(tables) or "—"))
