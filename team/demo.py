"""DEMO mode: the seed's example task played by a scripted model, run for real.

No key and no network are needed. The words of the three agents are scripted
(and say so), but everything they *do* is real: the CodeAgent's code runs in
the local sandbox and writes the seed's four files, and the AnalystAgent's
analysis is built from the numbers it actually read back from those files.

It is honest about what it is and what happened:
- it plays the seed's example task whatever is typed, and its first message says
  so when the task typed is another one (quoting it);
- a resumed run (a new instruction) replays the example, and says so;
- it reads every tool result: after a rejected or failed `write_file`/`run_code`,
  a missing file or an unreadable result, the agent says what went wrong, no
  number it could not read is quoted, and the Planner ends the run as an error
  ("DEMO stopped: …"), never with TERMINATE.

Over the ~400-line guide because most of it is the script itself (the agents' words in
zh and en and the code they run); the logic is the few readers of tool results.
"""

from __future__ import annotations

import json
import math
import unicodedata

from .prompts import DEMO_HINT  # noqa: F401  (headless prints it; defined with the prompts, light to import)
from .scripted import (
    Call,
    Reply,
    Say,
    ScriptedChatCompletionClient,
    ScriptStopped,
    ToolOutcome,
    Turn,
)

SEED_CODE = '''import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import json

# Step 1: Generate Random Data
data = np.random.normal(loc=0, scale=1, size=100)  # Generating 100 random points with normal distribution
np.savetxt("data_points.csv", data, delimiter=",")

# Step 2: Compute Basic Statistics
mean = np.mean(data)
std = np.std(data)
max_val = np.max(data)
min_val = np.min(data)

stats = {
    "mean": mean,
    "std": std,
    "max": max_val,
    "min": min_val
}

with open('data_stats.json', 'w') as f:
    json.dump(stats, f)

# Step 3: Generate Histogram
plt.hist(data, bins=10, edgecolor='black')
plt.title('Data Distribution')
plt.xlabel('Value')
plt.ylabel('Frequency')
plt.savefig('data_histogram.png')
plt.close()

# Step 4: Detect Outliers Using Z-Score
z_scores = np.abs((data - mean) / std)
outlier_indices = np.where(z_scores > 3)  # Considering Z-score > 3 as outliers
outliers = data[outlier_indices]

outlier_analysis = {
    "outliers": outliers.tolist(),
    "count": len(outliers)
}

with open('outlier_analysis.json', 'w') as f:
    json.dump(outlier_analysis, f)
'''

RUN_CODE = '''# 运行分析脚本 / run the analysis script, then print a short summary
exec(open("data_analysis.py", encoding="utf-8").read())
print(f"data points: {len(data)}")
print("stats:", json.dumps({k: round(float(v), 4) for k, v in stats.items()}))
print(f"outliers (|z| > 3): {outlier_analysis['count']} {[round(x, 4) for x in outliers.tolist()]}")
'''

FILES = ("data_points.csv", "data_stats.json", "data_histogram.png", "outlier_analysis.json")

