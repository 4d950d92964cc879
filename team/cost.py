"""Token prices and the cost of a run, from the model's own usage reports.

Prices are US dollars per million tokens (input, output), as published by the
providers; they change, so the user can override them in `.env`:
`SBTEAM_PRICES="my-model=0.5/1.5,gpt-4o=2.5/10"`. A model with no known price
shows tokens but no cost rather than a made-up number; DEMO costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

# USD per 1M tokens: (input, output). Longest matching prefix wins.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o4-mini": (1.10, 4.40),
    "o3-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
    "o1-mini": (1.10, 4.40),
    "o1": (15.00, 60.00),
    "deepseek-chat": (0.27, 1.10),
    "deepseek-reasoner": (0.55, 2.19),
}


def parse_prices(text: str | None) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """Parse `model=in/out,model2=in/out`; returns (prices, problems)."""
    prices: dict[str, tuple[float, float]] = {}
    problems: list[str] = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            model, pair = item.split("=", 1)
            raw_in, raw_out = pair.split("/", 1)
            prices[model.strip()] = (float(raw_in), float(raw_out))
        except ValueError:
            problems.append(
                f"SBTEAM_PRICES entries must look like model=input/output in USD per 1M tokens (got {item!r})"
            )
    return prices, problems


def price_for(model: str, overrides: Mapping[str, tuple[float, float]] | None = None) -> tuple[float, float] | None:
    table = {**DEFAULT_PRICES, **(overrides or {})}
    if model in table:
        return table[model]
    matches = [name for name in table if model.startswith(name)]
    return table[max(matches, key=len)] if matches else None


def cost_of(tokens_in: int, tokens_out: int, price: tuple[float, float] | None) -> float | None:
    if price is None:
        return None
    return (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000


def format_cost(cost: float | None) -> str:
    if cost is None:
        return "—"
    return f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"
