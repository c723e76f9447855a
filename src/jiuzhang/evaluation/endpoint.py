"""An OpenAI-compatible completions endpoint as a generation engine (``jiuzhang eval --endpoint``).

Same interface as the HF engine (``plan`` + ``generate``), so the benchmarks, prompts, tool loop and
grading are the same whatever serves the model (vLLM's OpenAI server, TGI, a hosted API).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from jiuzhang.synthesis.engine import Generation, cut_at_stop
from jiuzhang.synthesis.requests import Request


class EndpointEngine:
    """Generation through an OpenAI-compatible chat endpoint (a served model), as an eval engine."""
    name = "endpoint"

    def __init__(self, base_url: str, model: str, api_key: str | None, concurrency: int = 8, timeout_s: float = 120):
        from openai import OpenAI

        self.client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=3)
        self.model = model
        self.concurrency = concurrency

    def plan(self, requests: list[Request]) -> list[list[Request]]:
        """Requests in batches of 64 (the endpoint schedules within each)."""
        return [requests[i:i + 64] for i in range(0, len(requests), 64)]

    def _one(self, r: Request) -> Generation:
        resp = self.client.completions.create(model=self.model, prompt=r.prompt, max_tokens=r.sampling.max_new_tokens,
                                              temperature=r.sampling.temperature, top_p=r.sampling.top_p,
                                              stop=list(r.stop) or None, seed=r.seed)
        choice = resp.choices[0]
        text, _ = cut_at_stop(choice.text or "", r.stop)
        usage = resp.usage
        return Generation(r.id, text, "length" if choice.finish_reason == "length" else "stop",
                          usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0)

    def generate(self, requests: list[Request]) -> list[Generation]:
        """One completion per request, ``concurrency`` requests in flight, in request order."""
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, requests))
