"""How many labelled examples does a task need, with and without pretraining?
(book: sec-finetuning-pretraining-helps; source sections 1.2 and 2.2.)

The source's central claim is that a model pretrained on unlabelled text learns a task from a
*little* labelled data. This module measures it as a **label-budget curve**: accuracy on a fixed
test set against the number of labelled examples per class, for a pretrained model and for the
same architecture from random weights, averaged over a few random draws of the examples.

Two ways to use a model are measured:

* ``fine_tune_accuracy``: full fine-tuning of an lmbook ``Encoder`` with a linear head on top
  (``SequenceClassifier``), a fixed number of steps whatever the budget;
* ``probe_accuracy``: a frozen model's mean-pooled features and a logistic-regression "probe"
  (used for MiniLM, whose 22 M parameters are too slow to fine-tune a dozen times on a CPU).

Example:
    >>> train = [("a", 0), ("b", 0), ("c", 1), ("d", 1), ("e", 1)]
    >>> label_budget_subset(train, 1, seed=0)  # doctest: +SKIP
    [('b', 0), ('e', 1)]
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lmbook.finetuning.classification import (
    SequenceClassifier,
    classification_batch,
    classification_loss,
    classifier_eval,
    mean_pool,
)
from lmbook.training import train

__all__ = ["label_budget_subset", "fine_tune_accuracy", "probe_accuracy", "mean_pooled_features"]


def label_budget_subset(examples: Sequence[tuple], per_class: int, seed: int) -> list[tuple]:
    """``per_class`` examples of every label, drawn with ``random.Random(seed)``; nested in ``per_class``.

    Each class's examples are shuffled once per seed and the first ``per_class`` are taken, so
    the 4 examples of a budget of 4 are among the 16 of a budget of 16 (the curves compare like
    with like). Examples are ``(x, label)`` pairs; the order of the result is by label.
    """
    if not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be an int >= 1, got {per_class!r}")
    by_label: dict[int, list] = {}
    for ex in examples:
        by_label.setdefault(ex[1], []).append(ex)
    rng, chosen = random.Random(seed), []
    for label in sorted(by_label):
        pool = list(by_label[label])
        if len(pool) < per_class:
            raise ValueError(f"label {label} has {len(pool)} examples, fewer than per_class={per_class}")
        rng.shuffle(pool)
        chosen += pool[:per_class]
    return chosen


def fine_tune_accuracy(encoder, n_classes: int, train_set: Sequence[tuple], test_set: Sequence[tuple], *,
                       steps: int = 80, batch_size: int = 16, lr: float = 1e-3, seed: int = 0) -> float:  # fmt: skip
    """Fine-tune ``encoder`` (modified in place) + a mean-pooling head on ``train_set``; test accuracy.

    ``train_set`` and ``test_set`` hold ``(token ids, label)`` pairs (``encode_articles``). Every
    budget gets the same number of ``steps`` of ``batch_size`` examples drawn with replacement.
    """
    torch.manual_seed(seed)
    model = SequenceClassifier(encoder.train(), n_classes, pooling="mean")
    g = torch.Generator().manual_seed(seed)

    def batch(step: int) -> dict[str, Tensor]:
        idx = torch.randint(len(train_set), (batch_size,), generator=g).tolist()
        return classification_batch([train_set[i] for i in idx])

    train(model, batch, classification_loss, steps=steps, lr=lr, seed=seed, progress=False, log_every=steps)
    return classifier_eval(model, test_set)["accuracy"]


@torch.no_grad()
def mean_pooled_features(model: Callable, batches) -> Tensor:
    """Mean of the last hidden states over the real tokens, for each batch of a Hugging Face-style model.

    ``batches`` yields dicts of model inputs with an ``attention_mask``; returns (N, d).
    """
    out = []
    for b in batches:
        out.append(mean_pool(model(**b).last_hidden_state, b["attention_mask"]))  # (B, d)
    return torch.cat(out)


def probe_accuracy(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, *,
                   weight_decay: float = 1e-2, iterations: int = 100) -> float:  # fmt: skip
    """Logistic regression on frozen features (standardised with the training mean/std): test accuracy.

    Fitted with L-BFGS to convergence on the whole (small) training set, so there is no learning
    rate or step count to tune: what it measures is how linearly separable the features are.
    """
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise ValueError(f"features and labels differ in length: train {len(train_x)} vs {len(train_y)}, "
                         f"test {len(test_x)} vs {len(test_y)}")  # fmt: skip
    mean, std = train_x.mean(0), train_x.std(0, unbiased=False) + 1e-6
    xs, xt = (train_x - mean) / std, (test_x - mean) / std
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    w = torch.zeros(xs.shape[1], n_classes, requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(xs @ w + b, train_y) + weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return ((xt @ w + b).argmax(-1) == test_y).float().mean().item()
