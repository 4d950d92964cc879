"""The termination-status bar: what the run is doing and how close it is to a limit.

One `Static` re-rendered from plain attributes instead of a dozen reactive
labels: the whole line is a handful of spans and is rebuilt at most a few
times a second (Progress events, a 1 s elapsed tick while running).
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static

REASON_LABELS = {
    "terminate": "TERMINATE",
    "max_messages": "MAX MESSAGES",
    "timeout": "TIMEOUT",
    "stopped": "STOPPED",
    "error": "ERROR",
    "loop": "LOOP",
}

STATE_STYLES = {
    "starting sandbox": "bold yellow",
    "idle": "bold green",
    "running": "bold cyan",
    "stopping": "bold yellow",
    "finished": "bold magenta",
    "error": "bold red",
}


def _tokens(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 10_000 else str(n)


def cost_label(cost: float | None, demo: bool = False) -> str:
    """"$0" for DEMO (it costs nothing), "—" when the model's price is unknown."""
    if cost is None:
        return "$0" if demo else "—"
    if cost == 0:
        return "$0"
    from team.cost import format_cost

    return format_cost(cost)


def short_id(run_id: str) -> str:
    """`20250102-093000-abc123` → `093000-abc123` (the date is in the history)."""
    parts = run_id.split("-")
    if len(parts) >= 3 and parts[0].isdigit() and len(parts[0]) == 8:
        return "-".join(parts[1:])
    return run_id


def agent_tokens_text(agent_tokens: dict[str, list[int]]) -> str:
    """`Planner 1.2k↑ 300↓ · CodeAgent …` (per-agent usage)."""
    return " · ".join(f"{agent} {_tokens(v[0])}↑ {_tokens(v[1])}↓" for agent, v in agent_tokens.items() if len(v) >= 2)


def _bar(value: int, total: int, width: int = 8) -> str:
    if total <= 0:
        return "▱" * width
    filled = min(width, round(width * value / total))
    return "▰" * filled + "▱" * (width - filled)


class StatusBar(Static):
    """Run state (continuation, approval mode), agent, limits, tokens and cost, model and sandbox."""

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
        self.max_messages = 30
        self.elapsed = 0.0
        self.timeout = 600.0
        self.tokens_in = 0
        self.tokens_out = 0
        self.model = ""
        self.demo = False
        self.sandbox_kind = ""
        self.isolation = "unknown"
        self.cost: float | None = None
        self.agent_tokens: dict[str, list[int]] = {}
        self.resumed_from = ""
        self.approve = False
        self._elapsed_at: float | None = None  # monotonic time `elapsed` was last set while running

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)
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
            return f"finished: {REASON_LABELS.get(self.reason, self.reason.upper())}"
        return self.state

    def build(self) -> Text:
        sep = ("  │  ", "dim")
        text = Text(no_wrap=True, overflow="ellipsis")
        style = STATE_STYLES.get(self.state, "bold")
        if self.state == "finished" and self.reason == "error":
            style = STATE_STYLES["error"]
        text.append("● ", style)
        text.append(self.state_label, style)
        if self.resumed_from:
            text.append(f"  ↻ continues {short_id(self.resumed_from)}", "bold cyan")
        if self.approve:
            text.append("  ")
            text.append(" APPROVE ", "bold black on cyan")
        if self.agent:
            text.append(*sep)
            text.append(self.agent, "bold")
        text.append(*sep)
        text.append(f"msgs {self.messages}/{self.max_messages} ")
        text.append(_bar(self.messages, self.max_messages), "cyan")
        text.append(*sep)
        text.append(f"{self.shown_elapsed():.0f}s/{self.timeout:.0f}s")
        text.append(*sep)
        text.append(f"tok {_tokens(self.tokens_in)}↑ {_tokens(self.tokens_out)}↓ ")
        text.append(cost_label(self.cost, self.demo), "bold green" if self.cost else "")
        text.append(*sep)
        if self.demo:
            text.append(" DEMO ", "bold black on yellow")
        else:
            text.append(self.model or "model?", "bold")
        if self.sandbox_kind:
            text.append(*sep)
            text.append(f"{self.sandbox_kind}·{self.isolation}")
            if self.isolation == "none":
                text.append(" ")
                text.append(" NOT ISOLATED ", "bold white on red")
        return text

    def refresh_bar(self) -> None:
        self.update(self.build())
        tip = agent_tokens_text(self.agent_tokens).replace(" · ", "\n") or None
        if tip != self.tooltip:
            self.tooltip = tip  # per-agent tokens on hover

    @property
    def plain(self) -> str:
        """The bar as plain text (tests, tmux capture)."""
        return self.build().plain
