"""A stand-in for `team.run.RunController` that replays a scripted run.

Same surface as the real controller (`team.api.Controller`: state,
start/events/stop/restart, resume, approve/approver, cost, files), so the TUI can be driven
deterministically: fixed run ids (`run-001`, `run-002`, …), fixed times in the
events, and files served from a host folder (`files_dir`) that becomes visible
as the script announces them. With `record=True` it writes run records like the
real one (events.jsonl, files/, run.json, state.json); `write_record` builds a
record with fixed content for history tests and snapshots.

Run state is told like the engine tells it: `RunStateChanged` STARTING on launch,
RUNNING once the sandbox is up and the team starts, STOPPING (with the cause) on a
stop, FINISHED (with the end reason), then `RunFinished`, then `OutputsSaved` once
the files are in the record; `events()` ends after `OutputsSaved`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from team.api import RunState
from team.config import Settings
from team.events import (
    ApprovalDecided,
    ApprovalRequested,
    Event,
    FilesChanged,
    Handoff,
    Message,
    OutputsSaved,
    Progress,
    RunFinished,
    RunStarted,
    RunStateChanged,
    SandboxOutput,
    SandboxStatus,
    TokenDelta,
    ToolCall,
    ToolResult,
)
from team.session import FileEntry
from team.tools import NEEDS_APPROVAL  # the registry's live set: a tool registered later is in it

CSV_ROWS = 100
FIXED_STARTED = "2025-01-02T09:30:00"


class FakeSandboxError(RuntimeError):
    pass


SANDBOX_FAILURE = "cannot start the kernel: No module named 'ipykernel'\n(while starting the local sandbox)"


def make_files(folder: Path) -> Path:
    """Deterministic sandbox files like the DEMO's, plus one of each other preview kind."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(42)
    values = [round(rng.gauss(50, 10), 4) for _ in range(CSV_ROWS)]
    lines = ["index,value"] + [f"{i},{v}" for i, v in enumerate(values)]
    (folder / "data_points.csv").write_text("\n".join(lines) + "\n")
    stats = {"mean": 50.1234, "std": 9.8765, "max": 75.4321, "min": 24.6802, "count": CSV_ROWS}
    (folder / "data_stats.json").write_text(json.dumps(stats))
    (folder / "outlier_analysis.json").write_text(
        json.dumps({"method": "IQR", "outliers": [75.4321, 24.6802], "mean_without": 50.02})
    )
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (120, 80), "white")
    draw = ImageDraw.Draw(img)
    for i, h in enumerate([10, 25, 45, 70, 60, 35, 15, 5]):
        draw.rectangle([8 + i * 13, 78 - h, 18 + i * 13, 78], fill=(31, 119, 180))
    img.save(folder / "data_histogram.png")
    (folder / "analysis.py").write_text(
        "import numpy as np\n\ndef iqr(values):\n    q1, q3 = np.percentile(values, [25, 75])\n    return q3 - q1\n"
    )
    (folder / "notes.md").write_text("# Notes\n\n- mean is **50.12**\n- two outliers\n")
    (folder / "model.bin").write_bytes(b"\x93NUMPY\x01\x00" + bytes(range(256)) * 4)
    big = ["i,x,y"] + [f"{i},{i * 2},{i % 7}" for i in range(1500)]
    (folder / "reports").mkdir(exist_ok=True)
    (folder / "reports" / "big.csv").write_text("\n".join(big) + "\n")
    return folder


RUN_CODE = """import numpy as np
import pandas as pd
np.random.seed(42)
data = np.random.normal(50, 10, 100)
pd.DataFrame({'value': data}).to_csv('data_points.csv')
print('saved', len(data))"""


