"""Extractive question answering: a start and an end logit per token (book: sec-question-answering;
source sections 2.2 and 3.3).

The input is ``[CLS] question [SEP] passage [SEP]`` (``qa_features``); ``SpanQA`` gives every token
a *start* and an *end* logit, and the answer is the best span ``start <= end`` inside the passage
(``best_span``), cut back out of the passage text through the character offsets of the byte-level
BPE tokens (``token_offsets``). ``baseline_answer`` is the rule the model must beat,
``qa_eval_features`` the fixed test encoding the ``qa`` recipe and its drift test share, and
``check_best_span`` the chapter's exercise checker. The data set is in ``lmbook.finetuning.qa_data``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmbook.checkpointing import register_model
from lmbook.data import pad_batch
from lmbook.finetuning.classification import _encoder_config
from lmbook.finetuning.qa_data import load_qa
from lmbook.models import Encoder, EncoderConfig
from lmbook.tokenizers import CLS_ID, PAD_ID, SEP_ID

__all__ = ["QAFeature", "SpanQA", "SpanQAConfig", "baseline_answer", "best_span", "char_span_to_tokens",
           "check_best_span", "predict_answers", "qa_batch", "qa_eval_features", "qa_features", "span_loss",
           "token_offsets"]  # fmt: skip

_NEG = -1e4  # logit given to positions that may not hold an answer (finite: no NaN in the softmax)


@dataclass
class SpanQAConfig:
    """``SpanQA``: the encoder's config (a dict on disk)."""

    encoder: EncoderConfig | dict

    def __post_init__(self) -> None:
        self.encoder = _encoder_config(self.encoder)


@register_model
class SpanQA(nn.Module):
    """Encoder + a linear layer giving each token a start and an end logit (book: sec-question-answering).

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


def span_loss(model: SpanQA, batch: dict) -> Tensor:
    """Mean of the start and end cross-entropies over the tokens (BERT's SQuAD loss)."""
    start, end = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    return (F.cross_entropy(start, batch["start_positions"]) + F.cross_entropy(end, batch["end_positions"])) / 2


# ----------------------------------------------------------------------------- classification data


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


# ----------------------------------------------------------------------------- baseline and evaluation data
_YEAR, _AMOUNT = re.compile(r"\b\d{4}\b"), re.compile(r"\d[\d.,]*(?:%| per ?cent)")
_CAPITALISED = re.compile(r"[A-Z][\w'.-]*(?: [A-Z][\w'.-]*)*")


def baseline_answer(question: str, context: str) -> str:
    """A rule with no learning: by question word, the first year, amount or capitalised name
    (not in the question) of the passage."""
    if question.startswith(("When", "In which year")):
        m = _YEAR.search(context)
    elif question.startswith("By how much"):
        m = _AMOUNT.search(context)
    else:
        m = next((m for m in _CAPITALISED.finditer(context) if m[0] not in question), None)
    return m[0] if m else " ".join(context.split()[:3])


def qa_eval_features(tokenizer, split: str = "test", max_len: int = 256):
    """(examples, features) of a QA split, as the recipe and the checkpoint test encode them."""
    examples = load_qa(split)
    return examples, [qa_features(e, tokenizer, max_len) for e in examples]


# ----------------------------------------------------------------------------- exercise checker
def check_best_span(fn, *, n_cases: int = 200, max_answer_len: int = 30) -> str:
    """Check ``fn(start_logits, end_logits, allowed, max_answer_len) -> (start, end)``.

    (book: sec-question-answering-exercises)

    The answer must maximise ``start_logits[s] + end_logits[e]`` over ``s <= e < s + max_answer_len``
    with both positions ``allowed`` (the passage tokens); compared with :func:`lmbook.finetuning.best_span`
    on random logits, including cases where the best start comes after the best end.
    """
    g = torch.Generator().manual_seed(0)
    for case in range(n_cases):
        T = int(torch.randint(8, 60, (1,), generator=g))
        start, end = torch.randn(T, generator=g) * 3, torch.randn(T, generator=g) * 3
        if case % 3 == 0:  # a tempting but invalid pair: best start after best end
            start[T - 2], end[1] = 20.0, 20.0
        allowed = torch.zeros(T, dtype=torch.bool)
        first = int(torch.randint(1, T // 2, (1,), generator=g))
        allowed[first:T - 1] = True  # question and [CLS] before, final [SEP] after
        if case % 5 == 0:
            start[0], end[0] = 50.0, 50.0  # [CLS] is not part of the passage
        want_s, want_e, want = best_span(start, end, allowed, max_answer_len)
        got = fn(start.clone(), end.clone(), allowed.clone(), max_answer_len)
        if not (isinstance(got, (tuple, list)) and len(got) >= 2):
            raise AssertionError(f"fn must return (start, end), got {got!r}")
        s, e = int(got[0]), int(got[1])
        where = f"(case {case}: {T} tokens, passage = positions {first}..{T - 2})"
        if not (allowed[s] and allowed[e]):
            raise AssertionError(f"your span ({s}, {e}) leaves the passage {where}; "
                                 "both ends must be allowed positions")
        if e < s:
            raise AssertionError(f"your span ends before it starts: ({s}, {e}) {where}; require start <= end")
        if e - s + 1 > max_answer_len:
            raise AssertionError(f"your span ({s}, {e}) has {e - s + 1} tokens, "
                                 f"more than max_answer_len={max_answer_len} {where}")
        score = (start[s] + end[e]).item()
        if score < want - 1e-5:
            raise AssertionError(f"your span ({s}, {e}) scores {score:.3f} "
                                 f"but ({want_s}, {want_e}) scores {want:.3f} {where}")
    return f"check_best_span: {n_cases} random cases, every span valid and best"
