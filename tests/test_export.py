"""Exports of a recorded run: the notebook is complete (cell ids, every write_file /
install_package / run_code / generate_chart step, the outputs) and re-runs top to
bottom in a fresh kernel in an empty folder; the Markdown lists every step too."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from team import events as ev
from team.demo import FILES
from team.export import export_run, relative_code, sandbox_relative
from team.prompts import example_task
from team.run import RunController
from team.sandbox.launcher import sandbox_env
from team.scripted import Call, Say, ScriptedChatCompletionClient, Turn
from tests.test_run import collect, finished

HELPERS = '''import os

DATA = "/home/user/data"


def save_numbers(name, values):
    os.makedirs(DATA, exist_ok=True)
    path = os.path.join(DATA, name)
    with open(path, "w") as fh:
        fh.write("x,y\\n")
        for i, v in enumerate(values):
            fh.write(f"{i},{v}\\n")
    return path
'''

USE_HELPERS = """import sys
sys.path.insert(0, "/home/user/src")
from helpers import save_numbers
path = save_numbers("numbers.csv", [v * v for v in range(10)])
print("saved", path)
len(open(path).read().splitlines())"""

DANGEROUS = "import shutil\nshutil.rmtree('/home/user')  # the user says no"

CODER_STEPS = [
    Call("write_file", {"file_path": "/home/user/src/helpers.py", "content": HELPERS}),
    Call("write_file", {"file_path": "notes/read me.txt", "content": "written by the agents\n"}),
    Call("install_package", {"package_name": "numpy"}),  # already there: no pip, no network
    Call("run_code", {"code": "print('before the error')\n1 / 0"}),
    Call("run_code", {"code": DANGEROUS}),
    Call("run_code", {"code": USE_HELPERS}),
    Call("generate_chart", {"data_file": "/home/user/data/numbers.csv", "chart_type": "line"}),
    Call("read_file", {"file_path": "data/numbers.csv"}),
    Call("list_files", {"path": "/"}),
]


def every_step(turn: Turn):
    if turn.agent == "Planner":
        return Call("transfer_to_codeagent", thought="Over to you.") if turn.index == 0 else Say("All done. TERMINATE")
    if turn.agent == "CodeAgent" and turn.index < len(CODER_STEPS):
        return CODER_STEPS[turn.index]
    return Call("transfer_to_planner", thought="Finished.")


async def approve_all_but_rmtree(agent, call_id, name, args):
    if "rmtree" in str(args.get("code", "")):
        return ("reject", "not on my machine")
    return ("approve", None)


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Read and validate as Jupyter does; any nbformat warning (missing cell ids…) fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    ids = [cell["id"] for cell in nb.cells]
    assert all(ids) and len(set(ids)) == len(ids)
    assert (nb.nbformat, nb.nbformat_minor) >= (4, 5)
    return nb


def execute_in_fresh_kernel(nb: nbformat.NotebookNode, workdir: Path, tmp: Path) -> nbformat.NotebookNode:
    """Run top to bottom in a new python3 kernel started as the local sandbox starts its own
    (same allow-listed environment, inline figures), working folder `workdir`."""
    env = sandbox_env(str(workdir), tmp=str(tmp / "kernel-tmp"))
    env["PIP_NO_INDEX"] = "1"  # %pip never reaches the network
    env["HOME"] = str(tmp / "kernel-home")  # tools' dotfiles (pip, rustup) stay out of the folder checked
    client = NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(workdir)}}
    )
    client.execute(env=env)
    return nb


def code_sources(nb) -> list[str]:
    return ["".join(cell.source) for cell in nb.cells if cell.cell_type == "code"]


def errors_of(nb) -> list[str]:
    return [o.ename for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]


# -- the DEMO ---------------------------------------------------------------------------------------


async def test_demo_notebook_reruns_in_a_fresh_kernel_and_recreates_the_files(settings, tmp_path):
    controller = RunController(settings, demo_pace=0)
    try:
        run_id = controller.start(example_task("en"))
        events = await collect(controller)
    finally:
        await controller.close()
    assert finished(events)[0].reason == "terminate"
    path = export_run(settings.runs_dir, run_id, "ipynb", tmp_path / "export" / "demo.ipynb")
    nb = read_notebook(path)
    sources = code_sources(nb)
    # the script is written by a %%writefile cell before the cell that runs it
    write = next(i for i, s in enumerate(sources) if s.startswith("%%writefile data_analysis.py\n"))
    run = next(i for i, s in enumerate(sources) if 'exec(open("data_analysis.py"' in s)
    assert write < run and "np.random.normal" in sources[write]
    recorded = [c for c in nb.cells if c.cell_type == "code"]
    assert [o.output_type for o in recorded[write].outputs] == ["stream"]
    assert {"stream", "display_data"} <= {o.output_type for o in recorded[run].outputs}
    assert [c.execution_count for c in recorded] == list(range(1, len(recorded) + 1))
    markdown = "\n".join("".join(c.source) for c in nb.cells if c.cell_type == "markdown")
    assert "**AnalystAgent:**" in markdown and "read_file(file_path='data_stats.json')" in markdown
    assert "Finished: TERMINATE" in markdown

    workdir = tmp_path / "fresh"
    workdir.mkdir()
    execute_in_fresh_kernel(nb, workdir, tmp_path)
    assert errors_of(nb) == []
    assert {"data_analysis.py", *FILES} <= {p.name for p in workdir.iterdir()}
    assert len((workdir / "data_points.csv").read_text().splitlines()) == 100
    assert set(json.loads((workdir / "data_stats.json").read_text())) == {"mean", "std", "max", "min"}
    assert (workdir / "data_histogram.png").read_bytes().startswith(b"\x89PNG")
    assert "count" in json.loads((workdir / "outlier_analysis.json").read_text())
    rerun = "".join(o.text for o in recorded[run].outputs if o.output_type == "stream")
    assert "data points: 100" in rerun


# -- every kind of step --------------------------------------------------------------------------


@pytest.fixture
async def every_step_run(settings):
    settings = settings.with_(max_messages=80)
    controller = RunController(settings, model_factory=lambda: ScriptedChatCompletionClient(every_step))
    controller.approve = True
    controller.approver = approve_all_but_rmtree
    try:
        run_id = controller.start("use every tool once")
        events = await collect(controller)
    finally:
        await controller.close()
    assert finished(events)[0].reason == "terminate"
    results = [e for e in events if isinstance(e, ev.ToolResult)]
    assert len(results) == len(CODER_STEPS)
    return settings, run_id


async def test_notebook_has_every_step_and_reruns_in_any_folder(every_step_run, tmp_path):
    settings, run_id = every_step_run
    nb = read_notebook(export_run(settings.runs_dir, run_id, "ipynb", tmp_path / "nb.ipynb"))
    sources = code_sources(nb)
    assert not any("/home/user" in s for s in sources)  # relative: runs in any folder
    writes = [s for s in sources if s.startswith("%%writefile")]
    assert [w.splitlines()[0] for w in writes] == ["%%writefile src/helpers.py", "%%writefile 'notes/read me.txt'"]
    assert 'DATA = "data"' in writes[0]
    # each folder is made before the first file written into it
    for folder, write in (("src", writes[0]), ("notes", writes[1])):
        mkdir = sources.index(f"import os\nos.makedirs({folder!r}, exist_ok=True)")
        assert mkdir < sources.index(write)
    assert "%pip install numpy" in sources
    cells = [c for c in nb.cells if c.cell_type == "code"]
    failing = next(c for c in cells if "1 / 0" in "".join(c.source))
    assert failing.metadata["tags"] == ["raises-exception"]
    assert [o.output_type for o in failing.outputs] == ["stream", "error"]
    assert failing.outputs[1].ename == "ZeroDivisionError"
    rejected = next(c for c in cells if "rmtree" in "".join(c.source))
    assert rejected.execution_count is None
    assert all(line.startswith("#") for line in "".join(rejected.source).splitlines())
    assert "rejected by the user (not on my machine)" in "".join(rejected.source)
    helpers = next(c for c in cells if "from helpers import" in "".join(c.source))
    value = next(o for o in helpers.outputs if o.output_type == "execute_result")
    assert "".join(value.data["text/plain"]) == "11" and value.execution_count == helpers.execution_count
    chart = next(c for c in cells if "".join(c.source).startswith("# generate_chart("))
    assert '"src": "data/numbers.csv"' in "".join(chart.source)
    assert any(o.output_type == "display_data" and "image/png" in o.data for o in chart.outputs)
    markdown = "\n".join("".join(c.source) for c in nb.cells if c.cell_type == "markdown")
    assert "read_file(file_path='data/numbers.csv')" in markdown and "list_files(path='/')" in markdown
    assert [c.execution_count for c in cells if c.execution_count is not None] == list(
        range(1, len([c for c in cells if c.execution_count is not None]) + 1)
    )

    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    execute_in_fresh_kernel(nb, workdir, tmp_path)
    assert errors_of(nb) == ["ZeroDivisionError"]  # the cell that raised in the run, and only it
    assert (workdir / "src" / "helpers.py").read_text() == HELPERS.replace("/home/user/data", "data")
    assert (workdir / "notes" / "read me.txt").read_text() == "written by the agents\n"
    assert (workdir / "data" / "numbers.csv").read_text().splitlines()[-1] == "9,81"
    assert (workdir / "data" / "numbers_line.png").read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in workdir.iterdir()) == ["data", "notes", "src"]  # nothing was removed


async def test_markdown_lists_every_step(every_step_run, tmp_path):
    settings, run_id = every_step_run
    text = export_run(settings.runs_dir, run_id, "md", tmp_path / "run.md").read_text(encoding="utf-8")
    steps = text.split("## Steps\n", 1)[1].split("## Transcript", 1)[0].strip().splitlines()
    assert len(steps) == len(CODER_STEPS)
    assert steps[0] == "1. ✅ CodeAgent · `write_file` `/home/user/src/helpers.py`"
    assert "`install_package` `numpy`" in steps[2]
    assert steps[3].startswith("4. ❌ CodeAgent · `run_code` `print('before the error')`") and "(failed)" in steps[3]
    assert steps[4].startswith("5. ✋") and "(rejected by the user)" in steps[4]
    assert "`generate_chart` `/home/user/data/numbers.csv` (line)" in steps[6]
    assert steps[-1] == "9. ✅ CodeAgent · `list_files` `/`"
    assert "✋ *rejected by the user: not on my machine*" in text
    for name in ("write_file", "install_package", "run_code", "generate_chart", "read_file", "list_files"):
        assert f"**🔧 {name}**(" in text


# -- steps that did nothing in the run -----------------------------------------------------------


def write_record(runs_dir: Path, run_id: str, events: list[ev.Event]) -> None:
    folder = runs_dir / run_id
    folder.mkdir(parents=True)
    with (folder / "events.jsonl").open("w", encoding="utf-8") as fh:
        for seq, event in enumerate(events):
            data = event.to_dict()
            data.update(run_id=run_id, seq=seq)
            fh.write(json.dumps(data, ensure_ascii=False) + "\n")


def test_stopped_failed_and_edited_steps_are_kept_but_not_rerun(tmp_path):
    runs = tmp_path / "runs"
    rid = "20250101-120000-abcdef"
    call = lambda cid, name, **args: ev.ToolCall(agent="CodeAgent", call_id=cid, name=name, arguments=args)  # noqa: E731
    result = lambda cid, name, content, error=False: ev.ToolResult(  # noqa: E731
        agent="CodeAgent", call_id=cid, name=name, content=content, is_error=error
    )
    write_record(runs, rid, [
        ev.RunStarted(task="odd steps", model="m", demo=False, sandbox="local", isolation="bwrap",
                      max_messages=30, timeout=600),
        ev.Message(agent="user", text="odd steps"),
        call("a", "install_package", package_name="no-such-package-xyz"),
        result("a", "install_package", "❌ could not install 'no-such-package-xyz': not found", True),
        call("b", "run_code", code="while True:\n    print('tick')"),
        ev.SandboxOutput(stream="stdout", text="tick\ntick\n", call_id="b"),
        result("b", "run_code", "⏹ cancelled: the run was stopped while this tool was running", True),
        call("c", "write_file", file_path="/home/user/odd $name {x}.txt", content="odd\n"),
        result("c", "write_file", "✅ file written: odd $name {x}.txt (4 B)"),
        call("d", "run_code", code="x = 1"),
        ev.ApprovalDecided(call_id="d", decision="edit"),
        result("d", "run_code", "✅ code ran successfully\n(note: the user edited the arguments before they were used)"),
        call("f", "write_file", file_path="edited.txt", content="as proposed\n"),
        ev.ApprovalDecided(call_id="f", decision="edit"),
        result("f", "write_file", "✅ file written: edited.txt (12 B)"),
        call("e", "run_code", code="print('the app died here')"),
        ev.Notice(level="warning", text="the record ends here"),
    ])
    nb = read_notebook(export_run(runs, rid, "ipynb", tmp_path / "odd.ipynb"))
    cells = [c for c in nb.cells if c.cell_type == "code"]
    sources = ["".join(c.source) for c in cells]
    assert sources[0].startswith("# ❌ could not install") and "\n# %pip install no-such-package-xyz" in sources[0]
    assert sources[1].startswith("# ⏹ stopped during the run") and "# while True:" in sources[1]
    assert "".join(cells[1].outputs[0].text) == "tick\ntick\n"  # what it printed before the stop
    assert "Path('odd $name {x}.txt').write_text('odd\\n'" in sources[2]  # no %%writefile: IPython expands $ and {}
    assert sources[3].startswith("# ✎ the user edited this step") and sources[3].endswith("x = 1")
    assert sources[4] == "%%writefile edited.txt\nas proposed\n"  # the magic stays on the first line
    assert sources[5].startswith("# ⏹ never finished in the run")
    assert [c.execution_count for c in cells] == [None, None, 1, 2, 3, None]
    markdown = "\n".join("".join(c.source) for c in nb.cells if c.cell_type == "markdown")
    assert "the record ends here" in markdown and "write_file below: the user edited this step" in markdown

    workdir = tmp_path / "rerun"
    workdir.mkdir()
    execute_in_fresh_kernel(nb, workdir, tmp_path)
    assert errors_of(nb) == []
    assert (workdir / "odd $name {x}.txt").read_text() == "odd\n"
    assert (workdir / "edited.txt").read_text() == "as proposed\n"


def test_paths_under_the_sandbox_home_become_relative():
    assert sandbox_relative("/home/user/a/b.csv") == "a/b.csv"
    assert sandbox_relative("a/../b.csv") == "b.csv"
    assert sandbox_relative("/home/user") == "." and sandbox_relative("/tmp/x") == "/tmp/x"
    code = (
        "open('/home/user/data/x.csv'); os.listdir('/home/user'); p = '/home/user/' + name\n"
        "os.path.join(\"/home/user\", 'y'); keep = '/home/username/z'; other = '/srv/home/user/w'"
    )
    assert relative_code(code) == (
        "open('data/x.csv'); os.listdir('.'); p = './' + name\n"
        "os.path.join(\".\", 'y'); keep = '/home/username/z'; other = '/srv/home/user/w'"
    )
