"""Benchmark the run controller: DEMO overhead, stop latency, sandbox pre-warming.

    python bench/bench_run.py [--stops N] [--demo-runs N] [--typing S] [--real-pip N]
                              [--at-start N] [--ui-pace]

All in one process, with the real LocalSandbox and a scripted model (no network):

1. Sandbox ready before the first tool call (measured first, while the engine is
   not imported yet, as when the app opens): the real `SbteamApp` runs headless
   (its own boot: engine import in a thread, then `warm_up()`); `--typing`
   seconds after it painted, the task is submitted. The wait is how long the
   run then waits for the sandbox. Also with the engine already imported, and
   the baseline: no warm-up at all (the run creates the sandbox itself).
2. The seed task in DEMO (`demo_client(pace=0)`, a fresh warmed sandbox per
   run): wall time from `start()` to `RunFinished` vs the summed duration of the
   sandbox's `run_code` calls; the rest is overhead (AutoGen, our events and
   records, file scans). `--ui-pace`: once more at the UI's pace, for information.
3. Stop latency, `stop()` called → `RunFinished` received, graceful and force,
   `--stops` times each: while the model streams (a scripted slow talker), in a
   busy cell (`while True: pass` after a flushed print), during pip (the
   sandbox's `install_package` replaced by a 60 s sleep, as in tests/test_run.py;
   with `--real-pip N`, also real pip against a local index that never answers),
   and `--at-start` runs stopped on RunStarted, before the team exists (last,
   because such a run may be abandoned and wind down in the background).

Prints a table (see bench/common.py) and the BENCH_JSON line for `python -m bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Row, at_most, emit, info, median, percentile  # noqa: E402

STOP_GOAL = 1.0  # s, p95
OVERHEAD_GOAL = 5.0  # % of wall
UI_PACE = 0.004  # RunController's default demo_pace, which the app uses
STOP_TIMEOUT = 20.0  # one stop cycle that takes longer is reported as a failure

now = time.perf_counter


def make_settings(home: Path) -> Any:
    """DEMO settings, local sandbox, a private home; the caller's keys and .env ignored."""
    from team.config import Settings

    return Settings.load(env={"SBTEAM_HOME": str(home), "SBTEAM_SANDBOX": "local"}, env_file=None)


# -- 1. sandbox ready before the first tool call --------------------------------------

class ReadyClock:
    """Wraps `session.initialize` to note when the sandbox first became ready."""

    def __init__(self, session: Any) -> None:
        self.ready_at: float | None = None
        self.ready = asyncio.Event()
        original = session.initialize

        async def initialize() -> None:
            await original()
            if self.ready_at is None and session.initialized:
                self.ready_at = now()
                self.ready.set()

        session.initialize = initialize


async def _finish_quickly(ctrl: Any) -> None:
    """Force-stop the run once its model streams (we only needed its start), then close.

    Not at once: a stop before the team exists waits out FORCE_WAIT (see the
    "right after start()" stop rows), which would only slow this benchmark down.
    """
    from team import events as ev

    stopping: asyncio.Task[None] | None = None
    async for event in ctrl.events():
        if stopping is None and isinstance(event, (ev.TokenDelta, ev.Handoff)):
            stopping = asyncio.create_task(ctrl.stop(force=True))
    if stopping is not None:
        await stopping
    await ctrl.close()


async def prewarm_app_flow(settings: Any, task: str, typing: float) -> tuple[float, float, float]:
    """The app's boot order; returns (wait, controller built at, sandbox ready at), s after open."""
    from tui.app import default_controller  # imports Textual only, as the painted app has

    loop = asyncio.get_running_loop()
    built: asyncio.Future[Any] = loop.create_future()
    clocks: list[ReadyClock] = []
    t_open = now()
    built_at = [0.0]

    async def boot() -> None:  # tui.app.SbteamApp._boot
        ctrl = await asyncio.to_thread(default_controller, settings)
        built_at[0] = now() - t_open
        clocks.append(ReadyClock(ctrl.session))
        built.set_result(ctrl)
        await ctrl.warm_up()

    booting = asyncio.create_task(boot())
    await asyncio.sleep(typing)
    t_enter = now()
    ctrl = await built  # the app's run worker awaits the controller too
    ctrl.start(task)
    await booting
    ready = clocks[0].ready_at or now()
    await _finish_quickly(ctrl)
    return max(0.0, ready - t_enter), built_at[0], ready - t_open


