"""Per-request seeded sampling for transformers' ``generate``.

HF sampling draws every row of a batch from one global RNG stream, so a row's text depends on which
other prompts share its batch and on everything drawn before. vLLM solves this with per-request seeds;
this processor does the same on the HF path: each row owns a ``torch.Generator`` seeded with its
request seed and draws exactly one uniform number per decoding step, used for inverse-CDF sampling of
that row's temperature/top-p distribution. ``generate`` runs in greedy mode and picks the one token the
processor leaves finite.
"""

from __future__ import annotations

import torch


class SeededSampler:
    """A ``LogitsProcessor``: rows are requests, in the batch's order."""

    def __init__(self, seeds: list[int], temperatures: list[float], top_ps: list[float]):
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.temperatures = temperatures
        self.top_ps = top_ps

    def draw(self) -> torch.Tensor:
        """One uniform draw per row, each from that row's own generator."""
        return torch.cat([torch.rand(1, generator=g, dtype=torch.float64) for g in self.generators])

    def choose(self, scores: torch.Tensor) -> torch.Tensor:
        """One token id per row."""
        scores = scores.float()
        u = self.draw()  # drawn for every row at every step, greedy rows too, so streams stay aligned
        temps = torch.tensor(self.temperatures, dtype=torch.float32)
        greedy = temps <= 0
        logits = scores / torch.where(greedy, torch.ones_like(temps), temps)[:, None]
        probs = torch.softmax(logits, dim=-1).double()
        top_p = torch.tensor(self.top_ps, dtype=torch.float64)[:, None]
        if bool((top_p >= 1).all()):
            # No nucleus cut: inverse CDF over the vocabulary in its own order (no sort needed).
            cdf, order = probs.cumsum(-1), None
        else:
            sorted_p, order = self._descending(probs, float(top_p.max()))
            # Keep the smallest prefix whose mass reaches top_p (always at least the first token).
            cdf = (sorted_p * ((sorted_p.cumsum(-1) - sorted_p) < top_p)).cumsum(-1)
        target = u[:, None] * cdf[:, -1:]
        pick = torch.searchsorted(cdf, target, right=True).clamp(max=cdf.shape[-1] - 1)
        tokens = pick.squeeze(-1) if order is None else order.gather(-1, pick).squeeze(-1)
        return torch.where(greedy, scores.argmax(-1), tokens) if bool(greedy.any()) else tokens

    @staticmethod
    def _descending(probs: torch.Tensor, top_p: float, k: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities in descending order, as far as the nucleus needs: the top k when they hold top_p
        of every row's mass (the usual case, and ~30x cheaper than sorting the vocabulary), else all."""
        if k < probs.shape[-1]:
            values, order = torch.topk(probs, k, dim=-1)
            if bool((values.sum(-1) >= top_p).all()):
                return values, order
        return torch.sort(probs, dim=-1, descending=True, stable=True)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """transformers' logits-processor hook: every score -inf but the token each row's own draw chose."""
        tokens = self.choose(scores)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, tokens[:, None], 0.0)
        return out
