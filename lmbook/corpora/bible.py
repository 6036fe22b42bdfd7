"""English-Spanish Bible verses with gold word alignments (book: sec-translation-data).

The corpus pairs the World English Bible (module ``engWEB2015eb``) with the Reina-Valera 1909
(module ``spaRV1909eb``), verse by verse, for the 66 books both translations share. Both texts
are public domain. Both modules tag each word or phrase with the Strong's number of the Hebrew
or Greek word it translates, so an English word and a Spanish word that carry the same Strong's
number translate the same source word: that gives gold word alignments for free.

The pairs ship inside the package as ``bible_en_es.jsonl.xz``, one JSON object per verse with the
two texts and, per side, one Strong's tag per token (see ``README.md`` beside this file for the
format, licence and provenance); ``scripts/extract_bible_pairs.py`` regenerates the file from
the Debian packages. Nothing here needs those packages or the network.

Words. :func:`tokenize` is the one rule behind every word index in the corpus: a word is a run
of letters or digits, possibly joined by apostrophes (``God’s``, ``don't``); every other
non-space character is a token of its own (``,`` ``“`` ``¿`` ``-``). Index ``i`` of a record
means ``tokenize(record.en)[i]`` (or ``tokenize(record.es)[j]``), punctuation included;
punctuation tokens never carry a Strong's number.

Splits are by book, fixed, so that test verses come from books a model never saw:
``test`` = :data:`TEST_BOOKS`, ``val`` = :data:`VAL_BOOKS`, ``train`` = the other 57 books.

The chapter uses :func:`load_bible_pairs` for data, :func:`dictionary_baseline` as the
word-by-word baseline to beat, and :func:`alignment_error_rate` to score cross-attention
against :func:`word_alignments`.
"""

from __future__ import annotations

import functools
import json
import lzma
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

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

DATA_FILE = Path(__file__).with_name("bible_en_es.jsonl.xz")

#: The 66 books of the Protestant canon, in canonical order: (name used in records, diatheke key).
BOOKS: tuple[tuple[str, str], ...] = (
    ("Genesis", "Genesis"), ("Exodus", "Exodus"), ("Leviticus", "Leviticus"), ("Numbers", "Numbers"),
    ("Deuteronomy", "Deuteronomy"), ("Joshua", "Joshua"), ("Judges", "Judges"), ("Ruth", "Ruth"),
    ("1 Samuel", "I Samuel"), ("2 Samuel", "II Samuel"), ("1 Kings", "I Kings"), ("2 Kings", "II Kings"),
    ("1 Chronicles", "I Chronicles"), ("2 Chronicles", "II Chronicles"), ("Ezra", "Ezra"),
    ("Nehemiah", "Nehemiah"), ("Esther", "Esther"), ("Job", "Job"), ("Psalms", "Psalms"),
    ("Proverbs", "Proverbs"), ("Ecclesiastes", "Ecclesiastes"), ("Song of Solomon", "Song of Solomon"),
    ("Isaiah", "Isaiah"), ("Jeremiah", "Jeremiah"), ("Lamentations", "Lamentations"), ("Ezekiel", "Ezekiel"),
    ("Daniel", "Daniel"), ("Hosea", "Hosea"), ("Joel", "Joel"), ("Amos", "Amos"), ("Obadiah", "Obadiah"),
    ("Jonah", "Jonah"), ("Micah", "Micah"), ("Nahum", "Nahum"), ("Habakkuk", "Habakkuk"),
    ("Zephaniah", "Zephaniah"), ("Haggai", "Haggai"), ("Zechariah", "Zechariah"), ("Malachi", "Malachi"),
    ("Matthew", "Matthew"), ("Mark", "Mark"), ("Luke", "Luke"), ("John", "John"), ("Acts", "Acts"),
    ("Romans", "Romans"), ("1 Corinthians", "I Corinthians"), ("2 Corinthians", "II Corinthians"),
    ("Galatians", "Galatians"), ("Ephesians", "Ephesians"), ("Philippians", "Philippians"),
    ("Colossians", "Colossians"), ("1 Thessalonians", "I Thessalonians"),
    ("2 Thessalonians", "II Thessalonians"), ("1 Timothy", "I Timothy"), ("2 Timothy", "II Timothy"),
    ("Titus", "Titus"), ("Philemon", "Philemon"), ("Hebrews", "Hebrews"), ("James", "James"),
    ("1 Peter", "I Peter"), ("2 Peter", "II Peter"), ("1 John", "I John"), ("2 John", "II John"),
    ("3 John", "III John"), ("Jude", "Jude"), ("Revelation", "Revelation of John"),
)

