"""Evaluate one benchmark in its settings with any engine: prompts -> generations (greedy) -> grades.

Predictions keep everything needed to audit a score: the prompt's item index, the full output, the
extracted answer, the gold answer and the verdict.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from jiuzhang.config.evaluation import EvalConfig
from jiuzhang.errors import UserError
from jiuzhang.evaluation.answer_store import AnswerStore
from jiuzhang.evaluation.grading import grade
from jiuzhang.evaluation.heldout import LOSS_KEYS, gold_target, heldout_nll
from jiuzhang.evaluation.prompting import build_prompt, load_fewshot, neutral_prompt
from jiuzhang.evaluation.tasks import Task
from jiuzhang.evaluation.stats import bootstrap_mean
from jiuzhang.evaluation.toolloop import run_tool_loop
from jiuzhang.sandbox.runner import Limits
from jiuzhang.config.synthesis import SamplingConfig
from jiuzhang.synthesis.requests import Request
from jiuzhang.training.packing import Example


def evaluate(task: Task, rows: list[dict[str, Any]], settings: tuple[str, ...], engine, cfg: EvalConfig,
             progress=None, resume: Path | None = None,
             model_key: str = "") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(predictions, metrics) for ``task`` on ``rows`` in each setting. With ``resume`` (a scratch folder),
    each finished shard of generations is kept there (:class:`AnswerStore`, keyed by ``model_key``, the
    prompts and the settings), so a killed eval's rerun generates only the shards it had not finished; the
    caller deletes the folder once the predictions are written."""
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
            for fmt in cfg.loss_formats:  # one metric per scoring format: 'loss' (paper template), 'loss_neutral'
                key = LOSS_KEYS[fmt]
                rows_out, metrics[key] = heldout(task, rows, shots, engine, cfg, fmt)
                predictions += rows_out
            timing["loss_seconds"] = round(time.perf_counter() - started, 2)
            continue
        requests = [Request(f"{task.name}/{setting}/{r['_idx']}", build_prompt(task, r, setting, shots), "nl", setting,
                            0, greedy, tuple(cfg.stop)) for r in rows]
        store = None if resume is None else AnswerStore(resume, {
            "model": model_key, "engine": getattr(engine, "name", type(engine).__name__), "setting": setting,
            "prompts": [(q.id, q.prompt) for q in requests], "shard_size": cfg.shard_size,
            "eval": cfg.model_dump(mode="json", include={"max_new_tokens", "stop", "tool_rounds", "tool_output_chars",
                                                        "exec_timeout_s", "exec_memory_mb", "batch_size", "dtype",
                                                        "chat_template", "device", "engine"})})
        texts, executions, cut_off = _generate(requests, setting, engine, cfg, limits, store, progress)
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


def _generate(requests: list[Request], setting: str, engine, cfg: EvalConfig, limits: Limits,
              store: AnswerStore | None, progress) -> tuple[dict[str, str], dict[str, int], set[str]]:
    """Generations of one setting, shard by shard (eval.shard_size items); a shard finished by an earlier,
    killed run is read back from ``store`` instead of generated again."""
    texts: dict[str, str] = {}
    executions: dict[str, int] = {}
    cut_off: set[str] = set()
    size = cfg.shard_size
    shards = [requests[i:i + size] for i in range(0, len(requests), size)]
    reused = 0
    for k, shard in enumerate(shards):
        done = store.load(setting, k) if store is not None else None
        if done is None:
            if setting == "tool":
                t, ex, cut = run_tool_loop(engine, shard, cfg.tool_rounds, limits, cfg.exec_workers,
                                           cfg.tool_output_chars)
            else:
                t, ex, cut = {}, {}, set()
                for batch in engine.plan(shard):
                    for g in engine.generate(batch):
                        t[g.id] = g.text
                        if g.finish_reason == "length":
                            cut.add(g.id)
            done = {"texts": t, "executions": ex, "cut_off": sorted(cut)}
            if store is not None:
                store.save(setting, k, done)
        else:
            reused += 1
        texts.update(done["texts"])
        cut_off.update(done["cut_off"])
        for status, n in done["executions"].items():
            executions[status] = executions.get(status, 0) + n
        if progress:
            progress(len(shard))
        elif len(shards) > 1:
            click.echo(f"eval {setting}: shard {k + 1}/{len(shards)} ({sum(map(len, shards[:k + 1]))}/{len(requests)} "
                       f"items{f', {reused} reused from a killed run' if reused else ''})", err=True)
    return texts, executions, cut_off


def heldout(task: Task, rows: list[dict[str, Any]], shots, engine, cfg: EvalConfig,
            fmt: str = "paper") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The 'loss' setting in one prompt format: each item's held-out NLL of its gold solution (see
    :mod:`.heldout`); prediction rows carry the format's key as their setting ('loss', 'loss_neutral')."""
    model, tokenizer = getattr(engine, "model", None), getattr(engine, "tokenizer", None)
    if model is None or not hasattr(model, "parameters"):
        raise UserError(f"{task.name}: the 'loss' setting scores a local model's likelihoods; an endpoint cannot "
                        f"give them (remove 'loss' from eval.benchmarks.{task.name} or evaluate a model folder)")
    key = LOSS_KEYS[fmt]
    prompt = (lambda r: build_prompt(task, r, "nl", shots)) if fmt == "paper" else (lambda r: neutral_prompt(task, r, shots))
    examples = [Example(f"{task.name}/{key}/{r['_idx']}", prompt(r), gold_target(task, r)) for r in rows]
    nll = heldout_nll(model, tokenizer, examples, cfg.loss_batch_size, engine.context, bf16=cfg.loss_dtype == "bf16")
    preds = [{"idx": r["_idx"], "setting": key, "format": fmt, "target": ex.target,
              "nll": round(nll[ex.id][0], 6) if ex.id in nll else None,
              "tokens": nll[ex.id][1] if ex.id in nll else 0} for r, ex in zip(rows, examples)]
    scored = [p["nll"] for p in preds if p["nll"] is not None]
    mean, lo, hi = bootstrap_mean(scored)
    return preds, {"format": fmt, "mean_nll": round(mean, 6), "ci95": [round(lo, 6), round(hi, 6)], "items": len(scored),
                   "total": len(rows), "unscored": len(rows) - len(scored),
                   "target_tokens": sum(p["tokens"] for p in preds)}
