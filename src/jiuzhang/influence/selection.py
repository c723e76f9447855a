"""The influence stage: the candidate pool (texts never sent in round 1, with data written for them by
``synthesizer_initial``) and the texts chosen from it for the boosting round, with their scores.

``method: random`` ranks candidates by a seeded hash (the paper's random-selection ablation); the
gradient-based ``less`` method writes the same table with influence scores computed on the candidates' data.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from jiuzhang.common.io import InputDataError, reset_dir
from jiuzhang.common.seeding import keyed_uniform
from jiuzhang.config.cluster import ClusterConfig
from jiuzhang.config.influence import InfluenceConfig, LessConfig
from jiuzhang.config.kd import KdConfig
from jiuzhang.config.root import Params
from jiuzhang.kd.items import SELECTION_SCHEMA, initial_items
from jiuzhang.kd.rounds import rank_by_seed, select_random


def candidate_pool(cfg: InfluenceConfig, kd: KdConfig, pool: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A seeded sample of ``pool_size`` prompts, none of them sent in round 1 (never pay twice for a text)."""
    exclude = {r["id"] for r in initial_items(pool, kd)}
    available = [r for r in pool if r["id"] not in exclude]
    if cfg.pool_size > len(available):
        raise InputDataError(f"influence.pool_size={cfg.pool_size} but only {len(available)} prompts remain after "
                             f"the round-1 sample; lower influence.pool_size or grow the corpus")
    if kd.boost.n > cfg.pool_size:
        raise InputDataError(f"kd.boost.n={kd.boost.n} exceeds influence.pool_size={cfg.pool_size}: the boost "
                             f"round selects from the candidate pool; raise pool_size or lower kd.boost.n")
    return rank_by_seed(available, cfg.seed, "candidates")[:cfg.pool_size]


def select(cfg: InfluenceConfig, kd: KdConfig, candidates: list[dict[str, Any]], out_dir: Path) -> dict[str, Any]:
    """The random baseline: kd.boost.n candidates drawn by seed, written as the selection."""
    chosen = select_random(candidates, set(), kd.boost.n, cfg.seed)
    rows = [{"id": r["id"], "rank": i, "score": keyed_uniform(cfg.seed, "influence", r["id"]), "method": cfg.method}
            for i, r in enumerate(chosen)]
    out = reset_dir(out_dir)
    pq.write_table(pa.Table.from_pylist(rows, schema=SELECTION_SCHEMA), out / "selected.parquet", compression="zstd")
    levels: dict[str, int] = {}
    for r in chosen:
        levels[r["level"]] = levels.get(r["level"], 0) + 1
    return {"method": cfg.method, "candidates": len(candidates), "selected": len(rows), "by_level": dict(sorted(levels.items()))}


def _candidate_example(row_id: str, text: str):
    """The candidate's synthesized data as a training example: the paper's record when it parses, else the
    raw text (a tiny synthesizer's output rarely parses; its tokens are still what the model would see)."""
    from jiuzhang.synthesis.records import parse_generation, to_record
    from jiuzhang.training.packing import Example

    draft = parse_generation(text, "stop", 1)
    if draft.reason is None:
        rec = to_record(draft.problem or "", draft.solution or "", "nl")
        return Example(row_id, rec["input"], rec["output"])
    return Example(row_id, "", text)


def _targets(less: LessConfig, tokenizer) -> dict[str, list]:
    from jiuzhang.common.io import iter_jsonl
    from jiuzhang.influence.less import tokenize_all
    from jiuzhang.training.packing import Example

    out = {}
    for task, t in less.targets.items():
        examples: list[Example] = []
        path = Path(t.path)
        if not path.is_file():
            raise InputDataError(f"influence.less.targets.{task}.path: {path} not found")
        for line in iter_jsonl(path):
            if line.record is None:
                raise InputDataError(f"{path}:{line.lineno}: {line.error}")
            q, a = line.record.get(t.question_field), line.record.get(t.answer_field)
            if not isinstance(q, str) or not isinstance(a, str):
                raise InputDataError(f"{path}:{line.lineno}: needs string fields '{t.question_field}' and "
                                     f"'{t.answer_field}' (influence.less.targets.{task})")
            examples.append(Example(f"{task}/{len(examples)}", f"## Question\n{q}\n\n## Solution\n", a))
            if len(examples) >= t.n:
                break
        tokenized = tokenize_all(examples, tokenizer, less.max_length)
        if not tokenized:  # LESS would score against NaN here
            raise InputDataError(f"influence.less.targets.{task}: no example keeps an answer token within "
                                 f"max_length={less.max_length}; raise max_length or check the fields")
        out[task] = tokenized
    return out


