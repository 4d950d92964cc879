"""Export a recorded run as Markdown or as a Jupyter notebook.

Both are built from the run record alone (events.jsonl + files/), so any past
run can be exported, including one whose app crashed, and both list every
step the agents took, in order.

The notebook re-runs top to bottom in a fresh kernel, in any folder:

- every `write_file` is a `%%writefile` cell (after a cell that makes its
  folder, if it has one), every `install_package` a `%pip install` cell,
  every `run_code` its code and every `generate_chart` the code the tool ran;
- paths under /home/user (the sandbox's working folder) are made relative;
- a `run_code` that raised in the run is tagged `raises-exception`, so
  nbclient / `jupyter nbconvert --execute` go on past it as the run did;
- steps that did nothing in the run (rejected by the user, failed before
  acting, stopped half-way) stay visible but commented out;
- the agents' messages, handoffs, reads and listings are Markdown cells.

Cells carry ids (nbformat 4.5) and the outputs recorded in the run: stdout,
stderr, the value of the last expression, errors and the pictures. It is
plain nbformat JSON, written without the nbformat package.

The package: `steps` turns the record's events into the steps both formats list,
`markdown` and `notebook` write one format each; `export_run` picks one.
"""

from __future__ import annotations

from pathlib import Path

from ..events import json_text
from ..records import run_dir as record_dir
from .markdown import to_markdown
from .notebook import to_notebook
from .steps import FORMATS, relative_code, sandbox_relative

__all__ = ["FORMATS", "export_run", "relative_code", "sandbox_relative", "to_markdown", "to_notebook"]

def export_run(runs_dir: Path, run_id: str, fmt: str, out_path: Path | None = None) -> Path:
    """Write the export; default path: the run's folder, `transcript.md` / `notebook.ipynb`."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be 'md' or 'ipynb' (got {fmt!r})")
    run_dir = record_dir(runs_dir, run_id)
    if not (run_dir / "events.jsonl").is_file():
        raise FileNotFoundError(f"no run {run_id!r} in {runs_dir}")
    target = Path(out_path) if out_path else run_dir / ("transcript.md" if fmt == "md" else "notebook.ipynb")
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "md":
        target.write_text(to_markdown(runs_dir, run_id, target), encoding="utf-8")
    else:
        # json_text: a file name that is not UTF-8 is written escaped (and read back the same)
        target.write_text(json_text(to_notebook(runs_dir, run_id), indent=1), encoding="utf-8")
    return target

