"""The test-sets filter on datatrove: benchmark question n-grams -> ``NGramsDecontFilter``'s index files.

datatrove builds that index with ``NGramsDecontIndexer`` from lighteval task definitions, which download
the benchmarks from the Hugging Face hub. The offline alternative here writes the same files
(``<benchmark>.index.hashes``: the xxhash64 of every word n-gram, as ``NGramsDecontFilter`` reads them) from
the benchmark files under ``benchmarks.root``, with the filter's own normalisation and tokens, so the
filter block is datatrove's, unchanged. A dropped document names its benchmark (``contaminated_task``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from datatrove.pipeline.decont import NGramsDecontConfig, NGramsDecontFilter
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.utils.hashing import create_hash_func
from datatrove.utils.text import ngrams, simplify_text

from jiuzhang.benchmarks.registry import iter_questions
from jiuzhang.dataflow.text import TEXT_NORM, WordTokens


def decont_config(n: int) -> NGramsDecontConfig:
    """datatrove's n-gram decontamination settings for ``n``-grams under our text normalisation."""
    return NGramsDecontConfig(n_grams=n, find_query_ngrams=True, find_overlap_ngrams=False, norm_config=TEXT_NORM)


def question_hashes(questions: Iterable[str], n: int) -> np.ndarray:
    """The sorted hashes of every ``n``-gram of ``questions``: the index the decontamination filter reads."""
    cfg = decont_config(n)
    hash_func = create_hash_func(cfg.hash_config)
    tokens = WordTokens()
    hashes = {hash_func(" ".join(g)) for q in questions
              for g in ngrams(tokens.word_tokenize(simplify_text(q, cfg.norm_config)), n)}
    return np.array(sorted(hashes), dtype=cfg.hash_config.np_descr)


def write_index(folder: Path, bench_root: str | Path, names: Iterable[str], n: int) -> dict[str, int]:
    """One index file per benchmark; returns the number of n-grams of each. An n-gram that several benchmarks
    share (GSM-Hard re-uses GSM8K's questions) belongs to the first one listed in ``benchmarks.decontaminate``,
    so a drop names that one whatever order the filter loads the files in."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    claimed = np.array([], dtype=np.uint64)
    for name in names:
        hashes = question_hashes(iter_questions(bench_root, name), n)
        hashes = hashes[~np.isin(hashes, claimed)]
        claimed = np.union1d(claimed, hashes)
        tmp = folder / f".{name}.tmp"
        hashes.tofile(tmp)
        tmp.replace(folder / f"{name}.index.hashes")
        counts[name] = int(hashes.size)
    return counts


def decont_filter(folder: Path, n: int, drops: DiskWriter) -> NGramsDecontFilter:
    """datatrove's filter over the index in ``folder``; dropped documents go to ``drops``."""
    return NGramsDecontFilter(str(folder), config=decont_config(n), exclusion_writer=drops, language=WordTokens())
