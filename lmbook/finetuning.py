"""Fine-tuning a pretrained encoder, and scoring the result (Chapter 5; source sections 2.2 and 3.3).

Pretraining (Chapter 4) leaves an encoder whose hidden states describe every token in
context. Fine-tuning puts a small *head* on top and trains on labelled examples:

* **Classification** (``SequenceClassifier``): the ``[CLS]`` state goes through BERT's
  pooler (dense + tanh) and one linear layer to ``n_classes`` logits.
* **Extractive QA** (``SpanQA``): the input is ``[CLS] question [SEP] passage [SEP]``;
  one linear layer gives every token a *start* and an *end* logit, and the answer is the
  best span ``start <= end`` inside the passage, cut back out of the passage text
  through the character offsets of the byte-level BPE tokens.
* **Translation** uses the encoder-decoder ``lmbook.models.Transformer`` trained from
  scratch on word-level vocabularies (``WordVocab``).

``freeze_encoder`` turns full fine-tuning into "feature extraction": only the head learns.
The metrics are the field's usual ones: accuracy and the confusion matrix; SQuAD's exact
match and token F1 (after lower-casing and removing punctuation and articles); corpus
BLEU-4 with the brevity penalty (Papineni et al., 2002) and exact match for translation.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmbook.data import pad_batch
from lmbook.models import Encoder, EncoderConfig
from lmbook.tokenizers import BOS_ID, CLS_ID, EOS_ID, PAD_ID, SEP_ID, SPECIAL_TOKENS, UNK_ID
from lmbook.training import register_model

__all__ = [
    "ClassifierConfig", "QAFeature", "SequenceClassifier", "SpanQA", "SpanQAConfig", "WordVocab", "accuracy",
    "best_span", "char_span_to_tokens", "classification_batch", "confusion_matrix", "corpus_bleu", "exact_match",
    "freeze_encoder", "normalize_answer", "predict_answers", "qa_batch", "qa_features", "qa_metrics",
    "sequence_exact_match", "token_f1", "token_offsets",
]

_NEG = -1e4  # logit given to positions that may not hold an answer (finite: no NaN in the softmax)


def _encoder_config(c) -> EncoderConfig:
    return c if isinstance(c, EncoderConfig) else EncoderConfig(**c)


@dataclass
class ClassifierConfig:
    """``SequenceClassifier``: the encoder's config (a dict on disk), the classes, the head's dropout and the
    pooling: ``"cls"`` (BERT: dense + tanh on the ``[CLS]`` state) or ``"mean"`` (mean of the real tokens)."""

    encoder: EncoderConfig | dict
    n_classes: int
    dropout: float = 0.1
    pooling: str = "cls"

    def __post_init__(self) -> None:
        self.encoder = _encoder_config(self.encoder)


@dataclass
class SpanQAConfig:
    """``SpanQA``: the encoder's config (a dict on disk)."""

    encoder: EncoderConfig | dict

    def __post_init__(self) -> None:
        self.encoder = _encoder_config(self.encoder)


