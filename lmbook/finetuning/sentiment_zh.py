"""Sentiment in Chinese: tokenisation, a character-level encoder and its data (Chapter 5 (fine-tuning),
section "Sentiment in Chinese"; source sections 2.2 and 3.3).

The book's source is a Chinese article, and Chinese raises a question English hides: written
Chinese puts no spaces between words, so what is a token? Three answers, compared on the
hotel reviews of ``lmbook.data.load_classification("reviews_zh")``:

* **characters**: about 4,700 distinct ones cover People's Daily; a review character the
  corpus never had becomes ``[UNK]``;
* **words**, cut by the ``jieba`` segmenter: units that carry meaning, but an open vocabulary,
  so many review words never occur in the corpus;
* **byte-level BPE** (``lmbook.tokenizers.BPETokenizer``): never unseen, but a Chinese character
  is three UTF-8 bytes, and a rare one is cut into byte pieces that mean nothing alone.

``oov_rate`` and ``tokenization_row`` measure each; ``check_oov_rate`` checks a reader's version.
The ``encoder-zh`` and ``sentiment-zh`` recipes (``lmbook/recipes/chinese.py``) pretrain a
character-level encoder on People's Daily and fine-tune it on the reviews; the splits, the model
size and the evaluation data they use live here so that notebook, recipe and tests agree.
"""

from __future__ import annotations

import html
import statistics
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import torch

from lmbook.finetuning.classification import encode_articles
from lmbook.models import EncoderConfig
from lmbook.tokenizers import CLS_ID, SEP_ID, CharTokenizer

__all__ = ["MAX_LEN", "attention_shading_html", "check_oov_rate", "jieba_words", "load_zh_tokenizer", "mlm_windows",
           "normalize_zh", "oov_by_corpus_size", "oov_rate", "pd_split", "review_set", "tokenization_row",
           "zh_char_tokenizer", "zh_encoder_config", "zh_mlm_eval_batches"]  # fmt: skip

MAX_LEN = 128
"""Longest input in tokens ([CLS] and [SEP] included): 126 characters hold about 85 % of the reviews whole."""


