"""LocalSandbox behaves like E2B's AsyncSandbox: cells, output, files, timeouts, death."""

from __future__ import annotations

import ast
import asyncio
import base64
import io
import json
import os
import time
from pathlib import Path

import pytest
import pytest_asyncio
from e2b.exceptions import FileNotFoundException, InvalidArgumentException, TimeoutException
from e2b.sandbox.filesystem.filesystem import EntryInfo, FileType
from e2b_code_interpreter.models import Execution, OutputMessage

from team.sandbox import Sandbox
from team.sandbox.local import LocalSandbox
from team.sandbox.paths import PathOutsideSandbox, sandbox_relpath

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _exists(path: str) -> bool:
    return os.path.exists(path)


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

SEED_CODE = """
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import json
data = np.random.normal(loc=0, scale=1, size=100)
np.savetxt("data_points.csv", data, delimiter=",")
mean = np.mean(data); std = np.std(data); max_val = np.max(data); min_val = np.min(data)
stats = {"mean": mean, "std": std, "max": max_val, "min": min_val}
with open('data_stats.json', 'w') as f:
    json.dump(stats, f)
plt.hist(data, bins=10, edgecolor='black'); plt.title('Data Distribution'); plt.xlabel('Value'); plt.ylabel('Frequency')
plt.savefig('data_histogram.png'); plt.close()
z_scores = np.abs((data - mean) / std)
outlier_indices = np.where(z_scores > 3)
outliers = data[outlier_indices]
outlier_analysis = {"outliers": outliers.tolist(), "count": len(outliers)}
with open('outlier_analysis.json', 'w') as f:
    json.dump(outlier_analysis, f)
"""


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sbx():
    sandbox = await LocalSandbox.create()
    yield sandbox
    await sandbox.kill()


async def test_surface(sbx: LocalSandbox) -> None:
    assert isinstance(sbx, Sandbox)
    assert sbx.kind == "local"
    assert sbx.isolation in ("bwrap", "none")
    assert sbx.sandbox_id
    assert await sbx.is_running()


async def test_state_result_and_count(sbx: LocalSandbox) -> None:
    first = await sbx.run_code("counter_value = 41")
    assert isinstance(first, Execution) and first.error is None
    ex = await sbx.run_code("counter_value + 1")
    assert ex.text == "42"
    assert ex.results[0].is_main_result
    assert ex.execution_count == first.execution_count + 1
    ex = await sbx.run_code("'hello'")
    assert ex.text == "hello"  # quotes stripped as E2B's server does


async def test_stdout_streams_before_cell_ends(sbx: LocalSandbox) -> None:
    seen: list[tuple[float, OutputMessage]] = []
    errs: list[OutputMessage] = []

    async def on_err(msg: OutputMessage) -> None:  # async callbacks work too
        errs.append(msg)

    ex = await sbx.run_code(
        "import sys, time\nprint('early', flush=True)\ntime.sleep(0.5)\n"
        "print('oops', file=sys.stderr, flush=True)\nprint('late')",
        on_stdout=lambda m: seen.append((time.monotonic(), m)),
        on_stderr=on_err,
    )
    end = time.monotonic()
    assert seen[0][1].line == "early\n" and not seen[0][1].error
    assert end - seen[0][0] > 0.3  # arrived while the cell was still sleeping
    assert isinstance(seen[0][1].timestamp, int)
    assert errs and errs[0].error and "oops" in errs[0].line
    assert "".join(ex.logs.stdout) == "early\nlate\n"
    assert "".join(ex.logs.stderr) == "oops\n"


async def test_error(sbx: LocalSandbox) -> None:
    errors = []
    ex = await sbx.run_code(
        "def f():\n    raise ValueError('bad value')\nf()", on_error=errors.append
    )
    assert ex.error is not None
    assert ex.error.name == "ValueError"
    assert ex.error.value == "bad value"
    assert "bad value" in ex.error.traceback and "f()" in ex.error.traceback
    assert errors == [ex.error]


async def test_plots_and_dataframe(sbx: LocalSandbox) -> None:
    results = []
    ex = await sbx.run_code(
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [3, 1, 2]); plt.title('T'); plt.show()",
        on_result=results.append,
    )
    assert ex.error is None
    assert len(ex.results) == 1 and results == ex.results
    res = ex.results[0]
    assert not res.is_main_result
    assert base64.b64decode(res.png).startswith(PNG_MAGIC)
    assert res.chart is not None and res.chart.title == "T"

    ex = await sbx.run_code("from IPython.display import display, HTML\ndisplay(HTML('<b>x</b>'))")
    assert ex.results[0].html == "<b>x</b>"

    ex = await sbx.run_code(
        "import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [0.5, float('nan')]})"
    )
    assert ex.results[0].is_main_result
    assert ex.results[0].data == {"a": [1, 2], "b": [0.5, None]}
    assert ex.results[0].html and "<table" in ex.results[0].html