async def prewarm_real_app(settings: Any, task: str, typing: float) -> tuple[float, float, float]:
    """The real `SbteamApp` headless: open, wait `typing` s, Enter; (wait, built at, ready at) in s."""
    from tui.app import SbteamApp, default_controller
    from tui.widgets.task_input import TaskInput

    loop = asyncio.get_running_loop()
    built = asyncio.Event()
    clocks: list[ReadyClock] = []
    marks = {"open": now(), "built": 0.0}

    def factory(s: Any) -> Any:  # runs in the app's boot thread
        ctrl = default_controller(s)
        marks["built"] = now()
        clocks.append(ReadyClock(ctrl.session))
        loop.call_soon_threadsafe(built.set)
        return ctrl

    app = SbteamApp(settings, controller_factory=factory, cursor_blink=False)
    async with app.run_test(size=(160, 48)):
        marks["open"] = now()  # mounted and painted: the user can start typing
        await asyncio.sleep(typing)
        editor = app.query_one(TaskInput)
        editor.load_text(task)
        t_enter = now()
        editor.action_submit()
        await asyncio.wait_for(built.wait(), 60)
        await asyncio.wait_for(clocks[0].ready.wait(), 60)
        ready = clocks[0].ready_at or now()
        await asyncio.wait_for(app.ctrl.close(), 15)
    return max(0.0, ready - t_enter), marks["built"] - marks["open"], ready - marks["open"]


async def prewarm_engine(settings: Any, task: str, typing: float | None) -> float:
    """Engine already imported; warm_up at open (None: no warm-up), start after `typing` s."""
    from team.run import RunController

    ctrl = RunController(settings)
    clock = ReadyClock(ctrl.session)
    warming = asyncio.create_task(ctrl.warm_up()) if typing is not None else None
    if typing is not None:
        await asyncio.sleep(typing)
    t_enter = now()
    ctrl.start(task)
    await clock.ready.wait()
    assert clock.ready_at is not None
    if warming is not None:
        await warming
    await _finish_quickly(ctrl)
    return max(0.0, clock.ready_at - t_enter)


async def bench_prewarm(settings: Any, typing: float) -> list[Row]:
    """Rows for 1: app boot order, engine-only warm-up, both against no warm-up."""
    from team.prompts import example_task

    task = example_task(settings.prompts)
    app_metric = f"sandbox wait at first run, app + {typing:g} s typing"
    how = "the real SbteamApp, headless"
    app_row: Row | None = None
    try:
        app_wait, built_at, ready_at = await prewarm_real_app(settings, task, typing)
    except Exception as exc:  # the app changed under us: follow its boot order by hand instead
        print(f"  real app: {type(exc).__name__}: {exc}; replaying its boot order", file=sys.stderr)
        how = "tui.app boot order replayed"
        try:
            app_wait, built_at, ready_at = await prewarm_app_flow(settings, task, typing)
        except ImportError as exc2:
            app_row = Row(app_metric, float("nan"), goal="≤0 ms", passed=False,
                          note=f"cannot follow the app: {exc2}")
    engine_wait = await prewarm_engine(settings, task, typing)
    cold_wait = await prewarm_engine(settings, task, None)
    goal = "≤0 ms"
    if app_row is None:
        app_row = at_most(app_metric, app_wait * 1000, 0, "ms", baseline=cold_wait * 1000, goal=goal,
                          note=f"{how}: engine imported {built_at:.2f} s after first paint, sandbox ready "
                               f"at {ready_at:.2f} s; baseline: no warm-up (sandbox created by the run)")
    return [
        app_row,
        at_most(f"sandbox wait at first run, engine imported, {typing:g} s typing", engine_wait * 1000, 0,
                "ms", baseline=cold_wait * 1000, goal=goal),
    ]


# -- 2. DEMO seed task: overhead beyond code execution ---------------------------------

class Timer:
    """Adds up the time spent in wrapped coroutine functions."""

    def __init__(self) -> None:
        self.total = 0.0
        self.calls = 0

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = now()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.total += now() - start
                self.calls += 1

        return timed

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = now()
            try:
                return fn(*args, **kwargs)
            finally:
                self.total += now() - start
                self.calls += 1

        return timed


