"""Evaluate one benchmark in its settings with any engine: prompts -> generations (greedy) -> grades.

Predictions keep everything needed to audit a score: the prompt's item index and hash (``prompt_sha256``,
first 16 hex digits of its SHA-256: two files' rows answer the same prompt when it matches), the full output,
the extracted answer, the gold answer and the verdict.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jiuzhang.cluster.pool import Unit, run_units
from jiuzhang.common.digest import text_digest
from jiuzhang.common.progress import Progress
from jiuzhang.config.cluster import ClusterConfig
from jiuzhang.config.evaluation import EvalConfig
from jiuzhang.config.synthesis import SamplingConfig
from jiuzhang.errors import UserError
from jiuzhang.evaluation.answer_store import AnswerStore
from jiuzhang.evaluation.grading import grade
from jiuzhang.evaluation.heldout import LOSS_KEYS, gold_target, heldout_nll
from jiuzhang.evaluation.prompting import build_prompt, load_fewshot, neutral_prompt
from jiuzhang.evaluation.stats import bootstrap_mean
from jiuzhang.evaluation.tasks import Task
from jiuzhang.evaluation.toolloop import run_tool_loop
from jiuzhang.sandbox.process import Limits
from jiuzhang.synthesis.requests import Request
from jiuzhang.training.packing import Example


def evaluate(task: Task, rows: list[dict[str, Any]], settings: tuple[str, ...], engine, cfg: EvalConfig,
             resume: Path | None = None, model_key: str = "",
             cluster: ClusterConfig | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(predictions, metrics) for ``task`` on ``rows`` in each setting.

    Generations of every generating setting are cut into shards (``eval.shard_size`` items) and answered by
    one pool of workers (:func:`jiuzhang.cluster.pool.run_units`: Ray actors with their own engine per
    ``cluster``, or ``engine`` itself in this process when ``cluster`` is None or inline); the held-out loss
    is scored here. With ``resume`` (a scratch folder), each finished shard is kept there
    (:class:`AnswerStore`, keyed by ``model_key``, the prompts and the settings), so a killed eval's rerun
    generates only the shards it had not finished; the caller deletes the folder once the predictions are
    written."""
    shots = load_fewshot(cfg.fewshot_dir, task)
    greedy = SamplingConfig(temperature=0.0, top_p=1.0, max_new_tokens=cfg.max_new_tokens)
    limits = Limits.for_timeout(cfg.exec_timeout_s, cfg.exec_memory_mb)
    predictions: list[dict[str, Any]] = []
    metrics: dict[str, Any] = {"benchmark": task.name, "items": len(rows)}
    timing: dict[str, Any] = {}
    limits_of = {s: cfg.limit_for(task.name, s) if task.name in cfg.benchmarks else None for s in settings}
    chosen = {s: rows if limits_of[s] is None else rows[:limits_of[s]] for s in settings}  # loss may take more
    requests = {s: [Request(f"{task.name}/{s}/{r['_idx']}", build_prompt(task, r, s, shots), "nl", s, 0, greedy,
                            tuple(cfg.stop)) for r in chosen[s]] for s in settings if s != "loss"}
    started = time.perf_counter()
    answers = _generate(requests, engine, cfg, limits, resume, model_key, f"{task.name} answers", cluster, timing)
    if requests:
        timing["generate_seconds"] = round(time.perf_counter() - started, 2)
    for setting in settings:
        if setting == "loss":
            started = time.perf_counter()
            for fmt in cfg.loss_formats:  # one metric per scoring format: 'loss' (paper template), 'loss_neutral'
                rows_out, metrics[LOSS_KEYS[fmt]] = heldout(task, chosen[setting], shots, engine, cfg, fmt)
                predictions += rows_out
            timing["loss_seconds"] = round(time.perf_counter() - started, 2)
            continue
        texts, executions, cut_off = answers[setting]
        correct = invalid = 0
        for r, req in zip(chosen[setting], requests[setting]):
            v = grade(task, r, texts[req.id], cut_off=req.id in cut_off, rules=cfg.grading.rules)
            correct += v.correct
            invalid += v.extracted is None
            predictions.append({"idx": r["_idx"], "setting": setting, "prompt_sha256": text_digest(req.prompt),
                                "prediction": texts[req.id],
                                "extracted": v.extracted, "gold": v.gold, "correct": v.correct,
                                "cut_off": req.id in cut_off})
        n = len(chosen[setting])
        metrics[setting] = {"accuracy": round(correct / n, 6) if n else 0.0, "correct": correct, "total": n,
                            "grading_rules": cfg.grading.rules,
                            "invalid": invalid, "cut_off": sum(req.id in cut_off for req in requests[setting]),
                            **({"executions": executions} if setting == "tool" else {})}
    metrics["timing"] = timing
    return predictions, metrics


@dataclass(frozen=True)
class AnswerWork:
    """One shard of one setting's requests, as a worker answers it."""

    setting: str
    requests: list[Request]
    tool_rounds: int
    limits: Limits
    exec_workers: int
    tool_output_chars: int


