"""Make the example data sets that ship with the app (`python -m team.data.make_examples`).

Both are generated here with a fixed seed, so they are ours to give away: CC0 1.0
(public domain dedication). They are small (tens of KB) and realistic enough to
analyse: a classic measurements table and a daily time series.

- `flowers.csv`: 150 flowers of three species (50 each), four measurements in cm,
  drawn from per-species normal distributions whose means and spreads follow the
  classic iris table (Fisher 1936); a few values are missing on purpose.
- `daily_sales.csv`: two years of daily sales for three regions: a trend, a weekly
  pattern, a December peak and noise, plus a promotion flag.

Running it again writes byte-identical files (tests/test_data.py checks that).
"""

from __future__ import annotations

import csv
import io
import math
import random
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPECIES = {  # mean and spread of sepal length, sepal width, petal length, petal width
    "setosa": ((5.01, 0.35), (3.43, 0.38), (1.46, 0.17), (0.25, 0.11)),
    "versicolor": ((5.94, 0.52), (2.77, 0.31), (4.26, 0.47), (1.33, 0.20)),
    "virginica": ((6.59, 0.64), (2.97, 0.32), (5.55, 0.55), (2.03, 0.27)),
}
REGIONS = {"north": 120.0, "south": 95.0, "west": 150.0}


def flowers() -> str:
    rng = random.Random(1936)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sepal_length", "sepal_width", "petal_length", "petal_width", "species"])
    for name, stats in SPECIES.items():
        for _ in range(50):
            row = [f"{max(0.1, rng.gauss(mean, sd)):.1f}" for mean, sd in stats]
            if rng.random() < 0.02:  # a few gaps, as real field data has
                row[rng.randrange(4)] = ""
            writer.writerow([*row, name])
    return out.getvalue()


def daily_sales() -> str:
    rng = random.Random(2024)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["date", "region", "units", "revenue", "promotion"])
    start = date(2023, 1, 1)
    for day in range(731):
        when = start + timedelta(days=day)
        weekly = 1.0 + 0.25 * math.sin(2 * math.pi * (when.weekday() - 2) / 7)
        december = 1.6 if when.month == 12 else 1.0
        for region, base in REGIONS.items():
            promotion = rng.random() < 0.08
            units = base * (1 + day / 1500) * weekly * december * (1.35 if promotion else 1.0)
            units = max(0, round(rng.gauss(units, units * 0.12)))
            price = rng.gauss(9.5, 0.4)
            writer.writerow([when.isoformat(), region, units, f"{units * price:.2f}", int(promotion)])
    return out.getvalue()


FILES = {"flowers.csv": flowers, "daily_sales.csv": daily_sales}


def main() -> None:
    for name, make in FILES.items():
        (HERE / name).write_text(make(), encoding="utf-8")
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
