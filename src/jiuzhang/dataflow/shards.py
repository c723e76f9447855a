"""Where the steps of a record pipeline hand documents to each other: one Parquet file per task (rank).

datatrove's dedup filters find a document by its position in the rank's stream, so the step that re-reads
an intermediate must read exactly the file its own rank wrote. ``ParquetReader`` spreads the *listed*
files over the ranks, which shifts by one as soon as a rank wrote no file (all of its documents dropped);
:class:`RankShard` reads ``<rank>.parquet`` and nothing else (our own reader for that reason only).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.parquet import ParquetWriter

# Intermediate documents: the text, the id, and the metadata as a JSON-able struct.
HANDOFF = "${rank}.parquet"


def rank_file(rank: int) -> str:
    """The file name of rank ``rank``'s hand-off shard."""
    return f"{rank:05d}.parquet"


class RankShard(PipelineStep):
    """Read the documents that the same rank of an earlier executor wrote to ``folder``."""

    name = "rank shard"
    type = "📖 - READER"

    def __init__(self, folder: str | Path):
        super().__init__()
        self.folder = Path(folder)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """datatrove's reader entry point: the documents of this rank's shard (none when its file is absent)."""
        path = self.folder / rank_file(rank)
        if not path.is_file():  # every document of this rank was dropped before the hand-off
            return
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1000):
            for row in batch.to_pylist():
                self.stat_update("documents")
                yield Document(text=row["text"], id=row["id"], metadata=row.get("metadata") or {})


def handoff_writer(folder: str | Path, metadata: pa.StructType) -> ParquetWriter:
    """A writer of intermediate documents that :class:`RankShard` reads back (fixed schema: byte-identical)."""
    schema = pa.schema([("text", pa.string()), ("id", pa.string()), ("metadata", metadata)])
    return ParquetWriter(str(folder), output_filename=HANDOFF, compression="zstd", schema=schema,
                         adapter=_handoff_row, max_file_size=-1)


def _handoff_row(self: Any, doc: Document) -> dict[str, Any]:
    return {"text": doc.text, "id": doc.id, "metadata": doc.metadata}


def table_writer(folder: str | Path, filename: str, schema: pa.Schema,
                 row: Callable[[Any, Document], dict[str, Any]]) -> ParquetWriter:
    """A writer of final rows (``row(writer, doc)`` -> one row of ``schema``), one file per rank."""
    return ParquetWriter(str(folder), output_filename=filename, compression="zstd", schema=schema, adapter=row,
                         max_file_size=-1)


def read_tables(folder: Path, pattern: str = "*.parquet", columns: list[str] | None = None) -> pa.Table | None:
    """Every file matching ``pattern`` under ``folder`` (recursively), concatenated in path order."""
    files = sorted(folder.rglob(pattern)) if folder.is_dir() else []
    tables = [pq.read_table(f, columns=columns) for f in files]
    return pa.concat_tables(tables) if tables else None