@register_model
class SequenceClassifier(nn.Module):
    """Encoder + pooled ``[CLS]`` + linear head (Chapter 5, Section "Text classification"; BERT's recipe).

    Build it from a (pretrained) encoder, ``SequenceClassifier(encoder, n_classes)``, or from a
    ``ClassifierConfig`` (a fresh encoder; that is what ``load_checkpoint`` does).
    """

    config_class = ClassifierConfig

    def __init__(self, encoder: Encoder | ClassifierConfig, n_classes: int | None = None, dropout: float = 0.1,
                 pooling: str = "cls"):  # fmt: skip
        super().__init__()
        if isinstance(encoder, ClassifierConfig):
            self.config, self.encoder = encoder, Encoder(encoder.encoder)
        else:
            if not isinstance(n_classes, int) or n_classes < 2:
                raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
            self.config, self.encoder = ClassifierConfig(encoder.config, n_classes, dropout, pooling), encoder
        if self.config.pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {self.config.pooling!r}")
        self.dropout = nn.Dropout(self.config.dropout)
        self.head = nn.Linear(self.config.encoder.d_model, self.config.n_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, *, need_weights: bool = False):
        """input_ids, attention_mask (B, T) -> logits (B, n_classes) [, attentions per layer (B, nh, T, T)]."""
        out = self.encoder(input_ids, attention_mask=attention_mask, need_weights=need_weights, compute_heads=False)
        logits = self.head(self.dropout(self.pool(out.hidden_states, attention_mask)))  # (B, n_classes)
        return (logits, out.attentions) if need_weights else logits


    def pool(self, hidden_states: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """(B, T, d) hidden states -> (B, d) sentence vector, as ``config.pooling`` says."""
        if self.config.pooling == "cls":
            return torch.tanh(self.encoder.pooler(hidden_states[:, 0]))  # the [CLS] token
        mask = torch.ones(hidden_states.shape[:2]) if attention_mask is None else attention_mask.float()  # (B, T)
        return (hidden_states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)


@register_model
class SpanQA(nn.Module):
    """Encoder + a linear layer giving each token a start and an end logit (Chapter 5, "Question answering").

    ``SpanQA(encoder)`` or ``SpanQA(SpanQAConfig(...))``. Padding gets a logit of -1e4.
    """

    config_class = SpanQAConfig

    def __init__(self, encoder: Encoder | SpanQAConfig):
        super().__init__()
        if isinstance(encoder, SpanQAConfig):
            self.config, self.encoder = encoder, Encoder(encoder.encoder)
        else:
            self.config, self.encoder = SpanQAConfig(encoder.config), encoder
        self.span_head = nn.Linear(self.config.encoder.d_model, 2)
        nn.init.normal_(self.span_head.weight, std=0.02)
        nn.init.zeros_(self.span_head.bias)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                *, need_weights: bool = False):  # fmt: skip
        """(B, T) ids, segments, mask -> start_logits, end_logits (B, T) [, attentions]."""
        out = self.encoder(input_ids, token_type_ids, attention_mask, need_weights=need_weights, compute_heads=False)
        logits = self.span_head(out.hidden_states)  # (B, T, 2)
        if attention_mask is not None:
            logits = logits.masked_fill(attention_mask[..., None] == 0, _NEG)
        start, end = logits.unbind(-1)  # (B, T) each
        return (start, end, out.attentions) if need_weights else (start, end)


def freeze_encoder(model: nn.Module, frozen: bool = True) -> int:
    """Stop (or restart) gradients into ``model.encoder``, so only the head learns; returns the trainable count."""
    if not isinstance(getattr(model, "encoder", None), nn.Module):
        raise ValueError(f"model must have an .encoder module to freeze, got {type(model).__name__}")
    for p in model.encoder.parameters():
        p.requires_grad_(not frozen)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def classification_loss(model: SequenceClassifier, batch: dict) -> Tensor:
    """Cross-entropy of the class logits, for ``lmbook.training.train``."""
    return F.cross_entropy(model(batch["input_ids"], batch["attention_mask"]), batch["labels"])


def span_loss(model: SpanQA, batch: dict) -> Tensor:
    """Mean of the start and end cross-entropies over the tokens (BERT's SQuAD loss)."""
    start, end = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    return (F.cross_entropy(start, batch["start_positions"]) + F.cross_entropy(end, batch["end_positions"])) / 2


# ----------------------------------------------------------------------------- classification data
def classification_batch(examples, tokenizer=None, max_len: int = 128) -> dict[str, Tensor]:
    """(text or token ids, label) pairs -> ``input_ids``/``attention_mask`` (B, T) and ``labels`` (B,).

    Text is encoded as ``[CLS] text [SEP]`` and cut to ``max_len`` tokens (the end of a long article is lost).
    """
    seqs = []
    for x, _ in examples:
        if isinstance(x, str):
            if tokenizer is None:
                raise ValueError("examples hold text, so a tokenizer is needed to encode it")
            x = [CLS_ID, *tokenizer.encode(x)[: max_len - 2], SEP_ID]
        seqs.append(list(x)[:max_len])
    ids, mask = pad_batch(seqs, PAD_ID)
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([y for _, y in examples])}