def demo_script(run_id: str, task: str) -> list[Event]:
    """Events of a short run shaped like the DEMO (fixed times)."""
    ev: list[Event] = []
    m = 0

    def progress(agent: str, t: float) -> Progress:
        return Progress(run_id=run_id, agent=agent, messages=m, max_messages=30, elapsed=t, timeout=600.0,
                        tokens_in=120 * m, tokens_out=40 * m)

    ev.append(Message(run_id=run_id, agent="user", text=task, message_id="m0"))
    m = 1
    ev.append(progress("Planner", 0.5))
    for chunk in ["我将把任务", "分成三步：", "\n\n1. 生成数据\n", "2. 统计\n", "3. 异常值分析"]:
        ev.append(TokenDelta(run_id=run_id, agent="Planner", text=chunk, message_id="m1"))
    ev.append(Message(run_id=run_id, agent="Planner", text="我将把任务分成三步：\n\n1. 生成数据\n2. 统计\n3. 异常值分析", message_id="m1"))
    ev.append(Handoff(run_id=run_id, source="Planner", target="CodeAgent", text="Transferred to CodeAgent"))
    m = 2
    ev.append(progress("CodeAgent", 1.5))
    ev.append(ToolCall(run_id=run_id, agent="CodeAgent", call_id="c1", name="run_code", arguments={"code": RUN_CODE}))
    ev.append(SandboxOutput(run_id=run_id, stream="stdout", text="saved 100\n", call_id="c1"))
    ev.append(FilesChanged(run_id=run_id, added=["data_points.csv"]))
    ev.append(ToolResult(run_id=run_id, agent="CodeAgent", call_id="c1", name="run_code", content="saved 100"))
    ev.append(ToolCall(run_id=run_id, agent="CodeAgent", call_id="c2", name="run_code",
                       arguments={"code": "import matplotlib.pyplot as plt\nplt.hist(data)\nplt.savefig('data_histogram.png')"}))
    ev.append(FilesChanged(run_id=run_id, added=["data_histogram.png", "data_stats.json"]))
    ev.append(ToolResult(run_id=run_id, agent="CodeAgent", call_id="c2", name="run_code", content="[chart]",
                         images=["data_histogram.png"]))
    ev.append(ToolCall(run_id=run_id, agent="CodeAgent", call_id="c3", name="read_file",
                       arguments={"file_path": "missing.txt"}))
    ev.append(ToolResult(run_id=run_id, agent="CodeAgent", call_id="c3", name="read_file",
                         content="FileNotFoundError: missing.txt", is_error=True))
    ev.append(Message(run_id=run_id, agent="CodeAgent", text="数据已生成，统计量保存在 `data_stats.json`。", message_id="m2"))
    ev.append(Handoff(run_id=run_id, source="CodeAgent", target="AnalystAgent"))
    m = 3
    ev.append(progress("AnalystAgent", 2.5))
    for chunk in ["均值约为 **50.12**", "，标准差 9.88。", "\n\n发现 2 个异常值。"]:
        ev.append(TokenDelta(run_id=run_id, agent="AnalystAgent", text=chunk, message_id="m3"))
    ev.append(Message(run_id=run_id, agent="AnalystAgent", text="均值约为 **50.12**，标准差 9.88。\n\n发现 2 个异常值。", message_id="m3"))
    ev.append(FilesChanged(run_id=run_id, added=["outlier_analysis.json"]))
    ev.append(Handoff(run_id=run_id, source="AnalystAgent", target="Planner"))
    m = 4
    ev.append(progress("Planner", 3.0))
    ev.append(Message(run_id=run_id, agent="Planner", text="所有步骤已完成。TERMINATE", message_id="m4"))
    ev.append(RunFinished(run_id=run_id, reason="terminate", messages=4, elapsed=3.0, tokens_in=480, tokens_out=160))
    return ev


def short_script(run_id: str, task: str) -> list[Event]:
    """A few events of each main kind: for key tests that don't need the whole run."""
    return [
        Message(run_id=run_id, agent="user", text=task, message_id="u"),
        TokenDelta(run_id=run_id, agent="Planner", text="Plan: ", message_id="p"),
        TokenDelta(run_id=run_id, agent="Planner", text="one step.", message_id="p"),
        Message(run_id=run_id, agent="Planner", text="Plan: one step.", message_id="p"),
        Handoff(run_id=run_id, source="Planner", target="CodeAgent"),
        ToolCall(run_id=run_id, agent="CodeAgent", call_id="k1", name="run_code", arguments={"code": "print(1)"}),
        ToolResult(run_id=run_id, agent="CodeAgent", call_id="k1", name="run_code", content="1"),
        Message(run_id=run_id, agent="CodeAgent", text="Done.", message_id="c"),
        Handoff(run_id=run_id, source="CodeAgent", target="Planner"),
        Message(run_id=run_id, agent="Planner", text="TERMINATE", message_id="t"),
        RunFinished(run_id=run_id, reason="terminate", messages=4, elapsed=1.0),
    ]


