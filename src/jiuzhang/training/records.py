"""Training examples from the pipeline's tables: KD sets (prompt -> completion) and synthetic records
(input -> output), from Parquet folders, JSONL files or a pinned hub dataset.

Two shapes: :func:`load_examples` returns a list (the KD sets: thousands of rows), and :class:`PretrainMix`
streams the pre-training data (the paper's ~6M records and 2.86M SFT rows, ~20 GB of text) so that no rank
holds it in memory. Every rank *scans* the tables once (constant memory: a digest of every row in file
order, and the row counts); the mix order is computed from the counts alone (row indices, 8 bytes a row);
only the main rank, building the token store, copies the rows into an on-disk :class:`Spool` and reads
them back in the mix order.
"""

from __future__ import annotations

import array
import hashlib
import json
import os
import random
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pyarrow.parquet as pq

from jiuzhang.common.io import InputDataError, iter_jsonl
from jiuzhang.config.training import PretrainConfig
from jiuzhang.training.packing import Example


def _rows(path: Path) -> Iterator[tuple[str, dict]]:
    """(where, row) of a Parquet folder or a JSONL file, streamed (one record batch in memory)."""
    if path.is_dir():
        shards = sorted(path.glob("part-*.parquet"))
        if not shards:
            raise InputDataError(f"{path}: no part-*.parquet shards; run the stage that writes it (dvc repro)")
        i = 0
        for s in shards:
            for batch in pq.ParquetFile(s).iter_batches(batch_size=4096):
                for r in batch.to_pylist():
                    yield f"{path} row {i}", r
                    i += 1
        return
    if not path.is_file():
        raise InputDataError(f"{path}: training data not found; check the path in dvc.yaml / params")
    for line in iter_jsonl(path):
        if line.record is None:
            raise InputDataError(f"{path}:{line.lineno}: {line.error}")
        yield f"{path}:{line.lineno}", line.record


def _example(where: str, r: dict, prompt_field: str, target_field: str, default_id: str) -> Example:
    prompt, target = r.get(prompt_field), r.get(target_field)
    if not isinstance(prompt, str) or not isinstance(target, str) or not target.strip():
        raise InputDataError(f"{where}: record needs string fields '{prompt_field}' and a non-empty "
                             f"'{target_field}'; fix or drop the record")
    return Example(str(r.get("id", default_id)), prompt, target)


def iter_examples(path: str | Path, prompt_field: str, target_field: str) -> Iterator[Example]:
    """Examples of one table in file order, streamed; every row needs non-empty ``prompt_field`` and
    ``target_field``."""
    for where, r in _rows(Path(path)):
        yield _example(where, r, prompt_field, target_field, where)


def load_examples(path: str | Path, prompt_field: str, target_field: str, allow_empty: bool = False) -> list[Example]:
    """All examples of one table as a list (small tables: the KD sets)."""
    examples = list(iter_examples(path, prompt_field, target_field))
    if not examples and not allow_empty:
        raise InputDataError(f"{path}: the training set is empty; the stage that writes it produced no records")
    return examples


def _hub_examples(cfg) -> Iterator[Example]:
    """Rows of a pinned hub dataset (``datasets`` keeps them memory-mapped in Arrow: iterating streams)."""
    import datasets

    ds = datasets.load_dataset(cfg.dataset, split=cfg.split, revision=cfg.revision,
                               data_files=list(cfg.data_files) if cfg.data_files else None)
    for i, r in enumerate(ds):
        yield _example(f"hf://{cfg.dataset}@{cfg.revision} row {i} (pretrain.sft_tail)", r, cfg.input_field,
                       cfg.output_field, f"sft/{i}")


def tail_rows(cfg, root: Path) -> Callable[[], Iterator[Example]]:
    """A restartable stream of the SFT tail's rows in file order (local file or pinned hub dataset)."""
    if cfg.format == "jsonl":
        path = Path(cfg.path) if Path(cfg.path).is_absolute() else root / cfg.path
        return lambda: iter_examples(path, cfg.input_field, cfg.output_field)
    return lambda: _hub_examples(cfg)


# --- orders: computed from row counts alone, so every rank agrees without reading a row twice -----------

