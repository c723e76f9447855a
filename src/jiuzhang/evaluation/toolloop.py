"""The tool setting: generate until a code block ends, run it in the sandbox, append its output as an
``output`` block, resume; up to ``rounds`` programs per problem (the paper's 4). Problems advance
together, one batched generation per round."""

from __future__ import annotations

import re
from dataclasses import replace

from jiuzhang.sandbox.runner import Limits, run_many
from jiuzhang.synthesis.requests import Request

OUTPUT_STOP = "```output"
_CODE_AT_END = re.compile(r"```python[ \t]*\n(.*?)```\s*$", re.DOTALL)


def run_tool_loop(engine, requests: list[Request], rounds: int, limits: Limits,
                  workers: int) -> tuple[dict[str, str], dict[str, int], set[str]]:
    """{request id: the whole solution written (model text and output blocks)}, execution counts, and the
    ids whose last generation hit the token limit."""
    texts = {r.id: "" for r in requests}
    cut_off: set[str] = set()
    counts: dict[str, int] = {}
    active = list(requests)
    for _ in range(rounds + 1):  # the last round only lets the model finish after its last output
        if not active:
            break
        continued = [replace(r, prompt=r.prompt + texts[r.id], stop=(*r.stop, OUTPUT_STOP)) for r in active]
        gens = [g for batch in engine.plan(continued) for g in engine.generate(batch)]
        by_id = {g.id: g for g in gens}
        programs = {}
        for r in active:
            texts[r.id] += by_id[r.id].text
            (cut_off.add if by_id[r.id].finish_reason == "length" else cut_off.discard)(r.id)
            start = texts[r.id].rfind("```python")
            m = _CODE_AT_END.match(texts[r.id], start) if start >= 0 else None
            if m and texts[r.id].count("```output") < rounds:
                programs[r.id] = m.group(1)
        results = run_many(list(programs.values()), limits, workers)
        for rid, ex in zip(programs, results):
            counts[ex.status] = counts.get(ex.status, 0) + 1
            shown = ex.stdout if ex.status == "ok" else ex.error_line
            texts[rid] += f"\n```output\n{shown.strip()}\n```\n"
        active = [r for r in active if r.id in programs]
    return texts, counts, cut_off
