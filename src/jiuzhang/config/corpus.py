"""Typed config of the ``corpus`` params section (see ``params.yaml`` for the smoke values)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from jiuzhang.config.base_model import Section, Tasks

_SHA = re.compile(r"^[0-9a-f]{40}$")


class RowFilter(Section):
    """Keep a row when ``field`` (a string) contains ``contains``."""

    field: str = Field(description="Row field to test, e.g. 'source'.")
    contains: str = Field(min_length=1, description="Substring the field must contain, e.g. 'stackexchange'.")


class SourceConfig(Section):
    """One input source of math text."""

    name: str = Field(description="Short unique name; prefixes every snippet id (e.g. 'openstax').",
                      pattern=r"^[A-Za-z0-9_.-]+$")
    format: Literal["jsonl", "hf"] = Field(description="'jsonl': a local file read in place; 'hf': a HF hub dataset.")
    split_by: Literal["markdown_h2", "latex_section", "document"] = Field(
        description="How documents are split before cutting: textbooks at '## ' headers (markdown_h2), "
        "arXiv at \\section{} (latex_section), anything else whole (document).")
    path: str | None = Field(None, description="jsonl: path relative to the project root (spell it in dvc.yaml deps too).")
    dataset: str | None = Field(None, description="hf: dataset id on the hub, e.g. 'GAIR/MathPile'.")
    revision: str | None = Field(None, description="hf: the dataset revision; pin a commit SHA (40 hex chars) - "
                                 "a branch or tag is accepted but 'config check' warns that it is unpinned.")
    subset: str | None = Field(None, description="hf: dataset config name, if any.")
    data_files: tuple[str, ...] | None = Field(None, strict=False, description="hf: files inside the dataset repo.")
    split: str = Field("train", description="hf: split to read.")
    text_field: str = Field("text", description="Field holding the document text.")
    text_fields: tuple[str, ...] | None = Field(None, strict=False, min_length=1, description="Instead of text_field: "
                                                "join these fields with a blank line, e.g. MMIQC's [instruction, "
                                                "output] (the paper's snippet: question + answer).")
    field_max_chars: int | None = Field(None, ge=1, description="text_fields: cut each field to its first N "
                                        "characters before joining (paper, MMIQC: 1,000 each).")
    row_filter: RowFilter | None = Field(None, description="Keep only rows whose field contains a string (MMIQC: "
                                         "source contains 'stackexchange', as the paper reads it); others are "
                                         "counted as filtered, not as bad.")
    id_field: str | None = Field("id", description="Field holding a stable document id; null = the line/row number.")
    max_docs: int | None = Field(None, ge=1, description="Read at most this many documents (null = all).")
    max_chars: int | None = Field(None, ge=1, description="This source's snippet length, instead of "
                                  "corpus.max_chars (paper: ProofWiki tool seeds 2,000 chars, others 1,000).")
    all_levels: bool = Field(False, description="Give this source's snippets all 8 prompt levels "
                             "(the paper does so for Wikipedia/ProofWiki).")
    license: str | None = Field(None, description="The source's license as an SPDX-style id (e.g. "
                                "'cc-by-sa-4.0'); written into the corpus card (null: the card says it is not "
                                "stated). Describes the data; changes no snippet.")

    @model_validator(mode="after")
    def _check_format_fields(self) -> "SourceConfig":
        if self.format == "jsonl":
            if not self.path:
                raise ValueError("a jsonl source needs 'path' (a file relative to the project root)")
            if self.dataset or self.revision:
                raise ValueError("'dataset'/'revision' are for format: hf; a jsonl source takes 'path'")
        else:
            if not self.dataset:
                raise ValueError("an hf source needs 'dataset' (the hub id, e.g. GAIR/MathPile)")
            if not self.revision:
                raise ValueError("an hf source needs 'revision' (a 40-hex commit SHA; a branch changes under you)")
        return self

    def unpinned(self) -> bool:
        """True for a hub source whose revision is not a full commit hash."""
        return self.format == "hf" and not _SHA.match(self.revision or "")


class DedupConfig(Section):
    """Exact and near-duplicate removal (datatrove's exact dedup and MinHash phases)."""

    exact: bool = Field(True, description="Drop snippets whose normalised text was seen before.")
    near: bool = Field(True, description="Drop snippets whose MinHash Jaccard estimate with a kept one "
                       "passes 'threshold'.")
    threshold: float = Field(0.8, gt=0.0, lt=1.0, description="Jaccard threshold of the LSH index.")
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations (more = more exact, slower).")
    shingle_words: int = Field(5, ge=1, le=32, description="Words per shingle.")
    seed: int = Field(1, ge=0, description="MinHash permutation seed (fixed so runs are identical).")


class DecontaminationConfig(Section):
    """The paper's 'test sets filter', applied to source text."""

    enabled: bool = Field(True, description="Drop snippets sharing an n-gram with any benchmark test question.")
    ngram: int = Field(13, ge=5, le=50, description="Word n-gram length (lower-cased alphanumeric tokens).")


class CorpusConfig(Section):
    """Load sources, split, cut to snippets, normalise, dedup, decontaminate."""

    sources: tuple[SourceConfig, ...] = Field(strict=False, min_length=1,
                                              description="Input sources, read in this order.")
    max_chars: int = Field(1000, ge=50, description="Snippet length cap in characters (paper: 1000).")
    min_chars: int = Field(200, ge=1, description="Drop snippets shorter than this after normalisation.")
    cut: Literal["head", "chunk"] = Field("head", description="'head': keep the first max_chars of each split "
                                         "part (the paper's text[:1000]); 'chunk': cut each part into "
                                         "consecutive pieces at paragraph/sentence boundaries.")
    max_snippets_per_doc: int | None = Field(None, ge=1, description="With cut: chunk, keep at most this "
                                             "many pieces per split part (null = all).")
    on_bad_record: Literal["error", "skip"] = Field("error", description="A malformed line, invalid UTF-8 or "
                                                    "a record without text: stop with file:line ('error') or "
                                                    "skip it and count it in metrics ('skip').")
    tasks: Tasks = Field(2, description="datatrove tasks: the documents are split into this "
                                         "many ranks, one output shard each. The output depends on it (which copy "
                                         "of a duplicate is kept), not on where the tasks run; 'auto' = this "
                                         "machine's cores (then another machine writes other shards).")
    dedup: DedupConfig = Field(default_factory=DedupConfig, description="Duplicate removal.")
    decontamination: DecontaminationConfig = Field(default_factory=DecontaminationConfig,
                                                   description="Benchmark overlap filter.")

    @model_validator(mode="after")
    def _check(self) -> "CorpusConfig":
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        if self.min_chars >= self.max_chars:
            raise ValueError(f"min_chars ({self.min_chars}) must be below max_chars ({self.max_chars})")
        return self
