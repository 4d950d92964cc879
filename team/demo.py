"""DEMO mode: the seed's example task played by a scripted model, run for real.

No key and no network are needed. The words of the three agents are scripted
(and say so), but everything they *do* is real: the CodeAgent's code runs in
the local sandbox and writes the seed's four files, and the AnalystAgent's
analysis is built from the numbers it actually read back from those files.
"""

from __future__ import annotations

import json
import math

from .scripted import Call, Reply, Say, ScriptedChatCompletionClient, Turn

DEMO_HINT = (
    "DEMO — scripted agents, real code. Set OPENAI_API_KEY (or OPENAI_API_BASE for a "
    "local server) in .env to use a real model."
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
        "plan": (
            "> **DEMO**：脚本化的代理，真实的代码。配置 OPENAI_API_KEY 即可使用真实模型。\n\n"
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
        "plan": (
            "> **DEMO**: scripted agents, real code. Set OPENAI_API_KEY to use a real model.\n\n"
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


def _json_after_header(result: str) -> dict:
    """read_file results look like '📄 name:\\n{...}'; take the JSON part."""
    start = result.find("{")
    if start < 0:
        return {}
    try:
        return json.loads(result[start:])
    except json.JSONDecodeError:
        return {}


def _find(results: list[str], key: str) -> dict:
    for result in reversed(results):
        if key in result.split("\n", 1)[0]:
            return _json_after_header(result)
    return {}


class DemoScript:
    """The seed's flow: Planner → CodeAgent → Planner → AnalystAgent → Planner."""

    def __init__(self, lang: str = "zh") -> None:
        self.t = TEXT.get(lang, TEXT["zh"])
        self.stats: dict = {}
        self.outliers: dict = {}

    def __call__(self, turn: Turn) -> Reply:
        handler = {
            "Planner": self._planner,
            "CodeAgent": self._code_agent,
            "AnalystAgent": self._analyst,
        }.get(turn.agent)
        return handler(turn) if handler else Say("TERMINATE")

    def _planner(self, turn: Turn) -> Reply:
        files = ", ".join(f"`{f}`" for f in FILES)
        if turn.index == 0:
            return Call("transfer_to_codeagent", thought=self.t["plan"])
        if turn.index == 1:
            return Call("transfer_to_analystagent", thought=self.t["to_analyst"].format(files=files))
        return Say(self.t["summary"].format(**self._numbers()))

    def _code_agent(self, turn: Turn) -> Reply:
        steps = [
            Call("write_file", {"file_path": "data_analysis.py", "content": SEED_CODE}, self.t["write"]),
            Call("run_code", {"code": RUN_CODE}, self.t["run"]),
            Call("list_files", {"path": "/"}, self.t["list"]),
        ]
        if turn.index < len(steps):
            return steps[turn.index]
        results = turn.tool_results()
        run_output = next((r for r in reversed(results) if "stdout:" in r), "")
        summary = run_output.split("stdout:", 1)[-1].strip() if run_output else "—"
        summary = "```\n" + summary + "\n```"
        files = ", ".join(f"`{f}`" for f in FILES)
        return Call("transfer_to_planner", thought=self.t["code_done"].format(summary=summary, files=files))

    def _analyst(self, turn: Turn) -> Reply:
        if turn.index == 0:
            return Call("read_file", {"file_path": "data_stats.json"}, self.t["read_stats"])
        if turn.index == 1:
            return Call("read_file", {"file_path": "outlier_analysis.json"}, self.t["read_outliers"])
        results = turn.tool_results()
        self.stats = _find(results, "data_stats.json")
        self.outliers = _find(results, "outlier_analysis.json")
        return Call("transfer_to_planner", thought=self._analysis())

    def _numbers(self) -> dict:
        s = self.stats
        return {
            "mean": float(s.get("mean", math.nan)),
            "std": float(s.get("std", math.nan)),
            "max": float(s.get("max", math.nan)),
            "min": float(s.get("min", math.nan)),
            "count": int(self.outliers.get("count", 0)),
        }

    def _analysis(self) -> str:
        n = self._numbers()
        t = self.t
        values = [float(v) for v in self.outliers.get("outliers", [])]
        sem = n["std"] / math.sqrt(100) if n["std"] == n["std"] else math.nan
        mean_note = t["mean_near"] if abs(n["mean"]) <= 2 * sem else t["mean_far"]
        std_note = t["std_near"] if abs(n["std"] - 1) <= 0.15 else t["std_far"]
        if values:
            mean_wo = (n["mean"] * 100 - sum(values)) / (100 - len(values))
            delta = mean_wo - n["mean"]
            size = t["small"] if abs(delta) < 0.5 * sem else t["large"]
            impact = t["impact"].format(mean_wo=mean_wo, delta=delta, size=size)
            outlier_list = t["list_fmt"].format(", ".join(f"{v:.4f}" for v in values))
        else:
            impact, outlier_list = t["impact_none"], ""
        return t["analysis"].format(
            **n, range=n["max"] - n["min"], sem=sem, mean_note=mean_note, std_note=std_note,
            impact=impact, outlier_list=outlier_list,
        )


def demo_client(lang: str = "zh", pace: float = 0.0) -> ScriptedChatCompletionClient:
    """A fresh scripted client for one DEMO run."""
    return ScriptedChatCompletionClient(DemoScript(lang), pace=pace)

