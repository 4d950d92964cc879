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
import json
from collections.abc import Awaitable, Callable
from typing import Any

from rich.text import Text
from textual import on
from textual.containers import Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Collapsible, Label, Static

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
from team.filetypes import human_size
from team.sanitize import InertStream
from tui.format import (
    SYNTAX_THEME,
    agent_tokens_text,
    cost_label,
    lexer_for,
    reason_label,
)
from tui.inert import inert, inert_content, inert_text
from tui.messages import EngineEvent
from tui.widgets.images import fit, make_image

MAX_MOUNTED = 150
THUMB_WIDTH = 40  # cells
KEEP_RICH = 30  # the newest items keep a Textual `Markdown`; older ones become one `Static`
FLUSH_INTERVAL = 0.05
MAX_OUTPUT_CHARS = 8_000
MAX_RESULT_CHARS = 4_000

AGENT_CLASSES = {
    "Planner": "agent-planner",
    "CodeAgent": "agent-code",
    "AnalystAgent": "agent-analyst",
    "user": "agent-user",
}

ImageLoader = Callable[[str], Awaitable[bytes]]


def agent_class(agent: str) -> str:
    return AGENT_CLASSES.get(agent, "agent-other")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more characters)"


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


def call_summary(name: str, arguments: dict[str, Any]) -> str:
    """One-line summary of a tool call for the collapsible's title."""
    if name == "run_code":
        first = next((ln for ln in str(arguments.get("code", "")).splitlines() if ln.strip()), "")
        return f"run_code  {first[:60]}"
    if "file_path" in arguments:
        return f"{name}({arguments['file_path']})"
    parts = [f"{k}={str(v)[:40]!s}" for k, v in arguments.items()]
    return f"{name}({', '.join(parts)})"


class MessageView(Vertical):
    """One agent message.

    While it streams, token deltas go into a Textual `Markdown` through
    `MarkdownStream`. Once it is final and no longer among the newest
    `KEEP_RICH` items it is *compacted*: the `Markdown` (a widget per block,
    ~280 KB, ~80 ms to mount) is replaced by one `Static` holding a Rich
    Markdown renderable (~13 ms), so long transcripts stay cheap.
    """

    def __init__(self, agent: str, text: str = "", message_id: str = "", streaming: bool = False) -> None:
        super().__init__(classes=f"item message {agent_class(agent)}")
        self.agent = agent
        self.message_id = message_id
        self.text = text  # what has been written so far (or the final text)
        self.buffer: list[str] = []
        self.final: str | None = None if streaming else text
        self.done = not streaming
        self.dropped = False  # never mounted or removed from the DOM (over MAX_MOUNTED)
        self.compact = False  # render as one Static (set before mounting, or via compact_now)
        self.stream: Any = None
        self.inert_stream = InertStream()  # the streamed tokens, made inert chunk by chunk

    def compose(self):
        yield Label(inert_text("Task" if self.agent == "user" else self.agent), classes="who")
        if self.compact and self.done:
            yield Static(self._rich_markdown(), classes="body")
        else:
            from textual.widgets import Markdown

            # A streaming view starts empty: its buffer holds every token so far.
            yield Markdown(inert(self.text) if self.done else "")

    def _rich_markdown(self) -> Any:
        from rich.markdown import Markdown as RichMarkdown

        return RichMarkdown(inert(self.text), code_theme=SYNTAX_THEME)

    @property
    def markdown(self) -> Any:
        from textual.widgets import Markdown

        return self.query_one(Markdown)

    def add_token(self, text: str) -> None:
        self.buffer.append(text)
        self.text += text

    def finish(self, text: str) -> None:
        self.final = text

    async def flush(self) -> None:
        """Write buffered tokens; on the final message stop the stream and fix up the text."""
        if self.buffer:
            chunk = "".join(self.buffer)
            self.buffer.clear()
            if self.stream is None:
                from textual.widgets import Markdown

                self.stream = Markdown.get_stream(self.markdown)
            await self.stream.write(self.inert_stream.feed(chunk))
        if self.final is not None and not self.done:
            held = self.inert_stream.flush()  # a "\r" that ended the last chunk
            if held and self.stream is not None:
                await self.stream.write(held)
            await self.stop_stream()
            shown = self.markdown.source.strip()  # what the stream rendered (its last write can be lost)
            if self.final.strip() != self.text.strip() or shown != inert(self.final).strip():
                self.text = self.final
                await self.markdown.update(inert(self.final))
            self.done = True

    async def stop_stream(self) -> None:
        if self.stream is not None:
            stream, self.stream = self.stream, None
            await stream.stop()

    async def compact_now(self) -> None:
        """Swap the Markdown widget for a single Static (finished messages only)."""
        if self.compact or not self.done or not self.is_attached:
            return
        self.compact = True
        from textual.widgets import Markdown

        old = self.query(Markdown)
        await self.mount(Static(self._rich_markdown(), classes="body"))
        await old.remove()


