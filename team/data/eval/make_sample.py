"""Write the bundled question set: `python -m team.data.eval.make_sample`.

Twenty closed-form questions in InfiAgent-DABench's format over the two example
data sets that ship with the app (`team/data/flowers.csv`, `team/data/daily_sales.csv`),
written for this project. The expected answers are computed HERE, in plain Python
(csv, math.fsum, exact sorting), independently of the pandas code the scripted
DEMO solver runs in the sandbox (`team/eval/sample.py`), so a 100 % score of the
DEMO is a real cross-check of two implementations, not a copy of one.

Outputs, beside this file: `questions.jsonl` and `labels.jsonl`. Running it again
writes byte-identical files; `tests/test_eval.py` checks that they are current.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parent  # the example data sets
MEASURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
SPECIES = ("setosa", "versicolor", "virginica")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def rows(name: str) -> list[dict[str, str]]:
    with open(DATA / name, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def num(text: str) -> float | None:
    return float(text) if text.strip() else None


def mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (pandas' and numpy's default)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def pearson(xs: list[float], ys: list[float]) -> float:
    mx, my = mean(xs), mean(ys)
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    syy = math.fsum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy)


def least_squares(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """(slope, intercept, R²) of y = slope·x + intercept."""
    mx, my = mean(xs), mean(ys)
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    slope = sxy / sxx
    intercept = my - slope * mx
    total = math.fsum((y - my) ** 2 for y in ys)
    residual = math.fsum((y - (slope * x + intercept)) ** 2 for x, y in zip(xs, ys, strict=True))
    return slope, intercept, 1 - residual / total


def skewness(values: list[float]) -> float:
    """Adjusted Fisher-Pearson sample skewness G1 (pandas' `Series.skew()`)."""
    n = len(values)
    m = mean(values)
    m2 = math.fsum((v - m) ** 2 for v in values) / n
    m3 = math.fsum((v - m) ** 3 for v in values) / n
    return math.sqrt(n * (n - 1)) / (n - 2) * m3 / m2**1.5


def f2(x: float) -> str:
    return f"{x:.2f}"


def f3(x: float) -> str:
    return f"{x:.3f}"


# -- flowers.csv ----------------------------------------------------------------------------


def flowers() -> list[dict[str, Any]]:
    table = rows("flowers.csv")
    for row in table:
        for m in MEASURES:
            row[m] = num(row[m])  # type: ignore[assignment]  # csv gives str; the row is retyped in place
    return table


def column(table: list[dict[str, Any]], name: str, species: str | None = None) -> list[float]:
    return [r[name] for r in table if r[name] is not None and (species is None or r["species"] == species)]


def q1() -> dict[str, str]:
    return {"mean_sepal_length": f2(mean(column(flowers(), "sepal_length")))}


def q2() -> dict[str, str]:
    table = flowers()
    missing = {m: sum(1 for r in table if r[m] is None) for m in MEASURES}
    most = max(missing.values())
    leaders = [m for m in MEASURES if missing[m] == most]
    assert len(leaders) == 1, "the question needs one column with the most missing values"
    return {"missing_total": str(sum(missing.values())), "most_missing_column": leaders[0]}


def q3() -> dict[str, str]:
    return {"long_petal_count": str(sum(1 for v in column(flowers(), "petal_length") if v > 5.0))}


def q4() -> dict[str, str]:
    table = flowers()
    return {f"mean_petal_length_{s}": f2(mean(column(table, "petal_length", s))) for s in SPECIES}


def q5() -> dict[str, str]:
    pairs = [(r["petal_length"], r["petal_width"]) for r in flowers() if r["petal_length"] is not None and r["petal_width"] is not None]
    r = pearson([p[0] for p in pairs], [p[1] for p in pairs])
    strength = "strong" if abs(r) >= 0.7 else "moderate" if abs(r) >= 0.3 else "weak"
    return {"correlation_coefficient": f2(r), "strength": strength}


def q6() -> dict[str, str]:
    g1 = skewness(column(flowers(), "sepal_width"))
    return {"skewness": f2(g1), "skew_direction": "positive" if g1 > 0 else "negative"}


def q7() -> dict[str, str]:
    values = column(flowers(), "sepal_width")
    q1_, q3_ = quantile(values, 0.25), quantile(values, 0.75)
    low, high = q1_ - 1.5 * (q3_ - q1_), q3_ + 1.5 * (q3_ - q1_)
    outliers = [v for v in values if v < low or v > high]
    return {"outlier_count": str(len(outliers)), "upper_fence": f2(high)}


def q8() -> dict[str, str]:
    table = flowers()
    medians = {}
    for s in SPECIES:
        areas = [r["petal_length"] * r["petal_width"] for r in table
                 if r["species"] == s and r["petal_length"] is not None and r["petal_width"] is not None]
        medians[s] = median(areas)
    best = max(SPECIES, key=lambda s: medians[s])
    return {"top_species": best, "median_petal_area": f2(medians[best])}


def q9() -> dict[str, str]:
    pairs = [(r["petal_length"], r["petal_width"]) for r in flowers() if r["petal_length"] is not None and r["petal_width"] is not None]
    slope, intercept, r2 = least_squares([p[0] for p in pairs], [p[1] for p in pairs])
    return {"slope": f3(slope), "intercept": f3(intercept), "r_squared": f3(r2)}


def q10() -> dict[str, str]:
    table = flowers()
    filled: dict[str, list[float]] = {m: [] for m in MEASURES}
    for m in MEASURES:
        medians = {s: median(column(table, m, s)) for s in SPECIES}
        filled[m] = [r[m] if r[m] is not None else medians[r["species"]] for r in table]
    return {"mean_sepal_length_filled": f3(mean(filled["sepal_length"])),
            "mean_petal_width_filled": f3(mean(filled["petal_width"]))}


# -- daily_sales.csv ------------------------------------------------------------------------


def sales() -> list[dict[str, Any]]:
    table = rows("daily_sales.csv")
    for row in table:
        row["date"] = date.fromisoformat(row["date"])  # type: ignore[assignment]  # csv gives str; the row is retyped in place
        row["units"] = int(row["units"])  # type: ignore[assignment]  # as above
        row["revenue"] = float(row["revenue"])  # type: ignore[assignment]  # as above
        row["promotion"] = int(row["promotion"])  # type: ignore[assignment]  # as above
    return table


def daily_totals(table: list[dict[str, Any]]) -> dict[date, float]:
    totals: dict[date, float] = {}
    for r in table:
        totals[r["date"]] = totals.get(r["date"], 0) + r["units"]
    return dict(sorted(totals.items()))


def q11() -> dict[str, str]:
    return {"total_units": str(sum(r["units"] for r in sales()))}


def q12() -> dict[str, str]:
    return {"mean_revenue_west": f2(mean([r["revenue"] for r in sales() if r["region"] == "west"]))}


def q13() -> dict[str, str]:
    months: dict[str, list[float]] = {}
    for r in sales():
        months.setdefault(r["date"].strftime("%Y-%m"), []).append(r["revenue"])
    totals = {m: math.fsum(v) for m, v in months.items()}
    best = max(totals, key=lambda m: totals[m])
    return {"best_month": best, "best_month_revenue": f2(totals[best])}


def q14() -> dict[str, str]:
    table = sales()
    return {"correlation_coefficient": f2(pearson([r["units"] for r in table], [r["revenue"] for r in table]))}


def q15() -> dict[str, str]:
    table = sales()
    promo = mean([r["units"] for r in table if r["promotion"] == 1])
    plain = mean([r["units"] for r in table if r["promotion"] == 0])
    return {"mean_units_promotion": f2(promo), "mean_units_no_promotion": f2(plain),
            "uplift_percent": f"{(promo / plain - 1) * 100:.1f}"}


def q16() -> dict[str, str]:
    prices = [r["revenue"] / r["units"] for r in sales()]
    return {"mean_price": f2(mean(prices)), "median_price": f2(median(prices))}


def q17() -> dict[str, str]:
    by_day: dict[str, list[float]] = {}
    for r in sales():
        by_day.setdefault(WEEKDAYS[r["date"].weekday()], []).append(r["units"])
    means = {d: mean(v) for d, v in by_day.items()}
    return {"busiest_weekday": max(means, key=lambda d: means[d]), "quietest_weekday": min(means, key=lambda d: means[d])}


def q18() -> dict[str, str]:
    totals = daily_totals(sales())
    values = list(totals.values())
    m = mean(values)
    sd = math.sqrt(math.fsum((v - m) ** 2 for v in values) / len(values))
    count = sum(1 for v in values if abs((v - m) / sd) > 3)
    peak = max(totals, key=lambda d: totals[d])
    return {"outlier_days": str(count), "peak_date": peak.isoformat()}


def q19() -> dict[str, str]:
    values = list(daily_totals(sales()).values())
    slope, intercept, _ = least_squares([float(i) for i in range(len(values))], [float(v) for v in values])
    return {"trend_slope": f3(slope), "forecast_next_day": f"{slope * len(values) + intercept:.1f}"}


def q20() -> dict[str, str]:
    by_year: dict[int, list[float]] = {}
    for r in sales():
        by_year.setdefault(r["date"].year, []).append(r["revenue"])
    growth = (math.fsum(by_year[2024]) / math.fsum(by_year[2023]) - 1) * 100
    return {"revenue_growth_percent": f2(growth)}


# -- the questions ---------------------------------------------------------------------------

SUMMARY, FEATURES, CORRELATION = "Summary Statistics", "Feature Engineering", "Correlation Analysis"
ML, DISTRIBUTION, OUTLIERS = "Machine Learning", "Distribution Analysis", "Outlier Detection"
PREPROCESSING = "Comprehensive Data Preprocessing"

Q = tuple[int, str, str, str, str, str, tuple[str, ...], Callable[[], dict[str, str]]]
QUESTIONS: list[Q] = [
    (1, "flowers.csv", "easy", "What is the mean sepal length of the flowers?",
     "Leave out missing values. Round to two decimal places.",
     '@mean_sepal_length[value] where "value" is a number rounded to two decimal places.', (SUMMARY,), q1),
    (2, "flowers.csv", "easy", "How many values are missing in the whole table, and which column has the most missing values?",
     "Count empty cells in every column.",
     '@missing_total[count] @most_missing_column[name] where "count" is an integer and "name" is a column name as written in the file.',
     (PREPROCESSING,), q2),
    (3, "flowers.csv", "easy", "How many flowers have a petal length greater than 5.0 cm?",
     "Strictly greater than 5.0; leave out missing values.",
     '@long_petal_count[count] where "count" is an integer.', (SUMMARY,), q3),
    (4, "flowers.csv", "medium", "What is the mean petal length of each species?",
     "Leave out missing values. Round each mean to two decimal places.",
     "@mean_petal_length_setosa[value] @mean_petal_length_versicolor[value] @mean_petal_length_virginica[value] "
     'where "value" is a number rounded to two decimal places.', (SUMMARY,), q4),
    (5, "flowers.csv", "medium", "How strongly are petal length and petal width correlated?",
     "Use the Pearson correlation coefficient r over the rows where both are present. Call the relationship "
     '"strong" if |r| >= 0.7, "moderate" if 0.3 <= |r| < 0.7, else "weak".',
     '@correlation_coefficient[r] @strength[word] where "r" is rounded to two decimal places and "word" is strong, moderate or weak.',
     (CORRELATION,), q5),
    (6, "flowers.csv", "medium", "Is the distribution of sepal width skewed, and in which direction?",
     "Use the adjusted Fisher-Pearson sample skewness (what pandas' Series.skew() computes), leaving out missing values.",
     '@skewness[value] @skew_direction[direction] where "value" is rounded to two decimal places and "direction" is positive or negative.',
     (DISTRIBUTION,), q6),
    (7, "flowers.csv", "medium", "How many sepal width values are outliers by the 1.5 x IQR rule?",
     "Q1 and Q3 by linear interpolation (pandas' default quantile). An outlier is below Q1 - 1.5*IQR or above "
     "Q3 + 1.5*IQR. Leave out missing values.",
     '@outlier_count[count] @upper_fence[value] where "count" is an integer and "value" is Q3 + 1.5*IQR rounded to two decimal places.',
     (OUTLIERS,), q7),
    (8, "flowers.csv", "hard", "Create a feature petal_area = petal_length * petal_width. Which species has the highest median petal area, and what is it?",
     "Leave out rows where either measurement is missing. Round the median to two decimal places.",
     '@top_species[name] @median_petal_area[value] where "name" is the species as written in the file.',
     (FEATURES, SUMMARY), q8),
    (9, "flowers.csv", "hard", "Fit a linear regression that predicts petal width from petal length. What are its slope, intercept and R-squared?",
     "Ordinary least squares with an intercept, on the rows where both are present, fitted on all of them (no split).",
     "@slope[value] @intercept[value] @r_squared[value] where each value is rounded to three decimal places.",
     (ML, CORRELATION), q9),
    (10, "flowers.csv", "hard", "Fill the missing measurements, then report the mean sepal length and mean petal width of all 150 flowers.",
     "Fill each missing measurement with the median of that measurement within the same species (computed without the missing values).",
     "@mean_sepal_length_filled[value] @mean_petal_width_filled[value] where each value is rounded to three decimal places.",
     (PREPROCESSING, SUMMARY), q10),
    (11, "daily_sales.csv", "easy", "How many units were sold in total?",
     "Sum the units column over every row (all dates and regions).",
     '@total_units[count] where "count" is an integer.', (SUMMARY,), q11),
    (12, "daily_sales.csv", "easy", "What is the mean daily revenue of the west region?",
     "Average the revenue of the rows whose region is west. Round to two decimal places.",
     '@mean_revenue_west[value] where "value" is a number rounded to two decimal places.', (SUMMARY,), q12),
    (13, "daily_sales.csv", "medium", "Which calendar month had the highest total revenue, and how much was it?",
     "Sum revenue over all regions and days of each month (year and month together).",
     '@best_month[YYYY-MM] @best_month_revenue[value] where "value" is rounded to two decimal places.',
     (SUMMARY, FEATURES), q13),
    (14, "daily_sales.csv", "medium", "What is the correlation between units and revenue?",
     "Pearson correlation coefficient over all rows.",
     '@correlation_coefficient[r] where "r" is rounded to two decimal places.', (CORRELATION,), q14),
    (15, "daily_sales.csv", "medium", "How many more units sell on promotion days than on other days?",
     "Compare the mean units of rows with promotion = 1 and promotion = 0. The uplift is (promotion mean / other mean - 1) * 100.",
     "@mean_units_promotion[value] @mean_units_no_promotion[value] @uplift_percent[percent] where the means are rounded to "
     "two decimal places and the percent to one.", (SUMMARY,), q15),
    (16, "daily_sales.csv", "medium", "Create a price feature (revenue divided by units) for every row. What are its mean and median?",
     "One price per row; round both to two decimal places.",
     "@mean_price[value] @median_price[value] where each value is rounded to two decimal places.",
     (FEATURES, SUMMARY), q16),
    (17, "daily_sales.csv", "medium", "On which weekday are the most units sold on average, and on which the fewest?",
     "Average the units of all rows (all regions) falling on each weekday.",
     "@busiest_weekday[day] @quietest_weekday[day] where \"day\" is an English weekday name such as Monday.",
     (DISTRIBUTION, FEATURES), q17),
    (18, "daily_sales.csv", "hard", "Add up the units of the three regions for each date. How many dates are outliers by z-score, and which date sold the most?",
     "z = (total - mean) / standard deviation, with the population standard deviation (ddof=0). An outlier has |z| > 3.",
     '@outlier_days[count] @peak_date[YYYY-MM-DD] where "count" is an integer.',
     (OUTLIERS, FEATURES), q18),
    (19, "daily_sales.csv", "hard", "Fit a linear trend to the total units sold per date. What is the slope, and what does the trend forecast for the day after the last date?",
     "Total units per date over all regions; x is the day number starting at 0 for the first date; ordinary least squares with an intercept.",
     '@trend_slope[value] @forecast_next_day[value] where the slope is rounded to three decimal places and the forecast to one.',
     (ML,), q19),
    (20, "daily_sales.csv", "medium", "By how many percent did total revenue grow from 2023 to 2024?",
     "(revenue of 2024 / revenue of 2023 - 1) * 100, over all regions.",
     '@revenue_growth_percent[value] where "value" is rounded to two decimal places.', (SUMMARY,), q20),
]


def build() -> tuple[str, str]:
    """(questions.jsonl, labels.jsonl) text."""
    questions, labels = [], []
    for qid, file_name, level, question, constraints, fmt, concepts, solve in QUESTIONS:
        questions.append(json.dumps({
            "id": qid, "question": question, "concepts": list(concepts), "constraints": constraints,
            "format": fmt, "file_name": file_name, "level": level,
        }, ensure_ascii=False))
        labels.append(json.dumps({"id": qid, "common_answers": [[k, v] for k, v in solve().items()]}, ensure_ascii=False))
    return "\n".join(questions) + "\n", "\n".join(labels) + "\n"


def main() -> None:
    questions, labels = build()
    (HERE / "questions.jsonl").write_text(questions, encoding="utf-8")
    (HERE / "labels.jsonl").write_text(labels, encoding="utf-8")
    print(f"wrote {HERE / 'questions.jsonl'} and {HERE / 'labels.jsonl'} ({len(QUESTIONS)} questions)")


if __name__ == "__main__":
    main()