async def test_envs_apply_to_one_call(sbx: LocalSandbox) -> None:
    ex = await sbx.run_code("import os\nos.environ.get('SBTEAM_X')", envs={"SBTEAM_X": "yes"})
    assert ex.text == "yes"
    ex = await sbx.run_code("os.environ.get('SBTEAM_X', 'unset')")
    assert ex.text == "unset"


async def test_timeout_interrupts_and_keeps_state(sbx: LocalSandbox) -> None:
    await sbx.run_code("kept = 'still here'")
    start = time.monotonic()
    with pytest.raises(TimeoutException):
        await sbx.run_code("while True: pass", timeout=1)
    assert time.monotonic() - start < 5
    ex = await sbx.run_code("kept")
    assert ex.text == "still here"


async def test_interrupt(sbx: LocalSandbox) -> None:
    task = asyncio.ensure_future(sbx.run_code("import time\nwhile True: time.sleep(0.01)"))
    await asyncio.sleep(0.3)
    start = time.monotonic()
    await sbx.interrupt()
    ex = await asyncio.wait_for(task, 5)
    assert time.monotonic() - start < 2
    assert ex.error is not None and ex.error.name == "KeyboardInterrupt"
    assert (await sbx.run_code("kept")).text == "still here"


async def test_interrupt_before_cell_starts(sbx: LocalSandbox) -> None:
    # Another call holds the kernel, so the spinning cell is queued when interrupt() comes.
    first = asyncio.ensure_future(sbx.run_code("import time; time.sleep(0.3)"))
    await asyncio.sleep(0.05)
    spin = asyncio.ensure_future(sbx.run_code("while True: pass"))
    await asyncio.sleep(0.05)
    await sbx.interrupt()
    a = await asyncio.wait_for(first, 5)
    b = await asyncio.wait_for(spin, 5)
    assert a.error is not None and a.error.name == "KeyboardInterrupt"
    assert b.error is not None and b.error.name == "KeyboardInterrupt"  # never ran
    assert (await sbx.run_code("1 + 1")).text == "2"  # later calls are not affected
    assert (await sbx.run_code("kept")).text == "still here"


async def test_cancelled_call_leaves_kernel_idle(sbx: LocalSandbox) -> None:
    task = asyncio.ensure_future(sbx.run_code("while True: pass"))
    await asyncio.sleep(0.01)  # cancel before the cell has (surely) started
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    start = time.monotonic()
    ex = await asyncio.wait_for(sbx.run_code("kept"), 5)
    assert ex.text == "still here"
    assert time.monotonic() - start < 3


async def test_concurrent_calls_are_serialized(sbx: LocalSandbox) -> None:
    a, b = await asyncio.gather(
        sbx.run_code("import time; time.sleep(0.2); order = ['a']"),
        sbx.run_code("order.append('b'); order"),
    )
    assert a.error is None and b.text == "['a', 'b']"


async def test_files_roundtrip(sbx: LocalSandbox) -> None:
    await sbx.run_code("open('from_code.txt', 'w').write('hi from code')")
    assert await sbx.files.read("/home/user/from_code.txt") == "hi from code"
    assert await sbx.files.read("from_code.txt") == "hi from code"

    info = await sbx.files.write("sub/dir/from_host.txt", "hi from host")
    assert info.path == "/home/user/sub/dir/from_host.txt" and info.name == "from_host.txt"
    assert info.type == FileType.FILE
    ex = await sbx.run_code("open('/home/user/sub/dir/from_host.txt').read()")
    assert ex.text == "hi from host"

    await sbx.files.write("bin.dat", b"\x00\x01\xff")
    assert await sbx.files.read("bin.dat", format="bytes") == bytearray(b"\x00\x01\xff")
    await sbx.files.write("stream.dat", io.BytesIO(b"abc" * 1000))
    chunks = [c async for c in await sbx.files.read("stream.dat", format="stream")]
    assert b"".join(chunks) == b"abc" * 1000

    entries = await sbx.files.list("/home/user")
    assert all(isinstance(e, EntryInfo) for e in entries)
    names = [e.name for e in entries]
    assert names == sorted(names)
    assert {"from_code.txt", "sub", "bin.dat"} <= set(names)
    assert not any(n.startswith(".") for n in names)  # no runtime/cache folders
    sub = next(e for e in entries if e.name == "sub")
    assert sub.type == FileType.DIR and sub.path == "/home/user/sub"
    deep = await sbx.files.list("/home/user", depth=3)
    assert "/home/user/sub/dir/from_host.txt" in [e.path for e in deep]
    assert next(e for e in deep if e.name == "bin.dat").size == 3


