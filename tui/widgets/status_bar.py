"""The two bottom lines: the termination-status bar (what the run is doing and
how close it is to a limit) and the key footer. Both fit the terminal's width
by leaving out their low-priority parts, never by cutting the line.

The status bar is one `Static` re-rendered from plain attributes instead of a
dozen reactive labels: the whole line is a handful of spans and is rebuilt at
most a few times a second (Progress events, a 1 s elapsed tick while running).
Its values (agent, model, sandbox, a failure's reason) are shown inert (tui/inert.py).
Just over the ~400-line guide: the bar and the footer share the priority rule that drops
what does not fit on a small screen.
"""

from __future__ import annotations

import time

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.widgets._footer import FooterKey

from team.config import DEFAULT_MAX_MESSAGES, DEFAULT_TIMEOUT
from team.errors import one_line
from team.sandbox.kinds import is_unisolated
from tui.format import (
    agent_tokens_text,
    budget_label,
    cost_label,
    reason_label,
    short_id,
    tokens,
)
from tui.inert import inert
from tui.messages import EngineEvent

STATE_STYLES = {
    "starting sandbox": "bold yellow",
    "starting": "bold yellow",
    "idle": "bold green",
    "running": "bold cyan",
    "stopping": "bold yellow",
    "quitting": "bold yellow",
    "finished": "bold magenta",
    "error": "bold red",
}


def _bar(value: int, total: int, width: int = 8) -> str:
    if total <= 0:
        return "▱" * width
    filled = min(width, round(width * value / total))
    return "▰" * filled + "▱" * (width - filled)


SEPARATORS = ("  │  ", " │ ")  # wide first; the narrow one before dropping any part

# What the bar keeps when the terminal is narrow: the lowest priority goes first.
# The run state, a failed or unisolated sandbox and the approval badge stay.
PRIORITY = {
    "state": 100,
    "sandbox": 90,
    "messages": 80,
    "agent": 70,
    "elapsed": 60,
    "budget": 55,  # a limit, like messages and seconds
    "tokens": 40,
    "model": 30,  # the header says DEMO or the model too
    "bar": 20,
}


def fit(parts: list[tuple[str, Text]], width: int) -> Text:
    """Join `(name, text)` parts with separators into at most `width` cells:
    narrower separators first, then drop the parts of lowest `PRIORITY`."""
    kept = list(parts)
    while True:
        for sep in SEPARATORS:
            text = Text(no_wrap=True, overflow="ellipsis")
            for i, (name, part) in enumerate(kept):
                if i and name != "bar":  # the progress bar sticks to its count
                    text.append(sep, "dim")
                elif i:
                    text.append(" ")
                text.append_text(part)
            if width <= 0 or text.cell_len <= width:
                return text
        droppable = [p for p in kept if PRIORITY.get(p[0], 50) < PRIORITY["state"]]
        if not droppable:
            return text  # the state alone is wider: Rich's ellipsis cuts it
        kept.remove(min(droppable, key=lambda p: PRIORITY.get(p[0], 50)))


