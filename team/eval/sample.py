"""The bundled question set and the scripted solver that answers it in DEMO mode.

`sbteam-tui eval --sample` runs the twenty questions of `team/data/eval/` over the
example data sets. Without a model key the agents are scripted, like the DEMO,
and just as honest: the CodeAgent runs the pandas code below for the question it
was given, in the real sandbox, on the uploaded file; the Planner's final answer
quotes the `@name[value]` lines that code printed, read back from the tool
result. Nothing is looked up from the labels, which `make_sample.py` computes
separately in plain Python. `wrong={ids}` makes the code of those questions
report deliberately wrong values (the scorer must catch them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ..scripted import Call, Reply, Say, ScriptedChatCompletionClient, Turn
from .dabench import DATA_DIR_IN_SANDBOX, Question, read_labels, read_questions, with_labels

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "eval"
SAMPLE_DATA = SAMPLE_DIR.parent  # the example data sets the questions are about
SAMPLE_QUESTIONS = SAMPLE_DIR / "questions.jsonl"
SAMPLE_LABELS = SAMPLE_DIR / "labels.jsonl"

FLOWERS = f'import pandas as pd\ndf = pd.read_csv("{DATA_DIR_IN_SANDBOX}/flowers.csv")\n'
SALES = (
    f'import pandas as pd\ndf = pd.read_csv("{DATA_DIR_IN_SANDBOX}/daily_sales.csv", parse_dates=["date"])\n'
)

# question id -> code that sets `answers` (name -> formatted value)
SOLUTIONS: dict[str, str] = {
    "1": FLOWERS + 'answers = {"mean_sepal_length": f"{df.sepal_length.mean():.2f}"}',
    "2": FLOWERS + (
        "missing = df.isna().sum()\n"
        'answers = {"missing_total": int(missing.sum()), "most_missing_column": missing.idxmax()}'
    ),
    "3": FLOWERS + 'answers = {"long_petal_count": int((df.petal_length > 5.0).sum())}',
    "4": FLOWERS + (
        'means = df.groupby("species").petal_length.mean()\n'
        'answers = {f"mean_petal_length_{s}": f"{m:.2f}" for s, m in means.items()}'
    ),
    "5": FLOWERS + (
        "r = df.petal_length.corr(df.petal_width)\n"
        'strength = "strong" if abs(r) >= 0.7 else "moderate" if abs(r) >= 0.3 else "weak"\n'
        'answers = {"correlation_coefficient": f"{r:.2f}", "strength": strength}'
    ),
    "6": FLOWERS + (
        "g1 = df.sepal_width.skew()\n"
        'answers = {"skewness": f"{g1:.2f}", "skew_direction": "positive" if g1 > 0 else "negative"}'
    ),
    "7": FLOWERS + (
        "s = df.sepal_width.dropna()\n"
        "q1, q3 = s.quantile(0.25), s.quantile(0.75)\n"
        "low, high = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)\n"
        'answers = {"outlier_count": int(((s < low) | (s > high)).sum()), "upper_fence": f"{high:.2f}"}'
    ),
    "8": FLOWERS + (
        'df["petal_area"] = df.petal_length * df.petal_width\n'
        'medians = df.dropna(subset=["petal_area"]).groupby("species").petal_area.median()\n'
        'answers = {"top_species": medians.idxmax(), "median_petal_area": f"{medians.max():.2f}"}'
    ),
    "9": FLOWERS + (
        "import numpy as np\n"
        'd = df.dropna(subset=["petal_length", "petal_width"])\n'
        "slope, intercept = np.polyfit(d.petal_length, d.petal_width, 1)\n"
        "r2 = d.petal_length.corr(d.petal_width) ** 2\n"
        'answers = {"slope": f"{slope:.3f}", "intercept": f"{intercept:.3f}", "r_squared": f"{r2:.3f}"}'
    ),
    "10": FLOWERS + (
        'cols = ["sepal_length", "sepal_width", "petal_length", "petal_width"]\n'
        'filled = df[cols].fillna(df.groupby("species")[cols].transform("median"))\n'
        'answers = {"mean_sepal_length_filled": f"{filled.sepal_length.mean():.3f}",\n'
        '           "mean_petal_width_filled": f"{filled.petal_width.mean():.3f}"}'
    ),
    "11": SALES + 'answers = {"total_units": int(df.units.sum())}',
    "12": SALES + 'answers = {"mean_revenue_west": f"{df[df.region == \'west\'].revenue.mean():.2f}"}',
    "13": SALES + (
        'monthly = df.groupby(df.date.dt.strftime("%Y-%m")).revenue.sum()\n'
        'answers = {"best_month": monthly.idxmax(), "best_month_revenue": f"{monthly.max():.2f}"}'
    ),
    "14": SALES + 'answers = {"correlation_coefficient": f"{df.units.corr(df.revenue):.2f}"}',
    "15": SALES + (
        'means = df.groupby("promotion").units.mean()\n'
        'answers = {"mean_units_promotion": f"{means[1]:.2f}", "mean_units_no_promotion": f"{means[0]:.2f}",\n'
        '           "uplift_percent": f"{(means[1] / means[0] - 1) * 100:.1f}"}'
    ),
    "16": SALES + (
        'df["price"] = df.revenue / df.units\n'
        'answers = {"mean_price": f"{df.price.mean():.2f}", "median_price": f"{df.price.median():.2f}"}'
    ),
    "17": SALES + (
        "by_day = df.groupby(df.date.dt.day_name()).units.mean()\n"
        'answers = {"busiest_weekday": by_day.idxmax(), "quietest_weekday": by_day.idxmin()}'
    ),
    "18": SALES + (
        'totals = df.groupby("date").units.sum()\n'
        "z = (totals - totals.mean()) / totals.std(ddof=0)\n"
        'answers = {"outlier_days": int((z.abs() > 3).sum()), "peak_date": totals.idxmax().strftime("%Y-%m-%d")}'
    ),
    "19": SALES + (
        "import numpy as np\n"
        'totals = df.groupby("date").units.sum()\n'
        "x = np.arange(len(totals))\n"
        "slope, intercept = np.polyfit(x, totals.values, 1)\n"
        'answers = {"trend_slope": f"{slope:.3f}", "forecast_next_day": f"{slope * len(totals) + intercept:.1f}"}'
    ),
    "20": SALES + (
        "by_year = df.groupby(df.date.dt.year).revenue.sum()\n"
        'answers = {"revenue_growth_percent": f"{(by_year[2024] / by_year[2023] - 1) * 100:.2f}"}'
    ),
}

PRINT_ANSWERS = "\nfor _name, _value in answers.items():\n    print(f'@{_name}[{_value}]')\n"
# Deliberately wrong: every number moved by one, every word changed.
PRINT_WRONG = (
    "\ndef _wrong(v):\n"
    "    try:\n"
    "        return f'{float(v) + 1:g}'\n"
    "    except (TypeError, ValueError):\n"
    "        return f'not-{v}'\n"
    "for _name, _value in answers.items():\n"
    "    print(f'@{_name}[{_wrong(_value)}]')\n"
)
_ANSWER_LINE = re.compile(r"^@\w+\[.*\]$")


def sample_questions() -> list[Question]:
    """The bundled questions with their labels."""
    return with_labels(read_questions(SAMPLE_QUESTIONS), read_labels(SAMPLE_LABELS))


def solution_code(question_id: str, wrong: bool = False) -> str:
    return SOLUTIONS[question_id] + (PRINT_WRONG if wrong else PRINT_ANSWERS)


class SampleSolver:
    """One run of the Planner → CodeAgent → Planner flow for a question of the sample.

    It recognises the question by its text in the task. For any other task it says
    plainly that the scripted DEMO only knows the bundled sample, and ends.
    """

    def __init__(self, questions: Iterable[Question], wrong: Iterable[str] = ()) -> None:
        self.by_text = {q.question.strip(): q for q in questions if q.id in SOLUTIONS}
        self.wrong = {str(w) for w in wrong}
        self.question: Question | None = None
        self.answers: list[str] = []
        self.problem = ""

    def _find(self, turn: Turn) -> Question | None:
        text = "\n".join(turn.user_texts())
        for question_text, question in self.by_text.items():
            if question_text in text:
                return question
        return None

    def __call__(self, turn: Turn) -> Reply:
        if self.question is None:
            self.question = self._find(turn)
        question = self.question
        if question is None:
            return Say(
                "DEMO: the scripted agents only answer the bundled sample questions (eval --sample); "
                "set OPENAI_API_KEY or OPENAI_API_BASE to evaluate a model on other questions.\n\nTERMINATE"
            )
        if turn.agent == "CodeAgent":
            return self._code_agent(turn, question)
        if turn.agent == "AnalystAgent":
            return Call("transfer_to_planner", thought="Nothing to interpret beyond the computed values.")
        if not self.answers and not self.problem:
            return Call(
                "transfer_to_codeagent",
                thought=f"DEMO (scripted agents, real code). Plan: load {question.file_name} with pandas, "
                "compute what the question asks under its constraints, print the answers in the required format.",
            )
        if self.problem:
            return Say(f"The computation did not give an answer: {self.problem}\n\nTERMINATE")
        lines = "\n".join(self.answers)
        return Say(f"Final answer, as computed in the sandbox:\n\n{lines}\n\nTERMINATE")

    def _code_agent(self, turn: Turn, question: Question) -> Reply:
        outcomes = [o for o in turn.tool_outcomes() if o.name == "run_code"]
        if not outcomes:
            code = solution_code(question.id, wrong=question.id in self.wrong)
            return Call("run_code", {"code": code}, thought=f"Computing the answer from {question.file_name}.")
        outcome = outcomes[-1]
        if outcome.failed:
            self.problem = outcome.detail or "the code failed"
            return Call("transfer_to_planner", thought=f"The code failed: {self.problem}")
        self.answers = [line.strip() for line in outcome.content.splitlines() if _ANSWER_LINE.match(line.strip())]
        if not self.answers:
            self.problem = "the code printed no @name[value] line"
        return Call("transfer_to_planner", thought="The code printed:\n\n" + "\n".join(self.answers or ["(nothing)"]))


def sample_client(questions: Iterable[Question], *, wrong: Iterable[str] = (), pace: float = 0.0) -> ScriptedChatCompletionClient:
    """A fresh scripted model for one question's run."""
    return ScriptedChatCompletionClient(SampleSolver(questions, wrong), pace=pace)