#: Held-out books: Old Testament narrative and prophecy, New Testament letters.
TEST_BOOKS: tuple[str, ...] = ("Ruth", "Jonah", "Micah", "Titus", "Philemon", "James")
VAL_BOOKS: tuple[str, ...] = ("Esther", "Habakkuk", "Colossians")
SPLITS: tuple[str, ...] = ("train", "val", "test", "all")

#: A verse gets gold alignments only if the Dice overlap of its English and Spanish Strong's-id sets
#: reaches this. In ~2,000 verses (chapters where Hebrew and English verse numbering differ, e.g.
#: Genesis 32, 1 Chronicles 6, many psalms) the WEB's tags belong to a neighbouring verse although the
#: text is right; the overlap is bimodal (median 0.89, few verses between 0.3 and 0.6).
MIN_TAG_AGREEMENT = 0.5

_TOKEN = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")
_NO_SPACE_BEFORE = set(".,;:!?)]»”’")
_NO_SPACE_AFTER = set("([«“‘¿¡")


class BibleVerse(NamedTuple):
    """One verse in both languages.

    ``en_strongs`` / ``es_strongs``: ``((word index, (Strong's ids...)), ...)`` for every tagged word,
    ids like ``"H430"`` (Hebrew) or ``"G2316"`` (Greek). ``alignments``: the gold pairs
    ``(i_en, j_es)`` of words that share at least one Strong's id, sorted; empty when the two sides'
    id sets disagree (see :data:`MIN_TAG_AGREEMENT`), so such verses are left out of alignment scores.
    The English tags are coarser than the Spanish ones: WEB tags sometimes sit one word off
    (``In`` carries *God*'s number in Genesis 1:1), so this gold is noisy, not hand-made.
    """

    book: str
    chapter: int
    verse: int
    en: str
    es: str
    en_strongs: tuple[tuple[int, tuple[str, ...]], ...]
    es_strongs: tuple[tuple[int, tuple[str, ...]], ...]
    alignments: tuple[tuple[int, int], ...]


def tokenize(text: str) -> list[str]:
    """Split ``text`` into the corpus's tokens: words (letters/digits, inner apostrophes kept) and
    single punctuation characters. Every word index in the corpus refers to this list."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _TOKEN.findall(text)


def detokenize(tokens: Iterable[str]) -> str:
    """Join tokens with spaces, except before closing punctuation and after opening punctuation."""
    out = ""
    for tok in tokens:
        if out and not (tok in _NO_SPACE_BEFORE or out[-1] in _NO_SPACE_AFTER):
            out += " "
        out += tok
    return out


def book_split(book: str) -> str:
    """``"train"``, ``"val"`` or ``"test"`` for a book name of :data:`BOOKS`."""
    if book in TEST_BOOKS:
        return "test"
    if book in VAL_BOOKS:
        return "val"
    if book not in _BOOK_NAMES:
        raise ValueError(f"book must be one of the 66 names in BOOKS, got {book!r}")
    return "train"


_BOOK_NAMES = frozenset(name for name, _ in BOOKS)


def _parse_tags(tags: str) -> tuple[tuple[int, tuple[str, ...]], ...]:
    return tuple((i, tuple(t.split("+"))) for i, t in enumerate(tags.split()) if t != "-")


def _links(en: tuple, es: tuple) -> tuple[tuple[int, int], ...]:
    en_ids = {s for _, ids in en for s in ids}
    es_ids = {s for _, ids in es for s in ids}
    if not en_ids or 2 * len(en_ids & es_ids) < MIN_TAG_AGREEMENT * (len(en_ids) + len(es_ids)):
        return ()  # the two sides' tags describe different source verses: no gold for this verse
    by_id: dict[str, list[int]] = defaultdict(list)
    for j, ids in es:
        for s in ids:
            by_id[s].append(j)
    return tuple(sorted({(i, j) for i, ids in en for s in ids for j in by_id.get(s, ())}))


@functools.lru_cache(maxsize=1)
def _all_verses() -> tuple[BibleVerse, ...]:
    # the file stores per-token tag strings (see scripts/extract_bible_pairs.py); links are derived here
    verses = []
    with lzma.open(DATA_FILE, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            en, es = _parse_tags(r["en_tags"]), _parse_tags(r["es_tags"])
            verses.append(BibleVerse(r["book"], r["chapter"], r["verse"], r["en"], r["es"], en, es, _links(en, es)))
    return tuple(verses)


def load_bible_pairs(split: str = "train") -> list[BibleVerse]:
    """The verses of one split, in canonical order (book, chapter, verse).

    ``split``: ``"train"`` (57 books), ``"val"`` (:data:`VAL_BOOKS`), ``"test"`` (:data:`TEST_BOOKS`)
    or ``"all"``. The split is by whole book, so no test verse shares a book with training.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    verses = _all_verses()
    if split == "all":
        return list(verses)
    return [v for v in verses if book_split(v.book) == split]


