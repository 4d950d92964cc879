"""Attacks on uploading the user's data (issue 13): the host side is the user's disk,
the sandbox side is written by hostile code. A file in a picked folder swapped for a
symlink or a FIFO after it was listed, a file that keeps growing, a file changed
after its copy, a sandbox that made `data` a link out or a folder where a file
goes: each fails with one line, reads nothing it should not and leaves no partial
file, and the record never vouches for bytes it did not hash."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from team import uploads
from team.session import CodeSession

from .conftest import sbx, value  # noqa: F401  (the module's sandbox fixture)


def session_for(box) -> CodeSession:
    return CodeSession(factory=lambda: asyncio.sleep(0, box))


async def test_a_file_in_a_picked_folder_swapped_for_a_symlink_is_not_followed(sbx, tmp_path, host_secret):  # noqa: F811
    folder = tmp_path / "picked"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n1\n")
    plan = uploads.collect([folder])
    (folder / "a.csv").unlink()
    (folder / "a.csv").symlink_to(host_secret)  # after it was listed, before the copy
    with pytest.raises(uploads.UploadError, match=r"picked/a\.csv"):
        await uploads.upload(session_for(sbx), plan)
    assert "HOST-SECRET" not in await value(sbx, "import os\nstr([open(os.path.join(r, f)).read() "
                                                 "for r, _, fs in os.walk('data') for f in fs])")


async def test_a_file_swapped_for_a_fifo_is_refused_not_waited_on(sbx, tmp_path):  # noqa: F811
    path = tmp_path / "b.csv"
    path.write_text("x\n1\n")
    plan = uploads.collect([path])
    path.unlink()
    os.mkfifo(path)  # opening a FIFO for reading blocks until a writer comes: never
    with pytest.raises(uploads.UploadError, match="not a regular file"):
        await asyncio.wait_for(uploads.upload(session_for(sbx), plan), 20)


async def test_a_growing_file_uploads_only_the_size_that_was_picked(sbx, tmp_path):  # noqa: F811
    path = tmp_path / "growing.log"
    path.write_bytes(b"line\n" * 200_000)  # 1 MB
    plan = uploads.collect([path])
    with path.open("ab") as out:
        out.write(b"grown\n" * 1000)  # it has grown since it was picked, and goes on growing
    stop = threading.Event()

    def grow() -> None:
        with path.open("ab") as out:
            while not stop.is_set():
                out.write(b"more\n" * 10_000)
                time.sleep(0.001)

    writer = threading.Thread(target=grow)
    writer.start()
    try:
        done = await uploads.upload(session_for(sbx), plan)
    finally:
        stop.set()
        writer.join()
    assert done[0]["size"] == 1_000_000
    assert await value(sbx, "os.path.getsize('data/growing.log')") == "1000000"
    # the record vouches for the bytes copied, or (it changed meanwhile) for nothing
    first = hashlib.sha256(path.read_bytes()[:1_000_000]).hexdigest()
    assert done[0]["sha256"] == first or (done[0]["sha256"] == "" and "changed on the host" in done[0]["note"])


async def test_the_sha256_is_of_the_bytes_copied(sbx, tmp_path):  # noqa: F811
    path = tmp_path / "c.bin"
    path.write_bytes(os.urandom(3 << 20))
    done = await uploads.upload(session_for(sbx), uploads.collect([path]))
    assert done[0]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert await value(sbx, "import hashlib\nhashlib.sha256(open('data/c.bin','rb').read()).hexdigest()") \
        == done[0]["sha256"]


async def test_a_file_changed_after_its_copy_gets_no_sha256(sbx, tmp_path):  # noqa: F811
    path = tmp_path / "d.csv"
    path.write_text("x\n1\n")
    session = session_for(sbx)
    copies = await uploads.copy_in(session, uploads.collect([path]))
    path.write_text("x\n2\n")  # same size, new content and mtime
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    await uploads.fingerprint(copies)
    assert copies[0].entry["sha256"] == "" and "changed on the host" in copies[0].entry["note"]


async def test_a_data_link_made_by_the_sandbox_does_not_lead_out(sbx, tmp_path):  # noqa: F811
    outside = tmp_path / "outside"
    outside.mkdir()
    await value(sbx, f"import os, shutil\nshutil.rmtree('data', ignore_errors=True)\nos.symlink({str(outside)!r}, 'data')")
    path = tmp_path / "e.csv"
    path.write_text("x\n1\n")
    try:
        with pytest.raises(Exception) as caught:
            await uploads.upload(session_for(sbx), uploads.collect([path]))
        assert "\n" not in str(caught.value)
        assert list(outside.iterdir()) == []  # nothing written on the host through the link
    finally:
        await value(sbx, "os.remove('data')")


async def test_a_folder_where_the_file_goes_fails_with_one_line_and_no_partial(sbx, tmp_path):  # noqa: F811
    await value(sbx, "import os\nos.makedirs('data/f.csv/inner', exist_ok=True)")
    path = tmp_path / "f.csv"
    path.write_text("x\n1\n")
    try:
        with pytest.raises(Exception, match="directory") as caught:
            await uploads.upload(session_for(sbx), uploads.collect([path]))
        assert "\n" not in str(caught.value)
        assert await value(sbx, "os.path.isdir('data/f.csv/inner')") == "True"  # not removed either
    finally:
        await value(sbx, "import shutil\nshutil.rmtree('data/f.csv')")


def test_a_picked_device_or_fifo_is_refused_when_listed(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    plan = uploads.collect([fifo])
    assert plan.files == [] and plan.skipped == [("pipe", "not a regular file or folder")]
    with pytest.raises(uploads.UploadError, match="matches nothing|no such|not found"):
        uploads.collect([tmp_path / "missing.csv"])


def test_paths_from_a_folder_are_marked_walked(tmp_path: Path):
    (tmp_path / "top.csv").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "in.csv").write_text("x")
    plan = uploads.collect([tmp_path / "top.csv", tmp_path / "sub"])
    assert [(f.name, f.walked) for f in plan.files] == [("top.csv", False), ("sub/in.csv", True)]
