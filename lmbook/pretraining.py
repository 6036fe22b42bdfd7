"""Pretraining objectives and how to measure them (book: sec-pretraining; source sections 2.2 and 3.2).

A model is *pretrained* by predicting text from text, with no human labels:

* **Masked language modelling (MLM)**, BERT's first task. About 15 % of the tokens
  are chosen; of those 80 % become ``[MASK]``, 10 % a random token and 10 % stay
  (``lmbook.masking.mask_tokens_for_mlm``). The encoder predicts the original token at
  the chosen positions only.
* **Next sentence prediction (NSP)**, BERT's second task. The input is
  ``[CLS] A [SEP] B [SEP]``; half the time B really follows A in the document,
  half the time it comes from another document. The ``[CLS]`` vector says which.
  (RoBERTa later found NSP of little use; the ``encoder-mlm-only`` recipe drops it.)
* **Causal language modelling**, GPT's only task: predict every next token of a window.

Batches are plain dicts of tensors so that ``lmbook.training.train`` can take
``mlm_nsp_loss``, ``mlm_loss`` or ``lm_loss`` as its ``loss_fn``. Every sampler takes a
seed or a ``torch.Generator``: the same seed gives the same batches.

The evaluation helpers each come with the trivial baseline a model must beat:
``unigram_mlm_baseline`` (always guess the most frequent token) for ``mlm_accuracy``,
``unigram_perplexity`` (ignore the context) for ``model_perplexity``, and 50 % for ``nsp_accuracy``.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lmbook.data import pad_batch, split_sentences
from lmbook.masking import mask_tokens_for_mlm
from lmbook.tokenizers import CLS_ID, MASK_ID, PAD_ID, SEP_ID, SPECIAL_TOKENS

__all__ = ["collate_mlm", "fill_in_the_blank", "lm_batches", "lm_loss", "mlm_accuracy", "mlm_batches", "mlm_loss",
           "mlm_nsp_loss", "model_perplexity", "nsp_accuracy", "nsp_examples", "random_windows", "tokenize_documents",
           "unigram_mlm_baseline", "unigram_perplexity"]  # fmt: skip

SPECIAL_IDS = tuple(range(len(SPECIAL_TOKENS)))
"""Ids that MLM never selects nor draws as a random replacement (``[PAD]`` ... ``<eos>``)."""


# ----------------------------------------------------------------------------- MLM + NSP data (source section 3.2)
def tokenize_documents(tokenizer, documents: Sequence[str]) -> list[list[list[int]]]:
    """Split each document into sentences and encode each sentence: ``docs[d][s]`` is a list of ids.

    Sentences that encode to nothing are dropped, and so are documents left empty.
    """
    out = []
    for doc in documents:
        sents = [ids for ids in (tokenizer.encode(s) for s in split_sentences(doc)) if ids]
        if sents:
            out.append(sents)
    return out


def _truncate_pair(a: list[int], b: list[int], max_tokens: int, rng: random.Random) -> None:
    """BERT's ``truncate_seq_pair``: drop a token from the front or back of the longer segment until both fit."""
    while len(a) + len(b) > max_tokens:
        longer = a if len(a) > len(b) else b
        del longer[0 if rng.random() < 0.5 else -1]