# ----------------------------------------------------------------------------- extractive QA data
def token_offsets(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Encode ``text`` and give each token its ``(start, end)`` character span in ``text``.

    A byte-level BPE token is a run of bytes: decoding the ids one by one and counting bytes
    gives its byte span, which the UTF-8 lengths of the characters turn into a character
    span (a token holding part of a character covers that whole character).
    """
    ids = tokenizer.encode(text)
    char_of_byte = [i for i, ch in enumerate(text) for _ in ch.encode("utf-8")] + [len(text)]
    offsets, b = [], 0
    for i in ids:
        n = len(tokenizer.vocab[i]) if hasattr(tokenizer, "vocab") else len(tokenizer.decode([i]).encode("utf-8"))
        start, end = char_of_byte[b], char_of_byte[b + n - 1] + 1
        offsets.append((start, end))
        b += n
    if b != len(char_of_byte) - 1:
        raise ValueError(f"tokens of text cover {b} bytes but the text has {len(char_of_byte) - 1}")
    return ids, offsets


def char_span_to_tokens(offsets, start_char: int, end_char: int) -> tuple[int, int] | None:
    """Index of the first and last token overlapping ``text[start_char:end_char]``; None if none is left."""
    hits = [k for k, (s, e) in enumerate(offsets) if s < end_char and e > start_char]
    return (hits[0], hits[-1]) if hits else None


@dataclass
class QAFeature:
    """One encoded QA example. ``offsets[k]`` is the passage character span of token ``k`` (None outside it);
    ``start``/``end`` are the answer's token positions, 0 (``[CLS]``) when truncation cut the answer away."""

    input_ids: list[int]
    token_type_ids: list[int]
    offsets: list[tuple[int, int] | None]
    start: int
    end: int
    context: str


def qa_features(example, tokenizer, max_len: int = 256, max_question_len: int = 64) -> QAFeature:
    """``[CLS] question [SEP] passage [SEP]`` with segments 0/0/1/1, the passage cut to fit ``max_len``."""
    q = tokenizer.encode(example.question)[:max_question_len]
    p_ids, p_off = token_offsets(tokenizer, example.context)
    room = max_len - len(q) - 3
    if room < 1:
        raise ValueError(f"max_len={max_len} leaves no room for the passage after {len(q)} question tokens")
    p_ids, p_off = p_ids[:room], p_off[:room]
    first = len(q) + 2  # position of the first passage token
    end_char = example.answer_start + len(example.answer)
    span = char_span_to_tokens(p_off, example.answer_start, end_char)
    truncated = span is None or p_off[-1][1] < end_char  # the answer (or its end) was cut off: point at [CLS]
    start, end = (0, 0) if truncated else (first + span[0], first + span[1])
    return QAFeature([CLS_ID, *q, SEP_ID, *p_ids, SEP_ID], [0] * first + [1] * (len(p_ids) + 1),
                     [None] * first + list(p_off) + [None], start, end, example.context)


def qa_batch(features: list[QAFeature]) -> dict[str, Tensor]:
    """Pad features into ``input_ids``, ``token_type_ids``, ``attention_mask`` (B, T) and start/end (B,)."""
    ids, mask = pad_batch([f.input_ids for f in features], PAD_ID)
    types, _ = pad_batch([f.token_type_ids for f in features], 0)
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
            "start_positions": torch.tensor([f.start for f in features]),
            "end_positions": torch.tensor([f.end for f in features])}  # fmt: skip


def best_span(start_logits: Tensor, end_logits: Tensor, allowed: Tensor, max_answer_len: int = 30):
    """The ``(start, end)`` maximising ``start_logits[s] + end_logits[e]`` with ``s <= e < s + max_answer_len``
    and both positions ``allowed`` (1-D tensors of one example); returns ``(s, e, score)``."""
    scores = start_logits[:, None] + end_logits[None, :]  # (T, T): row = start, column = end
    T = scores.shape[0]
    ok = torch.ones(T, T, dtype=torch.bool).triu().tril(max_answer_len - 1) & allowed[:, None] & allowed[None, :]
    if not ok.any():
        raise ValueError("no allowed position: the passage was truncated away")
    flat = scores.masked_fill(~ok, -math.inf).flatten().argmax().item()
    return flat // T, flat % T, scores.flatten()[flat].item()


@torch.no_grad()
def predict_answers(model: SpanQA, features: list[QAFeature], batch_size: int = 32, max_answer_len: int = 30):
    """Answer text for each feature: the best passage span, cut from the context by the token offsets."""
    answers, was_training = [], model.training
    model.eval()
    for i in range(0, len(features), batch_size):
        chunk = features[i : i + batch_size]
        b = qa_batch(chunk)
        start, end = model(b["input_ids"], b["token_type_ids"], b["attention_mask"])  # (B, T) each
        for f, s_log, e_log in zip(chunk, start, end, strict=True):
            allowed = torch.tensor([o is not None for o in f.offsets] + [False] * (len(s_log) - len(f.offsets)))
            s, e, _ = best_span(s_log, e_log, allowed, max_answer_len)
            answers.append(f.context[f.offsets[s][0] : f.offsets[e][1]].strip())
    model.train(was_training)
    return answers


