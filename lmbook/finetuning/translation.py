"""Machine translation with the encoder-decoder Transformer (Chapter 5 (fine-tuning), section "Machine
translation"; source sections 2.2 and 3.3).

**Data** (:func:`load_translation_pairs`): no pip package ships a clean English-X parallel corpus
that installs offline, so the chapter translates real English sentences with a fixed toy grammar
("Mirror"): articles dropped, word order reversed within each clause, every word replaced by a
made-up word from a deterministic lexicon, numbers copied. The gold word alignment comes with each
pair, so cross-attention can be compared with the truth.

**Model**: ``lmbook.models.Transformer`` trained from scratch on word-level vocabularies
(``WordVocab``); ``translate`` decodes greedily or with beam search and can copy unknown words
through the cross-attention. ``translation_split``, ``dictionary_baseline``, ``load_translator``
and ``translator_eval`` are what the ``translator`` recipe, its drift test and the notebook share.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from lmbook.checkpointing import checkpoint_dir, load_checkpoint
from lmbook.data import load_documents, pad_batch, split_sentences
from lmbook.finetuning.metrics import corpus_bleu, sequence_exact_match
from lmbook.tokenizers import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID

__all__ = ["ARTICLES", "TranslationPair", "WordVocab", "dictionary_baseline", "load_translation_pairs",
           "load_translator", "mirror_word", "translate", "translate_to_mirror", "translation_batch",
           "translation_split", "translator_eval"]  # fmt: skip


# ----------------------------------------------------------------------------- data: English -> Mirror
@dataclass(frozen=True)
class TranslationPair:
    """An English sentence, its "Mirror" translation, and the gold word alignment.

    ``alignment`` holds (source word index, target word index) pairs over ``source.split()``
    and ``target.split()``; dropped articles have no target word.
    """

    source: str
    target: str
    alignment: tuple[tuple[int, int], ...]


_RE_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
_ONSETS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
ARTICLES = {"the", "a", "an"}
_CLAUSE_BREAKS = {",", ";", ":"}


def mirror_word(word: str) -> str:
    """The made-up "Mirror" word for an English word: 1-3 syllables chosen by a hash; numbers and punctuation kept."""
    if not word[0].isalpha():
        return word
    h = hashlib.blake2b(word.encode(), digest_size=8).digest()
    n_syllables = 2 + min(len(word), 8) // 5
    return "".join(_ONSETS[h[2 * k] % len(_ONSETS)] + _VOWELS[h[2 * k + 1] % len(_VOWELS)]
                   for k in range(n_syllables)) + ("n" if h[7] % 3 == 0 else "")


def translate_to_mirror(sentence: str) -> TranslationPair:
    """Translate an English sentence with the Mirror grammar; returns tokens joined by spaces and the alignment."""
    src = _RE_WORD.findall(sentence.lower())
    tgt: list[str] = []
    alignment: list[tuple[int, int]] = []
    clause: list[int] = []

    def flush() -> None:
        for i in reversed(clause):  # word order reversed inside the clause
            alignment.append((i, len(tgt)))
            tgt.append(mirror_word(src[i]))
        clause.clear()

    for i, tok in enumerate(src):
        if tok in ARTICLES:
            continue
        if tok in _CLAUSE_BREAKS or (not tok[0].isalnum() and i == len(src) - 1):
            flush()
            alignment.append((i, len(tgt)))
            tgt.append(tok)
        elif tok[0].isalnum():
            clause.append(i)
    flush()
    return TranslationPair(" ".join(src), " ".join(tgt), tuple(sorted(alignment)))


@functools.cache
def load_translation_pairs(min_words: int = 4, max_words: int = 14,
                           corpora: tuple[str, ...] = ("news", "wikipedia")) -> tuple[TranslationPair, ...]:
    """English -> Mirror pairs from the real sentences of corpora in :data:`lmbook.data.CORPORA`.

    Sentences with brackets or quotes are skipped; duplicates removed; order is the corpus order.
    """
    seen, pairs = set(), []
    for doc in (d for name in corpora for d in load_documents(name)):
        for sent in split_sentences(doc):
            n = len(sent.split())
            if min_words <= n <= max_words and not re.search(r"[()\[\]\"“”]", sent) and sent not in seen:
                seen.add(sent)
                pairs.append(translate_to_mirror(sent))
    return tuple(pairs)


# ----------------------------------------------------------------------------- vocabulary, batches, decoding
class WordVocab:
    """A word-level vocabulary for the translation chapter: ids 0..6 are the book's special tokens,
    then one id per word; text is split on whitespace and unknown words become ``[UNK]``."""

    def __init__(self, words) -> None:
        self.itos = list(SPECIAL_TOKENS) + [w for w in words if w not in SPECIAL_TOKENS]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, texts, min_count: int = 1) -> WordVocab:
        """Words seen at least ``min_count`` times, most frequent first (ties alphabetical)."""
        counts = Counter(w for t in texts for w in t.split())
        return cls(w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_count)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(w, UNK_ID) for w in text.split()]

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        ids = ids.tolist() if hasattr(ids, "tolist") else ids
        return " ".join(self.itos[i] for i in ids if not (skip_special_tokens and i < len(SPECIAL_TOKENS)))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"format": "lmbook-words", "words": self.itos[len(SPECIAL_TOKENS):]}))

    @classmethod
    def load(cls, path: str | Path) -> WordVocab:
        data = json.loads(Path(path).read_text())
        if data.get("format") != "lmbook-words":
            raise ValueError(f"{path}: 'format' must be 'lmbook-words', got {data.get('format')!r}")
        return cls(data["words"])


def translation_batch(pairs, src_vocab: WordVocab, tgt_vocab: WordVocab) -> dict[str, Tensor]:
    """(source, target) text pairs -> ``src`` = x <eos>, ``tgt_in`` = <bos> y, ``targets`` = y <eos>, all padded."""
    src, _ = pad_batch([[*src_vocab.encode(s), EOS_ID] for s, _ in pairs], PAD_ID)
    tgt, _ = pad_batch([[BOS_ID, *tgt_vocab.encode(t), EOS_ID] for _, t in pairs], PAD_ID)
    return {"src": src, "tgt_in": tgt[:, :-1], "targets": tgt[:, 1:]}


@torch.no_grad()
def translate(model, sources: list[str], src_vocab: WordVocab, tgt_vocab: WordVocab, *, beam_size: int = 1,
              max_len: int | None = None, replace_unk: bool = True) -> list[str]:  # fmt: skip
    """Translate with greedy search (``beam_size=1``) or beam search (``lmbook.generation``).

    With ``replace_unk``, every ``[UNK]`` of the output is replaced by the source word it attends
    to most (cross-attention averaged over layers and heads; Luong et al., 2015): that copies
    numbers and names the vocabulary does not hold.
    """
    from lmbook.generation import beam_search, greedy_decode

    src = translation_batch([(s, "") for s in sources], src_vocab, tgt_vocab)["src"]  # (B, S)
    max_len = max_len or min(model.config.max_len, 2 * src.shape[1] + 4)
    if beam_size == 1:
        outs = list(greedy_decode(model, src, max_len, BOS_ID, EOS_ID))
    else:
        outs = [ids for ids, _ in beam_search(model, src, beam_size, max_len, BOS_ID, EOS_ID)]
    results = []
    for b, ids in enumerate(outs):
        ids = ids.tolist()
        ids = ids[: ids.index(EOS_ID)] if EOS_ID in ids else ids  # <bos> y_1 ... y_n
        words = tgt_vocab.decode(ids[1:], skip_special_tokens=False).split()
        if replace_unk and UNK_ID in ids and len(ids) > 1:
            cross = model(src[b : b + 1], torch.tensor([ids]), need_weights=True).cross_attentions
            src_words = sources[b].split()
            attn = torch.stack(cross).mean((0, 2))[0, :, : len(src_words)]  # (T, S'): layers and heads averaged
            words = [src_words[attn[t].argmax().item()] if w == SPECIAL_TOKENS[UNK_ID] else w
                     for t, w in enumerate(words)]
        results.append(" ".join(words))
    return results


# ----------------------------------------------------------------------------- metrics


# ----------------------------------------------------------------------------- split, baseline, evaluation
def translation_split(n_test: int = 400, seed: int = 0):
    """(train, test) lists of ``TranslationPair``: a fixed shuffle of all pairs, the first ``n_test`` held out."""
    pairs = list(load_translation_pairs())
    random.Random(seed).shuffle(pairs)
    return pairs[n_test:], pairs[:n_test]


def dictionary_baseline(train_pairs, sources: list[str]) -> list[str]:
    """Word-by-word translation with the dictionary read off the training alignments, in English order:
    articles dropped, unknown words copied. What a model knows without learning the word order."""
    table: dict[str, Counter] = {}
    for p in train_pairs:
        s, t = p.source.split(), p.target.split()
        for i, j in p.alignment:
            table.setdefault(s[i], Counter())[t[j]] += 1
    lexicon = {w: c.most_common(1)[0][0] for w, c in table.items()}
    return [" ".join(lexicon.get(w, w) for w in s.split() if w not in ARTICLES) for s in sources]


def load_translator(path: str | Path | None = None):
    """(model, source vocab, target vocab) of the shipped translator checkpoint."""
    path = Path(path or checkpoint_dir("translator"))
    return load_checkpoint(path), WordVocab.load(path / "source_vocab.json"), WordVocab.load(path / "target_vocab.json")


def translator_eval(model, src_vocab, tgt_vocab, pairs, beam_size: int = 1) -> dict[str, float]:
    """BLEU (0-100) and exact match (%) of ``translate`` on ``pairs``."""
    hyps = translate(model, [p.source for p in pairs], src_vocab, tgt_vocab, beam_size=beam_size)
    refs = [p.target for p in pairs]
    return {"bleu": 100 * corpus_bleu(hyps, refs), "exact_match": 100 * sequence_exact_match(hyps, refs)}
