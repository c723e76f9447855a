"""Text normalisation and word tokens for datatrove's dedup and decontamination blocks.

Our own tokenizer because datatrove's English word tokenizer is NLTK's, which downloads its ``punkt`` tables
on first use: no stage may fetch anything at run time. After datatrove's ``simplify_text`` (lower case,
punctuation to spaces, whitespace collapsed, diacritics folded) the words are the whitespace-separated runs,
the same tokens the corpus stage used before datatrove (lower-cased alphanumeric runs).
"""

from __future__ import annotations

from datatrove.data import Document
from datatrove.utils.text import TextNormConfig, simplify_text
from datatrove.utils.word_tokenizers import WordTokenizer

# Numbers stay: a problem with other numbers is another problem (datatrove maps every number to 0 by default).
TEXT_NORM = TextNormConfig(norm_numbers=False)


class WordTokens(WordTokenizer):
    """Offline word tokenizer for text that ``simplify_text`` already normalised (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__("en")

    def word_tokenize(self, text: str) -> list[str]:
        """Whitespace-separated words (no model or download needed)."""
        return text.split()

    def sent_tokenize(self, text: str) -> list[str]:
        """The whole text as one sentence (we never split sentences)."""
        return [text] if text.strip() else []

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        """One span covering the whole text (empty text: none)."""
        return [(0, len(text))] if text.strip() else []


def canonical(doc: Document) -> str:
    """What exact dedup compares: the normalised words (case, punctuation and spacing do not count)."""
    return simplify_text(doc.text, TEXT_NORM)