async def test_files_missing_and_dirs(sbx: LocalSandbox) -> None:
    with pytest.raises(FileNotFoundException):
        await sbx.files.read("no_such_file.txt")
    assert not await sbx.files.exists("no_such_file.txt")
    await sbx.files.remove("no_such_file.txt")  # quiet
    assert await sbx.files.make_dir("newdir/inner") is True
    assert await sbx.files.make_dir("/home/user/newdir/inner") is False
    assert await sbx.files.exists("newdir/inner")
    await sbx.files.remove("newdir")
    assert not await sbx.files.exists("newdir")


@pytest.mark.parametrize(
    "path", ["../../etc/passwd", "/etc/passwd", "/home/user/../../etc/passwd", "/home/userx/a", "/"]
)
async def test_path_confinement(sbx: LocalSandbox, path: str) -> None:
    for call in (
        sbx.files.read(path),
        sbx.files.write(path, "x"),
        sbx.files.list(path),
        sbx.files.exists(path),
        sbx.files.make_dir(path),
        sbx.files.remove(path),
    ):
        with pytest.raises(InvalidArgumentException, match="outside the sandbox"):
            await call
    assert isinstance(PathOutsideSandbox("x"), InvalidArgumentException)


async def test_symlink_escape_refused(sbx: LocalSandbox) -> None:
    await sbx.run_code(
        "import os\nos.symlink('/etc', 'etc_link'); os.symlink('/etc/hostname', 'host_link')"
    )
    with pytest.raises(PathOutsideSandbox):
        await sbx.files.read("etc_link/passwd")
    with pytest.raises(PathOutsideSandbox):
        await sbx.files.read("host_link")
    with pytest.raises(PathOutsideSandbox):
        await sbx.files.write("etc_link/evil", "x")
    await sbx.files.remove("host_link")  # removes the link itself, not its target
    await sbx.files.remove("etc_link")
    assert not await sbx.files.exists("etc_link")


async def test_relpath_rules() -> None:
    assert sandbox_relpath("x/y") == "x/y"
    assert sandbox_relpath("/home/user/x/../y") == "y"
    assert sandbox_relpath("/home/user") == ""
    assert sandbox_relpath("./") == ""


async def test_seed_example(sbx: LocalSandbox) -> None:
    ex = await sbx.run_code(SEED_CODE)
    assert ex.error is None, ex.error
    csv = await sbx.files.read("data_points.csv")
    assert len(csv.strip().splitlines()) == 100
    stats = json.loads(await sbx.files.read("/home/user/data_stats.json"))
    assert set(stats) == {"mean", "std", "max", "min"}
    png = await sbx.files.read("data_histogram.png", format="bytes")
    assert bytes(png).startswith(PNG_MAGIC)
    outliers = json.loads(await sbx.files.read("outlier_analysis.json"))
    assert set(outliers) == {"outliers", "count"}


async def test_install_package(sbx: LocalSandbox) -> None:
    for bad in ("numpy; rm -rf /", "-e .", "https://evil/x.whl", "", "../x"):
        ok, out = await sbx.install_package(bad)
        assert not ok and out.startswith("refused")
    ok, out = await sbx.install_package("packaging")
    assert ok and "already installed" in out
    ok, out = await sbx.install_package("numpy")
    assert ok and "already installed" in out


async def test_kernel_death_and_recovery(sbx: LocalSandbox) -> None:
    await sbx.run_code("doomed = 1")
    start = time.monotonic()
    errors = []
    ex = await sbx.run_code("import os\nos._exit(1)", on_error=errors.append)
    assert time.monotonic() - start < 10
    assert ex.error is not None and ex.error.name == "KernelDied"
    assert errors == [ex.error]
    assert await sbx.is_running()  # already restarted
    ex = await sbx.run_code("doomed")
    assert ex.error is not None and ex.error.name == "NameError"
    ex = await sbx.run_code("1 + 1")
    assert ex.text == "2"
    # files survive a kernel death
    assert await sbx.files.exists("data_points.csv")


async def test_death_between_calls() -> None:
    async with await LocalSandbox.create() as box:
        await box.run_code("a = 1")
        proc = box._contexts["default"].kernel.process.proc
        proc.kill()  # e.g. the OOM killer while idle
        proc.wait()
        notices = []
        ex = await box.run_code("2 + 2", on_stderr=notices.append)
        assert ex.text == "4"
        assert notices and "fresh kernel" in notices[0].line
    assert not await box.is_running()


