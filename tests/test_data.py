"""The example data that ships with the app: ours to give away (generated here, CC0),
reproducible, and found by `--data examples` in an installed copy."""

from __future__ import annotations

import csv
import io
from importlib import resources

from team.data import make_examples


def test_the_generator_writes_the_shipped_files_byte_for_byte():
    shipped = resources.files("team.data")
    for name, make in make_examples.FILES.items():
        assert shipped.joinpath(name).read_text(encoding="utf-8") == make(), name


def test_the_examples_are_the_tables_the_readme_promises():
    shipped = resources.files("team.data")
    flowers = list(csv.DictReader(io.StringIO(shipped.joinpath("flowers.csv").read_text(encoding="utf-8"))))
    assert len(flowers) == 150 and {r["species"] for r in flowers} == {"setosa", "versicolor", "virginica"}
    assert any("" in r.values() for r in flowers)  # a few gaps on purpose, to be found
    sales = list(csv.DictReader(io.StringIO(shipped.joinpath("daily_sales.csv").read_text(encoding="utf-8"))))
    assert len(sales) == 731 * 3 and sales[0]["date"] == "2023-01-01" and sales[-1]["date"] == "2024-12-31"
    assert "CC0" in shipped.joinpath("README.md").read_text(encoding="utf-8")