def answer_shard(engine, work: AnswerWork, attempt: str) -> dict[str, Any]:
    """Run on a worker (or here): the shard's texts, tool executions and cut-off ids."""
    if work.setting == "tool":
        t, ex, cut = run_tool_loop(engine, work.requests, work.tool_rounds, work.limits, work.exec_workers,
                                   work.tool_output_chars)
    else:
        t, ex, cut = {}, {}, set()
        for batch in engine.plan(work.requests):
            for g in engine.generate(batch):
                t[g.id] = g.text
                if g.finish_reason == "length":
                    cut.add(g.id)
    return {"texts": t, "executions": ex, "cut_off": sorted(cut)}


def _generate(requests: dict[str, list[Request]], engine, cfg: EvalConfig, limits: Limits, resume: Path | None,
              model_key: str, name: str, cluster: ClusterConfig | None,
              timing: dict[str, Any]) -> dict[str, tuple[dict[str, str], dict[str, int], set[str]]]:
    """Per setting: (texts, executions, cut-off ids). Shards finished by an earlier, killed run are read back
    from their :class:`AnswerStore`; the others go to the pool, and each is saved there as it arrives."""
    stores = {s: None if resume is None else AnswerStore(resume, {
        "model": model_key, "engine": getattr(engine, "name", type(engine).__name__), "setting": s,
        "prompts": [(q.id, q.prompt) for q in reqs], "shard_size": cfg.shard_size,
        "eval": cfg.model_dump(mode="json", include={"max_new_tokens", "stop", "tool_rounds", "tool_output_chars",
                                                    "exec_timeout_s", "exec_memory_mb", "batch_size", "dtype",
                                                    "chat_template", "device", "engine"})}) for s, reqs in requests.items()}
    done: dict[tuple[str, int], dict[str, Any]] = {}
    units: list[Unit] = []
    keys: list[tuple[str, int]] = []  # (setting, shard) of each unit
    reused = [0, 0]  # shards, items read back from a killed run
    for setting, reqs in requests.items():
        for k, start in enumerate(range(0, len(reqs), cfg.shard_size)):
            shard = reqs[start:start + cfg.shard_size]
            store = stores[setting]
            saved = store.load(setting, k) if store is not None else None
            if saved is not None:
                done[(setting, k)] = saved
                reused[0] += 1
                reused[1] += len(shard)
                continue
            units.append(Unit(len(units), f"{setting} shard {k} ({len(shard)} items)",
                              AnswerWork(setting, shard, cfg.tool_rounds, limits, cfg.exec_workers,
                                         cfg.tool_output_chars), len(shard)))
            keys.append((setting, k))

    def commit(unit: Unit, answers: dict[str, Any]) -> None:
        setting, k = keys[unit.index]
        store = stores[setting]
        if store is not None:
            store.save(setting, k, answers)
        done[(setting, k)] = answers

    factory = getattr(engine, "generator_factory", None)
    if cluster is None or factory is None:  # an endpoint (or a caller without a cluster): this process answers
        cluster = ClusterConfig(executor="inline", max_retries=0)
    build: Callable[[], Any] = factory if cluster.executor == "ray" and factory is not None else (lambda: engine)
    total = sum(len(r) for r in requests.values())
    with Progress(name, total, "item", initial=reused[1]) as bar:
        if reused[0]:
            bar.write(f"{name}: {reused[0]} shard(s) ({reused[1]} items) reused from a killed run")
        stats = run_units(units, build, answer_shard, commit, cluster, f"{name} {'/'.join(requests)}",
                          on_progress=bar.update)
    timing.update({f"pool_{k}": v for k, v in stats.as_dict().items()})
    out = {}
    for setting, reqs in requests.items():
        texts: dict[str, str] = {}
        executions: dict[str, int] = {}
        cut_off: set[str] = set()
        for k in range(-(-len(reqs) // cfg.shard_size)):
            answers = done[(setting, k)]
            texts.update(answers["texts"])
            cut_off.update(answers["cut_off"])
            for status, n in answers["executions"].items():
                executions[status] = executions.get(status, 0) + n
        out[setting] = (texts, executions, cut_off)
    return out


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
    nll = heldout_nll(model, tokenizer, examples, cfg.loss_batch_size, engine.context, bf16=cfg.loss_dtype == "bf16",
                      name=f"{task.name} {key}")
    preds = [{"idx": r["_idx"], "setting": key, "format": fmt, "prompt_sha256": text_digest(ex.prompt),
              "target": ex.target,
              "nll": round(nll[ex.id][0], 6) if ex.id in nll else None,
              "tokens": nll[ex.id][1] if ex.id in nll else 0} for r, ex in zip(rows, examples)]
    scored = [p["nll"] for p in preds if p["nll"] is not None]
    mean, lo, hi = bootstrap_mean(scored)
    return preds, {"format": fmt, "mean_nll": round(mean, 6), "ci95": [round(lo, 6), round(hi, 6)], "items": len(scored),
                   "total": len(rows), "unscored": len(rows) - len(scored),
                   "target_tokens": sum(p["tokens"] for p in preds)}