def word_alignments(record: BibleVerse) -> set[tuple[int, int]]:
    """The gold alignment of a verse: the set of ``(i_en, j_es)`` word-index pairs sharing a Strong's id."""
    if not isinstance(record, BibleVerse):
        raise TypeError(f"record must be a BibleVerse from load_bible_pairs, got {type(record).__name__}")
    return set(record.alignments)


def alignment_error_rate(predicted_pairs: Iterable, sure_pairs: Iterable) -> float:
    """Alignment error rate (Och & Ney 2003, "A Systematic Comparison of Various Statistical
    Alignment Models"): ``AER = 1 - (|A ∩ S| + |A ∩ P|) / (|A| + |S|)`` for predicted links A,
    sure links S and possible links P ⊇ S. The Strong's gold has no sure/possible distinction, so
    here sure = possible = gold and AER = ``1 - 2|A ∩ G| / (|A| + |G|)`` (one minus the F1 of the links).

    Pairs are any hashable items, e.g. ``(i_en, j_es)`` for one verse, or ``(verse_no, i_en, j_es)``
    to score a whole corpus at once. 0 = identical sets, 1 = disjoint. Both empty gives 0.
    """
    a, s = set(predicted_pairs), set(sure_pairs)
    if not a and not s:
        return 0.0
    return 1.0 - 2 * len(a & s) / (len(a) + len(s))


def _translation_table(train_records: Iterable[BibleVerse]) -> dict[str, str]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for rec in train_records:
        if not isinstance(rec, BibleVerse):
            raise TypeError(f"train_records must hold BibleVerse records, got {type(rec).__name__}")
        en, es = tokenize(rec.en), tokenize(rec.es)
        for i, j in rec.alignments:
            counts[en[i].lower()][es[j].lower()] += 1
    # most frequent aligned Spanish word; ties broken alphabetically so the table is reproducible
    return {e: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for e, c in counts.items()}


def dictionary_baseline(train_records: Iterable[BibleVerse], sources: Iterable[str]) -> list[str]:
    """Word-by-word English->Spanish translation, the baseline any translator must beat.

    A table maps each (lower-cased) English word to the Spanish word it is most often aligned to
    in the gold alignments of ``train_records``. Each source word is replaced by its entry
    (capitalised when the English word is); unknown words and punctuation pass through unchanged.
    Word order stays English. Returns one Spanish string per source.
    """
    if isinstance(sources, str):
        raise TypeError("sources must be a list of English strings, not one string")
    table = _translation_table(train_records)
    out = []
    for src in sources:
        words = []
        for tok in tokenize(src):
            es = table.get(tok.lower())
            if es is None:
                words.append(tok)
            else:
                words.append(es[:1].upper() + es[1:] if tok[:1].isupper() else es)
        out.append(detokenize(words))
    return out
