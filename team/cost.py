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


# --------------------------------------------------------------------------- spend cap


class BudgetExceeded(Exception):
    """The next model call would pass SBTEAM_MAX_COST; the run ends with reason `budget`."""


def cost_for_agents(
    agent_tokens: Mapping[str, list[int]], prices: Mapping[str, tuple[float, float] | None]
) -> float | None:
    """Each agent's tokens at its own price; None when an agent that used tokens has no price."""
    total = 0.0
    for agent, (tokens_in, tokens_out, *_rest) in agent_tokens.items():
        if not tokens_in and not tokens_out:
            continue
        price = prices.get(agent)
        if price is None:
            return None
        total += (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000
    return total


class SpendPool:
    """What the runs of one batch spent together, against one cap."""

    def __init__(self, cap: float | None) -> None:
        self.cap = cap
        self.spent = 0.0


class RunMeter:
    """Every model call of one run, per agent, as the model clients see it.

    The clients report each call (`record`), also the ones a stop cut short, so a
    stopped run still counts what was streamed (`unreported`: tokens no message
    carries). `check` is asked before each call: it raises `BudgetExceeded` when
    the spend so far plus that call's projected cost would pass the cap. The
    projection is the prompt at the input price plus the longest reply of this run
    so far (at least `MIN_REPLY` tokens) at the output price.
    """

    MIN_REPLY = 100

    def __init__(
        self,
        max_cost: float | None = None,
        prices: Mapping[str, tuple[float, float] | None] | None = None,
        pool: SpendPool | None = None,
    ) -> None:
        self.max_cost = max_cost
        self.prices = dict(prices or {})
        self.pool = pool
        self.spent = 0.0
        self.tokens: dict[str, list[int]] = {}
        self.unreported: dict[str, list[int]] = {}
        self.longest_reply = 0
        self.degenerate = 0  # replies cut for repeating themselves

    def _price(self, agent: str) -> tuple[float, float]:
        return self.prices.get(agent) or (0.0, 0.0)

    def record(self, agent: str, prompt: int, completion: int, *, reported: bool = True) -> None:
        price = self._price(agent)
        cost = (prompt * price[0] + completion * price[1]) / 1_000_000
        self.spent += cost
        if self.pool is not None:
            self.pool.spent += cost
        used = self.tokens.setdefault(agent, [0, 0])
        used[0] += prompt
        used[1] += completion
        self.longest_reply = max(self.longest_reply, completion)
        if not reported:
            lost = self.unreported.setdefault(agent, [0, 0])
            lost[0] += prompt
            lost[1] += completion

    def delivered(self, agent: str, prompt: int, completion: int) -> None:
        """A reply with this usage reached the team: its message carries the tokens."""
        lost = self.unreported.get(agent)
        if lost is not None:
            lost[0] = max(0, lost[0] - prompt)
            lost[1] = max(0, lost[1] - completion)
            if not any(lost):
                del self.unreported[agent]

    def take_unreported(self) -> dict[str, list[int]]:
        """Tokens of calls that ended without a message (a stop, a timeout), once."""
        lost, self.unreported = self.unreported, {}
        return lost

    def projected(self, agent: str, prompt: int) -> float:
        price = self._price(agent)
        reply = max(self.longest_reply, self.MIN_REPLY)
        return (prompt * price[0] + reply * price[1]) / 1_000_000

    def check(self, agent: str, prompt: int) -> None:
        next_call = self.projected(agent, prompt)
        for label, cap, spent in (
            ("the run", self.max_cost, self.spent),
            ("the batch", self.pool.cap if self.pool is not None else None, self.pool.spent if self.pool else 0.0),
        ):
            if cap is not None and spent + next_call > cap:
                raise BudgetExceeded(
                    f"{agent}'s next model call (~{prompt} tokens in) would bring {label}'s cost to "
                    f"{format_cost(spent + next_call)}, past SBTEAM_MAX_COST={format_cost(cap)} "
                    f"({format_cost(spent)} spent)"
                )
