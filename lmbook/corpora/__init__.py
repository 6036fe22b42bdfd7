"""Corpora the project extracts itself and ships compressed inside the package.

* ``lmbook.corpora.bible`` (book: sec-translation-data): verse-aligned English-Spanish
  Bible text (World English Bible / Reina-Valera 1909, both public domain) with gold word alignments
  from shared Strong's numbers. See ``README.md`` in this folder for licence and provenance.

Everything is re-exported here: ``from lmbook.corpora import load_bible_pairs``.
"""

from lmbook.corpora.bible import (
    BOOKS,
    DATA_FILE,
    MIN_TAG_AGREEMENT,
    SPLITS,
    TEST_BOOKS,
    VAL_BOOKS,
    BibleVerse,
    alignment_error_rate,
    book_split,
    detokenize,
    dictionary_baseline,
    load_bible_pairs,
    tokenize,
    word_alignments,
)

__all__ = [
    "BOOKS",
    "DATA_FILE",
    "MIN_TAG_AGREEMENT",
    "SPLITS",
    "TEST_BOOKS",
    "VAL_BOOKS",
    "BibleVerse",
    "alignment_error_rate",
    "book_split",
    "detokenize",
    "dictionary_baseline",
    "load_bible_pairs",
    "tokenize",
    "word_alignments",
]
