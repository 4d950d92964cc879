"""The run driver: the one worker that starts a run (or restarts, resumes, follows
up) and hands each of its events to the panes, plus the keys that steer it.

Every engine event becomes one `EngineEvent` message posted to each pane that
shows runs (`run_panes`: the transcript, the status bar, the file tree, and the
app itself for toasts); each pane handles it with `@on(EngineEvent)`. Events of
an older run (by run id) are dropped.

Run state is told, not guessed: the app shows what `RunStateChanged` says. An
engine that does not tell yet is still understood: the controller's `state` is
read once a run is launched, and `RunFinished` implies FINISHED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.message_pump import MessagePump

from team.api import ACTIVE
from team.errors import one_line
from tui.format import reason_label
from tui.messages import EngineEvent
from tui.panes import Panes
from tui.widgets.task_input import TaskInput

if TYPE_CHECKING:
    from team.api import Controller
    from team.events import Event

BUSY = ACTIVE  # a run is going: Enter does not start another (team/api.py)
RESTART_NOTE = "Restarted with a fresh sandbox: the previous run's files are gone."


class RunDriver(Panes):
    """Drive runs and route their events to the panes (mixed into `SbteamApp`)."""

    ctrl: Controller | None
    run_id: str | None
    current_task: str | None
    run_state: str
    warming: bool
    run_panes: list[MessagePump]
    _quitting: bool
    _state_told: bool  # the controller emits RunStateChanged (else its `state` is read)
    _stop_asked: str | None  # the run a stop was asked for: a second Esc forces even before "stopping" is told
    _sending: bool  # a task was sent and the controller has not taken it yet
    _keys_for: tuple[bool, bool] = (False, False)  # (busy, has a task) the footer's keys were last shown for

    @property
    def busy(self) -> bool:
        return self.run_state in BUSY or self._sending

    # -- events to panes ----------------------------------------------------------------

    def _shown_run(self) -> str | None:
        return self.run_id

    def handle_event(self, event: Event) -> None:
        """Post one engine event to every pane that shows runs and takes events of its type
        (`ENGINE_EVENTS` on the pane; token deltas, the most frequent, reach only two)."""
        for pane in self.run_panes:
            wanted = getattr(pane, "ENGINE_EVENTS", None)
            if wanted is None or event.type in wanted:
                pane.post_message(EngineEvent(event, self._shown_run))

    ENGINE_EVENTS = frozenset({"run_state", "sandbox_status", "notice", "run_finished", "outputs_saved"})

    @on(EngineEvent)
    def _run_event(self, message: EngineEvent) -> None:
        """The app's part: the run state, toasts, approvals that can no longer be answered."""
        from team.events import Notice, OutputsSaved, RunFinished, RunStateChanged, SandboxStatus

        event = message.event  # (one of a run the user has left is dropped before this: EngineEvent.stale)
        if isinstance(event, RunStateChanged):
            self._state_told = True
            self.set_run_state(event.state)
        elif isinstance(event, SandboxStatus) and event.state == "error":
            self.notify(f"Sandbox error: {event.detail}", severity="error", timeout=15)
        elif isinstance(event, Notice) and event.level != "info":
            self.notify(event.text, severity=event.level, timeout=10)
        elif isinstance(event, RunFinished):
            self.set_run_state("finished")  # implied, for an engine that does not tell its state yet
            self.approvals.close_all()
            if event.reason == "error":
                self.notify(event.message or "the run failed", title="Run failed", severity="error", timeout=20)
            else:
                self.notify(f"Finished: {reason_label(event.reason)}", timeout=4)
        elif isinstance(event, OutputsSaved) and event.problem:
            self.notify(f"The run's record is incomplete: {event.problem}", severity="warning", timeout=10)

    def set_run_state(self, state: str) -> None:
        self.run_state = str(state)
        self.render_state()

    def render_state(self) -> None:
        """The state in the status bar (the sandbox warming up and quitting are the app's own)."""
        state = self.run_state
        if self._quitting and self.config_error is None:
            state = "quitting"
        elif state == "idle" and self.warming:
            state = "starting sandbox"
        self.status.set(state=state)
        keys = (self.run_state in BUSY, bool(self.current_task))  # what `check_action` looks at
        if keys != self._keys_for:  # the footer recomposes on a refresh: only when a key changes
            self._keys_for = keys
            self.refresh_bindings()

    # -- sending ------------------------------------------------------------------------

    @on(TaskInput.Submitted)
    def _task_submitted(self, event: TaskInput.Submitted) -> None:
        if self.busy:
            self.notify("A run is going: Esc stops it, Ctrl+R restarts it.", severity="warning")
            return
        event.input.remember(event.text)
        event.input.load_text("")
        self.send(event.text)

    def send(self, task: str) -> None:
        """Send a task: a follow-up in the current conversation when one has finished
        (its team remembers it, same sandbox and variables), else a new conversation."""
        self.current_task = task
        self._sending = True
        self.status.reset_run()
        self._drive_run(task, follow_up=self.run_id is not None and self.ctrl is not None and self.ctrl.can_follow_up())

    def action_send_from_editor(self) -> None:
        """The palette's Send task: as Enter in the editor."""
        self.screen_stack[0].query_one(TaskInput).action_submit()

    @work(exclusive=True, group="run", exit_on_error=False)
    async def _drive_run(self, task: str, restart: bool = False, resume_from: str = "", follow_up: bool = False) -> None:
        """The one worker that starts (or restarts, resumes, follows up) a run and routes its events."""
        try:
            ctrl = await self._controller()
            restarts_turn = restart and ctrl.turn > 1  # a follow-up turn keeps the sandbox
            if restart and not restarts_turn:  # ctrl.restart() replaces the sandbox: nothing more of the old one
                await self._forget_sandbox_files(RESTART_NOTE)
            try:
                if resume_from:
                    run_id = await ctrl.resume(resume_from, task)
                elif follow_up:
                    run_id = ctrl.follow_up(task)
                else:
                    run_id = await ctrl.restart() if restart else ctrl.start(task)
            except (ValueError, RuntimeError) as exc:  # an empty task, a run already going: said, not raised
                self.notify(str(exc), severity="warning")
                return
        finally:
            self._sending = False
        self.run_id = run_id
        if not self._state_told:
            self.set_run_state(ctrl.state)
        if restart and not restarts_turn:
            self._refresh_files()  # the new sandbox's (empty) folder
        from team.events import RunFinished  # loaded with the engine, after the first paint

        finished = False
        try:
            async for event in ctrl.events():
                if event.run_id and event.run_id != self.run_id:
                    continue  # a late event of an earlier run
                self.handle_event(event)
                finished = finished or isinstance(event, RunFinished)
        except Exception as exc:  # the engine should not raise here; shown as the run's error, app stays usable
            self.handle_event(RunFinished(run_id=run_id, reason="error", message=f"{type(exc).__name__}: {exc}"))
            finished = True
        if not finished and self.run_id == run_id:
            self.set_run_state("finished")
            self.status.set(reason="stopped")

    # -- steering -----------------------------------------------------------------------

    def action_stop(self) -> None:
        """Esc: graceful stop; a second Esc while stopping cancels at once."""
        if self.ctrl is None:
            return
        force = self.run_state == "stopping" or (self.run_id is not None and self._stop_asked == self.run_id)
        self._stop_asked = self.run_id
        if not self._state_told:
            self.set_run_state("stopping")
        self.notify("Force stopping…" if force else "Stopping at the end of this turn (Esc again: force)", timeout=3)
        self.run_worker(self.ctrl.stop(force=force), group="stop", exit_on_error=False)

    def action_restart(self) -> None:
        """Ctrl+R: stop and run the same task again with a fresh team."""
        if not self.current_task:
            return
        if self.ctrl is None or self.ctrl.state == "idle":
            self.send(self.current_task)
            return
        self.transcript.add_note("↻ restarted with the same task", "bold")
        self.status.reset_run()
        self._drive_run(self.current_task, restart=True)

    def action_new_task(self) -> None:
        """Ctrl+N: ask keep/reset sandbox, then clear the transcript for a new task."""
        from tui.screens.new_task import NewTaskModal

        self.push_screen(NewTaskModal(self.run_state in BUSY), self._new_task_chosen)

    def _new_task_chosen(self, choice: str | None) -> None:
        if choice is not None:
            self._start_over(choice == "reset")

    @work(exclusive=True, group="new-task", exit_on_error=False)
    async def _start_over(self, reset: bool) -> None:
        ctrl = self.ctrl
        self.workers.cancel_group(self, "run")
        self.run_id = None
        self._sending = False
        if ctrl is not None and ctrl.state in BUSY:
            await ctrl.stop(force=True)
        await self.transcript.clear()
        self.current_task = None
        self.set_run_state("idle")  # a new conversation: no run in it yet
        self.status.reset_run()
        task_input = self.screen_stack[0].query_one(TaskInput)
        task_input.load_text("")
        task_input.focus()
        if reset and ctrl is not None:
            self.warming = True
            self.render_state()
            failed = ""
            try:
                await ctrl.reset_sandbox()
            except Exception as exc:  # shown in the status bar and a toast; the next run tries again
                failed = one_line(exc)
                self.notify(f"Sandbox reset failed: {failed}", severity="error")
            finally:
                self.warming = False
            self.status.set(sandbox_kind=ctrl.sandbox_kind, isolation=ctrl.isolation, sandbox_error=failed)
            await self._forget_sandbox_files("A fresh, empty sandbox.")
        self.render_state()
        self._refresh_files()

    def resume_run(self, run_id: str, instruction: str) -> None:
        """Called by the history's Resume: back to the main screen, then continue `run_id`."""
        self._resume_from_history(run_id, instruction)

    @work(exclusive=True, group="resume", exit_on_error=False)
    async def _resume_from_history(self, run_id: str, instruction: str) -> None:
        while len(self.screen_stack) > 1:
            await self.pop_screen()
        if self.busy:
            self.notify("A run is going: stop it (Esc) before resuming another one.", severity="warning")
            return
        self.current_task = instruction
        self.transcript.add_note(f"↻ resuming run {run_id}: {instruction}", "bold")
        self.status.reset_run()
        self._drive_run(instruction, resume_from=run_id)

    if TYPE_CHECKING:  # provided by the other parts of the app
        config_error: Any

        async def _controller(self) -> Controller: ...
        async def _forget_sandbox_files(self, note: str) -> None: ...
        def _refresh_files(self) -> Any: ...

