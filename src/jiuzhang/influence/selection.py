"""The influence stage: the candidate pool (texts never sent in round 1, with data written for them by
``synthesizer_initial``) and the texts chosen from it for the boosting round, with their scores.

``method: random`` ranks candidates by a seeded hash (the paper's random-selection ablation); the
gradient-based ``less`` method writes the same table with influence scores computed on the candidates' data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from jiuzhang.common.io import InputDataError, reset_dir
from jiuzhang.common.seeding import keyed_uniform
from jiuzhang.config.influence import InfluenceConfig
from jiuzhang.config.kd import KdConfig
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


def _targets(cfg: InfluenceConfig, tokenizer) -> dict[str, list]:
    from jiuzhang.common.io import iter_jsonl
    from jiuzhang.influence.less import tokenize_all
    from jiuzhang.training.packing import Example

    out = {}
    for task, t in cfg.less.targets.items():
        examples = []
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
        tokenized = tokenize_all(examples, tokenizer, cfg.less.max_length)
        if not tokenized:  # LESS would score against NaN here
            raise InputDataError(f"influence.less.targets.{task}: no example keeps an answer token within "
                                 f"max_length={cfg.less.max_length}; raise max_length or check the fields")
        out[task] = tokenized
    return out


def release_scratch(scratch: Path, world, poll_s: float, deadline_s: float) -> None:
    """Every rank says it is done with the scratch folder; the main rank then deletes it (it held the
    warm-up checkpoints and scored shards of this run only, and would otherwise pile up in .cache)."""
    import shutil

    from jiuzhang.common.waiting import wait_for

    (scratch / f"rank-{world.rank}.done").touch()
    if not world.is_main:
        return
    marks = [scratch / f"rank-{r}.done" for r in range(world.world_size)]
    wait_for(lambda: all(m.is_file() for m in marks),
             lambda: f"ranks {[r for r, m in enumerate(marks) if not m.is_file()]} to finish with {scratch}",
             deadline_s, poll_s, "influence.less.rank_wait_s")
    shutil.rmtree(scratch)


def placement(device: str, dtype: str, local_rank: int) -> tuple[str, str]:
    """(torch device, weights dtype) of this rank's LESS run: one rank per GPU, bf16 there; fp32 on a CPU."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise InputDataError("influence.less.device is 'cuda' but no GPU is visible; set it to 'auto' or 'cpu'")
    on_gpu = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    where = f"cuda:{local_rank % torch.cuda.device_count()}" if on_gpu else "cpu"
    return where, ("bf16" if on_gpu else "fp32") if dtype == "auto" else dtype


def select_less(cfg: InfluenceConfig, kd: KdConfig, candidates: list[dict[str, Any]], texts: dict[str, str],
                reference: Path, out_dir: Path, world=None, scratch: Path | None = None,
                poll_s: float = 1.0) -> dict[str, Any]:
    """Score every candidate's data by LESS and select the top kd.boost.n; unscorable ones rank last.

    With several ranks, ``scratch`` (a folder every rank sees) holds the warm-up checkpoints and the
    scored shards under a key of this run's settings and candidates; only the main rank writes outputs.
    """
    import random

    import torch

    from jiuzhang.common.digest import code_sha256, folder_sha256, json_sha256
    from jiuzhang.influence.less import report, score_candidates, shared_checkpoints, tokenize_all, warmup, with_lora
    from jiuzhang.training.world import World
    from jiuzhang.influence.scoring import rank
    from jiuzhang.config.training import ModelSource
    from jiuzhang.training.runner import load_start

    less = cfg.less
    world = world or World()
    device, dtype = placement(less.device, less.dtype, world.local_rank)
    torch.use_deterministic_algorithms(True, warn_only=True)
    model, tokenizer = load_start(ModelSource(path=str(reference)), dtype, less.attn_implementation)
    targets = _targets(cfg, tokenizer)  # bad target data fails before any training
    # LoRA A is drawn on the CPU from our seeded generator, then everything moves to the rank's device
    model = with_lora(model, less.r, less.alpha, cfg.seed).to(device)
    if less.gradient_checkpointing:  # warm-up and gradient features alike (the hooks see the first forward)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    data = tokenize_all([_candidate_example(r["id"], texts[r["id"]]) for r in candidates
                         if texts.get(r["id"], "").strip()], tokenizer, less.max_length)
    if not data:
        raise InputDataError("influence: no candidate has data with a token to learn from; check the synthesize "
                             "settings (max_new_tokens) and data/influence/candidates")
    if world.world_size > 1:
        # Keyed by content, not paths: the reference model's bytes, the candidates' and targets' tokens, the
        # settings and the code version; a stale folder of another run can never be taken for this one.
        settings = cfg.model_dump(mode="json")
        settings["less"].pop("rank_wait_s")  # how long to wait does not change what is computed
        key = json_sha256({"cfg": settings, "reference": folder_sha256(reference),
                           "data": [(t.id, t.input_ids, t.labels) for t in data],
                           "targets": {k: [(t.id, t.input_ids, t.labels) for t in v] for k, v in targets.items()},
                           "code": code_sha256(__file__)})[:16]
        scratch = (scratch or Path(".cache/influence")) / key
    rng = random.Random(cfg.seed)
    warm = sorted(rng.sample(range(len(data)), max(1, round(less.warmup_fraction * len(data)))))
    checkpoints = shared_checkpoints(lambda: warmup(model, [data[i] for i in warm], less.epochs, less.lr,
                                                    less.warmup_ratio, less.batch_size, cfg.seed), world, scratch, poll_s,
                                     less.rank_wait_s)
    if less.gradient_checkpointing:
        # transformers checkpoints only in training mode; the gradient features are the same there because
        # the LoRA dropout is 0 and a Llama-style model's attention dropout is 0 (checked: tests/test_less.py)
        model.train()
    scored_all = score_candidates(model, checkpoints, data, targets, less.dim, less.projection_seed,
                                  less.adam_variant, less.batch_size, less.shard_size, world=world, scratch=scratch,
                                  poll_s=poll_s, deadline_s=less.rank_wait_s)
    if world.world_size > 1:
        release_scratch(scratch, world, poll_s, less.rank_wait_s)
    if scored_all is None:  # not the main rank: its shards are saved for the main rank to merge
        return {}
    final, per_task = scored_all
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
            "lr_per_checkpoint": [round(c.lr, 8) for c in checkpoints],
            "targets": {t: len(v) for t, v in targets.items()}, "by_level": dict(sorted(levels.items())),
            **report(final, per_task)}