def mix_order(n_synthetic: int, n_supplement: int, seed: int, supplement_max: int | None,
              max_records: int | None) -> array.array:
    """The pre-training records before any SFT tail, as indices: ``i < n_synthetic`` is synthetic row i,
    else supplement row ``i - n_synthetic``.

    The supplement is sampled *before* the mix so that our own records keep their share whatever the
    supplement's size (shuffling 48 kept records into a 1,000-row sample and cutting to 64 leaves ~3 of ours).
    Shuffling indices with ``random.Random`` gives exactly the permutation that shuffling the rows would; an
    ``array('q')`` holds them in 8 bytes each (a list of ints takes ~36).
    """
    supplement = array.array("q", range(n_synthetic, n_synthetic + n_supplement))
    random.Random(seed).shuffle(supplement)
    mixed = array.array("q", range(n_synthetic)) + supplement[:supplement_max]
    random.Random(seed).shuffle(mixed)
    return mixed[:max_records]


def tail_order(n: int, shuffle_seed: int | None, max_rows: int | None) -> array.array:
    """The SFT tail's order: shuffled by ``shuffle_seed`` (None: file order), cut to ``max_rows``."""
    order = array.array("q", range(n))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(order)
    return order[:max_rows]


def pretrain_mix(synthetic: Sequence[Example], supplement: Sequence[Example], seed: int, supplement_max: int | None,
                 max_records: int | None) -> tuple[list[Example], int]:
    """:func:`mix_order` applied to in-memory lists: (the mixed records, how many are our own)."""
    order = mix_order(len(synthetic), len(supplement), seed, supplement_max, max_records)
    rows = list(synthetic) + list(supplement)
    return [rows[i] for i in order], sum(1 for i in order if i < len(synthetic))


def load_sft_tail(cfg, root: Path) -> list[Example]:
    """The SFT tail's examples as a list, shuffled once with ``cfg.shuffle_seed`` (small tails, tests)."""
    rows = list(tail_rows(cfg, root)())
    return [rows[i] for i in tail_order(len(rows), cfg.shuffle_seed, cfg.max_rows)]


# --- streamed training sets -------------------------------------------------------------------------------

def _row_bytes(e: Example) -> bytes:
    """One example as a JSON line: what the spool stores and what data digests hash."""
    return json.dumps([e.id, e.prompt, e.target], ensure_ascii=False).encode() + b"\n"


class Spool:
    """Examples copied once to one file on disk and read back by index with ``os.pread``: a table (Parquet,
    JSONL, hub) becomes randomly addressable without holding its text in memory. Offsets are an
    ``array('q')``: 8 bytes a row (6M rows: 48 MB). Our own because the rows come from three kinds of
    source and only need one access pattern (read row i)."""

    def __init__(self, path: Path, examples: Iterator[Example]):
        self.path = path
        self.offsets = array.array("q", [0])
        with path.open("wb") as fh:
            for e in examples:
                fh.write(_row_bytes(e))
                self.offsets.append(fh.tell())
        self.fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> Example:
        start = self.offsets[i]
        return Example(*json.loads(os.pread(self.fd, self.offsets[i + 1] - start, start)))

    def close(self) -> None:
        """Close the spool file."""
        os.close(self.fd)


class ExampleSet:
    """A training set the trainer streams: :meth:`digest` (what the data is, for fingerprints; computed by
    every rank) and :meth:`iterate` (the examples in training order; called on the main rank only, with a
    scratch folder it may use)."""

    def digest(self) -> str:
        """What the data is, for fingerprints (computed on every rank)."""
        raise NotImplementedError

    def iterate(self, scratch: Path) -> Iterator[Example]:
        """The examples in training order (main rank only; ``scratch`` is a folder it may use)."""
        raise NotImplementedError

    def size(self) -> int:
        """How many examples :meth:`iterate` yields (for progress)."""
        raise NotImplementedError


class ListExamples(ExampleSet):
    """An in-memory list, trained in its order."""

    def __init__(self, examples: Sequence[Example]):
        self.examples = examples

    def digest(self) -> str:
        """SHA-256 over the examples' bytes."""
        h = hashlib.sha256()
        for e in self.examples:
            h.update(_row_bytes(e))
        return h.hexdigest()

    def iterate(self, scratch: Path) -> Iterator[Example]:
        """The examples in list order."""
        return iter(self.examples)

    def size(self) -> int:
        """The list's length."""
        return len(self.examples)