TEXT = {
    "zh": {
        "banner": "> **DEMO**：脚本化的代理，真实的代码。配置 OPENAI_API_KEY 即可使用真实模型。",
        "custom": (
            "> ⚠ **DEMO 只演示示例任务**：无论输入什么，脚本化的代理都只演示种子文档的示例任务"
            "（100 个随机数据点的统计、直方图和异常值），不会读取你输入的「{task}」。\n>\n"
            "> ⚠ **The DEMO plays the example task whatever is typed**: the scripted agents play the "
            "seed's example task (statistics, histogram and outliers of 100 random points); they do "
            "not read what you typed (“{task}”)."
        ),
        "replay": (
            "> ↻ **DEMO 重放**：脚本化的代理无法执行新的指示「{task}」，下面从头重放示例任务。\n>\n"
            "> ↻ **DEMO replay**: the scripted agents cannot follow the new instruction “{task}”; "
            "they replay the example task from the start."
        ),
        "run_edited": "文件已按你的修改写入，现在执行分析脚本。",
        "list_edited": "你修改后的代码已执行，检查现有的文件。",
        "rejected": "❌ 用户拒绝了 `{tool}`：{detail}\n\n{consequence}我不会声称任务已完成。交回给 Planner。",
        "failed": "❌ `{tool}` 失败：{detail}\n\n{consequence}我不会声称任务已完成。交回给 Planner。",
        "after_write_file": "`data_analysis.py` 没有写入，所以示例分析没有运行，也没有生成任何文件。",
        "after_run_code": "分析脚本没有运行完成，结果文件可能缺失或不可信。",
        "rejected_run_code": "分析脚本没有运行，所以没有生成任何结果文件。",
        "after_list_files": "我无法确认脚本生成了哪些文件。",
        "missing": (
            "❌ 脚本已运行，但沙箱中没有这些文件：{missing}。\n\n"
            "缺少它们，分析无法继续；我不会声称任务已完成。交回给 Planner。"
        ),
        "unreadable": "❌ 无法读取 `{file}`：{detail}",
        "no_values": "其中没有预期的数值",
        "no_numbers": "我不会引用没有读到的数字。交回给 Planner。",
        "plan": (
            "好的，让我们开始分析用户需求并规划任务：\n\n"
            "### 用户需求分解及任务规划\n"
            "1. **生成随机数据集**：运行代码生成一个包含 100 个随机数据点的数据集。\n"
            "2. **计算基本统计信息**：均值、标准差、最大值、最小值。\n"
            "3. **绘制直方图**：基于生成的数据绘制分布图。\n"
            "4. **检测异常值并分析影响**：使用 Z-score 方法检测异常值。\n\n"
            "首先把代码执行任务交给 CodeAgent。"
        ),
        "write": "我先把完整的分析代码写入 `data_analysis.py`，然后执行它。",
        "run": "文件已写入，现在执行分析脚本。",
        "list": "代码执行成功，检查生成的文件。",
        "code_done": "### 执行结果\n{summary}\n\n生成的文件：{files}。\n\n将结果交回给 Planner。",
        "to_analyst": "CodeAgent 已完成代码执行，生成了 {files}。现在把数据分析任务交给 AnalystAgent。",
        "read_stats": "先读取统计结果文件 `data_stats.json`。",
        "read_outliers": "再读取异常值分析文件 `outlier_analysis.json`。",
        "analysis": (
            "### 数据分析成果解读\n\n"
            "#### 一、基本统计信息\n"
            "根据文件 **`data_stats.json`**：\n"
            "- 平均值 (**mean**) 为 {mean:.4f}，{mean_note}\n"
            "- 标准差 (**std**) 为 {std:.4f}，{std_note}\n"
            "- 最大值 {max:.4f}，最小值 {min:.4f}，极差 {range:.4f}。\n\n"
            "#### 二、异常值\n"
            "根据 **`outlier_analysis.json`**，Z-score > 3 的异常值有 **{count}** 个{outlier_list}。\n"
            "{impact}\n\n"
            "#### 三、直方图\n"
            "`data_histogram.png` 显示了 10 个区间的分布，应大致呈以 0 为中心的钟形。\n\n"
            "#### 四、局限与建议\n"
            "- 样本只有 100 个点，统计量的抽样误差较大（均值的标准误约 {sem:.3f}）。\n"
            "- Z-score 本身受异常值影响，可改用 IQR 或中位数绝对偏差做稳健检测。\n"
            "- 可用 Shapiro-Wilk 检验或 Q-Q 图进一步检验正态性。\n\n"
            "分析完成，交回给 Planner。"
        ),
        "mean_near": "接近 0，符合以 0 为中心生成的正态数据。",
        "mean_far": "与 0 有一定偏离，超出约两个标准误，可能是抽样波动。",
        "std_near": "与生成时的标准差 1 接近。",
        "std_far": "与生成时的标准差 1 有一定差异。",
        "impact_none": "没有检测到异常值，统计量不受极端值影响。",
        "impact": "去掉异常值后均值约为 {mean_wo:.4f}（变化 {delta:+.4f}），影响{size}。",
        "small": "很小",
        "list_fmt": "（{}）",
        "large": "明显",
        "summary": (
            "### 整体任务总结\n\n"
            "#### 已完成任务：\n"
            "1. **生成随机数据集**：CodeAgent 创建了 100 个数据点，保存于 `data_points.csv`。\n"
            "2. **计算基本统计信息**：均值 {mean:.4f}，标准差 {std:.4f}，最大值 {max:.4f}，最小值 {min:.4f}，"
            "保存于 `data_stats.json`。\n"
            "3. **绘制数据分布直方图**：保存于 `data_histogram.png`。\n"
            "4. **检测异常值并分析影响**：检测到 {count} 个异常值，结果保存于 `outlier_analysis.json`。\n\n"
            "**TERMINATE**"
        ),
    },
    "en": {
        "banner": "> **DEMO**: scripted agents, real code. Set OPENAI_API_KEY to use a real model.",
        "custom": (
            "> ⚠ **The DEMO plays the example task whatever is typed**: the scripted agents play the "
            "seed's example task (statistics, histogram and outliers of 100 random points); they do "
            "not read what you typed (“{task}”)."
        ),
        "replay": (
            "> ↻ **DEMO replay**: the scripted agents cannot follow the new instruction “{task}”; "
            "they replay the example task from the start."
        ),
        "run_edited": "The file is written with your edits; now I run the analysis script.",
        "list_edited": "The code ran as you edited it; let me check which files exist.",
        "rejected": (
            "❌ The user rejected `{tool}`: {detail}\n\n"
            "{consequence} I will not claim it is done. Handing back to Planner."
        ),
        "failed": (
            "❌ `{tool}` failed: {detail}\n\n"
            "{consequence} I will not claim it is done. Handing back to Planner."
        ),
        "after_write_file": (
            "`data_analysis.py` was not written, so the example analysis did not run and produced no files."
        ),
        "after_run_code": "The analysis script did not run to the end, so its files may be missing or stale.",
        "rejected_run_code": "The analysis script was not run, so it produced no result files.",
        "after_list_files": "I cannot confirm which files the script produced.",
        "missing": (
            "❌ The script ran, but these files are not in the sandbox: {missing}.\n\n"
            "The analysis cannot go on without them; I will not claim it is done. Handing back to Planner."
        ),
        "unreadable": "❌ I could not read `{file}`: {detail}",
        "no_values": "it does not hold the expected values",
        "no_numbers": "I will not quote numbers I could not read. Handing back to Planner.",
        "plan": (
            "Let's analyse the request and plan the work:\n\n"
            "### Breaking down the request\n"
            "1. **Generate a random dataset** of 100 data points by running code.\n"
            "2. **Compute basic statistics**: mean, standard deviation, maximum, minimum.\n"
            "3. **Plot a histogram** of the distribution.\n"
            "4. **Detect outliers and analyse their impact** with the Z-score method.\n\n"
            "First, the code-execution part goes to CodeAgent."
        ),
        "write": "I'll write the whole analysis into `data_analysis.py` first, then run it.",
        "run": "The file is written; now I run the analysis script.",
        "list": "The code ran successfully; let me check the files it produced.",
        "code_done": "### Execution result\n{summary}\n\nFiles produced: {files}.\n\nHanding back to Planner.",
        "to_analyst": "CodeAgent finished and produced {files}. Now the analysis goes to AnalystAgent.",
        "read_stats": "First the statistics in `data_stats.json`.",
        "read_outliers": "Then the outlier analysis in `outlier_analysis.json`.",
        "analysis": (
            "### Interpreting the results\n\n"
            "#### 1. Basic statistics\n"
            "From **`data_stats.json`**:\n"
            "- The **mean** is {mean:.4f}; {mean_note}\n"
            "- The **standard deviation** is {std:.4f}; {std_note}\n"
            "- Maximum {max:.4f}, minimum {min:.4f}, range {range:.4f}.\n\n"
            "#### 2. Outliers\n"
            "From **`outlier_analysis.json`**, **{count}** value(s) have a Z-score above 3{outlier_list}.\n"
            "{impact}\n\n"
            "#### 3. Histogram\n"
            "`data_histogram.png` shows the distribution over 10 bins, roughly bell-shaped around 0.\n\n"
            "#### 4. Limitations and suggestions\n"
            "- With only 100 points the sampling error is sizeable (standard error of the mean ≈ {sem:.3f}).\n"
            "- The Z-score is itself pulled by outliers; an IQR or MAD rule is more robust.\n"
            "- A Shapiro-Wilk test or a Q-Q plot would check normality further.\n\n"
            "Analysis done; handing back to Planner."
        ),
        "mean_near": "close to 0, as expected for normal data centred on 0.",
        "mean_far": "more than two standard errors from 0, likely sampling noise.",
        "std_near": "close to the generating standard deviation of 1.",
        "std_far": "somewhat different from the generating standard deviation of 1.",
        "impact_none": "No outliers were found, so no statistic is driven by extreme values.",
        "impact": "Without them the mean would be about {mean_wo:.4f} (a change of {delta:+.4f}): a {size} effect.",
        "small": "small",
        "list_fmt": " ({})",
        "large": "noticeable",
        "summary": (
            "### Summary of the whole task\n\n"
            "#### Done:\n"
            "1. **Random dataset**: CodeAgent created 100 data points in `data_points.csv`.\n"
            "2. **Basic statistics**: mean {mean:.4f}, std {std:.4f}, max {max:.4f}, min {min:.4f}, "
            "saved in `data_stats.json`.\n"
            "3. **Histogram**: saved as `data_histogram.png`.\n"
            "4. **Outliers and their impact**: {count} outlier(s) found, saved in `outlier_analysis.json`.\n\n"
            "**TERMINATE**"
        ),
    },
}


