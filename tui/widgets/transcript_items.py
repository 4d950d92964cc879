"""The blocks of the transcript: a message (streamed as Markdown, compacted to one `Static`
when old) and a tool call with its code, live output, result and pictures. Everything from
outside is made inert (tui/inert.py) where it becomes a renderable."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Label, Static

from team.sanitize import InertStream
from tui.format import (
    SYNTAX_THEME,
    lexer_for,
)
from tui.inert import inert, inert_content, inert_text
from tui.widgets.images import fit, make_image

if TYPE_CHECKING:
    from team.events import ToolCall, ToolResult

MAX_MOUNTED = 150
STREAM_STOP_WAIT = 2.0  # seconds a finished message waits for its stream to drain
_STOPPING: set[asyncio.Future[None]] = set()  # stream stops under way (kept referenced)
THUMB_WIDTH = 40  # cells
KEEP_RICH = 30  # the newest items keep a Textual `Markdown`; older ones become one `Static`
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
        """The view's `Markdown` widget, or None while it has none: not composed yet, or
        its children already removed as the app shuts down (the flush timer still ticks)."""
        from textual.widgets import Markdown

        found = self.query_children(Markdown)
        return found.first() if found else None

    def add_token(self, text: str) -> None:
        self.buffer.append(text)
        self.text += text

    def finish(self, text: str) -> None:
        self.final = text

    async def flush(self) -> None:
        """Write buffered tokens; on the final message stop the stream and fix up the text.
        Without a `Markdown` to write to, the tokens wait in the buffer for the next flush."""
        markdown = self.markdown
        if markdown is None:
            return
        if self.buffer:
            chunk = "".join(self.buffer)
            self.buffer.clear()
            if self.stream is None:
                from textual.widgets import Markdown

                self.stream = Markdown.get_stream(markdown)
            await self.stream.write(self.inert_stream.feed(chunk))
        if self.final is not None and not self.done:
            held = self.inert_stream.flush()  # a "\r" that ended the last chunk
            if held and self.stream is not None:
                await self.stream.write(held)
            await self.stop_stream()
            shown = markdown.source.strip()  # what the stream rendered (its last write can be lost)
            if self.final.strip() != self.text.strip() or shown != inert(self.final).strip():
                self.text = self.final
                await markdown.update(inert(self.final))
            self.done = True

    async def stop_stream(self) -> None:
        """Stop the Markdown stream, never waiting on it unboundedly.

        Textual's `MarkdownStream.stop` cancels its task and awaits it; that task swallows one
        cancellation and then appends what is pending. When the app shuts down while a
        message ends, that append never completes and a cancellation of ours (the shutdown
        stopping the flush timer) coalesces with the swallowed one: the app hung on exit. The
        stop runs in its own task here; this waits for it at most `STREAM_STOP_WAIT` and is
        cancelled at once when the pane is torn down."""
        if self.stream is not None:
            stream, self.stream = self.stream, None
            stopping = asyncio.ensure_future(stream.stop())
            _STOPPING.add(stopping)
            stopping.add_done_callback(_STOPPING.discard)
            await asyncio.wait({stopping}, timeout=STREAM_STOP_WAIT)

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
        from textual.widgets import Collapsible  # with the first tool call, not at start-up

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
        import json  # (not before the first paint)

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
        outputs, results = self.query_children(".output"), self.query_children(".result")
        if not outputs or not results:  # its children already removed: the app is shutting down
            return
        out = outputs.first(Static)
        out.display = bool(self.output) and self.result is None
        out.update(self._output_text())
        results.first(Static).update(self._result_text())
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
        boxes = self.query_children(".images")
        if self.image_loader is None or not boxes:
            return
        box = boxes.first(Vertical)
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
