"""A second kernel-based backend, written the way a third sandbox (Docker, SSH, …) would be.

`PlainKernelSandbox` is everything such a backend has to say: how a kernel
process starts (here a plain, unisolated `ipykernel` subprocess on tcp ports it
picks itself and writes to its connection file) and where its files live. The
Jupyter protocol (`team.sandbox.jupyter`) and E2B's `run_code` semantics
(`team.sandbox.kernel.KernelBackend`) are reused as they are, with no line of
protocol code here; the tests drive it through the `Sandbox` API the tools and
the session use.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from e2b_code_interpreter.models import Execution, OutputMessage

from team.sandbox import jupyter, launcher
from team.sandbox.base import Sandbox, SandboxError
from team.sandbox.files import LocalFiles
from team.sandbox.kernel import CodeContext, KernelBackend
from team.sandbox.safefs import SandboxFS
from team.session import CodeSession

pytestmark = pytest.mark.asyncio(loop_scope="module")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class PlainProcess:
    """`jupyter.KernelProcess` for a subprocess whose output goes to a log file."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc, self.log = proc, log

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        launcher.kill_process(self.proc)

    def log_tail(self) -> str:
        try:
            return self.log.read_bytes()[-4096:].decode("utf-8", "replace").strip()
        except OSError:
            return ""