STOPPED = "DEMO stopped: {what}; the scripted example cannot continue"
CONTINUING = "(Continuing run "  # the prefix run.py gives a resumed run's instruction
QUOTE_LIMIT = 60
_MARKDOWN = "\\`*_[]<>#|~"


def _normal(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split()).casefold().rstrip(".。")


def is_example_task(text: str) -> bool:
    """Whether `text` is the seed's example task (either language; spacing and
    full-/half-width punctuation do not matter)."""
    from .prompts import example_task

    return _normal(text) in {_normal(example_task(lang)) for lang in ("zh", "en")}


def quote_task(text: str, limit: int = QUOTE_LIMIT) -> str:
    """The typed task on one line, shortened, safe inside Markdown."""
    if text.startswith(CONTINUING) and "\n\n" in text:
        text = text.split("\n\n", 1)[1]
    line = " ".join(text.split())
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return "".join("\\" + c if c in _MARKDOWN else c for c in line)


def _json_after_header(result: str) -> dict:
    """read_file results look like '📄 name:\\n{...}'; take the JSON part."""
    start = result.find("{")
    if start < 0:
        return {}
    try:
        value = json.loads(result[start:])
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _last(turn: Turn, name: str, mentioning: str = "") -> ToolOutcome:
    """The newest result of tool `name` (whose first line mentions `mentioning`)."""
    for outcome in reversed(turn.tool_outcomes()):
        if outcome.name == name and mentioning in outcome.content.split("\n", 1)[0]:
            return outcome
    return ToolOutcome(name, f"❌ no result of {name} came back", True)


