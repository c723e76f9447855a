"""Small I/O helpers: atomic writes, line-numbered JSONL reading, deterministic Parquet shards.

Atomic writes (write to a temp file in the same folder, then ``os.replace``) mean a killed stage never
leaves a half-written file that looks finished.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from jiuzhang.errors import UserError


class InputDataError(UserError, ValueError):
    """Bad input data; the message names the file and line and says how to fix or skip it."""


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: a crash leaves the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON deterministically (sorted keys, fixed indentation, trailing newline)."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_csv(path: str | Path, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    """Write a small CSV (e.g. a loss curve for ``dvc plots``) atomically."""
    lines = [",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


@dataclass(frozen=True)
class JsonlLine:
    """One line of a JSONL file: its number and record, or the reason it could not be read."""
    lineno: int
    record: dict[str, Any] | None  # None when the line is bad
    error: str | None


def iter_jsonl(path: str | Path) -> Iterator[JsonlLine]:
    """Yield every non-blank line of a JSONL file with its 1-based number, decoding errors reported per line.

    Lines are read as bytes so one invalid UTF-8 line is reported (or skipped) without losing the rest.
    """
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield JsonlLine(lineno, None, f"invalid UTF-8 at byte {exc.start}")
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield JsonlLine(lineno, None, f"invalid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(obj, dict):
                yield JsonlLine(lineno, None, f"expected a JSON object, got {type(obj).__name__}")
                continue
            yield JsonlLine(lineno, obj, None)


def reset_dir(path: str | Path) -> Path:
    """Empty (or create) an output folder: DVC outputs are rebuilt whole, so stale shards never linger."""
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


class ShardWriter:
    """Write rows into numbered Parquet shards ``<prefix>-00000.parquet`` of ``rows_per_shard`` rows.

    Byte-identical output for identical rows: fixed schema, no timestamps, one row group per shard.
    """

    def __init__(self, folder: str | Path, schema: pa.Schema, rows_per_shard: int, prefix: str = "part"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.rows_per_shard = rows_per_shard
        self.prefix = prefix
        self._buffer: list[dict[str, Any]] = []
        self.shards: list[Path] = []
        self.rows = 0

    def write(self, row: dict[str, Any]) -> None:
        """Add one row; a full buffer becomes the next shard."""
        self._buffer.append(row)
        if len(self._buffer) >= self.rows_per_shard:
            self._flush()

    def write_many(self, rows: Iterable[dict[str, Any]]) -> None:
        """Add every row of ``rows``."""
        for row in rows:
            self.write(row)

    def _flush(self) -> None:
        if not self._buffer:
            return
        table = pa.Table.from_pylist(self._buffer, schema=self.schema)
        path = self.folder / f"{self.prefix}-{len(self.shards):05d}.parquet"
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(table, tmp, compression="zstd", row_group_size=len(self._buffer))
        os.replace(tmp, path)
        self.shards.append(path)
        self.rows += len(self._buffer)
        self._buffer = []

    def close(self) -> list[Path]:
        """Write the last partial shard; the paths of every shard written."""
        self._flush()
        return self.shards


def read_shards(folder: str | Path, prefix: str = "part", columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Yield rows of the Parquet shards in ``folder`` in shard order."""
    folder = Path(folder)
    shards = sorted(folder.glob(f"{prefix}-*.parquet"))
    if not shards:
        raise InputDataError(f"{folder}: no '{prefix}-*.parquet' shards; run the stage that writes it first "
                             f"(dvc repro)")
    for shard in shards:
        table = pq.read_table(shard, columns=columns)
        yield from table.to_pylist()