class PlainKernelSandbox(KernelBackend):
    """Kernels as plain subprocesses of this test, in one host folder (no isolation)."""

    kind = "plain"
    isolation = "none"

    def __init__(self, root: str) -> None:
        super().__init__()
        self.root = root
        self._fs = SandboxFS(root)
        self.files = LocalFiles(self._fs)
        self._kernels = 0

    @classmethod
    async def create(cls, root: str) -> PlainKernelSandbox:
        sbx = cls(root)
        ctx = sbx._contexts["default"]
        async with ctx.lock:
            await sbx._start_kernel(ctx)
        return sbx

    async def _launch(self, ctx: CodeContext) -> jupyter.Kernel:
        self._kernels += 1
        runtime = Path(self.root, ".kernels")
        runtime.mkdir(exist_ok=True)
        conn_file, log = runtime / f"kernel-{self._kernels}.json", runtime / f"kernel-{self._kernels}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("JPY_")}
        env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
        with open(log, "wb") as out:
            proc = subprocess.Popen(  # noqa: ASYNC220 - a test launcher, started once per kernel
                [sys.executable, "-m", "ipykernel_launcher", "-f", str(conn_file), "--HistoryManager.enabled=False"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=self.root, env=env, start_new_session=True,
            )  # fmt: skip
        process = PlainProcess(proc, log)
        # ipykernel binds its sockets, then writes the ports it chose to the file.
        deadline = time.monotonic() + jupyter.START_TIMEOUT
        while True:
            try:
                info = json.loads(conn_file.read_text())
                break
            except (OSError, ValueError):
                if not process.alive() or time.monotonic() > deadline:
                    process.kill()
                    raise SandboxError(f"the kernel failed to start: {process.log_tail()}") from None
                await asyncio.sleep(0.02)
        ctx.generations += 1
        return jupyter.connect(info, process, ctx.generations)

    def _setup_code(self, ctx: CodeContext) -> str:
        return f"import os\nos.chdir({self.root!r})\ndel os\n"

    async def install_package(self, package_name: str, timeout: float = 600) -> tuple[bool, str]:  # noqa: ASYNC109
        return False, "this backend installs nothing"

    async def kill(self) -> None:
        await super().kill()
        self._fs.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sbx():
    with tempfile.TemporaryDirectory(prefix="sbteam-plain-") as root:
        sandbox = await PlainKernelSandbox.create(root)
        yield sandbox
        await sandbox.kill()


async def test_it_is_a_sandbox_and_runs_code(sbx: PlainKernelSandbox) -> None:
    assert isinstance(sbx, Sandbox)
    assert await sbx.is_running()
    first = await sbx.run_code("x = 20")
    ex = await sbx.run_code("x * 2 + 2")
    assert isinstance(ex, Execution) and ex.error is None
    assert ex.text == "42" and ex.execution_count == first.execution_count + 1
    assert await sbx.evaluate("x") == "20"
    ex = await sbx.run_code("import os; print(os.getcwd())")
    assert "".join(ex.logs.stdout).strip() == os.path.realpath(sbx.root)


async def test_output_streams_while_the_cell_runs(sbx: PlainKernelSandbox) -> None:
    seen: list[tuple[float, OutputMessage]] = []
    errors: list[Any] = []
    ex = await sbx.run_code(
        "import sys, time\nprint('early', flush=True)\ntime.sleep(0.6)\nprint('late')\n1/0",
        on_stdout=lambda m: seen.append((time.monotonic(), m)),
        on_error=errors.append,
    )
    assert seen[0][1].line == "early\n"
    assert time.monotonic() - seen[0][0] > 0.4  # it came while the cell was still sleeping
    assert "".join(ex.logs.stdout) == "early\nlate\n"
    assert ex.error is not None and ex.error.name == "ZeroDivisionError" and errors == [ex.error]


async def test_interrupt_stops_while_true_and_keeps_state(sbx: PlainKernelSandbox) -> None:
    await sbx.run_code("kept = 'yes'")
    started = asyncio.Event()
    task = asyncio.create_task(
        sbx.run_code("print('spinning', flush=True)\nwhile True:\n    pass", on_stdout=lambda m: started.set())
    )
    await asyncio.wait_for(started.wait(), 20)
    begun = time.monotonic()
    await sbx.interrupt()
    ex = await asyncio.wait_for(task, 10)
    assert time.monotonic() - begun < 5
    assert ex.error is not None and ex.error.name == "KeyboardInterrupt"
    assert (await sbx.run_code("kept")).text == "yes"  # same kernel, state kept


async def test_image_result(sbx: PlainKernelSandbox) -> None:
    results: list[Any] = []
    ex = await sbx.run_code(
        "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()", on_result=results.append, timeout=120
    )
    assert ex.error is None, ex.error
    pngs = [r.png for r in ex.results if r.png]
    assert pngs and results and results[0].png == pngs[0]
    import base64

    assert base64.b64decode(pngs[0]).startswith(PNG_MAGIC)


async def test_crash_gives_a_fresh_kernel(sbx: PlainKernelSandbox) -> None:
    ex = await sbx.run_code("import os\nos._exit(3)")
    assert ex.error is not None and ex.error.name == "KernelDied"
    assert (await sbx.run_code("1 + 1")).text == "2"


async def test_the_session_uses_it(sbx: PlainKernelSandbox) -> None:
    async def ready() -> PlainKernelSandbox:
        return sbx

    session = CodeSession(factory=ready)
    await session.initialize()
    await session.sandbox.run_code("open('made.txt', 'w').write('hi')")
    assert [entry.path for entry in await session.list_entries()] == ["made.txt"]  # .kernels is hidden
    assert await session.read_head("made.txt", 10) == (b"hi", 2)
    task = asyncio.create_task(session.sandbox.run_code("import time\nwhile True: time.sleep(0.01)"))
    await asyncio.sleep(1)
    await session.interrupt()
    ex = await asyncio.wait_for(task, 10)
    assert ex.error is not None and ex.error.name == "KeyboardInterrupt"


async def start_plain(settings: Any) -> PlainKernelSandbox:
    """The `start` a third kind names in team/sandbox/kinds.py (here: this test's backend)."""
    return await PlainKernelSandbox.create(str(settings.home / "plain-sandbox"))


async def test_a_third_kind_is_one_entry_in_kinds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from team.config import Settings
    from team.sandbox import create_sandbox, kinds

    plain = kinds.SandboxKind(
        "plain", "a plain kernel (test)", isolations={"plain": False}, start=f"{__name__}:start_plain"
    )
    monkeypatch.setattr(kinds, "KINDS", (*kinds.KINDS, plain))
    settings = Settings(home=tmp_path, sandbox="plain")
    (tmp_path / "plain-sandbox").mkdir()
    sandbox = await create_sandbox(settings)
    try:
        assert isinstance(sandbox, PlainKernelSandbox)
        assert (await sandbox.run_code("6 * 7")).text == "42"
        assert kinds.is_unisolated("plain")  # the status bar's red NOT ISOLATED badge follows the entry
    finally:
        await sandbox.kill()