async def demo_once(settings: Any, pace: float) -> dict[str, float]:
    """One DEMO run in a fresh warmed sandbox; wall, code and where the rest went (s)."""
    from team import events as ev
    from team.prompts import example_task
    from team.run import RunController
    from team.run_outbox import Outbox

    ctrl = RunController(settings, demo_pace=pace)
    original_emit = Outbox.emit
    try:
        await ctrl.warm_up()
        session, sandbox = ctrl.session, ctrl.session.sandbox
        code, files, events = Timer(), Timer(), Timer()
        sandbox.run_code = code.wrap_async(sandbox.run_code)
        session.list_entries = files.wrap_async(session.list_entries)
        session.read_bytes = files.wrap_async(session.read_bytes)
        sandbox.files.write = files.wrap_async(sandbox.files.write)
        Outbox.emit = events.wrap(original_emit)  # type: ignore[method-assign]  # scrub, stamp, record, queue
        start = now()
        ctrl.start(example_task(settings.prompts))
        count, reason = 0, ""
        async for event in ctrl.events():
            count += 1
            if isinstance(event, ev.RunFinished):
                reason = event.reason
        wall = now() - start
        if reason != "terminate":
            raise RuntimeError(f"the DEMO run ended with {reason!r}, not terminate")
        return {"wall": wall, "code": code.total, "files": files.total, "events": events.total,
                "n_events": count, "n_code": code.calls}
    finally:
        Outbox.emit = original_emit  # type: ignore[method-assign]
        await ctrl.close()


