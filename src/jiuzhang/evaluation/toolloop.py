"""The tool setting, as the paper's evaluation runs it (RUCAIBox/JiuZhang3.0 ``eval/math_eval.py``):
generate until a code block ends, run it in the sandbox, append its output as an ``output`` block, resume.

Three details match the paper's loop because they change scores:

- the program run at each call is every earlier *successful* block (their ``print(`` lines dropped, so
  only the new block prints) plus the import lines of the failed ones, then the new block: a later block
  may use the variables of an earlier one (``trajectory.extract_program``);
- the output fed back is capped at ``output_chars`` characters, its head and tail kept around ``...``
  (``PythonExecutor.truncate``, 400 in the paper);
- after the ``rounds``-th call the output is followed by ``Reach max function call limit.`` and the
  problem ends there: ``rounds`` generations in all.

Where we differ: a block counts as successful when the sandbox says it ran (status ``ok``), not by the
paper's keyword test on its output (which also rejects any output containing "nan", "cannot" or "...").
Problems advance together, one batched generation per round."""

from __future__ import annotations

import re
from dataclasses import replace

from jiuzhang.sandbox.process import Limits, run_many
from jiuzhang.synthesis.requests import Request

OUTPUT_STOP = "```output"
LIMIT_MARKER = "\nReach max function call limit."
_CODE_AT_END = re.compile(r"```python[ \t]*\n(.*?)```\s*$", re.DOTALL)


def capped(text: str, max_chars: int) -> str:
    """The paper's cap on fed-back output: head and tail halves around '...'."""
    half = max_chars // 2
    return text[:half] + "..." + text[-half:] if len(text) > max_chars else text


def cumulative_program(history: list[tuple[str, bool]], new: str) -> str:
    """The program the paper runs: earlier successful blocks without their prints, the failed blocks'
    imports first, then the new block (which keeps its prints: its output is what is fed back)."""
    imports = [line for code, ok in history if not ok for line in code.split("\n")
               if line.startswith(("import", "from"))]
    kept = ["\n".join(line for line in code.split("\n") if not line.strip().startswith("print("))
            for code, ok in history if ok]
    parts = kept + [new]
    if imports:
        parts[0] = "\n".join(imports) + "\n" + parts[0]
    return "\n".join(parts)


def run_tool_loop(engine, requests: list[Request], rounds: int, limits: Limits, workers: int,
                  output_chars: int = 400) -> tuple[dict[str, str], dict[str, int], set[str]]:
    """{request id: the whole solution written (model text and output blocks)}, execution counts, and the
    ids whose last generation hit the token limit."""
    texts = {r.id: "" for r in requests}
    history: dict[str, list[tuple[str, bool]]] = {r.id: [] for r in requests}
    cut_off: set[str] = set()
    counts: dict[str, int] = {}
    active = list(requests)
    for call in range(1, rounds + 1):
        if not active:
            break
        continued = [replace(r, prompt=r.prompt + texts[r.id], stop=(*r.stop, OUTPUT_STOP)) for r in active]
        gens = [g for batch in engine.plan(continued) for g in engine.generate(batch)]
        by_id = {g.id: g for g in gens}
        blocks = {}
        for r in active:
            texts[r.id] += by_id[r.id].text
            (cut_off.add if by_id[r.id].finish_reason == "length" else cut_off.discard)(r.id)
            start = texts[r.id].rfind("```python")
            m = _CODE_AT_END.match(texts[r.id], start) if start >= 0 else None
            if m and "boxed" not in by_id[r.id].text:
                blocks[r.id] = m.group(1)
        results = run_many([cumulative_program(history[rid], code) for rid, code in blocks.items()], limits, workers)
        for (rid, code), ex in zip(blocks.items(), results):
            counts[ex.status] = counts.get(ex.status, 0) + 1
            history[rid].append((code, ex.status == "ok"))
            shown = capped((ex.stdout if ex.status == "ok" else ex.error_line).strip(), output_chars)
            texts[rid] += f"\n```output\n{shown}\n```\n" + (LIMIT_MARKER if call == rounds else "")
        active = [r for r in active if r.id in blocks]
    return texts, counts, cut_off