def nsp_examples(docs: list[list[list[int]]], n: int, *, max_len: int = 128, short_prob: float = 0.1,
                 seed: int = 0) -> list[tuple[list[int], list[int], int]]:  # fmt: skip
    """Sentence-pair examples ``(input_ids, token_type_ids, is_next)`` for MLM + NSP (book: sec-pretraining-nsp).

    As in BERT, a segment is a run of whole sentences, not always one sentence: a run of
    consecutive sentences about ``max_len - 3`` tokens long (shorter with probability
    ``short_prob``) is cut at a random sentence boundary into A and B. For exactly
    ``n // 2`` examples B is that true continuation (``is_next = 1``); for the others B
    is a run of sentences from a *different* document (``is_next = 0``). The input is
    ``[CLS] A [SEP] B [SEP]``, ``token_type_ids`` are 0 over ``[CLS] A [SEP]`` and 1 over
    ``B [SEP]``, and at most ``max_len`` tokens long.

    Args:
        docs: ``tokenize_documents`` output; at least two documents, one with two sentences.
        n: number of examples.
        max_len: longest example in tokens, the three special tokens included.
        short_prob: chance of a shorter target length, uniform in ``[8, max_len - 3]``.
        seed: seed of the ``random.Random`` that picks documents, sentences and labels.
    """
    if max_len < 8:
        raise ValueError(f"max_len must be >= 8 to hold [CLS] A [SEP] B [SEP], got {max_len}")
    multi = [i for i, d in enumerate(docs) if len(d) >= 2]
    if len(docs) < 2 or not multi:
        raise ValueError(f"docs must hold at least two documents, one with two or more sentences; got {len(docs)}")
    rng = random.Random(seed)
    labels = [1] * (n // 2) + [0] * (n - n // 2)
    rng.shuffle(labels)
    budget = max_len - 3
    out = []
    for is_next in labels:
        target = rng.randint(8, budget) if rng.random() < short_prob else budget
        d = rng.choice(multi)
        sents = docs[d]
        start = rng.randrange(len(sents) - 1)
        run, length = [], 0
        for s in sents[start:]:  # consecutive sentences until the target length (at least two)
            run.append(s)
            length += len(s)
            if length >= target and len(run) >= 2:
                break
        cut = rng.randint(1, len(run) - 1)
        a = [t for s in run[:cut] for t in s]
        if is_next:
            b = [t for s in run[cut:] for t in s]
        else:
            other = docs[rng.choice([j for j in range(len(docs)) if j != d])]
            j, b = rng.randrange(len(other)), []
            while j < len(other) and (not b or len(a) + len(b) < target):  # at least one sentence
                b += other[j]
                j += 1
        _truncate_pair(a, b, budget, rng)
        ids = [CLS_ID, *a, SEP_ID, *b, SEP_ID]
        types = [0] * (len(a) + 2) + [1] * (len(b) + 1)
        out.append((ids, types, is_next))
    return out


def collate_mlm(examples, *, vocab_size: int, generator: torch.Generator | None = None,
                mlm_probability: float = 0.15) -> dict[str, Tensor]:  # fmt: skip
    """Pad examples into one batch and mask it for MLM (80/10/10, ``lmbook.masking.mask_tokens_for_mlm``).

    Args:
        examples: ``(input_ids, token_type_ids, is_next)`` triples from ``nsp_examples``.
        vocab_size: the tokenizer's vocabulary size (random replacements are drawn below it).
        generator: a seeded ``torch.Generator``, so that the mask repeats.
        mlm_probability: chance that a non-special token becomes a prediction target.

    Returns:
        ``input_ids`` (B, T) masked, ``token_type_ids`` (B, T), ``attention_mask`` (B, T) 1 = real
        token, ``labels`` (B, T) original id at targets and -100 elsewhere, ``next_sentence_label`` (B,).
    """
    ids, attention_mask = pad_batch([e[0] for e in examples], PAD_ID)  # (B, T)
    types, _ = pad_batch([e[1] for e in examples], 0)  # (B, T)
    masked, labels = mask_tokens_for_mlm(ids, vocab_size=vocab_size, mask_id=MASK_ID, special_ids=SPECIAL_IDS,
                                         mlm_probability=mlm_probability, generator=generator)  # fmt: skip
    return {"input_ids": masked, "token_type_ids": types, "attention_mask": attention_mask, "labels": labels,
            "next_sentence_label": torch.tensor([e[2] for e in examples], dtype=torch.long)}  # fmt: skip


def mlm_batches(examples, *, batch_size: int, vocab_size: int, seed: int = 0,
                mlm_probability: float = 0.15) -> Callable[[int], dict]:  # fmt: skip
    """A ``step -> batch`` sampler: ``batch_size`` random examples, masked afresh at every step.

    Drawing a new mask each time an example is seen is RoBERTa's *dynamic masking*; BERT
    masked its data once. Step ``s`` always gives the same batch (generator seeded ``seed + s``).
    """

    def batch(step: int) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(seed + step)
        idx = torch.randint(len(examples), (batch_size,), generator=g).tolist()
        return collate_mlm([examples[i] for i in idx], vocab_size=vocab_size, generator=g,
                           mlm_probability=mlm_probability)  # fmt: skip

    return batch


# ----------------------------------------------------------------------------- MLM + NSP losses
def _check_encoder_batch(batch, nsp: bool, caller: str) -> None:
    """An MLM batch must be a dict with ``input_ids`` and ``labels`` of one shape, and at least one target."""
    keys = ("input_ids", "labels") + (("next_sentence_label",) if nsp else ())
    if not isinstance(batch, dict):
        raise TypeError(f"{caller}: batch must be a dict with keys {list(keys)}, got {type(batch).__name__}")
    if missing := [k for k in keys if k not in batch]:
        raise KeyError(f"{caller}: batch has no {missing} (it has {sorted(batch)})")
    ids, labels = batch["input_ids"], batch["labels"]
    if ids.numel() == 0:
        raise ValueError(f"{caller}: batch['input_ids'] is empty (shape {tuple(ids.shape)}); nothing to score")
    if labels.shape != ids.shape:
        raise ValueError(f"{caller}: batch['labels'] has shape {tuple(labels.shape)} but batch['input_ids'] has "
                         f"{tuple(ids.shape)}; they must match")  # fmt: skip
    if not bool((labels != -100).any()):
        raise ValueError(f"{caller}: batch['labels'] has no masked position (every label is -100); nothing to "
                         f"score. Raise mlm_probability or use longer sequences")  # fmt: skip


def _encoder_heads(model, batch: dict[str, Tensor], nsp: bool = True) -> tuple[Tensor, Tensor, Tensor | None]:
    """MLM logits at the target positions only (N, vocab), their labels (N,), and NSP logits (B, 2).

    Same maths as ``Encoder``'s heads, but the vocabulary projection runs on the ~15 % of
    positions that are scored instead of all of them, which makes a training step ~30 % faster.
    """
    out = model(batch["input_ids"], batch.get("token_type_ids"), batch.get("attention_mask"), compute_heads=False)
    x = out.hidden_states  # (B, T, d)
    target = batch["labels"] != -100  # (B, T)
    h = model.mlm_norm(model.mlm_act(model.mlm_dense(x[target])))  # (N, d)
    mlm_logits = F.linear(h, model.tok_emb.weight, model.mlm_bias)  # (N, vocab)
    nsp_logits = model.nsp_head(torch.tanh(model.pooler(x[:, 0]))) if nsp else None  # (B, 2)
    return mlm_logits, batch["labels"][target], nsp_logits


def mlm_nsp_loss(model, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """BERT's pretraining loss: MLM cross-entropy at the targets plus NSP cross-entropy on ``[CLS]``.

    Returns ``{"loss": mlm + nsp, "mlm": ..., "nsp": ...}``, usable as ``training.train``'s ``loss_fn``.

    Raises:
        ValueError: the batch is empty or has no masked position (a mean over nothing would be NaN).
    """
    _check_encoder_batch(batch, True, "mlm_nsp_loss")
    mlm_logits, labels, nsp_logits = _encoder_heads(model, batch)
    mlm = F.cross_entropy(mlm_logits, labels)
    nsp = F.cross_entropy(nsp_logits, batch["next_sentence_label"])
    return {"loss": mlm + nsp, "mlm": mlm, "nsp": nsp}


def mlm_loss(model, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """MLM cross-entropy only (RoBERTa-style, no NSP); returns ``{"loss": mlm, "mlm": mlm}``.

    Raises:
        ValueError: the batch is empty or has no masked position (a mean over nothing would be NaN).
    """
    _check_encoder_batch(batch, False, "mlm_loss")
    mlm_logits, labels, _ = _encoder_heads(model, batch, nsp=False)
    mlm = F.cross_entropy(mlm_logits, labels)
    return {"loss": mlm, "mlm": mlm}


# ----------------------------------------------------------------------------- causal LM (GPT)
def random_windows(token_ids: Tensor, batch_size: int, context: int,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:  # fmt: skip
    """``batch_size`` random windows of a token stream: inputs (B, context) and the next tokens (B, context)."""
    token_ids = torch.as_tensor(token_ids, dtype=torch.long)
    if token_ids.dim() != 1 or len(token_ids) < context + 1:
        raise ValueError(f"token_ids must be a 1-D stream of at least context + 1 = {context + 1} tokens, "
                         f"got shape {tuple(token_ids.shape)}")  # fmt: skip
    starts = torch.randint(len(token_ids) - context, (batch_size,), generator=generator)  # (B,)
    idx = starts[:, None] + torch.arange(context + 1)  # (B, context + 1)
    windows = token_ids[idx]
    return windows[:, :-1], windows[:, 1:]


def lm_batches(token_ids: Tensor, *, batch_size: int, context: int, seed: int = 0) -> Callable[[int], tuple]:
    """A ``step -> (inputs, targets)`` sampler of random windows; step ``s`` always gives the same batch."""

    def batch(step: int) -> tuple[Tensor, Tensor]:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        return random_windows(token_ids, batch_size, context, g)

    return batch


def lm_loss(model, batch: tuple[Tensor, Tensor]) -> Tensor:
    """Next-token cross-entropy of a ``Decoder`` on ``(inputs, targets)``; targets of -100 are not scored.

    Raises:
        ValueError: the batch is empty, or every target is -100 (a mean over nothing would be NaN).
    """
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"lm_loss: batch must be a pair (inputs, targets), got {type(batch).__name__}")
    inputs, targets = batch
    if not isinstance(inputs, Tensor) or not isinstance(targets, Tensor):
        raise TypeError(f"lm_loss: inputs and targets must be tensors of token ids, got "
                        f"{type(inputs).__name__} and {type(targets).__name__}")  # fmt: skip
    if inputs.numel() == 0:
        raise ValueError(f"lm_loss: inputs is empty (shape {tuple(inputs.shape)}); nothing to score")
    if targets.shape != inputs.shape:
        raise ValueError(f"lm_loss: targets has shape {tuple(targets.shape)} but inputs has {tuple(inputs.shape)}")
    if not bool((targets != -100).any()):
        raise ValueError("lm_loss: every target is -100 (ignored); nothing to score")
    return model(inputs, targets).loss


# ----------------------------------------------------------------------------- evaluation
@torch.no_grad()
def model_perplexity(model, token_ids, *, context: int | None = None, batch_size: int = 16) -> float:
    """exp(mean next-token cross-entropy) over non-overlapping windows of ``token_ids`` (a 1-D stream).

    Each window of ``context + 1`` tokens scores its last ``context`` tokens given the earlier
    ones in the window, so every scored token sees at most ``context`` tokens of history.
    A model that gives every token the same probability has perplexity ``vocab_size``.
    """
    ids = torch.as_tensor(token_ids, dtype=torch.long)
    context = context or model.config.max_len
    n = (len(ids) - 1) // context
    if ids.dim() != 1 or n < 1:
        raise ValueError(f"token_ids must be a 1-D stream of at least context + 1 = {context + 1} tokens")
    idx = torch.arange(n)[:, None] * context + torch.arange(context + 1)  # (n, context + 1)
    windows, total = ids[idx], 0.0
    was_training = model.training
    model.eval()
    for i in range(0, n, batch_size):
        w = windows[i:i + batch_size]
        logits = model(w[:, :-1]).logits  # (b, context, vocab)
        total += F.cross_entropy(logits.flatten(0, 1), w[:, 1:].flatten(), reduction="sum").item()
    model.train(was_training)
    return math.exp(total / (n * context))


@torch.no_grad()
def _encoder_predictions(model, batches) -> tuple[int, int, int, int]:
    """(MLM correct, MLM targets, NSP correct, NSP examples) over ``batches``."""
    was_training = model.training
    model.eval()
    mc = mn = nc = nn_ = 0
    for batch in batches:
        mlm_logits, labels, nsp_logits = _encoder_heads(model, batch)
        mc += int((mlm_logits.argmax(-1) == labels).sum())
        mn += len(labels)
        nc += int((nsp_logits.argmax(-1) == batch["next_sentence_label"]).sum())
        nn_ += len(nsp_logits)
    model.train(was_training)
    return mc, mn, nc, nn_


def mlm_accuracy(model, batches) -> float:
    """Share of MLM targets (labels != -100) whose top-1 prediction is the original token."""
    mc, mn, _, _ = _encoder_predictions(model, batches)
    if mn == 0:
        raise ValueError("mlm_accuracy: batches hold no masked position (labels all -100, or no batch); "
                         "nothing to score")
    return mc / mn


def nsp_accuracy(model, batches) -> float:
    """Share of sentence pairs whose ``is_next`` the NSP head gets right (chance: 0.5)."""
    _, _, nc, nn_ = _encoder_predictions(model, batches)
    if nn_ == 0:
        raise ValueError("nsp_accuracy: batches is empty; nothing to score")
    return nc / nn_


def _unigram_counts(train_token_ids) -> Counter:
    ids = torch.as_tensor(train_token_ids).flatten().tolist()
    return Counter(i for i in ids if i not in SPECIAL_IDS)


def unigram_mlm_baseline(train_token_ids, batches) -> float:
    """MLM accuracy of always guessing the most frequent (non-special) token of the training ids."""
    top = _unigram_counts(train_token_ids).most_common(1)[0][0]
    hits = total = 0
    for batch in batches:
        labels = batch["labels"][batch["labels"] != -100]
        hits += int((labels == top).sum())
        total += len(labels)
    if total == 0:
        raise ValueError("unigram_mlm_baseline: batches hold no masked position; nothing to score")
    return hits / total


def unigram_perplexity(train_token_ids, token_ids, vocab_size: int) -> float:
    """Perplexity on ``token_ids`` of a unigram model (add-one smoothed counts of the training ids).

    The LM's trivial baseline: it knows how frequent each token is but ignores the context.
    """
    counts = torch.bincount(torch.as_tensor(train_token_ids).flatten(), minlength=vocab_size).double() + 1
    logp = (counts / counts.sum()).log()
    ids = torch.as_tensor(token_ids).flatten()
    return math.exp(-logp[ids].mean().item())


@torch.no_grad()
def fill_in_the_blank(model, tokenizer, text: str, k: int = 5) -> list[list[tuple[str, float]]]:
    """Top-``k`` MLM guesses, with probabilities, for each ``[MASK]`` in ``text`` (book: sec-pretraining-measured).

    ``"[MASK]"`` is written in the text; the space before it belongs to the masked token
    (BPE tokens carry their leading space), so ``"The capital is [MASK]."`` asks for ``" Paris"``.
    """
    pieces = text.split("[MASK]")
    if len(pieces) < 2:
        raise ValueError(f"text must contain at least one [MASK], got {text!r}")
    ids = [CLS_ID]
    for i, piece in enumerate(pieces):
        ids += tokenizer.encode(piece.rstrip(" ") if i < len(pieces) - 1 else piece)
        if i < len(pieces) - 1:
            ids.append(MASK_ID)
    ids.append(SEP_ID)
    was_training = model.training
    model.eval()
    probs = model(torch.tensor([ids])).mlm_logits[0].softmax(-1)  # (T, vocab)
    model.train(was_training)
    out = []
    for pos in [i for i, t in enumerate(ids) if t == MASK_ID]:
        p, top = probs[pos].topk(k)
        out.append([(tokenizer.token_str(int(t)), float(q)) for t, q in zip(top, p, strict=True)])
    return out
