"""Benchmarks of the TUI, each next to a baseline measured in the same run.

1. Start-up: process start → first paint of `sbteam-tui --demo`, vs a bare
   Textual hello-world, both in a pseudo-terminal. First paint is when the first
   frame reaches the terminal (its last row for us: the status bar; "Hello, world"
   for the bare app), seen from the pty's side as a user would; the app's paint
   callback (`call_after_refresh`, SBTEAM_PAINT_FILE, after the first refresh has
   settled: the footer's keys, the fitted bars) is reported too. The pty answers
   the DA1 query as xterm does, as every terminal does; one that never answers
   (the image query then waits out its 0.2 s) is the worst case, reported.
   Then the sandbox: Enter pressed 1.5 s after launch (the DEMO task is sent) and
   how long that run waits for its local kernel (the app writes the time the
   kernel came up to SBTEAM_READY_FILE); 0 when it was up already.
2. Transcript throughput: token chunks/s rendered through the transcript
   (batched per 50 ms frame into one MarkdownStream), vs writing every chunk
   to a MarkdownStream directly.
3. Key latency while streaming: a key event posted to the task editor until
   the editor shows it, during a token stream vs at idle.
4. RSS after 10,000 messages through the transcript (capped DOM: 150 items
   mounted, the newest 30 as Markdown widgets), vs the idle app; the messages
   arrive in two bursts of 5,000 (rendering each one singly costs ~15-80 ms).

Run: `python bench/bench_tui.py [startup|sandbox]` (< 90 s on 2 cores). Prints a table with ratios.
"""

from __future__ import annotations

import asyncio
import os
import pty
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Row, at_least, at_most, emit, info, median, percentile, ratio_at_most  # noqa: E402

BARE_APP = """
import os, time
from dataclasses import dataclass
from pathlib import Path
from textual.app import App
from textual.widgets import Static
class Hello(App):
    def compose(self):
        yield Static("Hello, world")
    def on_mount(self):
        self.call_after_refresh(self.done)
    def done(self):
        Path(os.environ["SBTEAM_PAINT_FILE"]).write_text(repr(time.time()))
        self.exit()
Hello().run()
"""
OUR_APP = "import sys; from tui.cli import main; sys.exit(main(['--demo']))"
RUNS = 12  # a multiple of the 4 kinds of start: the rotation gives each each place equally often


BARE_MARKER = b"Hello, world"
OUR_MARKER = b"msgs 0/"  # the status bar, the last row the first frame draws (the footer's keys come next)
DA1_QUERY = re.compile(rb"\x1b\[0?c")
DA1_ANSWER = b"\x1b[?62;22c"  # what xterm answers: VT220, ANSI colour, no Sixel


@dataclass
class Launch:
    """One start of an app in a pty: when it was spawned, when it reported (the paint
    callback or the sandbox) and when `marker` first reached the terminal."""

    start: float
    reported: float
    frame: float | None = None

    @property
    def paint(self) -> float:
        """Seconds to the first frame on the terminal (to the paint callback without a marker)."""
        return (self.frame if self.frame is not None else self.reported) - self.start

    @property
    def settled(self) -> float:
        """Seconds to the paint callback: after the first refresh has settled."""
        return self.reported - self.start


class Terminal:
    """The pty's other end: drains the app's output (the app blocks once the pty buffer is
    full), notes when `marker` first arrives and, unless `silent`, answers the DA1 query as
    every real terminal does (xterm's answer), so the image-support query costs what it
    costs in a terminal; `silent` is the worst case, a terminal that never answers."""

    def __init__(self, master: int, marker: bytes | None, silent: bool) -> None:
        self.master, self.marker, self.silent = master, marker, silent
        self.frame: float | None = None
        self._tail = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                data = os.read(self.master, 65536)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except OSError:
                return
            seen = self._tail + data
            if self.frame is None and self.marker and self.marker in seen:
                self.frame = time.time()
            if not self.silent and DA1_QUERY.search(seen):
                os.write(self.master, DA1_ANSWER)
            self._tail = seen[-32:]  # a marker or query split across two reads is still found

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)


