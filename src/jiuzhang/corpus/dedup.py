"""Exact and near-duplicate filters (near: MinHash LSH from ``datasketch``).

Filters follow the record-pipeline convention: ``__call__(id, text) -> (keep, reason)``. The first
occurrence in input order is kept, so the result depends only on the input order, which is fixed.
"""

from __future__ import annotations

import hashlib
import re

from datasketch import MinHash, MinHashLSH

_WORD = re.compile(r"\w+", re.UNICODE)


def _canonical(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


class ExactDuplicateFilter:
    reason = "exact_duplicate"

    def __init__(self) -> None:
        self._seen: set[bytes] = set()

    def __call__(self, snippet_id: str, text: str) -> tuple[bool, str]:
        digest = hashlib.blake2b(_canonical(text).encode("utf-8"), digest_size=16).digest()
        if digest in self._seen:
            return False, self.reason
        self._seen.add(digest)
        return True, ""


class NearDuplicateFilter:
    """Drop a snippet when the LSH index already holds one with estimated Jaccard >= threshold."""

    reason = "near_duplicate"

    def __init__(self, threshold: float, num_perm: int, shingle_words: int, seed: int):
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.num_perm = num_perm
        self.shingle_words = shingle_words
        self.seed = seed

    def signature(self, text: str) -> MinHash:
        words = _WORD.findall(text.lower())
        n = self.shingle_words
        shingles = {" ".join(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}
        mh = MinHash(num_perm=self.num_perm, seed=self.seed)
        mh.update_batch([s.encode("utf-8") for s in sorted(shingles)])
        return mh

    def __call__(self, snippet_id: str, text: str) -> tuple[bool, str]:
        mh = self.signature(text)
        if self.lsh.query(mh):
            return False, self.reason
        self.lsh.insert(snippet_id, mh)
        return True, ""