class StatusBar(Static):
    """Run state (continuation, approval mode), agent, limits, tokens and cost, model and sandbox.

    The parts are fitted to the width: on a narrow terminal the low-priority ones
    (progress bar, model, tokens…) are left out instead of cutting the line.
    """

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $text;
        padding: 0 1;
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.state = "idle"
        self.reason = ""
        self.agent = ""
        self.messages = 0
        self.max_messages = DEFAULT_MAX_MESSAGES
        self.elapsed = 0.0
        self.timeout = DEFAULT_TIMEOUT
        self.tokens_in = 0
        self.tokens_out = 0
        self.model = ""
        self.demo = False
        self.sandbox_kind = ""
        self.isolation = "unknown"
        self.sandbox_error = ""  # why the sandbox failed to start ("" = it did not fail)
        self.limits = ""  # the sandbox's limits and how they are enforced (tooltip)
        self.turn = 1  # turn of the conversation (a follow-up question is turn 2)
        self.conversation_messages = 0  # the whole conversation's, for the tooltip
        self.conversation_elapsed = 0.0
        self.cost: float | None = None
        self.max_cost: float | None = None  # SBTEAM_MAX_COST, shown as $spent/$cap
        self.models: dict[str, str] = {}  # each agent's model (a model file may give each its own)
        self.agent_tokens: dict[str, list[int]] = {}
        self.resumed_from = ""
        self.approve = False
        self._elapsed_at: float | None = None  # monotonic time `elapsed` was last set while running
        self._sandbox_starting = False  # a run is (re)starting the sandbox: a failure there is the sandbox's

    ENGINE_EVENTS = frozenset({"progress", "token_delta", "message", "tool_call", "run_started", "sandbox_status",
                               "run_finished", "run_state"})  # what `tui/driver.py` posts to this pane

    def reset_run(self) -> None:
        """A new turn, restart or resume: nothing counted yet."""
        self.set(agent="", messages=0, elapsed=0.0, tokens_in=0, tokens_out=0, reason="", cost=None,
                 agent_tokens={}, resumed_from="", turn=1, conversation_messages=0, conversation_elapsed=0.0)

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        """The run's numbers, agent, limits and sandbox (the state itself comes from the app)."""
        from team.events import Message as ChatMessage
        from team.events import (
            Progress,
            RunFinished,
            RunStarted,
            RunStateChanged,
            SandboxStatus,
            TokenDelta,
            ToolCall,
        )

        event = message.event
        if isinstance(event, Progress):
            self.set(
                agent=event.agent, messages=event.messages, max_messages=event.max_messages,
                elapsed=event.elapsed, timeout=event.timeout, tokens_in=event.tokens_in,
                tokens_out=event.tokens_out, cost=event.cost, agent_tokens=event.agent_tokens,
                conversation_messages=event.conversation_messages,
                conversation_elapsed=event.conversation_elapsed,
            )
        elif isinstance(event, TokenDelta | ChatMessage | ToolCall):
            if event.agent != "user" and event.agent != self.agent:
                self.set(agent=event.agent)
        elif isinstance(event, RunStarted):
            self.set(
                max_messages=event.max_messages, timeout=event.timeout, sandbox_kind=event.sandbox,
                isolation=event.isolation, model=event.model, demo=event.demo,
                resumed_from=event.resumed_from, limits=event.limits, turn=event.turn,
            )
        elif isinstance(event, SandboxStatus):
            self._sandbox_starting = event.state == "starting"
            if event.state == "starting":
                self.set(sandbox_kind=event.kind, isolation="starting…", sandbox_error="")
            elif event.state == "error":
                self.set(sandbox_kind=event.kind, isolation=event.isolation,
                         sandbox_error=one_line(event.detail) or "sandbox error")
            else:
                self.set(sandbox_kind=event.kind, isolation=event.isolation, sandbox_error="",
                         limits=event.limits or self.limits)
        elif isinstance(event, RunStateChanged):
            if event.state == "finished" and event.reason:
                self.set(reason=event.reason)  # with the state, not a moment after it
        elif isinstance(event, RunFinished):
            if self._sandbox_starting:  # the run ended while its sandbox was starting: the start failed
                self._sandbox_starting = False
                self.set(sandbox_error=one_line(event.message or "the sandbox did not start"))
            self.set(
                reason=event.reason,
                messages=event.messages or self.messages,
                elapsed=event.elapsed or self.elapsed,
                tokens_in=event.tokens_in or self.tokens_in,
                tokens_out=event.tokens_out or self.tokens_out,
                cost=event.cost if event.cost is not None else self.cost,
                agent_tokens=event.agent_tokens or self.agent_tokens,
            )

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)
        self.refresh_bar()

    def on_resize(self) -> None:
        self.refresh_bar()

    def _tick(self) -> None:
        if self.state == "running" or self.state == "stopping":
            self.refresh_bar()

    def set(self, **values: object) -> None:
        """Update some fields and re-render once."""
        for name, value in values.items():
            setattr(self, name, value)
        if "elapsed" in values:
            self._elapsed_at = time.monotonic()
        if "state" in values and values["state"] not in ("running", "stopping"):
            self._elapsed_at = None
        self.refresh_bar()

    def shown_elapsed(self) -> float:
        if self._elapsed_at is not None and self.state in ("running", "stopping"):
            return min(self.timeout, self.elapsed + time.monotonic() - self._elapsed_at)
        return self.elapsed

    @property
    def state_label(self) -> str:
        if self.state == "finished":
            return inert(f"finished: {reason_label(self.reason)}")
        return inert(self.state)

    def parts(self) -> list[tuple[str, Text]]:
        """The bar's parts in order, each named after its `PRIORITY`."""
        style = STATE_STYLES.get(self.state, "bold")
        if self.state == "finished" and self.reason == "error":
            style = STATE_STYLES["error"]
        state = Text.assemble(("● ", style), (self.state_label, style))
        if self.turn > 1:  # a follow-up: limits are per turn; the tooltip has the conversation's totals
            state.append(f"  turn {self.turn}", "bold")
        if self.resumed_from:
            state.append(inert(f"  ↻ continues {short_id(self.resumed_from)}"), "bold cyan")
        if self.approve:
            state.append("  ")
            state.append(" APPROVE ", "bold black on cyan")
        parts = [("state", state)]
        if self.agent:
            parts.append(("agent", Text(inert(self.agent), "bold")))
        parts.append(("messages", Text(f"msgs {self.messages}/{self.max_messages}")))
        parts.append(("bar", Text(_bar(self.messages, self.max_messages), "cyan")))
        parts.append(("elapsed", Text(f"{self.shown_elapsed():.0f}s/{self.timeout:.0f}s")))
        usage = Text(f"tok {tokens(self.tokens_in)}↑ {tokens(self.tokens_out)}↓ ")
        if self.max_cost is not None and not self.demo:
            parts.append(("tokens", usage))
            over = self.cost is not None and self.cost >= self.max_cost * 0.8
            parts.append(("budget", Text(budget_label(self.cost, self.max_cost), "bold red" if over else "bold green")))
        else:
            usage.append(cost_label(self.cost, self.demo), "bold green" if self.cost else "")
            parts.append(("tokens", usage))
        if self.demo:
            parts.append(("model", Text(" DEMO ", "bold black on yellow")))
        else:
            parts.append(("model", Text(inert(self.model_shown or "model?"), "bold")))
        if self.sandbox_error:
            kind = inert(self.sandbox_kind or "sandbox")
            parts.append(("sandbox", Text.assemble(f"{kind}·", ("FAILED", "bold white on red"))))
        elif self.sandbox_kind:
            sandbox = Text(inert(f"{self.sandbox_kind}·{self.isolation}"))
            if is_unisolated(self.isolation):
                sandbox.append(" ")
                sandbox.append(" NOT ISOLATED ", "bold white on red")
            parts.append(("sandbox", sandbox))
        return parts

    @property
    def model_shown(self) -> str:
        """The model; when the agents have different ones, the speaking agent's."""
        if len(set(self.models.values())) > 1:
            return self.models.get(self.agent) or next(iter(self.models.values()))
        return self.model

    def build(self, width: int | None = None) -> Text:
        """The bar fitted to `width` cells (default: the widget's own width; 0 = everything)."""
        return fit(self.parts(), self.content_size.width if width is None else width)

    def refresh_bar(self) -> None:
        self.update(self.build(), layout=False)  # one line high, always: no layout to redo
        lines = []
        if self.sandbox_error:
            lines.append(f"The sandbox failed to start: {self.sandbox_error}\nThe next run tries again.")
        elif self.limits:
            lines.append(f"Sandbox limits: {self.limits}")
        if self.turn > 1:
            lines.append(
                f"Turn {self.turn}: {self.messages} messages, {self.shown_elapsed():.0f} s (limits are per turn); "
                f"the conversation: {self.conversation_messages} messages, {self.conversation_elapsed:.0f} s"
            )
        if len(set(self.models.values())) > 1:
            lines.append("Models: " + ", ".join(f"{agent} {model}" for agent, model in self.models.items()))
        tokens = agent_tokens_text(self.agent_tokens).replace(" · ", "\n")
        if tokens:
            lines.append(tokens)
        tip = inert("\n".join(lines)) or None
        if tip != self.tooltip:
            self.tooltip = tip  # the sandbox failure (or its limits) and per-agent tokens on hover

    @property
    def plain(self) -> str:
        """The bar as shown, as plain text (tests, tmux capture)."""
        return self.build().plain