def _paint_time(code: str, env_extra: dict[str, str], marker: bytes, silent: bool = False) -> Launch:
    """Spawn `python -c code` in a pty: its first frame and its paint callback."""
    return _in_pty(code, env_extra, "SBTEAM_PAINT_FILE", marker=marker, silent=silent)


ENTER_AT = 1.5  # s after launch


def _sandbox_wait() -> float:
    """Seconds a task sent with Enter at `ENTER_AT` s after launch waits for the sandbox."""
    def at_enter(master: int, start: float) -> None:
        time.sleep(max(0.0, start + ENTER_AT - time.time()))
        os.write(master, b"\r")

    launch = _in_pty(OUR_APP, {"SBTEAM_IMAGE": "halfcell", "SBTEAM_PAINT_STAY": "1"}, "SBTEAM_READY_FILE",
                     during=at_enter, limit=60)
    return max(0.0, launch.reported - (launch.start + ENTER_AT))


def _in_pty(code: str, env_extra: dict[str, str], report: str, *, during=None, limit: float = 30,
            marker: bytes | None = None, silent: bool = False) -> Launch:
    """Spawn `python -c code` in a pty and wait for the time it writes to the file named by
    env `report`. The app is asked to quit with Ctrl+Q (so its kernel goes too), then killed."""
    with tempfile.TemporaryDirectory() as tmp:
        paint = Path(tmp) / "paint"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "E2B_", "SBTEAM_"))}
        env.update({report: str(paint)}, SBTEAM_HOME=str(Path(tmp) / "home"), TERM="xterm-256color",
                   COLUMNS="160", LINES="48", **env_extra)
        master, slave = pty.openpty()
        os.set_blocking(master, False)
        terminal = Terminal(master, marker, silent)
        start = time.time()
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=slave, stdout=slave, stderr=slave,
                                cwd=tmp, env=env, start_new_session=True)
        helper = threading.Thread(target=during, args=(master, start), daemon=True) if during else None
        if helper:
            helper.start()
        try:
            deadline = start + limit
            while not paint.exists() or not paint.read_text():
                if time.time() > deadline or proc.poll() not in (None, 0):
                    raise RuntimeError(f"no {report} from {code[:40]!r} (exit {proc.poll()})")
                time.sleep(0.002)
            text = paint.read_text()
            if text == "failed":
                raise RuntimeError("the sandbox did not start")
            reported = float(text)
        finally:
            if proc.poll() is None:
                try:
                    os.write(master, b"\x11")  # Ctrl+Q: the app closes its sandbox
                    proc.wait(timeout=20)
                except (OSError, subprocess.TimeoutExpired):
                    proc.kill()
            proc.wait()
            terminal.close()
            os.close(slave)
            os.close(master)
        return Launch(start=start, reported=reported, frame=terminal.frame)


def _compile_bytecode() -> None:
    """Byte-compile `team/` and `tui/` as an install does (pip writes the .pyc files), so an
    environment with PYTHONDONTWRITEBYTECODE (this one's Dockerfile, CI) does not have the
    app compile ~40 of its modules from source on every start (~40 ms) while Textual, the
    baseline, loads its installed bytecode."""
    import compileall

    for package in ("team", "tui"):
        compileall.compile_dir(ROOT / package, quiet=1)