class FakeController:
    """Replays `script(run_id, task)` with `delay` seconds between events."""

    def __init__(
        self,
        settings: Settings,
        *,
        files_dir: Path,
        delay: float = 0.005,
        script: Any = demo_script,
        isolation: str = "bwrap",
        warm_delay: float = 0.0,
        all_files_visible: bool = False,
        record: bool = False,
        cost: float | None = None,
        sandbox_failures: int = 0,
    ) -> None:
        self.settings = settings
        self.demo = settings.is_demo
        self.model_label = "DEMO" if self.demo else settings.openai_model
        self.agent_models = {agent: self.model_label for agent in ("Planner", "CodeAgent", "AnalystAgent")}
        self.limits_text = ""
        self.turn = 1
        self.state = RunState.IDLE
        self.run_id: str | None = None
        self.task: str | None = None
        self.sandbox_kind = settings.sandbox
        self.isolation = "unknown"
        self.files_dir = files_dir
        self.delay = delay
        self.script = script
        self._isolation = isolation
        self._warm_delay = warm_delay
        self._runs = 0
        self._queue: asyncio.Queue[Event] | None = None
        self._player: asyncio.Task[None] | None = None
        self._stop_requested = False
        self.visible: set[str] = set()
        self._all_visible = all_files_visible
        self.calls: list[str] = []
        self.closed = False
        self.record = record
        self._cost = cost
        self.approve = False
        self.approver: Any = None
        self.decisions: list[tuple[str, str, Any]] = []  # (call_id, decision, detail)
        self.resumed: list[tuple[str, str]] = []  # (run_id, instruction)
        self._approving = False
        self.sandbox_failures = sandbox_failures  # how many sandbox starts fail (warm-up, then runs)
        self.sandbox_up = False

    @property
    def cost(self) -> float | None:
        return self._cost

    async def warm_up(self) -> None:
        self.calls.append("warm_up")
        await asyncio.sleep(self._warm_delay)
        self._start_sandbox()

    def _start_sandbox(self) -> None:
        """Like the session: a failed start leaves no sandbox; the next run tries again."""
        if self.sandbox_failures > 0:
            self.sandbox_failures -= 1
            raise FakeSandboxError(SANDBOX_FAILURE)
        self.isolation = self._isolation
        self.sandbox_up = True

    def start(self, task: str) -> str:
        self.calls.append("start")
        return self._launch(task)

    async def resume(self, run_id: str, instruction: str) -> str:
        if not instruction.strip():
            raise ValueError("the instruction is empty")
        self.calls.append("resume")
        self.resumed.append((run_id, instruction))
        return self._launch(instruction, resumed_from=run_id)

    def _launch(self, task: str, resumed_from: str = "") -> str:
        if not task.strip():
            raise ValueError("the task is empty")
        if self.busy:
            raise RuntimeError("a run is already going")
        self._runs += 1
        self.run_id = f"run-{self._runs:03d}"
        self.task = task
        self._stop_requested = False
        self._queue = asyncio.Queue()
        self._move(self.run_id, self._queue, RunState.STARTING)
        self._player = asyncio.create_task(self._play(self.run_id, task, self._queue, resumed_from))
        return self.run_id

    @property
    def busy(self) -> bool:
        return self.state in (RunState.STARTING, RunState.RUNNING, RunState.STOPPING)

    def _put(self, run_id: str, queue: asyncio.Queue[Event], event: Event) -> None:
        if self._cost is not None and isinstance(event, Progress | RunFinished):
            event = dataclasses.replace(
                event, cost=self._cost, agent_tokens={"Planner": [event.tokens_in, event.tokens_out]}
            )
        if self.record:
            self._record(run_id, event)
        queue.put_nowait(event)

    def _move(self, run_id: str, queue: asyncio.Queue[Event], state: RunState, reason: str = "") -> None:
        """Change state and tell it, like the engine (`team.api.TRANSITIONS`)."""
        self.state = state
        self._put(run_id, queue, RunStateChanged(run_id=run_id, state=state, reason=reason))

    def _finish(self, run_id: str, queue: asyncio.Queue[Event], finished: RunFinished) -> None:
        """FINISHED, RunFinished, then the files into the record and OutputsSaved."""
        self._move(run_id, queue, RunState.FINISHED, finished.reason)
        self._put(run_id, queue, finished)
        if self.record:
            self._save_files(run_id)
        self._put(run_id, queue, OutputsSaved(run_id=run_id, files=len(self.visible)))

    async def _play(self, run_id: str, task: str, queue: asyncio.Queue[Event], resumed_from: str = "") -> None:
        approve = self.approve  # read once per run, like the engine
        rejected: dict[str, str] = {}  # call_id -> reason
        edited: set[str] = set()

        def put(event: Event) -> None:
            self._put(run_id, queue, event)

        put(RunStarted(run_id=run_id, task=task, model=self.model_label, demo=self.demo, sandbox=self.sandbox_kind,
                       isolation=self.isolation, max_messages=30, timeout=600.0, resumed_from=resumed_from,
                       approve=approve))
        if not self.sandbox_up:  # like the engine: a run starts the sandbox if the warm-up did not
            put(SandboxStatus(run_id=run_id, state="starting", kind=self.sandbox_kind))
            try:
                self._start_sandbox()
            except FakeSandboxError as exc:
                self._finish(run_id, queue, RunFinished(run_id=run_id, reason="error",
                                                        message=f"the sandbox did not start: {exc}"))
                return
        put(SandboxStatus(run_id=run_id, state="ready", kind=self.sandbox_kind, isolation=self.isolation))
        if self.state == RunState.STARTING:
            self._move(run_id, queue, RunState.RUNNING)
        try:
            for event in self.script(run_id, task):
                await asyncio.sleep(self.delay)
                if self._stop_requested and isinstance(event, Handoff | Message):
                    break  # graceful stop: takes effect at the end of a turn
                call_id = getattr(event, "call_id", "")
                if call_id in rejected and isinstance(event, SandboxOutput | FilesChanged):
                    continue  # rejected code never ran
                if isinstance(event, ToolResult) and call_id in rejected:
                    event = dataclasses.replace(
                        event, is_error=True, images=[],
                        content=f"❌ the user rejected this {event.name}: {rejected[call_id] or 'no reason given'}",
                    )
                elif isinstance(event, ToolResult) and call_id in edited:
                    event = dataclasses.replace(
                        event, content=event.content + "\n(note: the user edited the arguments before they were used)"
                    )
                if isinstance(event, FilesChanged):
                    self.visible.update(event.added + event.changed)
                    self.visible.difference_update(event.removed)
                if isinstance(event, RunFinished):
                    self._finish(run_id, queue, event)
                    return
                put(event)
                if isinstance(event, ToolCall) and approve and event.name in NEEDS_APPROVAL:
                    decision, detail = await self._ask(event, put)
                    if decision == "reject":
                        rejected[event.call_id] = str(detail or "")
                    elif decision == "edit":
                        edited.add(event.call_id)
            self._finish(run_id, queue, RunFinished(run_id=run_id, reason="stopped", message="stopped by the user",
                                                    elapsed=1.0))
        except asyncio.CancelledError:
            self._finish(run_id, queue, RunFinished(run_id=run_id, reason="stopped", message="cancelled", elapsed=1.0))

    async def _ask(self, call: ToolCall, put: Any) -> tuple[str, Any]:
        """Approval mode, like the engine: ApprovalRequested, await the approver, ApprovalDecided."""
        put(ApprovalRequested(run_id=call.run_id, agent=call.agent, call_id=call.call_id, name=call.name,
                              arguments=call.arguments))
        if self.approver is None:
            decision: tuple[str, Any] = ("reject", "nobody is there to approve it")
        else:
            self._approving = True
            try:
                decision = await self.approver(call.agent, call.call_id, call.name, dict(call.arguments))
            finally:
                self._approving = False
        kind = decision[0] if decision[0] in ("approve", "edit", "reject") else "reject"
        self.decisions.append((call.call_id, kind, decision[1]))
        put(ApprovalDecided(run_id=call.run_id, call_id=call.call_id, decision=kind,
                            reason=str(decision[1] or "") if kind == "reject" else ""))
        return kind, decision[1]

    def _record(self, run_id: str, event: Event) -> None:
        folder = self.settings.runs_dir / run_id
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "events.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(event.to_json() + "\n")

    def _save_files(self, run_id: str) -> None:
        folder = self.settings.runs_dir / run_id
        for rel in sorted(self.visible):
            source = self.files_dir / rel
            if source.is_file():
                (folder / "files" / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, folder / "files" / rel)
        (folder / "state.json").write_text("{}")
        (folder / "run.json").write_text(json.dumps({"run_id": run_id, "task": self.task, "started": FIXED_STARTED}))

    async def events(self) -> AsyncIterator[Event]:
        queue = self._queue
        if queue is None:
            return
        while True:
            event = await queue.get()
            yield event
            if isinstance(event, OutputsSaved):
                return

    async def stop(self, force: bool = False) -> None:
        self.calls.append("stop(force)" if force else "stop")
        if not self.busy:
            return
        if self.state != RunState.STOPPING and self.run_id is not None and self._queue is not None:
            self._move(self.run_id, self._queue, RunState.STOPPING, "stopped")
        self._stop_requested = True
        if (force or self._approving) and self._player is not None:  # the engine cancels a waiting approver
            self._player.cancel()
            await asyncio.gather(self._player, return_exceptions=True)

    async def restart(self, keep_sandbox: bool = False) -> str:
        self.calls.append("restart")
        if self.busy:
            await self.stop(force=True)
        if not keep_sandbox:  # like the engine: a fresh, empty sandbox
            self.visible.clear()
        return self.start(self.task or "")

    async def reset_sandbox(self) -> None:
        self.calls.append("reset_sandbox")
        self.visible.clear()

    async def close(self) -> None:
        self.calls.append("close")
        if self._player is not None and not self._player.done():
            self._player.cancel()
            await asyncio.gather(self._player, return_exceptions=True)
        self.closed = True

    def _visible(self, rel: str) -> bool:
        return self._all_visible or rel in self.visible or any(v.startswith(rel + "/") for v in self.visible)

    async def list_files(self) -> list[FileEntry]:
        out = []
        for p in sorted(self.files_dir.rglob("*")):
            rel = p.relative_to(self.files_dir).as_posix()
            if not self._visible(rel):
                continue
            out.append(FileEntry(rel, 0 if p.is_dir() else p.stat().st_size, p.is_dir(), 1_700_000_000.0))
        return out

    async def read_file(self, path: str, max_bytes: int = 1_000_000) -> bytes:
        target = self.files_dir / path
        if not target.is_file():
            raise FakeSandboxError(f"no such file: {path}")
        with target.open("rb") as fh:
            return fh.read(max_bytes)

    async def save_file(self, path: str, dest_dir: Path) -> Path:
        def copy() -> Path:
            dest_dir.mkdir(parents=True, exist_ok=True)
            target = dest_dir / Path(path).name
            shutil.copyfile(self.files_dir / path, target)
            return target

        return await asyncio.to_thread(copy)

    # The rest of `team.api.Controller`: one scripted turn per run, data copied as files.
    def can_follow_up(self) -> bool:
        return False  # each script is one whole turn: a new task starts a new run

    def follow_up(self, text: str) -> str:
        raise RuntimeError("the fake controller plays one scripted turn per run")

    async def add_data(self, paths: list[str], *, progress: Any = None, consent: bool = False) -> list[dict[str, Any]]:
        self.calls.append("add_data")
        copied = []
        for source in map(Path, paths):
            target = self.files_dir / "data" / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(shutil.copyfile, source, target)
            self.visible.add(f"data/{source.name}")
            copied.append({"path": f"data/{source.name}", "size": target.stat().st_size})
        return copied

    async def table_preview(self, path: str, *, sheet: str | int = 0, stats: bool = False) -> dict[str, Any]:
        """The sandbox's own reader (team/table_guest.py), run on the host folder."""
        import contextlib
        import io

        from team import table_guest
        from team.tables import PREVIEW_ROWS

        def read() -> dict[str, Any]:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                table_guest.preview(str(self.files_dir / path), PREVIEW_ROWS, sheet, stats)
            return json.loads(out.getvalue())

        return await asyncio.to_thread(read)


