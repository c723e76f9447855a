"""Training examples from the pipeline's tables: KD sets (prompt -> completion) and synthetic records
(input -> output), from Parquet folders or JSONL files."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow.parquet as pq

from jiuzhang.common.io import InputDataError, iter_jsonl
from jiuzhang.training.packing import Example


def _rows(path: Path) -> list[tuple[str, dict]]:
    if path.is_dir():
        shards = sorted(path.glob("part-*.parquet"))
        if not shards:
            raise InputDataError(f"{path}: no part-*.parquet shards; run the stage that writes it (dvc repro)")
        rows = [r for s in shards for r in pq.read_table(s).to_pylist()]
        return [(f"{path} row {i}", r) for i, r in enumerate(rows)]
    if not path.is_file():
        raise InputDataError(f"{path}: training data not found; check the path in dvc.yaml / params")
    out = []
    for line in iter_jsonl(path):
        if line.record is None:
            raise InputDataError(f"{path}:{line.lineno}: {line.error}")
        out.append((f"{path}:{line.lineno}", line.record))
    return out


def load_examples(path: str | Path, prompt_field: str, target_field: str, allow_empty: bool = False) -> list[Example]:
    """Examples from one table; every row needs non-empty ``prompt_field`` and ``target_field``."""
    path = Path(path)
    examples = []
    for where, r in _rows(path):
        prompt, target = r.get(prompt_field), r.get(target_field)
        if not isinstance(prompt, str) or not isinstance(target, str) or not target.strip():
            raise InputDataError(f"{where}: record needs string fields '{prompt_field}' and a non-empty "
                                 f"'{target_field}'; fix or drop the record")
        examples.append(Example(str(r.get("id", where)), prompt, target))
    if not examples and not allow_empty:
        raise InputDataError(f"{path}: the training set is empty; the stage that writes it produced no records")
    return examples


def pretrain_mix(synthetic: list[Example], supplement: list[Example], seed: int, supplement_max: int | None,
                 max_records: int | None) -> tuple[list[Example], int]:
    """The pre-training records before any SFT tail, and how many of them are our own synthetic records.

    The supplement is sampled *before* the mix so that our own records keep their share whatever the
    supplement's size (shuffling 48 kept records into a 1,000-row sample and cutting to 64 leaves ~3 of ours).
    """
    rng_supplement, rng_mix = random.Random(seed), random.Random(seed)
    supplement = list(supplement)
    rng_supplement.shuffle(supplement)
    mixed = list(synthetic) + supplement[:supplement_max]
    rng_mix.shuffle(mixed)
    mixed = mixed[:max_records]
    own = {id(e) for e in synthetic}
    return mixed, sum(1 for e in mixed if id(e) in own)


def load_sft_tail(cfg, root: Path) -> list[Example]:
    """The SFT tail's examples, shuffled once with ``cfg.shuffle_seed``; hub rows are read with ``datasets``
    at the pinned revision (nothing else in the smoke and mini profiles touches the hub)."""
    if cfg.format == "jsonl":
        path = Path(cfg.path) if Path(cfg.path).is_absolute() else root / cfg.path
        examples = load_examples(path, cfg.input_field, cfg.output_field)
    else:
        import datasets

        ds = datasets.load_dataset(cfg.dataset, split=cfg.split, revision=cfg.revision,
                                   data_files=list(cfg.data_files) if cfg.data_files else None)
        examples = []
        for i, r in enumerate(ds):
            prompt, target = r.get(cfg.input_field), r.get(cfg.output_field)
            if not isinstance(prompt, str) or not isinstance(target, str) or not target.strip():
                raise InputDataError(f"hf://{cfg.dataset}@{cfg.revision} row {i}: needs string fields "
                                     f"'{cfg.input_field}' and a non-empty '{cfg.output_field}' (pretrain.sft_tail)")
            examples.append(Example(f"sft/{i}", prompt, target))
    if cfg.shuffle_seed is not None:
        random.Random(cfg.shuffle_seed).shuffle(examples)
    return examples[:cfg.max_rows]