def _listed(listing: str) -> set[str]:
    """File names in a list_files result ('📄 name (1.2 KB)' lines)."""
    return {
        line[2:].rsplit(" (", 1)[0]
        for line in listing.splitlines()
        if line.startswith("📄 ")
    }


def _edited(outcome: ToolOutcome) -> bool:
    return "the user edited the arguments" in outcome.content


class DemoScript:
    """The seed's flow: Planner → CodeAgent → Planner → AnalystAgent → Planner.

    It follows the tool results it is shown, not a fixed count of turns: what the
    Planner does next depends on what the other agents really achieved, and a
    new instruction from the user (a resumed run) starts the example afresh.
    """

    def __init__(self, lang: str = "zh") -> None:
        self.t = TEXT.get(lang, TEXT["zh"])
        self._instruction: str | None = None
        self._begin()

    def _begin(self) -> None:
        """A fresh pass through the example (a new run, or a new instruction)."""
        self.steps: dict[str, int] = {}
        self.intro = ""
        self.code_done = False
        self.analysis_done = False
        self.files: list[str] = []
        self.stats: dict = {}
        self.outliers: dict = {}
        self.failure = ""  # the run's end message once something failed

    def __call__(self, turn: Turn) -> Reply:
        users = turn.user_texts()
        latest = users[-1] if users else ""
        if latest != self._instruction:
            self._instruction = latest
            self._begin()
            self.intro = self._intro(users)
        step = self.steps.get(turn.agent, 0)
        self.steps[turn.agent] = step + 1
        handler = {
            "Planner": self._planner,
            "CodeAgent": self._code_agent,
            "AnalystAgent": self._analyst,
        }.get(turn.agent)
        reply = handler(turn, step) if handler else Say("TERMINATE")
        if self.intro:  # the first words of this pass, whoever speaks first
            if isinstance(reply, Say):
                reply = Say(f"{self.intro}\n\n{reply.text}")
            else:
                reply = Call(reply.name, reply.arguments, f"{self.intro}\n\n{reply.thought}".rstrip())
            self.intro = ""
        return reply

    def _intro(self, users: list[str]) -> str:
        latest = users[-1] if users else ""
        parts = [self.t["banner"]]
        if len(users) > 1 or latest.startswith(CONTINUING):
            parts.append(self.t["replay"].format(task=quote_task(latest)))
        elif not is_example_task(latest):
            parts.append(self.t["custom"].format(task=quote_task(latest)))
        return "\n\n".join(parts)

    # -- Planner ---------------------------------------------------------------------
    def _planner(self, turn: Turn, step: int) -> Reply:
        if self.failure:
            raise ScriptStopped(self.failure)  # ends the run as an error, with this reason
        if not self.code_done:
            return Call("transfer_to_codeagent", thought=self.t["plan"])
        if not self.analysis_done:
            return Call("transfer_to_analystagent", thought=self.t["to_analyst"].format(files=self._files()))
        return Say(self.t["summary"].format(**self._numbers()))

    def _files(self) -> str:
        return ", ".join(f"`{f}`" for f in self.files)

    # -- CodeAgent -------------------------------------------------------------------
    def _code_agent(self, turn: Turn, step: int) -> Reply:
        t = self.t
        if step == 0:
            return Call("write_file", {"file_path": "data_analysis.py", "content": SEED_CODE}, t["write"])
        if step == 1:
            written = _last(turn, "write_file")
            problem = self._tool_problem(written)
            if problem is not None:
                return problem
            return Call("run_code", {"code": RUN_CODE}, t["run_edited"] if _edited(written) else t["run"])
        ran = _last(turn, "run_code")
        if step == 2:
            problem = self._tool_problem(ran)
            if problem is not None:
                return problem
            return Call("list_files", {"path": "/"}, t["list_edited"] if _edited(ran) else t["list"])
        listing = _last(turn, "list_files")
        problem = self._tool_problem(listing)
        if problem is not None:
            return problem
        found = _listed(listing.content)
        missing = [f for f in FILES if f not in found]
        if missing:
            names = ", ".join(missing)
            self.failure = STOPPED.format(what=f"the analysis script did not produce {names}")
            listed = ", ".join(f"`{f}`" for f in missing)
            return Call("transfer_to_planner", thought=t["missing"].format(missing=listed))
        self.files = list(FILES)
        self.code_done = True
        output = ran.content.split("stdout:", 1)[1].split("\nstderr:", 1)[0] if "stdout:" in ran.content else ""
        summary = "```\n" + (output.strip() or "—") + "\n```"
        return Call("transfer_to_planner", thought=t["code_done"].format(summary=summary, files=self._files()))

    def _tool_problem(self, outcome: ToolOutcome) -> Reply | None:
        """After a failed or rejected tool: say so, remember to stop, hand back."""
        if not outcome.failed:
            return None
        tool = outcome.name
        kind = "rejected" if outcome.rejected else "failed"
        what = f"the user rejected {tool}" if outcome.rejected else f"{tool} failed"
        self.failure = STOPPED.format(what=what)
        detail = quote_task(outcome.detail, 200) or "—"
        consequence = self.t.get(f"{kind}_{tool}") or self.t[f"after_{tool}"]
        text = self.t[kind].format(tool=tool, detail=detail, consequence=consequence)
        return Call("transfer_to_planner", thought=text)

    # -- AnalystAgent ----------------------------------------------------------------
    def _analyst(self, turn: Turn, step: int) -> Reply:
        t = self.t
        if step == 0:
            return Call("read_file", {"file_path": "data_stats.json"}, t["read_stats"])
        if step == 1:
            return Call("read_file", {"file_path": "outlier_analysis.json"}, t["read_outliers"])
        problems = []
        stats_read = _last(turn, "read_file", "data_stats.json")
        stats = {} if stats_read.failed else _json_after_header(stats_read.content)
        if stats_read.failed:
            problems.append(("data_stats.json", stats_read.detail))
        elif not all(_finite(stats.get(k)) for k in ("mean", "std", "max", "min")):
            problems.append(("data_stats.json", t["no_values"]))
        outliers_read = _last(turn, "read_file", "outlier_analysis.json")
        outliers = {} if outliers_read.failed else _json_after_header(outliers_read.content)
        values = outliers.get("outliers")
        if outliers_read.failed:
            problems.append(("outlier_analysis.json", outliers_read.detail))
        elif not (
            isinstance(outliers.get("count"), int)
            and isinstance(values, list)
            and all(_finite(v) for v in values)
        ):
            problems.append(("outlier_analysis.json", t["no_values"]))
        if problems:
            names = ", ".join(name for name, _ in problems)
            self.failure = STOPPED.format(what=f"the analyst could not read {names}")
            lines = [t["unreadable"].format(file=name, detail=quote_task(d, 200) or "—") for name, d in problems]
            return Call("transfer_to_planner", thought="\n".join(lines) + "\n\n" + t["no_numbers"])
        self.stats, self.outliers = stats, outliers
        self.analysis_done = True
        return Call("transfer_to_planner", thought=self._analysis())

    def _numbers(self) -> dict:
        s = self.stats
        return {
            "mean": float(s["mean"]),
            "std": float(s["std"]),
            "max": float(s["max"]),
            "min": float(s["min"]),
            "count": int(self.outliers["count"]),
        }

    def _analysis(self) -> str:
        n = self._numbers()
        t = self.t
        values = [float(v) for v in self.outliers.get("outliers", [])]
        sem = n["std"] / math.sqrt(100)
        mean_note = t["mean_near"] if abs(n["mean"]) <= 2 * sem else t["mean_far"]
        std_note = t["std_near"] if abs(n["std"] - 1) <= 0.15 else t["std_far"]
        impact, outlier_list = ("" if values else t["impact_none"]), ""
        if values:
            outlier_list = t["list_fmt"].format(", ".join(f"{v:.4f}" for v in values))
        if values and len(values) < 100:
            mean_wo = (n["mean"] * 100 - sum(values)) / (100 - len(values))
            delta = mean_wo - n["mean"]
            size = t["small"] if abs(delta) < 0.5 * sem else t["large"]
            impact = t["impact"].format(mean_wo=mean_wo, delta=delta, size=size)
        return t["analysis"].format(
            **n, range=n["max"] - n["min"], sem=sem, mean_note=mean_note, std_note=std_note,
            impact=impact, outlier_list=outlier_list,
        )


def demo_client(lang: str = "zh", pace: float = 0.0) -> ScriptedChatCompletionClient:
    """A fresh scripted client for one DEMO run: the seed's example, or, when the user
    uploaded data (the task describes it), the DEMO with their data (team/demo_data.py)."""
    from .demo_data import DataDemoScript, carries_data

    example, with_data = DemoScript(lang), DataDemoScript(lang)

    def respond(turn: Turn) -> Reply:
        return with_data(turn) if carries_data(turn.user_texts()) else example(turn)

    return ScriptedChatCompletionClient(respond, pace=pace)