def select_less(cfg: InfluenceConfig, kd: KdConfig, candidates: list[dict[str, Any]], texts: dict[str, str],
                reference: Path, out_dir: Path, cluster: ClusterConfig | None = None) -> dict[str, Any]:
    """Score every candidate's data by LESS and select the top kd.boost.n; unscorable ones rank last.

    The work runs on a pool of workers that each hold the reference model (``cluster``; None = this
    process): the warm-up on one of them, the target directions per checkpoint, then the candidate shards
    (``influence.less.shard_size``) on whichever worker is free. Only this process writes outputs.
    """
    import random
    from functools import partial

    from transformers import AutoTokenizer

    from jiuzhang.cluster.pool import Unit, WorkerPool
    from jiuzhang.common.progress import Progress
    from jiuzhang.influence import reference as worker
    from jiuzhang.influence.less import merge, report, tokenize_all
    from jiuzhang.influence.scoring import rank

    less = cfg.less
    if less is None:  # the config requires the section for method 'less'; a caller may pass another config
        raise InputDataError("influence.method: less needs an influence.less section (see configs/mini.yaml)")
    cluster = cluster or ClusterConfig(executor="inline", max_retries=0)
    if cluster.executor == "inline":
        worker.placement(less.device, less.dtype, 0)  # no GPU for 'cuda': the error now, before the model loads
    tokenizer = AutoTokenizer.from_pretrained(str(reference))  # the workers load the model itself
    targets = _targets(less, tokenizer)  # bad target data fails before any training
    data = tokenize_all([_candidate_example(r["id"], texts[r["id"]]) for r in candidates
                         if texts.get(r["id"], "").strip()], tokenizer, less.max_length)
    if not data:
        raise InputDataError("influence: no candidate has data with a token to learn from; check the synthesize "
                             "settings (max_new_tokens) and data/influence/candidates")
    rng = random.Random(cfg.seed)
    warm = sorted(rng.sample(range(len(data)), max(1, round(less.warmup_fraction * len(data)))))
    shards = [data[i:i + less.shard_size] for i in range(0, len(data), less.shard_size)]
    with WorkerPool(partial(worker.load_reference, str(reference), less, cfg.seed), cluster, "influence (LESS)",
                    most=len(shards)) as pool:
        checkpoints = pool.one("the LoRA warm-up", ([data[i] for i in warm], cfg.seed), worker.warm_up)
        shared, shared_targets = pool.share(checkpoints), pool.share(targets)
        directions: dict[int, Any] = {}
        with Progress("LESS target directions", len(checkpoints), "checkpoint") as bar:
            pool.run([Unit(i, f"target directions at checkpoint {i}", (shared, i, shared_targets))
                      for i in range(len(checkpoints))], worker.directions_at,
                     lambda u, r: directions.__setitem__(u.index, r), on_progress=bar.update)
        shared_dirs = pool.share([directions[i] for i in range(len(checkpoints))])
        parts: dict[int, Any] = {}
        with Progress("LESS scores", len(data), "text") as bar:
            pool.run([Unit(k, f"candidate shard {k} ({len(s)} texts)", (shared, shared_dirs, s), len(s))
                      for k, s in enumerate(shards)], worker.score, lambda u, r: parts.__setitem__(u.index, r),
                     on_progress=bar.update)
    final, per_task = merge([parts[k] for k in range(len(shards))])
    scored = {t.id: i for i, t in enumerate(data)}
    ids = [r["id"] for r in candidates]
    score = [float(final[scored[i]]) if i in scored else float("-inf") for i in ids]
    order = rank(ids, score)
    chosen = [candidates[i] for i in order[:kd.boost.n]]
    out = reset_dir(out_dir)
    rows = [{"id": ids[i], "rank": k, "score": score[i], "method": "less"} for k, i in enumerate(order[:kd.boost.n])]
    pq.write_table(pa.Table.from_pylist(rows, schema=SELECTION_SCHEMA), out / "selected.parquet", compression="zstd")
    table = {"id": ids, "score": score, "scored": [i in scored for i in ids],
             **{f"task_{t}": [float(v[scored[i]]) if i in scored else float("nan") for i in ids]
                for t, v in per_task.items()}}
    pq.write_table(pa.table(table), out / "scores.parquet", compression="zstd")
    levels: dict[str, int] = {}
    for r in chosen:
        levels[r["level"]] = levels.get(r["level"], 0) + 1
    return {"method": "less", "candidates": len(candidates), "scored": len(data), "selected": len(rows),
            "warmup_examples": len(warm), "checkpoints": len(checkpoints),
            "lr_per_checkpoint": [round(c["lr"], 8) for c in checkpoints],
            "targets": {t: len(v) for t, v in targets.items()}, "by_level": dict(sorted(levels.items())),
            **report(final, per_task)}


def choose_boost_prompts(p: Params, pool: list[dict[str, Any]], synthesizer: str, candidates_dir: Path,
                         reference: Path | None, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """The influence stage's work: the candidate pool (influence.pool_size prompts the initial round did not
    use), data for each written by the synthesizer into ``candidates_dir`` (resumable shards), then the
    kd.boost.n candidates chosen by ``influence.method`` (LESS against ``reference``, or random) into
    ``out_dir``. Returns the selection's results with the candidate data's counts and its timing."""
    from jiuzhang.synthesis.engine import EngineSettings, build_engine
    from jiuzhang.synthesis.job import run_job

    if p.influence.method == "less" and reference is None:  # before any generation
        raise InputDataError("influence.method: less needs --reference (the model to be pre-trained, models/base)")
    candidates = candidate_pool(p.influence, p.kd, pool)
    cfg = p.synthesize.model_copy(update={"max_prompts": None})
    made = run_job(cfg, candidates, Path(synthesizer), candidates_dir, p.cluster,
                   partial(build_engine, synthesizer, EngineSettings.of_synthesize(cfg)), progress=progress)
    timing = made.pop("timing", {})
    if p.influence.method == "less":
        assert reference is not None
        texts = {r["id"]: r["text"] for f in sorted(candidates_dir.glob("part-*.parquet"))
                 for r in pq.read_table(f, columns=["id", "text"]).to_pylist()}
        results = select_less(p.influence, p.kd, candidates, texts, reference, out_dir, p.cluster)
    else:
        results = select(p.influence, p.kd, candidates, out_dir)
    return {**results, "candidate_data": {k: made[k] for k in ("records", "by_finish_reason", "mean_new_tokens")},
            "timing": timing}
