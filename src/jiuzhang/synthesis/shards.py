"""Resumable output shards of the synthesize stage (datatrove-style: one file + one marker per shard).

For shard ``k`` the output folder holds
- ``part-k.parquet``: the finished shard (rows in request order), written atomically;
- ``part-k.done.json``: the completion marker, written after it, holding the shard's fingerprint and the
  Parquet file's SHA-256. A shard counts as finished only when both agree; a corrupt, half-written or
  stale shard (different model, params or prompts) is regenerated;
- ``part-k.<attempt>.partial.jsonl`` while an attempt runs: one line per finished batch, appended and
  fsynced, so a redone or resumed shard starts after the last whole batch of any earlier attempt. A torn
  last line is ignored. Each attempt writes its own file, and only the driver commits a shard (Parquet
  by atomic rename, then the marker): two attempts never both commit.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from jiuzhang.common.digest import file_sha256, folder_sha256  # noqa: F401 (re-exported)
from jiuzhang.common.io import write_json

SCHEMA = pa.schema([("id", pa.string()), ("kind", pa.string()), ("level", pa.string()), ("seed", pa.int64()),
                    ("text", pa.string()), ("finish_reason", pa.string()), ("prompt_tokens", pa.int32()),
                    ("new_tokens", pa.int32()), ("truncated_prompt", pa.bool_())])


def fingerprint(base: dict[str, Any], ids: list[str]) -> str:
    """The fingerprint of a shard: the job's settings and the request ids it holds."""
    return hashlib.sha256(json.dumps({"base": base, "ids": ids}, sort_keys=True).encode()).hexdigest()


class ShardStore:
    """The synthesize stage's shards on disk: finished Parquet files with done markers, and partial batches."""
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, index: int, suffix: str) -> Path:
        """The path of shard ``index`` with ``suffix``."""
        return self.folder / f"part-{index:05d}{suffix}"

    def is_done(self, index: int, fp: str) -> bool:
        """True when shard ``index`` was finished with the same fingerprint ``fp``."""
        marker, data = self.path(index, ".done.json"), self.path(index, ".parquet")
        if not marker.is_file() or not data.is_file():
            return False
        try:
            info = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError):
            return False
        return info.get("fingerprint") == fp and info.get("sha256") == file_sha256(data)

    def partials(self, index: int) -> list[Path]:
        """Every attempt's partial file of shard ``index`` (and a pre-0.4 ``part-k.partial.jsonl``)."""
        return sorted(self.folder.glob(f"part-{index:05d}*.partial.jsonl"))

    def load_partial(self, index: int, fp: str) -> dict[int, list[dict[str, Any]]]:
        """Finished batches of a half-done shard, from any earlier attempt: {batch index: rows}; empty when
        none. A partial file of another fingerprint (other model, params or prompts) is deleted."""
        done: dict[int, list[dict[str, Any]]] = {}
        for path in self.partials(index):
            try:
                with open(path, "rb") as fh:
                    lines = fh.read().split(b"\n")
            except FileNotFoundError:  # the driver committed the shard meanwhile
                continue
            try:
                header = json.loads(lines[0])
            except (json.JSONDecodeError, IndexError):
                header = {}
            if header.get("fingerprint") != fp:
                path.unlink(missing_ok=True)
                continue
            for raw in lines[1:]:
                try:
                    entry = json.loads(raw)
                except json.JSONDecodeError:
                    continue  # the torn last line of a killed attempt
                if isinstance(entry, dict) and len(entry.get("rows", [])) == entry.get("size"):
                    done.setdefault(int(entry["batch"]), entry["rows"])
        return done

    def start(self, index: int, fp: str, attempt: str) -> None:
        """Open this attempt's own partial file: two attempts of one shard (a worker thought lost that is
        still running) never write to the same file."""
        with open(self._partial(index, attempt), "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"fingerprint": fp}) + "\n")

    def _partial(self, index: int, attempt: str) -> Path:
        return self.path(index, f".{attempt}.partial.jsonl")

    def append_batch(self, index: int, attempt: str, batch: int, rows: list[dict[str, Any]]) -> None:
        """Append one finished batch to the shard's partial file, so a restart keeps it."""
        line = json.dumps({"batch": batch, "size": len(rows), "rows": rows}, ensure_ascii=False)
        with open(self._partial(index, attempt), "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def finish(self, index: int, fp: str, rows: list[dict[str, Any]]) -> None:
        """Commit a shard (the driver alone does): the Parquet file by atomic rename, then its marker, then
        every attempt's partial file goes."""
        data = self.path(index, ".parquet")
        tmp = data.with_name(f".{data.name}.{os.getpid()}.tmp")
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), tmp, compression="zstd",
                       row_group_size=max(len(rows), 1))
        os.replace(tmp, data)
        write_json(self.path(index, ".done.json"), {"fingerprint": fp, "rows": len(rows), "sha256": file_sha256(data)})
        for path in self.partials(index):
            path.unlink(missing_ok=True)

    def discard(self, index: int) -> None:
        """Forget a finished shard whose marker no longer matches (it is regenerated)."""
        for suffix in (".done.json", ".parquet"):
            self.path(index, suffix).unlink(missing_ok=True)

    def remove_beyond(self, count: int) -> int:
        """Delete shards of an earlier, larger plan; returns how many files went."""
        gone = 0
        for path in self.folder.glob("part-*"):
            try:
                index = int(path.name[5:10])
            except ValueError:
                continue
            if index >= count:
                path.unlink()
                gone += 1
        return gone

    def rows(self, count: int) -> list[dict[str, Any]]:
        """Every row of the first ``count`` shards, in order."""
        return [r for i in range(count) for r in pq.read_table(self.path(i, ".parquet")).to_pylist()]