def bench_startup() -> list[Row]:
    _compile_bytecode()
    launch = {
        "bare": lambda: _paint_time(BARE_APP, {}, BARE_MARKER),
        "auto": lambda: _paint_time(OUR_APP, {}, OUR_MARKER),
        "halfcell": lambda: _paint_time(OUR_APP, {"SBTEAM_IMAGE": "halfcell"}, OUR_MARKER),
        "silent": lambda: _paint_time(OUR_APP, {}, OUR_MARKER, silent=True),
    }
    runs: dict[str, list[Launch]] = {name: [] for name in launch}
    names = list(launch)
    for round_ in range(RUNS):
        # Interleaved so machine noise hits all alike, and rotated so each takes each place in the
        # order equally often: the start right after the bare app's was measured 35-40 ms slower.
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(launch[name]())
    paint = {name: median([launch.paint for launch in launches]) for name, launches in runs.items()}
    settled = {name: median([launch.settled for launch in launches]) for name, launches in runs.items()}
    b = paint["bare"]
    return [
        info("first paint: bare Textual hello-world", b, "s",
             note=f"median of {RUNS} in a pty: spawn to its first frame on the terminal"),
        ratio_at_most("first paint: sbteam-tui --demo", paint["auto"], b, 1.3, "s",
                      note="spawn until the status bar (the first frame's last row) reaches the terminal; "
                           "the pty answers the image-support query as xterm does; "
                           "Posting/Harlequin paint at 3.1-3.5x"),
        ratio_at_most("first paint: same, SBTEAM_IMAGE=halfcell", paint["halfcell"], b, 1.3, "s",
                      note="no terminal query"),
        info("first paint: a terminal that never answers", paint["silent"], "s", baseline=b,
             note="the worst case: the image query waits out its 0.2 s, overlapped with the imports"),
        info("settled: the paint callback, halfcell", settled["halfcell"], "s", baseline=settled["bare"],
             note="after the first refresh: the footer's keys and the fitted bars are in"),
    ]


def bench_sandbox_wait() -> list[Row]:
    waits = [_sandbox_wait() * 1000 for _ in range(3)]
    return [at_most(f"sandbox wait at Enter {ENTER_AT:g} s after launch", median(waits), 0, "ms",
                    note=f"median of 3 (each {', '.join(f'{w:.0f}' for w in waits)} ms); local kernel, DEMO task")]


HOOKS: list = []  # message hooks of the running bench app


async def _with_app(body):
    """Run `body(app, pilot)` inside a headless SbteamApp fed by no controller."""
    from team.config import Settings
    from tui.app import SbteamApp

    class Idle:
        demo, model_label, state, run_id, task = True, "DEMO", "idle", None, None
        sandbox_kind, isolation = "local", "bwrap"

        def __init__(self, settings):
            self.settings = settings

        async def warm_up(self):
            return None

        async def list_files(self):
            return []

        async def close(self):
            return None

    with tempfile.TemporaryDirectory() as tmp:
        app = SbteamApp(Settings(demo=True, home=Path(tmp)), controller_factory=Idle, cursor_blink=False)
        def hook(message) -> None:
            for callback in HOOKS:
                callback(message)

        async with app.run_test(size=(160, 48), message_hook=hook) as pilot:
            await pilot.pause(0.2)
            app.run_id = "b"  # the run the benches' events belong to (the app drops any other's)
            return await body(app, pilot)


CHUNK = "word " * 3
CHUNKS = 2000


async def _stream_transcript(app, pilot) -> float:
    from team.events import Message, TokenDelta

    text = []
    start = time.perf_counter()
    for i in range(CHUNKS):
        piece = CHUNK + ("\n\n" if i % 40 == 39 else "")
        text.append(piece)
        app.handle_event(TokenDelta(run_id="b", agent="CodeAgent", text=piece, message_id="s1"))
        if i % 20 == 19:
            await asyncio.sleep(0)  # a model yields between network reads
    app.handle_event(Message(run_id="b", agent="CodeAgent", text="".join(text), message_id="s1"))
    await app.transcript.flush_now()
    return CHUNKS / (time.perf_counter() - start)


async def _stream_direct(app, pilot) -> float:
    from textual.widgets import Markdown

    md = Markdown()
    await app.transcript.mount(md)
    stream = Markdown.get_stream(md)
    start = time.perf_counter()
    for i in range(CHUNKS):
        await stream.write(CHUNK + ("\n\n" if i % 40 == 39 else ""))
    await stream.stop()
    return CHUNKS / (time.perf_counter() - start)