# Footer keys by action, highest kept longest; the command palette (ctrl+p,
# every action is there) is always shown, docked right.
KEY_PRIORITY = {
    "quit": 100,
    "stop": 95,
    "approve": 94, "edit": 93, "reject": 92, "confirm": 94, "cancel_edit": 93,
    "submit": 90,
    "toggle_files": 85,
    "restart": 70,
    "toggle_approve": 65,
    "history": 60,
    "new_task": 55,
    "newline": 40,
    "export": 35,
    "save_file": 30,
}
PALETTE_WIDTH = 14  # "▏ ^p palette " with its border and padding


class PriorityFooter(Footer):
    """A `Footer` that shows only the keys that fit, dropping the lowest
    `KEY_PRIORITY` first (Textual's own footer cuts the line at the right)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._composed_width = -1
        self._recompose_pending = False

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        active = self.screen.active_bindings
        width = self.size.width or self.app.size.width
        self._composed_width = width
        shown: dict[str, tuple] = {}  # action -> (binding, enabled, tooltip); first key wins
        # The focused widget's keys first, then the screen's, then the app's (Textual keeps
        # the position of a key the app took over from a widget, e.g. f6 from the TextArea).
        app_order = [b.action for b in getattr(self.app, "BINDINGS", []) if isinstance(b, Binding)]

        def place(item: ActiveBinding) -> tuple[int, int]:
            if item.node is self.app:
                action = item.binding.action
                return 2, app_order.index(action) if action in app_order else len(app_order)
            return (1 if item.node is self.screen else 0), 0

        for _node, binding, enabled, tooltip in sorted(active.values(), key=place):
            if binding.show and binding.action not in shown:
                shown[binding.action] = (binding, enabled, tooltip)
        palette = None
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            palette = active.get(self.app.COMMAND_PALETTE_BINDING)
            shown.pop(palette.binding.action if palette else "", None)

        def cells(item: tuple) -> int:
            binding = item[0]
            return cell_len(self.app.get_key_display(binding)) + cell_len(binding.description) + 3

        def priority(action: str) -> int:  # a key that does nothing now (dimmed) goes first
            return KEY_PRIORITY.get(action.rsplit(".", 1)[-1], 50) - (0 if shown[action][1] else 100)

        budget = width - (PALETTE_WIDTH if palette else 0)
        keep = list(shown)
        while keep and sum(cells(shown[a]) for a in keep) > budget:
            keep.remove(min(reversed(keep), key=priority))
        for action in keep:
            binding, enabled, tooltip = shown[action]
            key = FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip or binding.tooltip,
            )
            # Born with the footer's `compact` (the bound value): otherwise each key is mounted
            # compact and restyled twice (~1 ms a key) as the binding flips it back.
            key.set_reactive(FooterKey.compact, self.compact)
            key.set_class(self.compact, "-compact", update=False)
            yield key.data_bind(compact=Footer.compact)
        if palette is not None:
            yield FooterKey(
                palette.binding.key,
                self.app.get_key_display(palette.binding),
                palette.binding.description,
                palette.binding.action,
                classes="-command-palette",
                disabled=not palette.enabled,
                tooltip=palette.binding.tooltip or palette.binding.description,
            )

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self._recompose_soon()

    def on_resize(self) -> None:
        if self._bindings_ready and self.size.width != self._composed_width:
            self._recompose_soon()

    def _recompose_soon(self) -> None:
        """One recompose for any number of reasons before it runs (at start the bindings
        and the first size arrive together: the keys are built once, not twice)."""
        if not self._recompose_pending:
            self._recompose_pending = True
            self.call_after_refresh(self._recompose_now)

    async def _recompose_now(self) -> None:
        self._recompose_pending = False
        await self.recompose()
