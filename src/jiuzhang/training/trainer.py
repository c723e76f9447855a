"""Build and run one training stage: load the starting model, tokenize and pack the examples, train
(plain torch or DeepSpeed), save a standard HF folder. Stages call :func:`run_training`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from jiuzhang.common.digest import code_sha256, folder_sha256, json_sha256
from jiuzhang.common.io import InputDataError, reset_dir
from jiuzhang.common.precision import resolve_dtype
from jiuzhang.common.progress import Progress
from jiuzhang.common.waiting import wait_for
from jiuzhang.config.training import ModelSource, TrainConfig
from jiuzhang.models.loading import follow_pointer, load_model
from jiuzhang.training.engine import DeepSpeedEngine, TorchEngine
from jiuzhang.training.packing import Example, PackStats, tokenize
from jiuzhang.training.records import ExampleSet, ListExamples
from jiuzhang.training.sft import plan_steps, train_sft
from jiuzhang.training.tokenstore import TokenStore, build_store, is_finished
from jiuzhang.training.world import World, init_distributed, select_device


def weights_dtype(cfg: TrainConfig) -> str:
    """The dtype the weights are trained in. ``dtype: bf16`` without DeepSpeed keeps fp32 weights and AdamW
    state (the master copy) and runs the forward pass under bf16 autocast: AdamW on bf16 weights drops every
    update below half a bf16 ulp (at lr 1e-5, most weights never move; tests/training/test_training.py). DeepSpeed's
    bf16 mode keeps its own fp32 master copy, so it starts from bf16 weights."""
    return "bf16" if cfg.dtype == "bf16" and cfg.deepspeed.enabled else "fp32"


def _digests(source: ModelSource, examples: ExampleSet) -> tuple[str, str]:
    """(starting model's bytes or pinned hub revision, the examples: ids, prompts, targets and their order)."""
    start = follow_pointer(source)
    model = folder_sha256(Path(start.path)) if start.path else f"{start.model_id}@{start.revision}"
    return model, examples.digest()


def _as_set(examples: list[Example] | ExampleSet) -> ExampleSet:
    return examples if isinstance(examples, ExampleSet) else ListExamples(examples)


def checkpoint_fingerprint(source: ModelSource, examples: list[Example] | ExampleSet, cfg: TrainConfig, shuffle: bool,
                           digests: tuple[str, str] | None = None) -> str:
    """What a checkpoint must have been trained with to be resumed: the resolved training params, the
    examples (ids, prompts, targets, in order), the starting model's bytes (or its pinned hub revision) and
    the trainer's code version. Resuming under anything else would silently mix two runs."""
    model, data = digests or _digests(source, _as_set(examples))
    config = cfg.model_dump(mode="json", exclude={"rank_wait_s"})  # how long to wait changes nothing computed
    return json_sha256({"config": config, "shuffle": shuffle, "model": model,
                        "data": data, "code": code_sha256(__file__)})


def store_key(cfg: TrainConfig, digests: tuple[str, str]) -> str:
    """Everything that decides a token store's bytes (the model folder includes its tokenizer)."""
    from jiuzhang.training import packing, tokenstore

    model, data = digests
    return json_sha256({"model": model, "data": data, "max_length": cfg.max_length, "on_overlong": cfg.on_overlong,
                        "packing": cfg.packing, "code": [code_sha256(packing.__file__),
                                                         code_sha256(tokenstore.__file__)]})[:16]


def _counted(rows: Iterator[Example], bar: Progress) -> Iterator[Example]:
    for row in rows:
        yield row
        bar.update(1)


def token_store(examples: ExampleSet, tokenizer, cfg: TrainConfig, folder: Path, world: World) -> TokenStore:
    """The main rank tokenizes and packs once into ``folder`` (reused when finished), streaming the examples
    (with ``<folder>.spool`` as their scratch space); the other ranks wait for it and read it."""
    if world.is_main and not is_finished(folder):
        if folder.parent.exists():
            for old in folder.parent.iterdir():  # stores of other data or settings: never read again
                if old != folder:
                    shutil.rmtree(old) if old.is_dir() else old.unlink()
        stats = PackStats()  # one object: tokenize counts examples/truncations, packing counts rows/padding
        with Progress("tokenize", examples.size(), "ex") as bar:  # minutes at the paper's scale
            rows = _counted(examples.iterate(folder.with_name(folder.name + ".spool")), bar)
            build_store(tokenize(rows, tokenizer, cfg.max_length, cfg.on_overlong, stats), cfg.max_length,
                        tokenizer.pad_token_id, folder, cfg.packing, stats=stats)
    wait_for(lambda: is_finished(folder), lambda: f"the main rank's token store {folder}", cfg.rank_wait_s, 1.0,
             "train.rank_wait_s")
    return TokenStore(folder)


def run_training(source: ModelSource, examples: list[Example] | ExampleSet, cfg: TrainConfig, out_dir: Path, checkpoints: Path,
                 world: World, on_log=None, shuffle: bool = True, stop_after: int | None = None) -> dict[str, Any]:
    """Train a model from ``source`` on ``examples`` with ``cfg`` on this rank, resuming from ``checkpoints``."""
    if cfg.global_batch % (cfg.micro_batch * world.world_size):
        raise InputDataError(f"global_batch {cfg.global_batch} is not divisible by micro_batch x world size "
                             f"({cfg.micro_batch} x {world.world_size}); adjust the training params")
    # dtype 'auto' resolved on this rank's device; every later reader (autocast, DeepSpeed, save) sees the result
    cfg = cfg.model_copy(update={"dtype": resolve_dtype(cfg.dtype, "cuda" if torch.cuda.is_available() else "cpu")})
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    model, tokenizer = load_model(source, weights_dtype(cfg), cfg.attn_implementation)
    if cfg.gradient_checkpointing:
        # recompute each layer's activations in backward: activation memory per micro-batch falls from
        # ~34 x seq x hidden bytes per layer to one layer's (the plan's estimate, plan/memory.py)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    examples = _as_set(examples)
    digests = _digests(source, examples)
    stores = checkpoints.with_name(checkpoints.name + ".tokens")
    data = token_store(examples, tokenizer, cfg, stores / store_key(cfg, digests), world)
    stats = data.stats
    select_device(world)  # before DeepSpeed or the plain path create the process group
    if torch.cuda.is_available():
        model = model.to(f"cuda:{world.local_rank}")
    # DeepSpeed sets up its own process group; the plain path joins the launcher's (data parallelism).
    owns_group = False if cfg.deepspeed.enabled else init_distributed(world)
    try:
        engine = (DeepSpeedEngine(model, cfg, world.world_size, world.rank) if cfg.deepspeed.enabled
                  else TorchEngine(model, cfg, world.world_size, world.rank))
        result = train_sft(engine, data, cfg, world, checkpoints, on_log, shuffle, stop_after,
                           fingerprint=checkpoint_fingerprint(source, examples, cfg, shuffle, digests))
    finally:
        if owns_group:
            torch.distributed.destroy_process_group()
    per_epoch, total = plan_steps(stats.sequences, cfg)
    if stop_after is None and world.is_main:
        shutil.rmtree(stores, ignore_errors=True)  # finished (every rank is past the barrier in train_sft)
        out = reset_dir(out_dir)
        trained = engine.module()
        if (cfg.save_dtype or cfg.dtype) == "bf16":  # the fp32 master weights saved as a bf16 model
            trained = trained.to(torch.bfloat16)
        trained.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
    tail = [v for _, v, _ in result.losses[-3:]]
    return {
        "dtype": cfg.dtype, "examples": stats.examples, "sequences": stats.sequences, "truncated": stats.truncated,
        "skipped": stats.skipped, "padding_share": round(stats.padding_share, 6),
        "target_tokens_per_epoch": stats.target_tokens, "steps": total, "steps_per_epoch": per_epoch,
        "tokens_seen": result.tokens, "target_tokens_seen": result.target_tokens,
        "final_loss": round(sum(tail) / len(tail), 6) if tail else None,
        "loss_curve": [{"step": s, "loss": round(v, 6), "lr": lr} for s, v, lr in result.losses],
        "timing": {"seconds": round(result.seconds, 2), "resumed_from_step": result.resumed_from,
                   "tokens_per_s": round(result.tokens / max(result.seconds, 1e-9), 1)},
    }