async def _key_latency(app, pilot, streaming: bool) -> list[float]:
    from textual import events

    from team.events import TokenDelta
    from tui.widgets.task_input import TaskInput

    editor = app.query_one(TaskInput)
    editor.load_text("")
    editor.focus()
    await pilot.pause()
    done = asyncio.Event()

    async def produce() -> None:
        i = 0
        while not done.is_set():
            app.handle_event(TokenDelta(run_id="b", agent="Planner", text=CHUNK + ("\n\n" if i % 40 == 39 else ""),
                                        message_id="k1"))
            i += 1
            if i % 5 == 0:
                await asyncio.sleep(0.001)  # ~1,000-5,000 chunks/s offered

    producer = asyncio.create_task(produce()) if streaming else None
    await asyncio.sleep(0.3)
    from textual.widgets import TextArea

    changed = asyncio.Event()
    HOOKS[:] = [lambda m: changed.set() if isinstance(m, TextArea.Changed) else None]
    samples = []
    for _ in range(30):
        changed.clear()
        start = time.perf_counter()
        app.post_message(events.Key("x", "x"))  # as the driver would, on a key press
        await asyncio.wait_for(changed.wait(), 5)
        samples.append(time.perf_counter() - start)
        await asyncio.sleep(0.03)
    HOOKS.clear()
    assert editor.text.count("x") == 30
    done.set()
    if producer:
        await producer
    return samples


MESSAGES, BATCH = 10_000, 5_000  # arriving in bursts: only the newest MAX_MOUNTED of each get mounted


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


async def _rss_after_messages(app, pilot) -> tuple[float, float, float]:
    import gc

    from team.events import Message

    gc.collect()
    before = _rss_mb()
    start = time.perf_counter()
    for batch in range(MESSAGES // BATCH):
        for i in range(BATCH):
            n = batch * BATCH + i
            app.handle_event(Message(run_id="b", agent=("Planner", "CodeAgent", "AnalystAgent")[n % 3],
                                     text=f"Message **{n}**: the mean is {n * 0.1:.2f}.\n\n- a point\n- another",
                                     message_id=f"r{n}"))
        await app.transcript.flush_now()
        await pilot.pause()
    elapsed = time.perf_counter() - start
    gc.collect()
    return before, _rss_mb(), elapsed


def main() -> None:
    t0 = time.perf_counter()
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    rows: list[Row] = bench_startup()
    if only in ("", "sandbox"):
        rows += bench_sandbox_wait()
    if only not in ("startup", "sandbox"):
        direct = asyncio.run(_with_app(_stream_direct))
        batched = asyncio.run(_with_app(_stream_transcript))
        rows.append(info("stream: MarkdownStream.write per chunk", direct, "chunks/s", note="baseline"))
        rows.append(at_least("stream: transcript, batched per 50 ms frame", batched, 2000, "chunks/s",
                             baseline=direct))

        idle = asyncio.run(_with_app(lambda a, p: _key_latency(a, p, False)))
        busy = asyncio.run(_with_app(lambda a, p: _key_latency(a, p, True)))
        mi = median(idle) * 1000
        rows.append(info("key latency, idle (median)", mi, "ms"))
        rows.append(at_most("key latency while streaming (median)", median(busy) * 1000, 50, "ms", baseline=mi))
        rows.append(at_most("key latency while streaming (p95)", percentile(busy, 95) * 1000, 50, "ms",
                            baseline=mi))

        before, after, took = asyncio.run(_with_app(_rss_after_messages))
        rows.append(info("RSS: idle app", before, "MB"))
        rows.append(at_most("RSS: after 10,000 messages", after, 200, "MB", baseline=before,
                            note=f"{took:.1f} s to render 2 bursts of 5,000; 150 items stay mounted"))
    emit(rows, title=f"bench_tui ({time.perf_counter() - t0:.0f} s, Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