async def test_kill_during_run_code() -> None:
    box = await LocalSandbox.create()
    task = asyncio.ensure_future(box.run_code("import time; time.sleep(30)"))
    await asyncio.sleep(0.3)
    start = time.monotonic()
    await box.kill()
    with pytest.raises(TimeoutException, match="killed"):
        await asyncio.wait_for(task, 5)
    assert time.monotonic() - start < 3
    await box.kill()  # harmless
    assert not _exists(box.root)


def _tiny_wheel(folder: str, name: str = "sbteam_probe_pkg", version: str = "0.1") -> str:
    """A minimal pure-python wheel built by hand (no network, no build backend)."""
    import hashlib
    import zipfile

    def digest(data: bytes) -> str:
        return (
            "sha256="
            + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        )

    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": b"ANSWER = 42\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{p},{digest(d)},{len(d)}\n" for p, d in files.items()) + f"{dist}/RECORD,,\n"
    files[f"{dist}/RECORD"] = record.encode()
    path = os.path.join(folder, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as zf:
        for p, d in files.items():
            zf.writestr(p, d)
    return path


async def test_install_local_wheel(tmp_path, monkeypatch) -> None:
    """pip runs inside the sandbox: its index settings come from the sandbox's envs, not the host's."""
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/host-setting-must-not-reach-pip")
    wheel = _tiny_wheel(str(tmp_path))
    envs = {"PIP_FIND_LINKS": "/home/user/wheels", "PIP_NO_INDEX": "1"}
    async with await LocalSandbox.create(envs=envs) as box:
        await box.files.write(f"wheels/{os.path.basename(wheel)}", await asyncio.to_thread(Path(wheel).read_bytes))
        ok, out = await box.install_package("sbteam-probe-pkg")
        assert ok, out
        ex = await box.run_code("import sbteam_probe_pkg\nsbteam_probe_pkg.ANSWER")
        assert ex.text == "42", ex.error
        ok, out = await box.install_package("sbteam-probe-pkg")
        assert ok and "already installed" in out
        installed = await box.files.list("/home/user/.local", depth=4)
        assert any(e.name == "sbteam_probe_pkg.py" for e in installed)


async def test_unisolated_with_given_root(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sentinel-unisolated")
    root = str(tmp_path / "work")
    async with await LocalSandbox.create(isolate=False, root=root) as box:
        assert box.isolation == "none"
        ex = await box.run_code(
            "import os\n(os.getcwd(), os.environ['HOME'], 'OPENAI_API_KEY' in os.environ)"
        )
        assert ast.literal_eval(ex.text) == (root, root, False)
        await box.run_code("open('made.txt', 'w').write('x')")
        assert [e.path for e in await box.files.list("/home/user")] == ["/home/user/made.txt"]
    assert _exists(f"{root}/made.txt")  # a caller's root is kept on kill


@pytest.mark.parametrize("isolate", [None, False], ids=["default", "unisolated"])
async def test_a_long_tmpdir_still_reaches_the_kernel(tmp_path, monkeypatch, isolate) -> None:
    """A unix socket's path is at most 107 bytes. Under a long TMPDIR (a CI runner's, a
    test worker's) the kernel's sockets were past that and the sandbox never started."""
    import tempfile

    deep = tmp_path / ("long-temporary-folder-" * 3) / "and-then-some-more-of-it"
    deep.mkdir(parents=True)
    monkeypatch.setenv("TMPDIR", str(deep))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    async with await LocalSandbox.create(isolate=isolate) as box:
        assert box._top.startswith(str(deep)) and len(os.path.join(box._top, "run-1", "k-50000")) > 107
        ex = await box.run_code("6 * 7")
        assert ex.text == "42"


async def test_kill_closes_the_kernels_sockets_on_the_loops_thread(monkeypatch) -> None:
    """zmq sockets are not thread-safe: `kill()` closed them in a worker thread while the
    loop could be reading one (a cancelled cell settling in the background), and libzmq
    aborted the whole process (seen twice in the suite: `Fatal Python error: Aborted` in
    `recv_multipart`). They are closed on the loop's thread, the one that reads them."""
    import threading

    from team.sandbox import jupyter

    closed_on: list[int] = []
    stop = jupyter.KernelConnection.stop

    def recording_stop(self) -> None:
        closed_on.append(threading.get_ident())
        stop(self)

    monkeypatch.setattr(jupyter.KernelConnection, "stop", recording_stop)
    box = await LocalSandbox.create()
    cell = asyncio.ensure_future(box.run_code("import time\nwhile True:\n    print('x')\n    time.sleep(0.001)"))
    await asyncio.sleep(0.5)
    cell.cancel()  # settled in the background, reading the kernel's output
    await asyncio.gather(cell, return_exceptions=True)
    await box.kill()
    assert closed_on and set(closed_on) == {threading.get_ident()}