async def bench_demo(settings: Any, runs: int, ui_pace: bool) -> list[Row]:
    """Rows for 2: the run with the median overhead share of `runs`, and where its overhead went."""
    samples = [await demo_once(settings, 0.0) for _ in range(runs)]
    samples.sort(key=lambda s: (s["wall"] - s["code"]) / s["wall"])
    mid = samples[len(samples) // 2]  # the run with the median overhead share
    wall, code = mid["wall"], mid["code"]
    over = wall - code
    rest = over - mid["files"] - mid["events"]
    share = over / wall * 100
    rows = [
        info("DEMO seed task wall vs its code run time (pace 0)", wall, "s", baseline=code,
             note=f"median of {runs} runs, each in a fresh warmed sandbox; {mid['n_code']:.0f} run_code call(s)"),
        at_most("DEMO seed task overhead beyond code (pace 0)", share, OVERHEAD_GOAL, "%",
                goal=f"≤{OVERHEAD_GOAL:g}% of wall",
                note=f"{over * 1000:.0f} ms of {wall:.2f} s: AutoGen + scripted model + scheduling "
                     f"{rest * 1000:.0f} ms, sandbox file ops {mid['files'] * 1000:.0f} ms, our event path "
                     f"(stamp, record, queue) {mid['events'] * 1000:.0f} ms, over {mid['n_events']:.0f} events "
                     f"({over * 1000 / mid['n_events']:.2f} ms/event)"),
    ]
    if ui_pace:
        paced = await demo_once(settings, UI_PACE)
        paced_over = (paced["wall"] - paced["code"]) / paced["wall"] * 100
        rows.append(info(f"DEMO seed task wall at the UI's pace ({UI_PACE * 1000:g} ms/chunk)", paced["wall"],
                         "s", baseline=paced["code"],
                         note=f"overhead {paced_over:.0f}% of wall, most of it deliberate pacing"))
    return rows


# -- 3. stop latency ------------------------------------------------------------------

def _scripted(responder: Callable[[Any], Any], pace: float = 0.0) -> Callable[[], Any]:
    from team.scripted import ScriptedChatCompletionClient

    return lambda: ScriptedChatCompletionClient(responder, pace=pace)


def slow_talker(turn: Any) -> Any:
    """A model that talks for ~20 s at pace 0.01 (stopped long before)."""
    from team.scripted import Say

    return Say("word " * 5000)


def _code_agent_does(call: Any) -> Callable[[Any], Any]:
    """Planner hands over, CodeAgent makes `call`, then everyone winds down."""
    from team.scripted import Call, Say

    def responder(turn: Any) -> Any:
        if turn.agent == "Planner" and turn.index == 0:
            return Call("transfer_to_codeagent")
        if turn.agent == "CodeAgent" and turn.index == 0:
            return call
        if turn.agent == "CodeAgent":
            return Call("transfer_to_planner")
        return Say("TERMINATE")

    return responder


async def stop_once(ctrl: Any, task: str, trigger: Callable[[Any], bool], force: bool,
                    armed: asyncio.Event | None) -> float:
    """Start a run, stop it when `trigger(event)` (and `armed`); stop() → RunFinished, in s."""
    from team import events as ev

    if armed is not None:
        armed.clear()
    ctrl.start(task)
    stopped_at: list[float] = []
    stopper: asyncio.Task[None] | None = None

    async def stop() -> None:
        if armed is not None:
            await armed.wait()
        stopped_at.append(now())
        await ctrl.stop(force=force)

    async for event in ctrl.events():
        if isinstance(event, ev.RunFinished):
            finished = now()
            if stopper is None or not stopped_at:
                raise RuntimeError(f"the run ended ({event.reason}) before it was stopped")
            if event.reason != "stopped":
                raise RuntimeError(f"stopped run reported {event.reason!r}")
            await stopper
            return finished - stopped_at[0]
        if stopper is None and trigger(event):
            stopper = asyncio.create_task(stop())
    raise RuntimeError("events() ended without RunFinished")


async def stop_series(settings: Any, model: Callable[[], Any], trigger: Callable[[Any], bool], n: int,
                      setup: Callable[[Any], asyncio.Event | None] | None = None) -> dict[str, list[float]]:
    """`n` graceful and `n` force stops, interleaved, on one controller with a warm sandbox."""
    from team.run import RunController

    ctrl = RunController(settings, model_factory=model)
    latencies: dict[str, list[float]] = {"graceful": [], "force": []}
    try:
        await ctrl.warm_up()
        armed = setup(ctrl) if setup else None
        for i in range(2 * n):
            mode = "force" if i % 2 else "graceful"
            try:
                latency = await asyncio.wait_for(
                    stop_once(ctrl, f"stop {i}", trigger, mode == "force", armed), STOP_TIMEOUT
                )
            except (TimeoutError, RuntimeError) as exc:
                print(f"  {mode} stop {i}: {exc or 'timed out'}", file=sys.stderr)
                latency = float("inf")
                with contextlib.suppress(Exception):
                    await ctrl.stop(force=True)
            latencies[mode].append(latency)
    finally:
        await ctrl.close()
    return latencies


def _sleep_instead_of_pip(ctrl: Any) -> asyncio.Event:
    """Replace pip with a 60 s sleep (a download that takes minutes); returns 'pip started'."""
    started = asyncio.Event()

    async def slow_install(name: str, timeout: float = 600) -> tuple[bool, str]:  # noqa: ASYNC109
        started.set()
        await asyncio.sleep(60)
        return True, "installed"

    ctrl.session.sandbox.install_package = slow_install
    return started


class HangingIndex:
    """A package index on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.connected = asyncio.Event()
        self._loop = loop
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/simple/"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self._conns.append(conn)
            self._loop.call_soon_threadsafe(self.connected.set)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._conns:
            conn.close()
        self._sock.close()


@contextlib.contextmanager
def pip_env(url: str) -> Any:
    """Point the sandbox's pip (it inherits PIP_* variables) at `url` only, without retries."""
    changes: dict[str, str | None] = {
        "PIP_INDEX_URL": url, "PIP_EXTRA_INDEX_URL": None, "PIP_FIND_LINKS": None, "PIP_RETRIES": "0",
        "PIP_DEFAULT_TIMEOUT": "60", "PIP_CONFIG_FILE": os.devnull,
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    }
    saved = {k: os.environ.get(k) for k in changes}
    for key, value in changes.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _stop_rows(point: str, latencies: dict[str, list[float]], n_label: str) -> list[Row]:
    """One row per mode: p95 against the goal; median, p95 and worst in the note."""
    rows = []
    for mode, values in latencies.items():
        ms = [v * 1000 for v in values]
        rows.append(at_most(f"stop {point}, {mode} (p95)", percentile(values, 95), STOP_GOAL, "s",
                            goal=f"≤{STOP_GOAL:g} s p95",
                            note=f"median {median(ms):.0f} ms, p95 {percentile(ms, 95):.0f} ms, "
                                 f"worst {max(ms):.0f} ms of {n_label}"))
    return rows


async def bench_stops(settings: Any, n: int, real_pip: int, at_start: int) -> list[Row]:
    """Rows for 3: each stop point, graceful and force."""
    from team import events as ev
    from team.scripted import Call

    deltas = [0]

    def streaming(event: Any) -> bool:  # a few chunks into the reply
        if isinstance(event, ev.TokenDelta):
            deltas[0] += 1
            if deltas[0] % 5 == 0:
                deltas[0] = 0
                return True
        return False

    rows: list[Row] = []
    lat = await stop_series(settings, _scripted(slow_talker, pace=0.01), streaming, n)
    rows += _stop_rows("while the model streams", lat, f"{n}")

    busy = Call("run_code", {"code": "y = 7\nprint('spinning', flush=True)\nwhile True:\n    pass"})
    lat = await stop_series(settings, _scripted(_code_agent_does(busy)),
                            lambda e: isinstance(e, ev.SandboxOutput) and "spinning" in e.text, n)
    rows += _stop_rows("in a busy cell", lat, f"{n}")

    install = Call("install_package", {"package_name": "sbteam-bench-no-such-package"})
    is_install = lambda e: isinstance(e, ev.ToolCall) and e.name == "install_package"  # noqa: E731
    lat = await stop_series(settings, _scripted(_code_agent_does(install)), is_install, n,
                            setup=_sleep_instead_of_pip)
    rows += _stop_rows("during pip (60 s sleep stand-in)", lat, f"{n}")

    if real_pip > 0:
        index = HangingIndex(asyncio.get_running_loop())
        try:
            with pip_env(index.url):
                lat = await stop_series(settings, _scripted(_code_agent_does(install)), is_install, real_pip,
                                        setup=lambda _ctrl: index.connected)
        finally:
            index.close()
        for row in _stop_rows("during real pip (index hangs)", lat, f"{real_pip}"):
            row.note += "; stop sent once pip had connected to the index"
            rows.append(row)

    if at_start > 0:  # last: an abandoned team keeps running in the background until close()
        lat = await stop_series(settings, _scripted(slow_talker, pace=0.01),
                                lambda e: isinstance(e, ev.RunStarted), at_start)
        for row in _stop_rows("right after start() (team not built yet)", lat, f"{at_start}"):
            row.note += "; stop sent on RunStarted"
            rows.append(row)
    return rows


# -- main -----------------------------------------------------------------------------

async def measure(stops: int = 10, demo_runs: int = 3, typing: float = 1.5, real_pip: int = 0,
                  at_start: int = 2, ui_pace: bool = False) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="sbteam-bench-") as tmp:
        settings = make_settings(Path(tmp) / "home")
        rows: list[Row] = []
        sections = [
            ("prewarm", lambda: bench_prewarm(settings, typing)),  # first: the engine is not imported yet
            ("demo", lambda: bench_demo(settings, demo_runs, ui_pace)),
            ("stops", lambda: bench_stops(settings, stops, real_pip, at_start)),
        ]
        for name, section in sections:
            start = now()
            rows += await section()
            print(f"  {name}: {now() - start:.1f} s", file=sys.stderr, flush=True)
    return rows


def run(stops: int = 10, demo_runs: int = 3, typing: float = 1.5, real_pip: int = 0, at_start: int = 2,
        ui_pace: bool = False) -> list[Row]:
    """Every row of this benchmark (runs its own event loop)."""
    return asyncio.run(measure(stops, demo_runs, typing, real_pip, at_start, ui_pace))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stops", type=int, default=10, help="stops per point and mode")
    parser.add_argument("--demo-runs", type=int, default=3, help="DEMO runs at pace 0 (median taken)")
    parser.add_argument("--typing", type=float, default=1.5, help="seconds between app open and Enter")
    parser.add_argument("--real-pip", type=int, default=0,
                        help="also stop a real pip N times per mode (~1.5 s each; off by default for the 60 s budget)")
    parser.add_argument("--at-start", type=int, default=2, help="stops per mode right after start() (0: skip)")
    parser.add_argument("--ui-pace", action="store_true", help="also time one DEMO run at the UI's pace")
    args = parser.parse_args()
    start = now()
    rows = run(args.stops, args.demo_runs, args.typing, args.real_pip, args.at_start, args.ui_pace)
    emit(rows, f"bench_run: run controller, DEMO, stop latency ({now() - start:.1f} s)")


if __name__ == "__main__":
    main()
