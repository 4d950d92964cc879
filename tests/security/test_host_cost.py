"""Attack 5: make the host pay. A 400 MB sparse file cost the old app +800 MB of
memory in `read_file` and 401 MB of disk in the end-of-run copy; a cell printing
for 15 s grew it by 1.9 GB (every byte kept). Reads, copies and kept output are
now bounded by what they really hold, whatever the sandbox does.
"""

from __future__ import annotations

import asyncio
import gc
from dataclasses import replace
from pathlib import Path

import psutil
import pytest_asyncio

from team.sandbox.limits import Limits
from team.sandbox.local import LocalSandbox
from team.sandbox.output import KEEP_RESULT_BYTES, KEEP_RESULTS
from team.session import COPY_FILE_MAX, CodeSession
from team.tools import ToolContext, build_tools

from .conftest import value

GROWTH = 50 << 20  # what the host may grow by, in bytes


def _rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def session():
    limits = replace(Limits.default(), file=0)  # a 4 GB sparse file is over the default 2 GB file limit
    box = await LocalSandbox.create(limits=limits)
    sess = CodeSession(factory=lambda: asyncio.sleep(0, box))
    await sess.initialize()
    yield sess
    await sess.close()


async def test_a_4_gb_sparse_file_costs_the_host_almost_nothing(session: CodeSession, tmp_path: Path) -> None:
    box = session.sandbox
    await value(box, "f = open('big.bin', 'wb'); f.truncate(4 << 30); f.write(b'tail'); f.close()")
    tools = build_tools(ToolContext(session))
    before = _rss()
    result = await tools["read_file"].run_json({"file_path": "big.bin"}, None, call_id="r1")  # type: ignore[arg-type]
    head, size = await session.read_head("big.bin", 1 << 20)
    report = await session.download_all(tmp_path / "copy")
    grown = _rss() - before
    assert grown < GROWTH, f"host grew by {grown >> 20} MB"
    assert size == 4 << 30 and len(head) == 1 << 20
    assert "4.0 GB" in result  # the real size is said, not the size of what was read
    assert ("big.bin", f"4.0 GB, over the {COPY_FILE_MAX >> 20}.0 MB per-file copy limit") in report.skipped
    assert not (tmp_path / "copy" / "big.bin").exists()
    used = sum(f.stat().st_blocks * 512 for f in (tmp_path / "copy").rglob("*") if f.is_file())
    assert used < GROWTH


async def test_a_flood_of_output_keeps_a_bounded_head_and_tail(session: CodeSession) -> None:
    box = session.sandbox
    seen = [0]

    def count(msg: object) -> None:
        seen[0] += len(getattr(msg, "line", ""))

    before = _rss()
    flood = "import time\nend = time.time() + 5\nwhile time.time() < end:\n    print('x' * 200)\nprint('THE END')"
    execution = await box.run_code(flood, on_stdout=count, timeout=60)
    kept = sum(len(chunk) for chunk in execution.logs.stdout)
    grown = _rss() - before
    assert execution.error is None
    assert seen[0] > 20 << 20, "the flood should have printed tens of MB"  # every chunk reached the callback
    assert kept < 1 << 20  # the Execution keeps a head and a tail
    assert "characters of output not kept" in "".join(execution.logs.stdout)
    assert "THE END" in execution.logs.stdout[-1]
    assert grown < GROWTH, f"host grew by {grown >> 20} MB"
    assert await value(box, "1 + 1") == "2"


async def test_an_oversized_message_costs_the_kernel_not_the_host(session: CodeSession) -> None:
    """Hostile code can bypass the in-kernel output bound and send one 200 MB message."""
    box = session.sandbox
    code = (
        "import sys\n"
        "ip = get_ipython()\n"
        "ip.kernel.session.send(ip.kernel.iopub_socket, 'stream', {'name': 'stdout', 'text': 'x' * (200 << 20)},\n"
        "                       parent=ip.kernel.get_parent())\n"
        "import time; time.sleep(1)\n"
    )
    before = _rss()
    execution = await box.run_code(code, timeout=60)
    grown = _rss() - before
    assert grown < 4 * GROWTH, f"host grew by {grown >> 20} MB"
    assert execution.error is not None and execution.error.name == "KernelDied"
    assert await value(box, "1 + 1") == "2"  # a fresh kernel


async def test_the_copy_out_stops_before_the_destination_fills(session: CodeSession, tmp_path: Path, monkeypatch) -> None:
    """A nearly full disk: files are skipped with the reason, nothing is half-written."""
    import team.session_transfers as session_module

    await session.sandbox.files.write("results/table.csv", "a,b\n" * 1000)
    monkeypatch.setattr(session_module, "_free_space", lambda _folder: 100 << 20)  # under the margin
    report = await session.download_all(tmp_path / "full")
    assert ("results/table.csv", f"not enough free space in {tmp_path / 'full'} (100.0 MB free)") in report.skipped
    assert report.saved == [] and "not copied" in report.summary()


async def test_one_huge_print_arrives_in_bounded_messages(session: CodeSession) -> None:
    """Well-behaved code never meets the 64 MB message cap: one 100 MB print comes in pieces."""
    box = session.sandbox
    largest = [0]

    def seen(msg: object) -> None:
        largest[0] = max(largest[0], len(getattr(msg, "line", "")))

    execution = await box.run_code("print('x' * (100 << 20))\n'done'", on_stdout=seen, timeout=120)
    assert execution.error is None and execution.text == "done"
    assert 0 < largest[0] <= 1 << 20


async def test_a_flood_of_display_results_keeps_a_bounded_number(session: CodeSession) -> None:
    """Each `display()` is one result on the host: a loop of 1 MB pictures (or of a million
    tiny ones) were all kept in the `Execution`, growing the host with every one. The
    results kept are bounded in number and in bytes; every one still reaches the callback,
    and the Execution says how many were left out."""
    box = session.sandbox
    seen = [0]

    def count(result: object) -> None:
        seen[0] += 1

    code = (
        "from IPython.display import display, Image\n"
        "import base64, os\n"
        "blob = os.urandom(1 << 20)\n"
        "for i in range(40):\n"
        "    display({'image/png': base64.b64encode(blob).decode(), 'text/plain': str(i)}, raw=True)\n"
        "for i in range(300):\n"
        "    display(i)\n"
        "'THE END'\n"
    )
    await value(box, "0")  # the SDK's models are imported by the first cell, not counted here
    before = _rss()
    execution = await box.run_code(code, on_result=count, timeout=120)
    grown = _rss() - before
    assert execution.error is None, execution.error
    # The callback saw them as they came (iopub, a PUB socket, may drop a few when the host lags).
    assert seen[0] > KEEP_RESULTS + 1
    assert len(execution.results) <= KEEP_RESULTS + 1  # kept: the first ones and the cell's own result
    assert sum(len(r.png or "") for r in execution.results) <= KEEP_RESULT_BYTES  # 40 MB of pictures came
    assert execution.results[-1].is_main_result and execution.results[-1].text == "THE END"
    assert "display results not kept" in "".join(execution.logs.stderr)
    assert grown < 2 * GROWTH, f"host grew by {grown >> 20} MB"
    assert await value(box, "1 + 1") == "2"
