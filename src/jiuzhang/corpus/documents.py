"""Read documents from the configured sources: local JSONL files (read in place) or pinned HF datasets.

Both kinds yield the same :class:`Document`, so the rest of the corpus pipeline is one code path.
Bad records stop the stage with ``file:line`` or, with ``on_bad_record: skip``, are counted and skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jiuzhang.common.io import InputDataError, iter_jsonl
from jiuzhang.config.corpus import SourceConfig


@dataclass(frozen=True)
class Document:
    """One source document: the source's name, the document's id there and its text."""
    source: str
    doc_id: str
    text: str


class DocumentReader:
    """Iterate one source's documents; ``bad`` counts skipped records by reason."""

    def __init__(self, source: SourceConfig, root: Path, on_bad_record: str):
        self.source = source
        self.root = root
        self.on_bad_record = on_bad_record
        self.bad: Counter[str] = Counter()
        self.documents = 0
        self.filtered = 0          # rows left out by row_filter (not bad, just not this source's subset)
        self.split: tuple[int, int] | None = None  # (rank, world_size) when the hub reads only this rank's part

    def owned(self, rank: int, world_size: int) -> Iterator[Document]:
        """Rank ``rank``'s documents: the k-th for k % world_size == rank. A hub source without ``max_docs``
        streams only its own part (``datasets``' split_dataset_by_node: whole files when the file count
        divides by world_size, else every world_size-th row): each of 64 ranks reading the whole of MathPile
        would read it 64 times. ``max_docs`` needs the global count, so there every rank reads the stream."""
        if self.source.format == "hf" and self.source.max_docs is None and world_size > 1:
            self.split = (rank, world_size)
            yield from self
            return
        for k, doc in enumerate(self):
            if k % world_size == rank:
                yield doc

    @property
    def location(self) -> str:
        """Where the source is read from: a file path, or ``hf://dataset@revision``."""
        s = self.source
        return str(self.root / (s.path or "")) if s.format == "jsonl" else f"hf://{s.dataset}@{s.revision}"

    def __iter__(self) -> Iterator[Document]:
        rows = self._jsonl_rows() if self.source.format == "jsonl" else self._hf_rows()
        for where, record in rows:
            if self.source.max_docs is not None and self.documents >= self.source.max_docs:
                break
            doc = self._document(where, record)
            if doc is not None:
                self.documents += 1
                yield doc
        if self.documents == 0 and self.split is None:
            raise InputDataError(f"{self.location}: source '{self.source.name}' yielded no documents "
                                 f"(empty file, or every record was bad); check the file and "
                                 f"corpus.sources[].text_field ('{self.source.text_field}')")

    def _bad(self, where: str, reason: str, detail: str) -> None:
        if self.on_bad_record == "error":
            raise InputDataError(f"{where}: {detail}; fix the record, or set corpus.on_bad_record: skip "
                                 f"to skip such records and count them in results/corpus.json")
        self.bad[reason] += 1

    def _jsonl_rows(self) -> Iterator[tuple[str, dict[str, Any]]]:
        path = self.root / (self.source.path or "")  # set for a jsonl source (validated)
        for line in iter_jsonl(path):
            where = f"{path}:{line.lineno}"
            if line.record is None:
                error = line.error or "unreadable record"
                reason = "invalid_utf8" if error.startswith("invalid UTF-8") else "malformed_json"
                self._bad(where, reason, error)
                continue
            yield where, line.record | {"__row__": line.lineno}

    def _hf_rows(self) -> Iterator[tuple[str, dict[str, Any]]]:
        import datasets  # heavy; only the paper profile reads the hub

        s = self.source
        ds = datasets.load_dataset(s.dataset, name=s.subset, split=s.split, revision=s.revision,
                                   data_files=list(s.data_files) if s.data_files else None, streaming=True)
        if self.split is not None:
            from datasets.distributed import split_dataset_by_node

            ds = split_dataset_by_node(ds, rank=self.split[0], world_size=self.split[1])
        for i, record in enumerate(ds):
            yield f"{self.location} row {i}", dict(record) | {"__row__": i}

    def _text(self, record: dict[str, Any]) -> str | None:
        s = self.source
        if s.text_fields is None:
            text = record.get(s.text_field)
            return text if isinstance(text, str) and text.strip() else None
        parts = [p for p in (record.get(f) for f in s.text_fields) if isinstance(p, str) and p.strip()]
        if len(parts) < len(s.text_fields):
            return None
        return "\n\n".join(p.strip()[:s.field_max_chars] for p in parts)

    def _document(self, where: str, record: dict[str, Any]) -> Document | None:
        rf = self.source.row_filter
        if rf is not None and rf.contains not in str(record.get(rf.field) or ""):
            self.filtered += 1
            return None
        text = self._text(record)
        if text is None:
            fields = self.source.text_fields or (self.source.text_field,)
            self._bad(where, "missing_text", f"record has no non-empty string field "
                      f"{' / '.join(repr(f) for f in fields)}")
            return None
        id_field = self.source.id_field
        if id_field is None:
            doc_id = str(record["__row__"])
        else:
            raw_id = record.get(id_field)
            if raw_id is None or str(raw_id) == "":
                self._bad(where, "missing_id", f"record has no '{id_field}' field "
                          f"(set corpus.sources[].id_field: null to use the line number)")
                return None
            doc_id = str(raw_id)
        return Document(self.source.name, doc_id, text)


def check_sources_exist(sources: tuple[SourceConfig, ...], root: Path) -> None:
    """Fail before any work when a local source file is missing."""
    missing = [f"  corpus.sources[{i}] '{s.name}': {root / (s.path or '')}" for i, s in enumerate(sources)
               if s.format == "jsonl" and not (root / (s.path or "")).is_file()]
    if missing:
        raise InputDataError("source file(s) not found:\n" + "\n".join(missing) +
                             "\nfix corpus.sources[].path (relative to the project root) in the params file")