@dataclass
class PretrainMix(ExampleSet):
    """The pre-training data: synthetic records + a sample of the supplement, shuffled together
    (:func:`mix_order`), then the SFT tail shuffled once with its own seed (:func:`tail_order`).

    ``synthetic``, ``supplement`` and ``tail`` are restartable streams of rows in file order."""

    synthetic: Callable[[], Iterator[Example]]
    supplement: Callable[[], Iterator[Example]] | None
    tail: Callable[[], Iterator[Example]] | None
    seed: int
    supplement_max: int | None = None
    max_records: int | None = None
    tail_seed: int | None = None
    tail_max: int | None = None
    allow_empty_synthetic: bool = False

    def _sources(self) -> list[tuple[str, Callable[[], Iterator[Example]]]]:
        return [(name, rows) for name, rows in (("synthetic", self.synthetic), ("supplement", self.supplement),
                                                ("tail", self.tail)) if rows is not None]

    @cached_property
    def scan(self) -> tuple[str, dict]:
        """(digest, row counts) from one streamed pass over every table."""
        h = hashlib.sha256()
        h.update(json.dumps([self.seed, self.supplement_max, self.max_records, self.tail_seed,
                             self.tail_max]).encode())
        counts = {"synthetic": 0, "supplement": 0, "tail": 0}
        for name, rows in self._sources():
            h.update(f"\n--{name}--\n".encode())
            for e in rows():
                h.update(_row_bytes(e))
                counts[name] += 1
        if not counts["synthetic"] and not self.allow_empty_synthetic:
            raise InputDataError("the synthetic records are empty; the filter stage kept nothing (see its "
                                 "metrics) or set pretrain.supplement")
        if self.tail is not None and not counts["tail"]:
            raise InputDataError("pretrain.sft_tail has no rows; fix its path/dataset or set it to null")
        return h.hexdigest(), counts

    def digest(self) -> str:
        """SHA-256 over every source's rows (from the one scan)."""
        return self.scan[0]

    @cached_property
    def orders(self) -> tuple[array.array, array.array]:
        """(mix order, tail order), from the counts: one shuffle each however often they are asked for."""
        counts = self.scan[1]
        mixed = mix_order(counts["synthetic"], counts["supplement"], self.seed, self.supplement_max,
                          self.max_records)
        return mixed, tail_order(counts["tail"], self.tail_seed, self.tail_max) if self.tail else array.array("q")

    def counts(self) -> dict[str, int]:
        """Records per source and how many of each the mix uses."""
        n = self.scan[1]
        mixed, tail = self.orders
        used = sum(1 for i in mixed if i < n["synthetic"])
        return {"synthetic_records": n["synthetic"], "supplement_records": n["supplement"],
                "synthetic_used": used, "supplement_used": len(mixed) - used,
                "sft_tail_records": len(tail), "used_records": len(mixed) + len(tail)}

    def size(self) -> int:
        """The mixed records and the tail: :meth:`counts`'s used_records."""
        return self.counts()["used_records"]

    def iterate(self, scratch: Path) -> Iterator[Example]:
        """The mixed records, then the tail, spooled to ``scratch`` so each source is read once in file order."""
        mixed, tail = self.orders
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir(parents=True)
        spools = {name: Spool(scratch / f"{name}.jsonl", rows()) for name, rows in self._sources()}
        try:
            n_syn = len(spools["synthetic"])
            for i in mixed:
                yield spools["synthetic"][i] if i < n_syn else spools["supplement"][i - n_syn]
            for i in tail:
                yield spools["tail"][i]
        finally:
            for s in spools.values():
                s.close()
            shutil.rmtree(scratch, ignore_errors=True)


def pretrain_data(cfg: PretrainConfig, synthetic: str | Path, root: Path) -> PretrainMix:
    """The pre-training data of ``cfg`` (the pretrain section): the synthetic records at ``synthetic``, the
    supplement and the SFT tail it names (relative to ``root``), with its seeds and caps. Streamed, not loaded:
    at the paper's scale the records are ~20 GB of text."""
    train, tail, supplement = cfg.train, cfg.sft_tail, cfg.supplement
    return PretrainMix(
        synthetic=lambda: iter_examples(synthetic, "input", "output"),
        supplement=(lambda: iter_examples(supplement, "input", "output")) if supplement else None,
        tail=tail_rows(tail, root) if tail else None,
        seed=train.seed_data, supplement_max=cfg.supplement_max_records, max_records=cfg.max_records,
        tail_seed=tail.shuffle_seed if tail else None, tail_max=tail.max_rows if tail else None,
        allow_empty_synthetic=bool(supplement))
