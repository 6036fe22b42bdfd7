"""How fine-tuned models are scored (book: sec-finetuning, sec-translation, sec-question-answering).

The field's usual metrics: accuracy and the confusion matrix for classification; SQuAD's exact
match and token F1 (after lower-casing and removing punctuation and articles) for question
answering; corpus BLEU-4 with the brevity penalty (Papineni et al., 2002) and sentence exact
match for translation.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter

import torch
from torch import Tensor

__all__ = ["accuracy", "confusion_matrix", "corpus_bleu", "exact_match", "normalize_answer", "qa_metrics",
           "sequence_exact_match", "token_f1"]  # fmt: skip


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