class ToolView(Vertical):
    """A tool call (collapsible, code highlighted), its live output and its result."""

    def __init__(self, call: ToolCall, image_loader: ImageLoader | None = None) -> None:
        super().__init__(classes=f"item tool {agent_class(call.agent)}")
        self.call = call
        self.output = ""
        self.result: ToolResult | None = None
        self.image_loader = image_loader
        self._images_loaded = False
        self._ready = False  # children exist only after on_mount

    def compose(self):
        call = self.call
        title = inert_content(f"⚙ {call.agent} · {call_summary(call.name, call.arguments)}")
        with Collapsible(title=title, collapsed=False):
            yield Static(self._body(), classes="code")
        yield Static(self._output_text(), classes="output")
        yield Static(self._result_text(), classes="result")
        yield Vertical(classes="images")

    def on_mount(self) -> None:
        self._ready = True
        self._sync()

    def _body(self) -> Any:
        from rich.syntax import Syntax

        args = self.call.arguments
        if self.call.name == "run_code" and "code" in args:
            return Syntax(inert(str(args["code"])), "python", theme=SYNTAX_THEME, word_wrap=True)
        if self.call.name == "write_file" and "content" in args:
            path = str(args.get("file_path", ""))
            content = inert(_clip(str(args["content"]), 6_000))
            return Syntax(content, lexer_for(path), theme=SYNTAX_THEME, word_wrap=True)
        shown = inert(json.dumps(args, ensure_ascii=False, indent=2))
        return Syntax(shown, "json", theme=SYNTAX_THEME, word_wrap=True)

    def _output_text(self) -> Text:
        return Text(inert(_tail(self.output, MAX_OUTPUT_CHARS)).rstrip("\n"), style="dim")

    def _result_text(self) -> Text:
        if self.result is None:
            return Text("… running", style="dim italic") if self.call.name == "run_code" else Text("")
        mark, style = ("✗ ", "bold red") if self.result.is_error else ("→ ", "")
        text = Text(mark, style="bold red" if self.result.is_error else "green")
        text.append(inert(_clip(self.result.content.rstrip(), MAX_RESULT_CHARS)), style=style)
        return text

    def _sync(self) -> None:
        if not self._ready or not self.is_attached:
            return
        out = self.query_one(".output", Static)
        out.display = bool(self.output) and self.result is None
        out.update(self._output_text())
        self.query_one(".result", Static).update(self._result_text())
        self.set_class(self.result is not None and self.result.is_error, "error")
        if self.result is not None and self.result.images and not self._images_loaded:
            self._images_loaded = True
            self.run_worker(self._load_images(list(self.result.images)), group="thumbs")

    def add_output(self, text: str) -> None:
        self.output += text
        self._sync()

    def set_result(self, result: ToolResult) -> None:
        self.result = result
        self._sync()

    async def _load_images(self, paths: list[str]) -> None:
        if self.image_loader is None:
            return
        box = self.query_one(".images", Vertical)
        for path in paths[:4]:
            try:
                data = await self.image_loader(path)
            except Exception as exc:  # a missing chart is worth a line, not a crash
                await box.mount(Static(inert_text(f"(chart {path}: {exc})", style="dim")))
                continue
            image = make_image(data, classes="thumb")
            if image is not None:
                fit(image, THUMB_WIDTH)
            if image is None:
                await box.mount(Static(inert_text(f"🖼  {path}", style="dim")))
            else:
                await box.mount(Static(inert_text(f"🖼  {path}", style="dim")), image)


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
        yield Static("", id="hidden-note", classes="note")
        for text, style in self._first_notes:
            yield Static(inert_text(text, style=style), classes="item note")

    def on_mount(self) -> None:
        self.query_one("#hidden-note").display = False
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
        if not isinstance(event, TokenDelta):
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
