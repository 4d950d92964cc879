"""The live transcript: one block per message, tool call, handoff or notice.

Why it is built this way (see DESIGN.md "Transcript" budgets):
- Events arrive through the synchronous `add_event()`; all DOM work happens in
  one `_flush()` every 50 ms, so a burst of token deltas becomes one
  `MarkdownStream.write` per frame and a burst of messages one `mount_all`.
- A mounted `Markdown` costs ~280 KB, so at most `MAX_MOUNTED` blocks stay in
  the DOM; older ones are removed (a line says how many) while every event
  stays in `self.record`.
- `anchor()` keeps the view at the bottom until the user scrolls up.
- Every text from outside (model text, code, output, results, notes) is made
  inert (tui/inert.py) where it becomes a renderable; `self.record` keeps the
  events exactly as they came.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from textual import on
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from team.filetypes import human_size
from tui.format import (
    agent_tokens_text,
    cost_label,
    reason_label,
)
from tui.inert import inert, inert_text
from tui.messages import EngineEvent
from tui.widgets.transcript_items import KEEP_RICH, MAX_MOUNTED, ImageLoader, MessageView, ToolView

if TYPE_CHECKING:
    from team.events import (
        ApprovalDecided,
        Event,
        Handoff,
        Message,
        Notice,
        RunFinished,
        RunStarted,
        SandboxOutput,
        SandboxStatus,
        TokenDelta,
        ToolCall,
        ToolResult,
    )

FLUSH_INTERVAL = 0.05


class Transcript(VerticalScroll, can_focus_children=False):
    """Scrolling list of transcript items fed with `team.events` objects.

    One Tab stop: its items (a tool call's collapsible title…) are not focusable,
    so Tab moves between panes; a click still folds a tool call."""

    DEFAULT_CSS = """
    Transcript { layout: stream; }
    """

    def __init__(
        self, image_loader: ImageLoader | None = None, notes: list[tuple[str, str]] | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self._first_notes = list(notes or [])  # (text, style): composed, so they are in the first paint
        self.record: list[Event] = []
        self.image_loader = image_loader
        self.hidden = 0
        self._queued: list[Widget] = []
        self._live_views: dict[str, MessageView] = {}
        self._tool_views: dict[str, ToolView] = {}
        self._last_tool: ToolView | None = None
        self._flushing = False
        self._dirty = False

    def compose(self):
        hidden_note = Static("", id="hidden-note", classes="note")
        hidden_note.display = False  # hidden from the start: no restyle and relayout as it mounts
        yield hidden_note
        for text, style in self._first_notes:
            yield Static(inert_text(text, style=style), classes="item note")

    def on_mount(self) -> None:
        self.anchor()
        self.set_interval(FLUSH_INTERVAL, self._flush)

    # -- feeding ---------------------------------------------------------

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        try:
            self.add_event(message.event)
        except Exception as exc:  # a rendering bug must not end the run's view; the run goes on
            self.log.error(f"transcript failed on {message.event.type}: {exc!r}")

    def add_event(self, event: Event) -> None:
        """Queue an event for rendering (cheap; the DOM is touched on the next flush)."""
        if event.type != "token_delta":
            self.record.append(event)
        handler = getattr(self, f"_ev_{event.type}", None)
        if handler is not None:
            handler(event)
            self._dirty = True

    def add_note(self, text: str, style: str = "dim") -> None:
        self._queued.append(Static(inert_text(text, style=style), classes="item note"))
        self._dirty = True

    def _ev_token_delta(self, ev: TokenDelta) -> None:
        view = self._live_views.get(ev.message_id)
        if view is None:
            view = MessageView(ev.agent, message_id=ev.message_id, streaming=True)
            self._live_views[ev.message_id] = view
            self._queued.append(view)
        view.add_token(ev.text)

    def _ev_message(self, ev: Message) -> None:
        view = self._live_views.get(ev.message_id) if ev.message_id else None
        if view is not None:
            view.finish(ev.text)
            return
        if ev.text.strip():
            self._queued.append(MessageView(ev.agent, ev.text, ev.message_id))

    def _ev_tool_call(self, ev: ToolCall) -> None:
        view = ToolView(ev, self.image_loader)
        self._tool_views[ev.call_id] = view
        self._last_tool = view
        self._queued.append(view)
        if len(self._tool_views) > 4 * MAX_MOUNTED:  # forget the oldest calls
            for key in list(self._tool_views)[: MAX_MOUNTED]:
                del self._tool_views[key]

    def _ev_tool_result(self, ev: ToolResult) -> None:
        view = self._tool_views.get(ev.call_id)
        if view is None:
            from team.events import ToolCall

            view = ToolView(ToolCall(agent=ev.agent, call_id=ev.call_id, name=ev.name), self.image_loader)
            self._queued.append(view)
        view.set_result(ev)

    def _ev_sandbox_output(self, ev: SandboxOutput) -> None:
        view = self._tool_views.get(ev.call_id) if ev.call_id else self._last_tool
        if view is not None:
            view.add_output(ev.text)

    def _ev_handoff(self, ev: Handoff) -> None:
        self._queued.append(Static(inert_text(f"{ev.source} → {ev.target}"), classes="item handoff"))

    def _ev_notice(self, ev: Notice) -> None:
        style = {"error": "bold red", "warning": "yellow"}.get(ev.level, "dim")
        icon = {"error": "✗", "warning": "⚠"}.get(ev.level, "ℹ")
        self.add_note(f"{icon} {ev.text}", style)

    def _ev_sandbox_status(self, ev: SandboxStatus) -> None:
        if ev.state in ("restarted", "error"):
            style = "bold red" if ev.state == "error" else "yellow"
            self.add_note(f"⚠ sandbox {ev.state}: {ev.detail}".rstrip(": "), style)

    def _ev_approval_decided(self, ev: ApprovalDecided) -> None:
        if ev.decision == "reject":
            self.add_note(f"✗ rejected by you: {ev.reason or 'no reason given'}", "bold red")
        else:
            self.add_note("✓ approved by you" + (" (edited)" if ev.decision == "edit" else ""), "green")

    def _ev_run_started(self, ev: RunStarted) -> None:
        model = ev.model  # the controller's label: "DEMO" in the DEMO
        if ev.turn > 1:  # a follow-up in the same conversation: same team, sandbox and variables
            self._queued.append(Static(inert_text(f"──── turn {ev.turn} · follow-up ────", style="bold"), classes="item turn-divider"))
        line = f"run {ev.run_id} · {model} · {ev.sandbox}/{ev.isolation}"
        if ev.turn > 1:
            line += f" · turn {ev.turn}"
        if ev.resumed_from:
            line += f" · ↻ continues {ev.resumed_from}"
        if ev.approve:
            line += " · approval mode"
        self._queued.append(Static(inert_text(line), classes="item run-line"))

    def _ev_data_uploaded(self, ev: Event) -> None:
        files = getattr(ev, "files", [])
        names = ", ".join(f"{f.get('path')} ({human_size(int(f.get('size', 0)))})" for f in files[:6])
        more = f" and {len(files) - 6} more" if len(files) > 6 else ""
        self.add_note(f"📥 data in the sandbox: {names}{more}", "bold")
        for item in getattr(ev, "skipped", [])[:3]:
            self.add_note(f"   not uploaded: {item.get('path')} ({item.get('reason')})", "yellow")

    def _ev_run_finished(self, ev: RunFinished) -> None:
        label = reason_label(ev.reason)
        text = inert_text(f"■ finished: {label}", style="bold red" if ev.reason == "error" else "bold")
        text.append(f" · {ev.messages} messages · {ev.elapsed:.0f} s", style="dim")
        if ev.cost is not None:
            text.append(f" · {cost_label(ev.cost)}", style="dim")
        if ev.agent_tokens:
            text.append(inert(f"\ntokens: {agent_tokens_text(ev.agent_tokens)}"), style="dim")
        if ev.message:
            text.append("\n" + inert(ev.message), style="red" if ev.reason == "error" else "")
        self._queued.append(Static(text, classes="item run-line finished"))
        for view in self._live_views.values():  # a stopped run may leave a half-streamed message
            if view.final is None:
                view.finish(view.text)

    # -- rendering ---------------------------------------------------------

    @property
    def items(self) -> list[Widget]:
        """Mounted transcript items (without the "hidden" note)."""
        return [w for w in self.children if w.id != "hidden-note"]

    async def _flush(self) -> None:
        if self._flushing or not self._dirty:
            return
        self._flushing = True
        self._dirty = False
        try:
            if self._queued:
                await self._mount_pending()
            for key, view in list(self._live_views.items()):
                if view.dropped:
                    self._live_views.pop(key, None)
                    continue
                if not view.is_attached:  # queued after this flush began
                    self._dirty = True
                    continue
                await view.flush()
                if view.done:
                    self._live_views.pop(key, None)
                elif view.buffer or view.final is not None:
                    self._dirty = True
        finally:
            self._flushing = False

    async def _mount_pending(self) -> None:
        new, self._queued = self._queued, []
        if len(new) > MAX_MOUNTED:
            skipped, new = new[:-MAX_MOUNTED], new[-MAX_MOUNTED:]
            self.hidden += len(skipped)
            for view in skipped:
                if isinstance(view, MessageView):  # the live views (notes have no stream)
                    view.dropped = True
        for view in new[:-KEEP_RICH]:  # a burst: mount the older ones compact right away
            if isinstance(view, MessageView) and view.done:
                view.compact = True
        with self.app.batch_update():
            await self.mount_all(new)
            items = self.items
            overflow = len(items) - MAX_MOUNTED
            if overflow > 0:
                old = items[:overflow]
                for view in old:
                    if isinstance(view, MessageView):
                        view.dropped = True
                        await view.stop_stream()
                await self.remove_children(old)
                self.hidden += overflow
            for view in self.items[:-KEEP_RICH]:
                if isinstance(view, MessageView) and view.done and not view.compact:
                    await view.compact_now()
            note = self.query_one("#hidden-note", Static)
            note.display = self.hidden > 0
            if self.hidden:
                note.update(f"… {self.hidden} earlier items hidden (all kept in the run record)")

    async def flush_now(self) -> None:
        """Render everything posted so far (tests, snapshots, end of run): the events
        still in this pane's message queue first, then what they queued."""
        from textual._context import active_message_pump

        if active_message_pump.get(None) is not self:  # (from its own handler the queue cannot drain)
            while not self._message_queue.empty():  # noqa: ASYNC110  (Textual's queue has no "drained" event)
                await asyncio.sleep(0.005)
        self._dirty = True
        while self._dirty or self._flushing:
            if self._flushing:
                await asyncio.sleep(0.01)
                continue
            await self._flush()
        if active_message_pump.get(None) is not self and self.is_attached:
            # Markdown mounts its last blocks a frame or two later and the anchor then scrolls
            # to the end: wait until two refreshes in a row leave the size and place alone.
            last = None
            for _ in range(20):
                refreshed = asyncio.Event()
                self.call_after_refresh(refreshed.set)
                await refreshed.wait()
                shape = (self.virtual_size, self.scroll_y)
                if shape == last:
                    break
                last = shape

    async def clear(self) -> None:
        """Forget everything (Ctrl+N)."""
        for view in self._live_views.values():
            if view.is_attached:
                await view.stop_stream()
        self.record.clear()
        self._queued.clear()
        self._live_views.clear()
        self._tool_views.clear()
        self._last_tool = None
        self.hidden = 0
        await self.remove_children(self.items)
        self.query_one("#hidden-note").display = False
        self.anchor()

    def scroll_to_bottom(self) -> None:
        """Jump to the end and re-engage autoscroll."""
        self.anchor()