def normalize_zh(text: str) -> str:
    """Unicode NFKC: full-width forms become ASCII (``"１９９８，"`` -> ``"1998,"``).

    People's Daily writes digits, Latin letters and commas full width; the reviews mostly do not.
    Without this, every ASCII digit of a review is a character the corpus never saw.

    Example:
        >>> normalize_zh("１９９８年，ＣＤＭＡ")
        '1998年,CDMA'
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return unicodedata.normalize("NFKC", text)


def jieba_words(text: str) -> list[str]:
    """Cut Chinese ``text`` into words with ``jieba`` (its default, dictionary + HMM mode); spaces are dropped.

    Example:
        >>> jieba_words("房间很干净")  # doctest: +SKIP
        ['房间', '很', '干净']
    """
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)  # no "Building prefix dict ..." on stderr
    return [w for w in jieba.lcut(text) if w.strip()]


# ----------------------------------------------------------------------------- comparing tokenisations
def oov_rate(pieces_per_text: Iterable[Sequence[str]], vocabulary: Iterable[str] | set[str]) -> float:
    """Fraction of token *occurrences* (not distinct tokens) that are not in ``vocabulary``.

    Args:
        pieces_per_text: one list of tokens per text, e.g. ``[["房间", "很", "干净"], ...]``.
        vocabulary: the tokens the tokenizer knows (what it saw in its training corpus).

    Returns:
        A fraction in [0, 1] (0.05 = one token in twenty is unseen).

    Example:
        >>> oov_rate([["a", "b"], ["b", "z"]], {"a", "b"})
        0.25
    """
    vocab = vocabulary if isinstance(vocabulary, (set, frozenset, dict)) else set(vocabulary)
    total = unseen = 0
    for pieces in pieces_per_text:
        total += len(pieces)
        unseen += sum(p not in vocab for p in pieces)
    if total == 0:
        raise ValueError("pieces_per_text holds no tokens; cannot compute an OOV rate")
    return unseen / total


def check_oov_rate(fn: Callable) -> str:
    """Exercise checker for "write ``oov_rate`` yourself" (Chapter 5, "Sentiment in Chinese").

    Runs ``fn(pieces_per_text, vocabulary)`` on small cases and raises ``AssertionError`` saying what is
    wrong (types counted instead of occurrences, a percentage instead of a fraction, ...); returns a
    confirmation when every case passes.
    """
    cases = [
        ([["a", "b"], ["b", "z"]], {"a", "b"}, 0.25, "'z' is 1 unseen among 4 occurrences ('b' counts twice)"),
        ([["z", "z", "z", "a"]], {"a"}, 0.75, "'z' occurs 3 times: count occurrences, not distinct tokens"),
        ([["好", "好"], ["差"]], {"好", "差"}, 0.0, "every token is known"),
        ([["x"], [], ["y", "a"]], ["a"], 2 / 3, "vocabulary may be a list; an empty text adds nothing"),
    ]
    for pieces, vocab, want, why in cases:
        got = fn(pieces, vocab)
        vocab = sorted(vocab)  # for the messages: the same text on every run
        if not isinstance(got, (int, float)):
            raise AssertionError(f"oov_rate({pieces}, {vocab}) must return a number, got {type(got).__name__}")
        if abs(got - 100 * want) < 1e-9 and want > 0:
            raise AssertionError(f"oov_rate({pieces}, {vocab}) returned {got}, a percentage; return a fraction "
                                 f"in [0, 1] ({want:.4g})")  # fmt: skip
        if abs(got - want) > 1e-9:
            raise AssertionError(f"oov_rate({pieces}, {vocab}) returned {got:.4g}, expected {want:.4g}: {why}")
    return "oov_rate: all 4 cases pass"


def tokenization_row(name: str, vocabulary: Iterable[str] | set[str] | None, pieces_per_text: Sequence[Sequence[str]],
                     vocab_size: int | None = None) -> dict:  # fmt: skip
    """One row of the tokenisation table: vocabulary size, OOV rate and tokens per text.

    Args:
        name: the row's label ("characters", ...).
        vocabulary: tokens known from the training corpus; ``None`` for a byte-level tokenizer, which
            has no unseen token (any text is bytes), in which case ``vocab_size`` is required.
        pieces_per_text: the texts (reviews), each cut into tokens.
        vocab_size: the size to report, when it is not ``len(vocabulary)`` (BPE: ids, specials included).

    Returns:
        ``{"tokenizer", "vocab_size", "oov_percent", "mean_tokens", "median_tokens"}``.
    """
    if vocabulary is None and vocab_size is None:
        raise ValueError("vocab_size is required when vocabulary is None (a byte-level tokenizer)")
    vocab = None if vocabulary is None else set(vocabulary)
    lengths = [len(p) for p in pieces_per_text]
    if not lengths:
        raise ValueError("pieces_per_text is empty; give at least one tokenised text")
    return {"tokenizer": name, "vocab_size": vocab_size if vocab_size is not None else len(vocab),
            "oov_percent": 0.0 if vocab is None else 100 * oov_rate(pieces_per_text, vocab),
            "mean_tokens": statistics.fmean(lengths), "median_tokens": statistics.median(lengths)}  # fmt: skip


def oov_by_corpus_size(corpus_pieces: Sequence[str], sizes: Sequence[int],
                       pieces_per_text: Sequence[Sequence[str]]) -> list[float]:  # fmt: skip
    """OOV rate of ``pieces_per_text`` when the vocabulary is the pieces of the first ``size`` corpus characters.

    Args:
        corpus_pieces: the corpus cut into tokens, in order (``list(text)`` or ``jieba_words(text)``).
        sizes: corpus lengths in characters, increasing, e.g. ``[25_000, 100_000, 400_000]``.
        pieces_per_text: the evaluation texts, cut the same way.

    Returns:
        One OOV fraction per size: how fast a tokenizer's unseen rate falls as it reads more text.

    Example:
        >>> oov_by_corpus_size(["ab", "c", "ab"], [2, 3], [["ab", "c"]])
        [0.5, 0.0]
    """
    if list(sizes) != sorted(sizes) or not sizes or sizes[0] < 1:
        raise ValueError(f"sizes must be positive and increasing, got {list(sizes)}")
    out, seen, n, k = [], set(), 0, 0
    for size in sizes:
        while k < len(corpus_pieces) and n < size:
            seen.add(corpus_pieces[k])
            n += len(corpus_pieces[k])
            k += 1
        out.append(oov_rate(pieces_per_text, seen))
    return out


# ----------------------------------------------------------------------------- the character-level model
def pd_split(val_paragraphs: int = 1000) -> tuple[list[str], list[str]]:
    """People's Daily (Jan 1998) paragraphs, NFKC-normalised: all but the last ``val_paragraphs`` for training,
    those last ones held out to measure masked-character accuracy (no shuffling, as in ``train_val_split``)."""
    from lmbook.data import load_documents

    docs = [normalize_zh(d) for d in load_documents("chinese")]
    if not 0 < val_paragraphs < len(docs):
        raise ValueError(f"val_paragraphs must be in (0, {len(docs)}), got {val_paragraphs}")
    return docs[:-val_paragraphs], docs[-val_paragraphs:]


def zh_char_tokenizer(paragraphs: Sequence[str], min_count: int = 3) -> CharTokenizer:
    """The ``encoder-zh`` vocabulary: every character seen at least ``min_count`` times in ``paragraphs``, sorted.

    A character seen once or twice in 1.7 M gets no useful embedding from pretraining, and dropping
    the 800 rarest of People's Daily shrinks the model by a tenth for 0.15 points more unseen characters.
    """
    if not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
    counts = Counter("\n".join(paragraphs))
    return CharTokenizer(sorted(c for c, n in counts.items() if n >= min_count))


def zh_encoder_config(vocab_size: int) -> EncoderConfig:
    """The Chinese encoder: pre-LN, 3 layers, d_model 96, 4 heads, dropout 0.1, inputs up to ``MAX_LEN`` tokens.

    Small on purpose: about 0.74 M parameters (half of them the 3,800-character embedding), so that
    pretraining fits in 20 minutes of one CPU core and a checkpoint in 3 MB.
    """
    return EncoderConfig(vocab_size=vocab_size, max_len=MAX_LEN, n_layers=3, n_heads=4, d_model=96, d_ff=384,
                         dropout=0.1, norm_first=True, layer_norm_eps=1e-5)  # fmt: skip


def mlm_windows(tokenizer, paragraphs: Sequence[str], max_len: int = MAX_LEN) -> list[tuple[list[int], list[int], int]]:
    """Cut the paragraphs (joined by newlines) into ``[CLS] window [SEP]`` examples of ``max_len`` tokens.

    Windows do not overlap and may cross paragraph boundaries (RoBERTa's "full sentences"); the
    result is in the ``(input_ids, token_type_ids, is_next)`` form ``lmbook.pretraining.mlm_batches``
    takes (one segment, ``is_next`` unused: the encoder-zh is trained with MLM only).
    """
    if max_len < 3:
        raise ValueError(f"max_len must be >= 3 to hold [CLS] x [SEP], got {max_len}")
    ids, size = tokenizer.encode("\n".join(paragraphs)), max_len - 2
    return [([CLS_ID, *ids[i : i + size], SEP_ID], [0] * (min(size, len(ids) - i) + 2), 0)
            for i in range(0, len(ids), size)]  # fmt: skip


def load_zh_tokenizer(folder=None) -> CharTokenizer:
    """The character tokenizer saved beside the ``encoder-zh`` checkpoint (``tokenizer.json``)."""
    from pathlib import Path

    from lmbook.checkpointing import checkpoint_dir

    return CharTokenizer.load(Path(folder or checkpoint_dir("encoder-zh")) / "tokenizer.json")


def zh_mlm_eval_batches(tokenizer, n: int = 256, batch_size: int = 64) -> list[dict]:
    """Fixed masked-character evaluation: the first ``n`` windows of the held-out paragraphs, 15 % masked (seed 0)."""
    from lmbook.pretraining import collate_mlm

    examples = mlm_windows(tokenizer, pd_split()[1])[:n]
    g = torch.Generator().manual_seed(0)
    return [collate_mlm(examples[i : i + batch_size], vocab_size=tokenizer.vocab_size, generator=g)
            for i in range(0, len(examples), batch_size)]  # fmt: skip


def review_set(tokenizer, split: str = "test", max_len: int = MAX_LEN) -> list[tuple[list[int], int]]:
    """Reviews of ``load_classification("reviews_zh")`` as (``[CLS]`` first characters ``[SEP]``, label), NFKC first.

    ``split`` is ``"train"``, ``"val"`` or ``"test"``; label 0 = negative, 1 = positive.
    """
    from lmbook.data import load_classification

    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    data = getattr(load_classification("reviews_zh"), split)
    return encode_articles(tokenizer, [(normalize_zh(t), y) for t, y in data], max_len)


def attention_shading_html(tokens: Sequence[str], weights: Sequence[float] | torch.Tensor, title: str = "") -> str:
    """A paragraph of HTML: each token on a red background as strong as its weight (the largest = full colour)."""
    w = torch.as_tensor(weights, dtype=torch.float)
    if w.dim() != 1 or len(w) != len(tokens):
        raise ValueError(f"weights must be 1-D with one value per token ({len(tokens)}), got shape {tuple(w.shape)}")
    shade = (w / w.max().clamp_min(1e-12)).tolist()
    spans = "".join(f'<span style="background: rgba(220, 38, 38, {a:.2f})">{html.escape(t)}</span>'
                    for t, a in zip(tokens, shade, strict=True))  # fmt: skip
    head = f"<b>{html.escape(title)}</b><br>" if title else ""
    return f"<p>{head}{spans}</p>"
