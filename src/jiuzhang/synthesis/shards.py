"""Resumable output shards of the synthesize stage (datatrove-style: one file + one marker per shard).

For shard ``k`` the output folder holds
- ``part-k.parquet``: the finished shard (rows in request order), written atomically;
- ``part-k.done.json``: the completion marker, written after it, holding the shard's fingerprint and the
  Parquet file's SHA-256. A shard counts as finished only when both agree; a corrupt, half-written or
  stale shard (different model, params or prompts) is regenerated;
- ``part-k.partial.jsonl`` while the shard runs: one line per finished batch, appended and fsynced, so a
  killed run resumes after the last whole batch. A torn last line is ignored;
- ``part-k.error.json`` when the shard failed: the stage fails with it (never a silent skip).
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
    return hashlib.sha256(json.dumps({"base": base, "ids": ids}, sort_keys=True).encode()).hexdigest()


class ShardStore:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, index: int, suffix: str) -> Path:
        return self.folder / f"part-{index:05d}{suffix}"

    def is_done(self, index: int, fp: str) -> bool:
        marker, data = self.path(index, ".done.json"), self.path(index, ".parquet")
        if not marker.is_file() or not data.is_file():
            return False
        try:
            info = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError):
            return False
        return info.get("fingerprint") == fp and info.get("sha256") == file_sha256(data)

    def load_partial(self, index: int, fp: str) -> dict[int, list[dict[str, Any]]]:
        """Finished batches of a half-done shard: {batch index: rows}; empty when none or stale."""
        path = self.path(index, ".partial.jsonl")
        if not path.is_file():
            return {}
        done: dict[int, list[dict[str, Any]]] = {}
        with open(path, "rb") as fh:
            lines = fh.read().split(b"\n")
        try:
            header = json.loads(lines[0])
        except (json.JSONDecodeError, IndexError):
            header = {}
        if header.get("fingerprint") != fp:
            path.unlink()
            return {}
        for raw in lines[1:]:
            try:
                entry = json.loads(raw)
            except json.JSONDecodeError:
                continue  # the torn last line of a killed run
            if isinstance(entry, dict) and len(entry.get("rows", [])) == entry.get("size"):
                done[int(entry["batch"])] = entry["rows"]
        return done

    def start(self, index: int, fp: str) -> None:
        """Clear what a finished/failed earlier attempt left and open the partial file if needed."""
        for suffix in (".done.json", ".parquet", ".error.json"):
            self.path(index, suffix).unlink(missing_ok=True)
        partial = self.path(index, ".partial.jsonl")
        if not partial.is_file():
            with open(partial, "w", encoding="utf-8") as fh:
                fh.write(json.dumps({"fingerprint": fp}) + "\n")

    def append_batch(self, index: int, batch: int, rows: list[dict[str, Any]]) -> None:
        line = json.dumps({"batch": batch, "size": len(rows), "rows": rows}, ensure_ascii=False)
        with open(self.path(index, ".partial.jsonl"), "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def finish(self, index: int, fp: str, rows: list[dict[str, Any]]) -> None:
        data = self.path(index, ".parquet")
        tmp = data.with_name(f".{data.name}.tmp")
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), tmp, compression="zstd",
                       row_group_size=max(len(rows), 1))
        os.replace(tmp, data)
        write_json(self.path(index, ".done.json"), {"fingerprint": fp, "rows": len(rows), "sha256": file_sha256(data)})
        self.path(index, ".partial.jsonl").unlink(missing_ok=True)

    def fail(self, index: int, rank: int, error: BaseException) -> None:
        write_json(self.path(index, ".error.json"), {"rank": rank, "error": f"{type(error).__name__}: {error}"})

    def mark_start(self, rank: int) -> int:
        """Note that ``rank`` starts a job now; returns the time on the folder's own clock (the file system's,
        which a shared folder gives every node alike), in ns. Error files older than it are stale."""
        marker = self.folder / f".started-rank-{rank:05d}"
        marker.write_text("")
        return marker.stat().st_mtime_ns

    def clear_errors(self, indices: list[int]) -> None:
        """A rank's own failed shards of an earlier run: cleared at its start, before its engine loads."""
        for k in indices:
            self.path(k, ".error.json").unlink(missing_ok=True)

    def error(self, index: int, since_ns: int = 0) -> str | None:
        """The shard's error, if it failed at or after ``since_ns`` (an earlier run's error is stale: its
        owner rank will redo the shard and clears it when it starts)."""
        path = self.path(index, ".error.json")
        try:
            if path.stat().st_mtime_ns < since_ns:
                return None
            info = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        return f"shard {index} failed on rank {info['rank']}: {info['error']}"

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
        return [r for i in range(count) for r in pq.read_table(self.path(i, ".parquet")).to_pylist()]
