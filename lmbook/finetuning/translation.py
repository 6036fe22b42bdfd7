"""Machine translation with the encoder-decoder Transformer (Chapter 5 (fine-tuning), section "Machine
translation"; source sections 2.2 and 3.3).

**Data**: real English -> Spanish Bible verses (World English Bible / Reina-Valera 1909, both public
domain) from :mod:`lmbook.corpora.bible`, split by book; every tagged word carries a Strong's number,
which gives (noisy) gold word alignments.

**Tokens**: one byte-level BPE (:class:`lmbook.tokenizers.BPETokenizer`) trained on the English and
Spanish training verses together, so both sides share one vocabulary of a few thousand ids
(:func:`train_translation_tokenizer`). Nothing is ever unknown: a name the model never saw is a few pieces.

**Model**: ``lmbook.models.Transformer`` trained from scratch by the ``translator`` recipe
(``lmbook/recipes/translate.py``). :func:`translate` decodes greedily or with beam search
(``lmbook.generation``); :func:`translator_eval` scores with ``sacrebleu`` (BLEU and chrF, the field's
reference implementations).

**Alignment**: :func:`cross_attention_alignment` feeds the reference translation to the decoder (teacher
forcing), reads one layer's cross-attention, turns BPE pieces back into the corpus's words
(:func:`word_pieces`) and links each Spanish word to the English word it attends to most;
:func:`alignment_eval` scores those links against the Strong's gold with the alignment error rate.
:func:`check_word_attention` is the checker of the chapter's exercise on that step.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from lmbook.checkpointing import checkpoint_dir, load_checkpoint
from lmbook.corpora.bible import BibleVerse, alignment_error_rate, tokenize
from lmbook.data import pad_batch
from lmbook.tokenizers import BOS_ID, EOS_ID, PAD_ID, BPETokenizer

__all__ = ["alignment_eval", "check_word_attention", "cross_attention_alignment", "load_translator",
           "piece_to_word_attention", "train_translation_tokenizer", "translate", "translation_batch",
           "translation_pairs", "translator_eval", "word_pieces"]  # fmt: skip


# ----------------------------------------------------------------------------- tokens and batches
def train_translation_tokenizer(verses, vocab_size: int = 4000) -> BPETokenizer:
    """One byte-level BPE for both languages, trained on the English and the Spanish text of ``verses``."""
    verses = list(verses)
    if not verses:
        raise ValueError("verses must hold at least one BibleVerse, got none")
    return BPETokenizer.train([v.en for v in verses] + [v.es for v in verses], vocab_size)


def translation_pairs(verses, tokenizer: BPETokenizer, max_tokens: int | None = None) -> list[tuple[list, list]]:
    """``(source ids, target ids)`` per verse (no special tokens); with ``max_tokens``, only verses whose
    two sides both have at most that many BPE tokens."""
    out = []
    for v in verses:
        s, t = tokenizer.encode(v.en), tokenizer.encode(v.es)
        if max_tokens is None or max(len(s), len(t)) <= max_tokens:
            out.append((s, t))
    return out


def translation_batch(pairs) -> dict[str, Tensor]:
    """(source ids, target ids) pairs -> ``src`` = x <eos>, ``tgt_in`` = <bos> y, ``targets`` = y <eos>, padded."""
    src, _ = pad_batch([[*s, EOS_ID] for s, _ in pairs], PAD_ID)  # (B, S)
    tgt, _ = pad_batch([[BOS_ID, *t, EOS_ID] for _, t in pairs], PAD_ID)  # (B, T + 1)
    return {"src": src, "tgt_in": tgt[:, :-1], "targets": tgt[:, 1:]}


def _source_ids(sources: list[str], tokenizer: BPETokenizer, max_len: int) -> Tensor:
    ids = [[*tokenizer.encode(s)[: max_len - 1], EOS_ID] for s in sources]
    return pad_batch(ids, PAD_ID)[0]  # (B, S)


# ----------------------------------------------------------------------------- decoding and scores
@torch.no_grad()
def translate(model, sources: list[str], tokenizer: BPETokenizer, *, beam_size: int = 1, max_len: int | None = None,
              batch_size: int = 64) -> list[str]:  # fmt: skip
    """Translate English strings with greedy search (``beam_size=1``) or beam search (``lmbook.generation``).

    Sources longer than the model's ``max_len`` are cut; the output is at most ``max_len`` tokens
    (default: twice the source length + 8, capped by the model's ``max_len``).
    """
    from lmbook.generation import beam_search, greedy_decode

    if isinstance(sources, str):
        raise TypeError("sources must be a list of English strings, not one string")
    results = []
    for start in range(0, len(sources), batch_size):
        src = _source_ids(sources[start : start + batch_size], tokenizer, model.config.max_len)  # (B, S)
        n = max_len or min(model.config.max_len, 2 * src.shape[1] + 8)
        if beam_size == 1:
            outs = list(greedy_decode(model, src, n, BOS_ID, EOS_ID))
        else:
            outs = [ids for ids, _ in beam_search(model, src, beam_size, n, BOS_ID, EOS_ID)]
        for ids in outs:
            ids = ids.tolist()[1:]  # drop <bos>
            results.append(tokenizer.decode(ids[: ids.index(EOS_ID)] if EOS_ID in ids else ids).strip())
    return results


def translator_eval(model, tokenizer: BPETokenizer, verses, *, beam_size: int = 1) -> dict:
    """sacrebleu BLEU and chrF (0-100) of :func:`translate` on ``verses`` against their Spanish text;
    also returns the ``hypotheses``."""
    import sacrebleu

    verses = list(verses)
    hyps = translate(model, [v.en for v in verses], tokenizer, beam_size=beam_size)
    refs = [[v.es for v in verses]]
    return {"bleu": sacrebleu.corpus_bleu(hyps, refs).score, "chrf": sacrebleu.corpus_chrf(hyps, refs).score,
            "hypotheses": hyps}  # fmt: skip


def load_translator(path: str | Path | None = None):
    """(model, tokenizer) of the shipped translator checkpoint (or of a recipe's ``--out`` folder)."""
    path = Path(path or checkpoint_dir("translator"))
    return load_checkpoint(path).eval(), BPETokenizer.load(path / "tokenizer.json")


# ----------------------------------------------------------------------------- cross-attention alignment
def word_pieces(text: str, tokenizer: BPETokenizer) -> tuple[list[int], list[int]]:
    """BPE ids of ``text`` and, for each piece, the index of the corpus word (``lmbook.corpora.tokenize``)
    it belongs to, or -1 for a piece that is only whitespace.

    Byte offsets decide: a piece belongs to the first word its bytes overlap (a piece like ``".”"``
    that covers two punctuation tokens goes to the first of them).
    """
    import re

    data = text.encode("utf-8")
    spans, pos = [], 0  # byte span of each corpus word
    for m in re.finditer(r"\w+(?:['’]\w+)*|[^\w\s]", text):
        assert m.group() == tokenize(text)[len(spans)]
        start = len(text[: m.start()].encode("utf-8"))
        spans.append((start, start + len(m.group().encode("utf-8"))))
    ids = tokenizer.encode(text)
    owner, w = [], 0
    for i in ids:
        end = pos + len(tokenizer.vocab[i])
        while w < len(spans) and spans[w][1] <= pos:
            w += 1
        owner.append(w if w < len(spans) and spans[w][0] < end else -1)
        pos = end
    assert pos == len(data)
    return ids, owner


def piece_to_word_attention(attn: Tensor, tgt_owner: list[int], src_owner: list[int], *,
                            n_tgt_words: int | None = None, n_src_words: int | None = None) -> Tensor:  # fmt: skip
    """Piece-level cross-attention (T pieces, S pieces) -> word-level (target words, source words).

    A source word receives the *sum* of the attention on its pieces (it is a share of one distribution);
    a target word gets the *mean* over its pieces' rows. Pieces owned by no word (-1) are dropped; a word
    that owns no piece (see :func:`word_pieces`) gets zeros. The word counts default to the largest
    owner index + 1.
    """
    if attn.dim() != 2 or attn.shape != (len(tgt_owner), len(src_owner)):
        raise ValueError(f"attn must have shape (len(tgt_owner), len(src_owner)) = "
                         f"{(len(tgt_owner), len(src_owner))}, got {tuple(attn.shape)}")  # fmt: skip
    n_tgt = max(tgt_owner, default=-1) + 1 if n_tgt_words is None else n_tgt_words
    n_src = max(src_owner, default=-1) + 1 if n_src_words is None else n_src_words
    src_map = torch.zeros(len(src_owner), n_src)
    for p, w in enumerate(src_owner):
        if w >= 0:
            src_map[p, w] = 1.0
    tgt_map = torch.zeros(n_tgt, len(tgt_owner))
    for p, w in enumerate(tgt_owner):
        if w >= 0:
            tgt_map[w, p] = 1.0
    tgt_map = tgt_map / tgt_map.sum(1, keepdim=True).clamp(min=1)  # mean over a word's pieces
    return tgt_map @ attn.float() @ src_map  # (words_es, words_en)


@torch.no_grad()
def cross_attention_alignment(model, tokenizer: BPETokenizer, verse: BibleVerse, *, layer: int = -1,
                              shift: int = 1) -> tuple[Tensor, set[tuple[int, int]]]:  # fmt: skip
    """Word-level cross-attention of ``verse`` under teacher forcing, and the links it predicts.

    The decoder reads ``<bos> y``; with ``shift=1`` the row used for target piece ``y_t`` is the query
    that *predicts* it (input position ``t``, whose input is ``y_{t-1}``), with ``shift=0`` the query
    whose input is ``y_t``. Heads of ``layer`` are averaged. Returns ``(A, links)``: ``A`` is
    (Spanish words, English words) from :func:`piece_to_word_attention`, ``links`` the pairs
    ``(i_en, j_es)`` linking every Spanish word that owns a piece to its most-attended English word.
    """
    src_ids, src_owner = word_pieces(verse.en, tokenizer)
    tgt_ids, tgt_owner = word_pieces(verse.es, tokenizer)
    n = model.config.max_len - 1
    src_ids, src_owner, tgt_ids, tgt_owner = src_ids[:n], src_owner[:n], tgt_ids[:n], tgt_owner[:n]
    src = torch.tensor([[*src_ids, EOS_ID]])  # (1, S + 1)
    tgt_in = torch.tensor([[BOS_ID, *tgt_ids]])  # (1, T + 1)
    model.eval()
    cross = model(src, tgt_in, need_weights=True).cross_attentions[layer][0].mean(0)  # (T + 1, S + 1): heads averaged
    rows = cross[shift - 1 : len(tgt_ids) + shift - 1] if shift else cross[1:]  # one row per target piece
    A = piece_to_word_attention(rows[:, : len(src_ids)], tgt_owner, src_owner,  # <eos> column dropped
                                n_tgt_words=len(tokenize(verse.es)), n_src_words=len(tokenize(verse.en)))  # fmt: skip
    links = {(int(A[j].argmax()), j) for j in set(tgt_owner) - {-1}} if A.shape[1] else set()
    return A, links


def alignment_eval(model, tokenizer: BPETokenizer, verses, *, layer: int = -1, shift: int = 1,
                   tagged_only: bool = True) -> dict:  # fmt: skip
    """Alignment error rate of :func:`cross_attention_alignment` against the Strong's gold, over the verses
    that have gold links. With ``tagged_only`` only Spanish words that carry a Strong's number are linked
    (the gold says nothing about the others: punctuation, most articles); otherwise every Spanish word."""
    pred, gold, n = set(), set(), 0
    for k, v in enumerate(verses):
        if not v.alignments:
            continue
        n += 1
        tagged = {j for j, _ in v.es_strongs}
        _, links = cross_attention_alignment(model, tokenizer, v, layer=layer, shift=shift)
        pred |= {(k, i, j) for i, j in links if j in tagged or not tagged_only}
        gold |= {(k, i, j) for i, j in v.alignments}
    precision = len(pred & gold) / max(1, len(pred))
    recall = len(pred & gold) / max(1, len(gold))
    return {"aer": alignment_error_rate(pred, gold), "precision": precision, "recall": recall, "verses": n}


def check_word_attention(fn) -> str:
    """Checker for the chapter's exercise: ``fn(attn, tgt_owner, src_owner)`` should turn piece-level
    cross-attention into word-level attention like :func:`piece_to_word_attention` (sum over a source
    word's pieces, mean over a target word's pieces, whitespace pieces dropped).

    Returns ``"correct"`` or raises ``AssertionError`` saying what is wrong.
    """
    g = torch.Generator().manual_seed(0)
    attn = torch.rand(5, 6, generator=g).softmax(-1)  # (T pieces, S pieces)
    tgt_owner, src_owner = [0, 0, 1, -1, 2], [0, 1, 1, 1, -1, 2]
    want = piece_to_word_attention(attn, tgt_owner, src_owner)
    got = fn(attn, tgt_owner, src_owner)
    if not isinstance(got, Tensor):
        raise AssertionError(f"fn must return a tensor, got {type(got).__name__}")
    if tuple(got.shape) != tuple(want.shape):
        raise AssertionError(f"shape {tuple(got.shape)}, expected {tuple(want.shape)} = (target words, source words)")
    if torch.allclose(got, want, atol=1e-5):
        return "correct"
    hint = "the rows should still sum to about 1 where no source piece was dropped"
    src_mean = want * torch.tensor([1.0, 1 / 3, 1.0])  # word 1 has three pieces
    if torch.allclose(got, src_mean, atol=1e-5):
        hint = "a source word's share is the SUM of its pieces' attention, not their mean"
    elif torch.allclose(got[1:], want[1:], atol=1e-5):
        hint = "target word 0 has two pieces (rows 0 and 1): average them, do not take one or add them"
    elif torch.allclose(got[:, :2], want[:, :2], atol=1e-5):
        hint = "source word 2 is piece 5: a whitespace piece (-1, piece 4) must be skipped, not counted"
    raise AssertionError(f"values differ from the reference (max error {(got - want).abs().max():.3f}): {hint}")
