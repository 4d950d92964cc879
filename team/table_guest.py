"""Reading the user's tables *inside* the sandbox (pandas is there; the host needs nothing).

Like team/sandbox/guest.py, this is a real module whose source the host sends to a
sandbox kernel (`team.tables`), so it imports nothing of the app and only the
standard library at module level. Both entry points print one JSON line, bounded:
`describe` (what the Planner is told about uploaded data) and `preview` (the first
rows, the row count, sheets and, on demand, column statistics for the app).
"""

from __future__ import annotations

import json
import os

KINDS = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
    ".xlsx": "excel", ".xlsm": "excel", ".xls": "excel", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
}  # fmt: skip
CELL = 120  # characters of one cell shown at most


def kind_of(path: str) -> str:
    return KINDS.get(os.path.splitext(path)[1].lower(), "")


def _separator(path: str) -> str:
    """, ; tab or |, sniffed from the first 64 KB."""
    import csv

    with open(path, newline="", errors="replace") as fh:
        head = fh.read(65536)
    try:
        return csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read(path: str, nrows: int | None = None, sheet: object = 0):
    """A DataFrame of the file (its first `nrows` rows where the format allows)."""
    import pandas as pd

    kind = kind_of(path)
    if kind in ("csv", "tsv"):
        sep = "\t" if kind == "tsv" else _separator(path)
        df = pd.read_csv(path, sep=sep, nrows=nrows)
        if len(df.columns) and all(_number(str(c)) for c in df.columns):  # no header row
            df = pd.read_csv(path, sep=sep, nrows=nrows, header=None)
            df.columns = [f"column_{i + 1}" for i in range(len(df.columns))]
        return df
    if kind == "parquet":
        df = pd.read_parquet(path)
        return df.head(nrows) if nrows else df
    if kind == "excel":
        return pd.read_excel(path, sheet_name=sheet, nrows=nrows)
    if kind == "jsonl":
        return pd.read_json(path, lines=True, nrows=nrows)
    if kind == "json":
        df = pd.read_json(path)
        return df.head(nrows) if nrows else df
    raise ValueError(f"{os.path.basename(path)} is not a table this can read")


def count_rows(path: str) -> int | None:
    """Data rows without reading the whole table into memory (None when unknown)."""
    kind = kind_of(path)
    if kind in ("csv", "tsv", "jsonl"):
        lines = 0
        last = b"\n"
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 22):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        lines += last != b"\n"
        return max(0, lines - (kind != "jsonl"))
    if kind == "parquet":
        try:
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        except Exception:
            return None
    return None


def _sheets(path: str) -> list[str]:
    if kind_of(path) != "excel":
        return []
    import pandas as pd

    return [str(s) for s in pd.ExcelFile(path).sheet_names][:50]


def describe(paths: list[str], read_cap: int, rows: int) -> None:
    """Per file: rows × columns, columns and dtypes, missing counts, a few rows (or name/size)."""
    out = []
    for path in paths:
        item: dict = {"path": path}
        full = path if os.path.isabs(path) else os.path.join("/home/user", path)
        try:
            size = os.path.getsize(full)
            item["size"] = size
            if not kind_of(full):
                item["kind"] = "file"
            else:
                partial = size > read_cap
                df = read(full, nrows=1_000_000 if partial else None)
                item.update(
                    kind=kind_of(full), rows=int(len(df)), columns=[str(c) for c in df.columns][:60],
                    dtypes=[str(t) for t in df.dtypes][:60], missing=[int(n) for n in df.isna().sum()][:60],
                    partial=partial, sample=[[str(v)[:CELL] for v in r] for r in df.head(rows).values.tolist()],
                    sheets=_sheets(full),
                )
        except Exception as exc:
            item["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        out.append(item)
    print(json.dumps(out))


def preview(path: str, rows: int, sheet: object, stats: bool) -> None:
    """The first `rows` rows, the row count, the sheets and (if asked) column statistics."""
    full = path if os.path.isabs(path) else os.path.join("/home/user", path)
    try:
        df = read(full, nrows=rows, sheet=sheet)
        result: dict = {
            "columns": [str(c) for c in df.columns][:200],
            "dtypes": [str(t) for t in df.dtypes][:200],
            "rows": [[("" if v is None else str(v))[:CELL] for v in r[:200]] for r in df.head(rows).values.tolist()],
            "total": count_rows(full),
            "sheets": _sheets(full),
            "sheet": sheet if isinstance(sheet, str) else next(iter(_sheets(full)), None),
        }
        if stats:
            full_df = read(full, sheet=sheet) if os.path.getsize(full) <= 500 << 20 else df
            described = full_df.describe(include="all").T
            result["stats"] = {
                "columns": ["column", *[str(c) for c in described.columns]],
                "rows": [[str(i)[:CELL], *[("" if str(v) == "nan" else str(v)[:CELL]) for v in r]]
                         for i, r in zip(described.index, described.values.tolist(), strict=False)][:200],
                "over": len(full_df),
            }
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    print(json.dumps(result))
