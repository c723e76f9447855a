"""Spending caps on the teacher: refuse a plan that cannot fit; never send a request that could break a cap.

Token counts before an answer exists are estimates: prompt tokens ~ characters / 4 (the usual English
ratio for GPT tokenizers; no tokenizer download is needed), completion tokens = ``expected_output_tokens``
for the plan and ``max_tokens`` (the worst case) for the run-time reservation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jiuzhang.errors import UserError

CHARS_PER_TOKEN = 4


class BudgetExceeded(UserError):
    """The plan cannot fit the budget, or the cap was reached during the run."""


def estimate_prompt_tokens(text: str) -> int:
    """A rough token count of ``text`` (characters / CHARS_PER_TOKEN, at least 1) for budgets and plans."""
    return max(1, len(text) // CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Prices:
    """The teacher's prices in USD per million input and output tokens."""
    input_per_million: float
    output_per_million: float

    @classmethod
    def of(cls, rates) -> "Prices":
        """From a ``PricesConfig`` (e.g. ``TeacherConfig.active_prices()``)."""
        return cls(rates.input_per_million, rates.output_per_million)

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        """The USD cost of a call with these token counts (or of an estimate's expected counts)."""
        return (prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million) / 1e6


@dataclass(frozen=True)
class Caps:
    """Spending caps of one teacher round: requests, tokens, USD (None: no cap)."""
    max_requests: int | None
    max_tokens: int | None
    max_usd: float | None


@dataclass
class Budget:
    """What a teacher round has spent against its caps."""
    caps: Caps
    prices: Prices
    requests: int = 0          # answered so far (journal + this run)
    tokens: int = 0
    usd: float = 0.0
    _reserved: dict[str, tuple[int, int, float]] = field(default_factory=dict)

    def plan(self, prompts: list[str], expected_output_tokens: int) -> dict[str, float]:
        """The expected requests, tokens and USD of sending ``prompts``."""
        prompt_tokens = sum(estimate_prompt_tokens(p) for p in prompts)
        completion_tokens = expected_output_tokens * len(prompts)
        return {"requests": len(prompts), "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "usd": round(self.prices.cost(prompt_tokens, completion_tokens), 4)}

    def check_plan(self, plan: dict[str, float]) -> None:
        """Raise before any request when the planned calls plus what is already spent exceed a cap."""
        problems = []
        c = self.caps
        if c.max_requests is not None and self.requests + plan["requests"] > c.max_requests:
            problems.append(f"requests: {self.requests} done + {plan['requests']} planned > cap {c.max_requests}")
        total_tokens = plan["prompt_tokens"] + plan["completion_tokens"]
        if c.max_tokens is not None and self.tokens + total_tokens > c.max_tokens:
            problems.append(f"tokens: {self.tokens} used + ~{total_tokens} planned > cap {c.max_tokens}")
        if c.max_usd is not None and self.usd + plan["usd"] > c.max_usd:
            problems.append(f"USD: {self.usd:.2f} spent + ~{plan['usd']:.2f} planned > cap {c.max_usd:.2f}")
        if problems:
            raise BudgetExceeded("the planned teacher calls do not fit teacher.budget (" + "; ".join(problems) +
                                 "). Raise the cap in the params file or lower kd.*.n; nothing was sent.")

    def reserve(self, key: str, prompt: str, max_tokens: int) -> bool:
        """Reserve the worst case of one request; False when it could break a cap (then do not send it)."""
        pt, ct = estimate_prompt_tokens(prompt), max_tokens
        usd = self.prices.cost(pt, ct)
        held = list(self._reserved.values())
        c = self.caps
        if c.max_requests is not None and self.requests + len(held) + 1 > c.max_requests:
            return False
        if c.max_tokens is not None and self.tokens + sum(a + b for a, b, _ in held) + pt + ct > c.max_tokens:
            return False
        if c.max_usd is not None and self.usd + sum(u for *_, u in held) + usd > c.max_usd:
            return False
        self._reserved[key] = (pt, ct, usd)
        return True

    def settle(self, key: str, prompt_tokens: int, completion_tokens: int, answered: bool) -> float:
        """Replace a reservation by the actual usage; returns the actual cost."""
        self._reserved.pop(key, None)
        cost = self.prices.cost(prompt_tokens, completion_tokens)
        self.requests += int(answered)
        self.tokens += prompt_tokens + completion_tokens
        self.usd += cost
        return cost