def write_record(
    runs_dir: Path,
    run_id: str,
    task: str,
    *,
    files_dir: Path | None = None,
    files: tuple[str, ...] = ("data_points.csv", "data_stats.json", "analysis.py"),
    started: str = FIXED_STARTED,
    reason: str = "terminate",
    cost: float | None = None,
    resumable: bool = True,
    script: Any = short_script,
) -> Path:
    """A run record with fixed content (ids, times, files), as the engine writes it."""
    folder = Path(runs_dir) / run_id
    folder.mkdir(parents=True, exist_ok=True)
    events: list[Event] = [
        RunStarted(run_id=run_id, task=task, model="DEMO", demo=True, sandbox="local", isolation="bwrap",
                   max_messages=30, timeout=600.0)
    ]
    for event in script(run_id, task):
        if isinstance(event, RunFinished):
            event = dataclasses.replace(event, reason=reason, cost=cost, tokens_in=1200, tokens_out=340,
                                        agent_tokens={"Planner": [800, 200], "CodeAgent": [400, 140]})
        events.append(event)
    with (folder / "events.jsonl").open("w", encoding="utf-8") as fh:
        for seq, event in enumerate(events, 1):
            fh.write(dataclasses.replace(event, seq=seq, ts=seq * 0.1).to_json() + "\n")
    if files_dir is not None:
        for rel in files:
            (folder / "files" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(files_dir / rel, folder / "files" / rel)
    if resumable:
        (folder / "state.json").write_text("{}")
    (folder / "run.json").write_text(json.dumps({"run_id": run_id, "task": task, "started": started}))
    return folder