# ----------------------------------------------------------------------------- translation vocabulary
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
def accuracy(predictions, labels) -> float:
    """Fraction of ``predictions`` equal to ``labels`` (lists or tensors of class ids)."""
    p, y = torch.as_tensor(predictions), torch.as_tensor(labels)
    if p.shape != y.shape or p.numel() == 0:
        raise ValueError(f"predictions {tuple(p.shape)} and labels {tuple(y.shape)} must be the same non-empty shape")
    return (p == y).double().mean().item()


def confusion_matrix(predictions, labels, n_classes: int) -> Tensor:
    """``m[true, predicted]`` counts (rows: the true class, columns: the prediction)."""
    p, y = torch.as_tensor(predictions).long(), torch.as_tensor(labels).long()
    return torch.bincount(y * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, drop punctuation and the articles a/an/the, squeeze spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def exact_match(prediction: str, answer: str) -> float:
    """1.0 when the normalised strings are equal, else 0.0 (SQuAD EM)."""
    return float(normalize_answer(prediction) == normalize_answer(answer))


def token_f1(prediction: str, answer: str) -> float:
    """Harmonic mean of token precision and recall between the normalised strings (SQuAD F1)."""
    p, a = normalize_answer(prediction).split(), normalize_answer(answer).split()
    if not p or not a:
        return float(p == a)
    common = sum((Counter(p) & Counter(a)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(a)
    return 2 * precision * recall / (precision + recall)


def qa_metrics(predictions: list[str], answers: list[str]) -> dict[str, float]:
    """Mean ``exact_match`` and ``f1`` over the examples."""
    if len(predictions) != len(answers) or not answers:
        raise ValueError(f"got {len(predictions)} predictions for {len(answers)} answers; need equal, non-zero")
    n = len(answers)
    return {"exact_match": sum(map(exact_match, predictions, answers)) / n,
            "f1": sum(map(token_f1, predictions, answers)) / n}  # fmt: skip


def _words(x) -> list[str]:
    return x.split() if isinstance(x, str) else list(x)


def corpus_bleu(hypotheses, references, max_n: int = 4) -> float:
    """Corpus BLEU in [0, 1] with one reference per hypothesis (strings split on spaces, or token lists).

    BLEU = BP * exp(mean_n log p_n): ``p_n`` is the clipped n-gram precision summed over the
    whole corpus (each hypothesis n-gram counts at most as often as in its reference), and
    the brevity penalty BP = exp(1 - r/c) when the hypotheses are shorter (c words) than the
    references (r words), else 1. Any ``p_n = 0`` gives 0 (no smoothing).
    """
    if len(hypotheses) != len(references) or not references:
        raise ValueError(f"got {len(hypotheses)} hypotheses for {len(references)} references; need equal, non-zero")
    matches, totals, c, r = [0] * max_n, [0] * max_n, 0, 0
    for hyp, ref in zip(map(_words, hypotheses), map(_words, references), strict=True):
        c, r = c + len(hyp), r + len(ref)
        for n in range(1, max_n + 1):
            h = Counter(tuple(hyp[i : i + n]) for i in range(len(hyp) - n + 1))
            g = Counter(tuple(ref[i : i + n]) for i in range(len(ref) - n + 1))
            matches[n - 1] += sum((h & g).values())
            totals[n - 1] += max(0, len(hyp) - n + 1)
    if c == 0 or min(matches) == 0:
        return 0.0
    log_p = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / max_n
    return math.exp(min(0.0, 1 - r / c) + log_p)


def sequence_exact_match(hypotheses, references) -> float:
    """Fraction of hypotheses whose words equal the reference's exactly."""
    if len(hypotheses) != len(references) or not references:
        raise ValueError(f"got {len(hypotheses)} hypotheses for {len(references)} references; need equal, non-zero")
    return sum(_words(h) == _words(r) for h, r in zip(hypotheses, references, strict=True)) / len(references)
