"""Packed training sequences on disk, read by row: the paper's ~5.4B pre-training tokens do not fit in
memory as tensors (as int64 ids, labels and positions they take ~130 GB on every rank).

One process (the main rank) tokenizes and packs the examples once, streaming, into shards of
``shard_rows`` rows: ``ids-NNNNN.npy`` and ``labels-NNNNN.npy`` (int32), ``pos-NNNNN.npy`` (int16 when
positions fit) and per-row ``real`` (tokens before the padding) and ``targets`` (supervised tokens after
the label shift: the loss's denominator, which every rank reads for the whole global batch, 4 bytes a row,
while it reads token rows only of its own micro-batches). ``meta.json`` is
written last: a store without it is unfinished and is rebuilt. The folder is named by a fingerprint of
everything that decides its bytes (tokenizer, examples, max_length, on_overlong, packing, this code), so a
store is reused exactly when it would be rebuilt identically. Every rank reads only the rows of its own
micro-batches (``os.pread`` of those rows' bytes: nothing is mapped, so its RSS does not grow with the data); the packing is :func:`~jiuzhang.training.packing.pack_rows`,
the same as in memory, so the weights are identical (a test checks it).

Why our own format and not ``datasets``' Arrow cache: the training loop needs fixed-width int rows by random
index, which plain ``.npy`` files serve with one positioned read per row and no decoding.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from jiuzhang.common.io import InputDataError
from jiuzhang.training.packing import IGNORE, PackStats, Tokenized, pack_rows

META = "meta.json"


class _Rows:
    """One ``.npy`` file read by row with ``os.pread``: only the bytes of the rows asked for are read, and
    nothing stays mapped (a memory map's touched pages count in the process's RSS as it reads on). The file
    is opened per read, not held: a store of the paper's size has ~2,600 shards x 5 files, far above a
    usual ``ulimit -n`` of 1,024 if every one kept a handle (an open costs microseconds; a read of a
    micro-batch's rows costs far more)."""

    def __init__(self, path: Path):
        with path.open("rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(fh)
            self.offset = fh.tell()
        self.path, self.shape, self.dtype = path, shape, np.dtype(dtype)
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, rows: list[int]) -> np.ndarray:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            buf = b"".join(os.pread(fd, self.row_bytes, self.offset + r * self.row_bytes) for r in rows)
        finally:
            os.close(fd)
        return np.frombuffer(buf, dtype=self.dtype).reshape((len(rows), *self.shape[1:]))


class TokenStore:
    """A finished store; ``gather`` returns int64 torch tensors of the rows asked for, read from disk."""

    NAMES = ("ids", "labels", "pos", "real", "targets")

    def __init__(self, folder: Path):
        meta = json.loads((folder / META).read_text())
        self.folder, self.meta = folder, meta
        self.stats = PackStats(**meta["stats"])
        self._shards = [{name: _Rows(folder / f"{name}-{k:05d}.npy") for name in self.NAMES}
                        for k in range(meta["shards"])]
        self._starts = np.cumsum([0] + [len(s["real"]) for s in self._shards])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _rows(self, name: str, idx: list[int]) -> np.ndarray:
        """The rows ``idx`` in their order, with one open and read pass per shard they fall in."""
        shard = np.asarray(np.searchsorted(self._starts, idx, side="right")) - 1
        out: list[np.ndarray | None] = [None] * len(idx)
        for s in dict.fromkeys(int(k) for k in shard):
            where = [j for j, k in enumerate(shard) if k == s]
            rows = self._shards[s][name].read([idx[j] - int(self._starts[s]) for j in where])
            for j, row in zip(where, rows):
                out[j] = row
        return np.stack(out)

    def gather(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input ids, labels, position ids, real-token mask) of rows ``idx``, read from the memory-mapped store."""
        ids = torch.from_numpy(self._rows("ids", idx).astype(np.int64))
        labels = torch.from_numpy(self._rows("labels", idx).astype(np.int64))
        pos = torch.from_numpy(self._rows("pos", idx).astype(np.int64))
        real_len = torch.from_numpy(self._rows("real", idx).astype(np.int64))
        real = torch.arange(ids.shape[1]).unsqueeze(0) < real_len.unsqueeze(1)
        return ids, labels, pos, real

    def target_counts(self, idx: list[int]) -> int:
        """Target tokens in rows ``idx``."""
        return int(self._rows("targets", idx).sum())


def build_store(items: Iterable[Tokenized], max_length: int, pad_id: int, folder: Path, packing: bool = True,
                shard_rows: int = 1024, stats: PackStats | None = None) -> TokenStore:
    """Pack ``items`` (streamed: memory holds one shard) into ``folder``; returns the opened store."""
    stats = stats if stats is not None else PackStats()
    tmp = folder.with_name(folder.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)  # a build that died: start it again
    tmp.mkdir(parents=True)
    pos_dtype = np.int16 if max_length <= np.iinfo(np.int16).max else np.int32
    buffer: list = []
    shards = 0

    def flush() -> None:
        nonlocal shards, buffer
        ids, labels, pos, real = zip(*buffer)
        labels_arr = np.stack(labels)
        arrays = {"ids": np.stack(ids), "labels": labels_arr, "pos": np.stack(pos), "real": np.asarray(real, dtype=np.int32),
                  "targets": (labels_arr[:, 1:] != IGNORE).sum(axis=1).astype(np.int32)}
        for name, arr in arrays.items():
            np.save(tmp / f"{name}-{shards:05d}.npy", arr)
        shards += 1
        buffer = []

    for ids, labels, pos, real in pack_rows(items, max_length, pad_id, stats, packing):
        # numpy rows, not Python int lists (~10x smaller): memory holds one shard
        buffer.append((np.asarray(ids, dtype=np.int32), np.asarray(labels, dtype=np.int32),
                       np.asarray(pos, dtype=pos_dtype), real))
        if len(buffer) == shard_rows:
            flush()
    if buffer:
        flush()
    if shards == 0:
        shutil.rmtree(tmp)
        raise InputDataError("the training set is empty after tokenization (no examples, or all skipped); "
                             "check the input records and on_overlong")
    (tmp / META).write_text(json.dumps({"shards": shards, "max_length": max_length, "packing": packing,
                                        "stats": vars(stats)}, indent=1))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return TokenStore(folder)


def is_finished(folder: Path) -> bool:
    """True when a store in ``folder`` was finished (its meta file is written last)."""
    return (folder / META).is_file()
