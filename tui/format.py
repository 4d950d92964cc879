"""How the app writes values: end-reason labels, token counts and cost, run ids,
the model's name, and which lexer and syntax theme show a file's code.

One place for what the status bar, the transcript, the preview, the approval
dialog and the history each used to spell out (some with their own lexer table).
Light on purpose: no Rich or Textual import, so every pane can use it at start-up.
"""

from __future__ import annotations

SYNTAX_THEME = "monokai"  # Rich `Syntax`, Markdown code blocks and the approval editor

REASON_LABELS = {
    "terminate": "TERMINATE",
    "max_messages": "MAX MESSAGES",
    "timeout": "TIMEOUT",
    "stopped": "STOPPED",
    "error": "ERROR",
    "loop": "LOOP",
    "budget": "BUDGET",  # SBTEAM_MAX_COST reached
    "degenerate": "DEGENERATE",  # a reply repeated itself twice
}

# file extension → Pygments lexer name (what is not here is shown as plain text)
LEXERS = {
    "py": "python", "json": "json", "md": "markdown", "sh": "bash", "yaml": "yaml", "yml": "yaml",
    "toml": "toml", "html": "html", "htm": "html", "js": "javascript", "ts": "typescript",
    "sql": "sql", "r": "r", "ipynb": "json", "xml": "xml", "css": "css", "ini": "ini",
    "cfg": "ini", "txt": "text", "log": "text", "csv": "text", "tsv": "text",
}


def reason_label(reason: str) -> str:
    """`max_messages` → `MAX MESSAGES` (an unknown reason in capitals)."""
    return REASON_LABELS.get(reason, reason.upper())


def extension(path: str) -> str:
    """The lower-case extension of the path's last component ("" when it has none)."""
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def lexer_for(path: str) -> str:
    """The lexer that highlights a file of this name."""
    return LEXERS.get(extension(path), "text")


def tokens(n: int) -> str:
    """`12345` → `12.3k`; small counts as they are."""
    return f"{n / 1000:.1f}k" if n >= 10_000 else str(n)


def cost_label(cost: float | None, demo: bool = False) -> str:
    """"$0" for DEMO (it costs nothing), "—" when the model's price is unknown."""
    if cost is None:
        return "$0" if demo else "—"
    if cost == 0:
        return "$0"
    from team.cost import format_cost

    return format_cost(cost)


def budget_label(cost: float | None, cap: float) -> str:
    """`$0.12/$1.00`: the run's cost against SBTEAM_MAX_COST, like the other limits."""
    digits = 2 if cap >= 0.1 else 4
    spent = "$?" if cost is None else f"${cost:.{digits}f}"
    return f"{spent}/${cap:.{digits}f}"


def short_id(run_id: str) -> str:
    """`20250102-093000-abc123` → `093000-abc123` (the date is in the history)."""
    parts = run_id.split("-")
    if len(parts) >= 3 and parts[0].isdigit() and len(parts[0]) == 8:
        return "-".join(parts[1:])
    return run_id


def agent_tokens_text(agent_tokens: dict[str, list[int]]) -> str:
    """`Planner 1.2k↑ 300↓ · CodeAgent …` (per-agent usage)."""
    return " · ".join(f"{agent} {tokens(v[0])}↑ {tokens(v[1])}↓" for agent, v in agent_tokens.items() if len(v) >= 2)
