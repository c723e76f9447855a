"""Evaluate one benchmark in its settings with any engine: prompts -> generations (greedy) -> grades.

Predictions keep everything needed to audit a score: the prompt's item index, the full output, the
extracted answer, the gold answer and the verdict.
"""

from __future__ import annotations

import time
from typing import Any

from jiuzhang.config.evaluation import EvalConfig
from jiuzhang.errors import UserError
from jiuzhang.evaluation.grading import grade
from jiuzhang.evaluation.heldout import gold_target, heldout_nll
from jiuzhang.evaluation.prompting import build_prompt, load_fewshot
from jiuzhang.evaluation.tasks import Task
from jiuzhang.evaluation.stats import bootstrap_mean
from jiuzhang.evaluation.toolloop import run_tool_loop
from jiuzhang.sandbox.runner import Limits
from jiuzhang.config.synthesis import SamplingConfig
from jiuzhang.synthesis.requests import Request
from jiuzhang.training.packing import Example


def evaluate(task: Task, rows: list[dict[str, Any]], settings: tuple[str, ...], engine, cfg: EvalConfig,
             progress=None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(predictions, metrics) for ``task`` on ``rows`` in each setting."""
    shots = load_fewshot(cfg.fewshot_dir, task)
    greedy = SamplingConfig(temperature=0.0, top_p=1.0, max_new_tokens=cfg.max_new_tokens)
    limits = Limits.for_timeout(cfg.exec_timeout_s, cfg.exec_memory_mb)
    predictions: list[dict[str, Any]] = []
    metrics: dict[str, Any] = {"benchmark": task.name, "items": len(rows)}
    timing: dict[str, float] = {}
    loaded = rows
    for setting in settings:
        limit = cfg.limit_for(task.name, setting) if task.name in cfg.benchmarks else None
        rows = loaded[:limit] if limit is not None else loaded  # the loss setting may take more items
        started = time.perf_counter()
        if setting == "loss":
            rows_out, metrics["loss"] = heldout(task, rows, shots, engine, cfg)
            predictions += rows_out
            timing["loss_seconds"] = round(time.perf_counter() - started, 2)
            continue
        requests = [Request(f"{task.name}/{setting}/{r['_idx']}", build_prompt(task, r, setting, shots), "nl", setting,
                            0, greedy, tuple(cfg.stop)) for r in rows]
        executions: dict[str, int] = {}
        if setting == "tool":
            texts, executions, cut_off = run_tool_loop(engine, requests, cfg.tool_rounds, limits, cfg.exec_workers,
                                                       cfg.tool_output_chars)
        else:
            texts, cut_off = {}, set()
            for batch in engine.plan(requests):
                for g in engine.generate(batch):
                    texts[g.id] = g.text
                    if g.finish_reason == "length":
                        cut_off.add(g.id)
                if progress:
                    progress(len(batch))
        correct = invalid = 0
        for r, req in zip(rows, requests):
            v = grade(task, r, texts[req.id], cut_off=req.id in cut_off)
            correct += v.correct
            invalid += v.extracted is None
            predictions.append({"idx": r["_idx"], "setting": setting, "prediction": texts[req.id],
                                "extracted": v.extracted, "gold": v.gold, "correct": v.correct,
                                "cut_off": req.id in cut_off})
        metrics[setting] = {"accuracy": round(correct / len(rows), 6) if rows else 0.0, "correct": correct,
                            "total": len(rows), "invalid": invalid,
                            "cut_off": sum(req.id in cut_off for req in requests), **({"executions": executions} if setting == "tool" else {})}
        timing[f"{setting}_seconds"] = round(time.perf_counter() - started, 2)
    metrics["timing"] = timing
    return predictions, metrics


def heldout(task: Task, rows: list[dict[str, Any]], shots, engine, cfg: EvalConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The 'loss' setting: each item's held-out NLL of its gold solution (see :mod:`.heldout`)."""
    model, tokenizer = getattr(engine, "model", None), getattr(engine, "tokenizer", None)
    if model is None or not hasattr(model, "parameters"):
        raise UserError(f"{task.name}: the 'loss' setting scores a local model's likelihoods; an endpoint cannot "
                        f"give them (remove 'loss' from eval.benchmarks.{task.name} or evaluate a model folder)")
    examples = [Example(f"{task.name}/loss/{r['_idx']}", build_prompt(task, r, "nl", shots), gold_target(task, r))
                for r in rows]
    nll = heldout_nll(model, tokenizer, examples, cfg.batch_size, engine.context)
    preds = [{"idx": r["_idx"], "setting": "loss", "target": ex.target,
              "nll": round(nll[ex.id][0], 6) if ex.id in nll else None,
              "tokens": nll[ex.id][1] if ex.id in nll else 0} for r, ex in zip(rows, examples)]
    scored = [p["nll"] for p in preds if p["nll"] is not None]
    mean, lo, hi = bootstrap_mean(scored)
    return preds, {"mean_nll": round(mean, 6), "ci95": [round(lo, 6), round(hi, 6)], "items": len(scored),
                   "total": len(rows), "unscored": len(rows) - len(scored),
                   "target_tokens": sum(p["tokens"] for p in preds)}
