"""Split documents into parts, cut parts into snippets of at most ``max_chars``, normalise text.

The paper keeps ``text[:1000]`` of each part (``cut: head``); ``cut: chunk`` keeps the whole part as
consecutive snippets, cut at paragraph, then sentence, then word boundaries.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

_SPLITTERS = {
    "markdown_h2": re.compile(r"(?m)^(?=## )"),
    "latex_section": re.compile(r"(?=\\section\*?\{)"),
}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TRAILING_WS = re.compile(r"[ \t]+\n")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def normalise(text: str) -> str:
    """NFC, LF line ends, no control characters, no trailing spaces, at most one blank line in a row."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _TRAILING_WS.sub("\n", text)
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


def split_parts(text: str, split_by: str) -> list[str]:
    """``text`` split into parts by ``split_by`` (the whole text for 'document'), blank parts dropped."""
    if split_by == "document":
        return [text]
    parts = [p.strip() for p in _SPLITTERS[split_by].split(text)]
    return [p for p in parts if p]


def _cut_at_boundary(text: str, max_chars: int) -> str:
    """The longest prefix of ``text`` within ``max_chars`` that ends at whitespace (if one is near)."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    space = max(head.rfind(" "), head.rfind("\n"))
    return head[:space].rstrip() if space >= max_chars * 0.8 else head


def _pieces(text: str, max_chars: int) -> Iterator[str]:
    """Units no longer than max_chars: paragraphs, else sentences, else word-bounded cuts."""
    for para in text.split("\n\n"):
        if len(para) <= max_chars:
            yield para
            continue
        for sentence in _SENTENCE_END.split(para):
            while len(sentence) > max_chars:
                head = _cut_at_boundary(sentence, max_chars)
                yield head
                sentence = sentence[len(head):].lstrip()
            if sentence:
                yield sentence


def chunk(text: str, max_chars: int) -> list[str]:
    """Pack paragraphs (or smaller units) greedily into chunks of at most ``max_chars``."""
    chunks: list[str] = []
    current = ""
    for piece in _pieces(text, max_chars):
        sep = "\n\n" if current else ""
        if len(current) + len(sep) + len(piece) <= max_chars:
            current += sep + piece
        else:
            if current:
                chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def snippets(text: str, split_by: str, cut: str, max_chars: int, max_per_part: int | None) -> Iterator[tuple[str, str]]:
    """Yield ``(local_id, snippet)`` pairs, ``local_id`` = ``<part>.<piece>``, stable for the same text."""
    for p, part in enumerate(split_parts(normalise(text), split_by)):
        pieces = [_cut_at_boundary(part, max_chars)] if cut == "head" else chunk(part, max_chars)
        if max_per_part is not None:
            pieces = pieces[:max_per_part]
        for k, piece in enumerate(pieces):
            yield f"{p}.{k}", piece
