"""Attack 3: swap a path between the host's check and its open.

Code in the sandbox flips names as fast as it can while the host reads, writes
and copies out: a file that is a regular file one instant and a symlink to a
host secret the next, and a folder exchanged with a symlink to the secret's
folder by `renameat2(RENAME_EXCHANGE)`. The old host-side checks lost these
races within tens of tries; the fd-relative, no-follow walk cannot lose them.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from team.sandbox.local import LocalSandbox
from team.session import CodeSession

from .conftest import needs_bwrap, value

pytestmark = needs_bwrap

FLIPPER = r"""
import ctypes, os, subprocess, sys, textwrap
script = textwrap.dedent('''
    import ctypes, os, time
    libc = ctypes.CDLL(None, use_errno=True)
    os.chdir("/home/user/race")
    secret, folder = {secret!r}, {folder!r}
    open("safe.txt", "w").write("SAFE")
    os.makedirs("d", exist_ok=True)
    open("d/x.txt", "w").write("SAFE")
    os.symlink(folder, "dlink")
    end = time.time() + {seconds}
    while time.time() < end:
        try:
            os.symlink(secret, "tmp_link")
            os.replace("tmp_link", "f.txt")          # f.txt -> host secret
            os.link("safe.txt", "tmp_file")
            os.replace("tmp_file", "f.txt")          # f.txt is a regular file again
            # exchange the real folder and the link to the host's folder, atomically
            libc.syscall(316, -100, b"d", -100, b"dlink", 2)  # renameat2(..., RENAME_EXCHANGE)
        except OSError:
            pass
''')
os.makedirs("/home/user/race", exist_ok=True)
subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
"started"
"""


async def test_flipping_paths_never_leak_or_write_host_files(tmp_path: Path, host_secret: Path) -> None:
    secret = host_secret.read_text()
    seconds = 4
    box = await LocalSandbox.create()
    session = CodeSession(factory=lambda: asyncio.sleep(0, box))
    try:
        await session.initialize()
        await value(box, FLIPPER.format(secret=str(host_secret), folder=str(host_secret.parent), seconds=seconds))
        await asyncio.sleep(0.3)
        reads = writes = copies = 0
        leaked: list[str] = []
        end = time.monotonic() + seconds - 0.5
        while time.monotonic() < end:
            for path in ("race/f.txt", f"race/d/{host_secret.name}", f"race/dlink/{host_secret.name}"):
                try:
                    data, _size = await box.files.read_head(path, 4096)
                    reads += 1
                    if secret.encode() in data:
                        leaked.append(path)
                except Exception:
                    pass
            for path in ("race/d/planted.txt", "race/dlink/planted.txt"):
                try:
                    await box.files.write(path, "from the host")
                    writes += 1
                except Exception:
                    pass
            if copies < 3:
                report = await session.download_all(tmp_path / f"copy-{copies}")
                copies += 1
                for saved in report.saved:
                    if secret in saved.read_text(errors="replace"):
                        leaked.append(f"copy-out {saved}")
        assert reads > 50 and writes > 20 and copies == 3  # the race was really run
        assert leaked == []
        assert not (host_secret.parent / "planted.txt").exists()
        assert host_secret.read_text() == secret
    finally:
        await session.close()
