"""Chapter 5 recipes for "Sentiment in Chinese": a character-level encoder pretrained on People's Daily,
then fine-tuned on Chinese hotel reviews.

    python -m lmbook.recipes encoder-zh     # MLM on People's Daily, Jan 1998 (~20 min, one core)
    python -m lmbook.recipes sentiment-zh   # fine-tune it, and the same model from scratch (~8 min)

Run ``encoder-zh`` first: ``sentiment-zh`` starts from its checkpoint and reads its tokenizer.
The tokenizer, model size, splits and evaluation data live in ``lmbook.finetuning.sentiment_zh``
so that the notebook and ``tests/test_checkpoints_chinese.py`` re-measure what these recipes recorded.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import torch

from lmbook import pretraining as P
from lmbook.checkpointing import checkpoint_dir, load_pretrained, save_checkpoint
from lmbook.data import load_classification, majority_baseline_accuracy
from lmbook.finetuning import SequenceClassifier, classification_batch, classification_loss, classifier_eval
from lmbook.finetuning.sentiment_zh import (
    MAX_LEN,
    load_zh_tokenizer,
    mlm_windows,
    pd_split,
    review_set,
    zh_char_tokenizer,
    zh_encoder_config,
    zh_mlm_eval_batches,
)
from lmbook.models import Encoder
from lmbook.recipes import _setup
from lmbook.recipes.finetune import scratch_encoder
from lmbook.training import count_parameters, train

__all__ = ["encoder_zh", "sentiment_zh"]


def encoder_zh(out_dir: str | Path | None = None, *, steps: int = 2000, batch_size: int = 32, lr: float = 2e-3,
               mlm_probability: float = 0.2, seed: int = 0) -> dict:  # fmt: skip
    """Character-level encoder (pre-LN, 3 x 96) pretrained with MLM on People's Daily (section "Sentiment in Chinese").

    Characters, not words or BPE: about 4,700 of them cover the corpus (words would need an open
    vocabulary and miss many review words; byte-level BPE cuts rare characters into meaningless bytes),
    so the embedding stays small and almost every review character has been seen in pretraining.
    """
    _setup(seed)
    out_dir = Path(out_dir or checkpoint_dir("encoder-zh"))
    train_pars, _ = pd_split()
    tok = zh_char_tokenizer(train_pars)
    windows = mlm_windows(tok, train_pars)
    batches = P.mlm_batches(windows, batch_size=batch_size, vocab_size=tok.vocab_size, seed=1_000,
                            mlm_probability=mlm_probability)  # fmt: skip
    model = Encoder(zh_encoder_config(tok.vocab_size))
    history = train(model, batches, P.mlm_loss, steps=steps, lr=lr, warmup_steps=steps // 20, seed=seed,
                    progress=False, log_every=20)  # fmt: skip
    eval_batches = zh_mlm_eval_batches(tok)
    train_ids = torch.tensor([t for w in windows for t in w[0]])
    metrics = {"mlm_accuracy": P.mlm_accuracy(model, eval_batches),
               "unigram_mlm_accuracy": P.unigram_mlm_baseline(train_ids, eval_batches),
               "final_train_loss": history.train_loss[-1], "train_s": round(history.elapsed_s, 1),
               "ms_per_step": round(history.ms_per_step, 1), "steps": steps, "batch_size": batch_size, "lr": lr,
               "mlm_probability_train": mlm_probability, "mlm_probability_eval": 0.15,
               "vocab_size": tok.vocab_size, "train_windows": len(windows), "parameters": count_parameters(model),
               "command": "python -m lmbook.recipes encoder-zh",
               "eval_data": "lmbook.finetuning.sentiment_zh.zh_mlm_eval_batches(tokenizer): first 256 windows "
                            "of the held-out People's Daily paragraphs (pd_split), 15 % masked, seed 0"}  # fmt: skip
    extra = {"tokenizer": "tokenizer.json (CharTokenizer, this folder)", "objective": "MLM only",
             "config": dataclasses.asdict(model.config), "history": history.to_dict()}  # fmt: skip
    save_checkpoint(model, out_dir, metrics=metrics, extra=extra)
    tok.save(out_dir / "tokenizer.json")
    return metrics


def _length_bucketed(items: list, batch_size: int, seed: int, pool: int = 16):
    """``step -> batch``: shuffled epochs; within pools of ``pool`` batches, examples are sorted by length,
    so that a batch of short reviews is not padded to the longest one (the batches are shuffled again)."""
    rng, queue = random.Random(seed), []

    def batch(step: int) -> dict:
        nonlocal queue
        if not queue:
            order = list(range(len(items)))
            rng.shuffle(order)
            n = pool * batch_size
            length = lambda k: len(items[k][0])  # noqa: E731
            order = [k for i in range(0, len(order), n) for k in sorted(order[i : i + n], key=length)]
            queue = [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
            rng.shuffle(queue)
        return classification_batch([items[k] for k in queue.pop()])

    return batch


def fine_tune_sentiment_zh(name: str, encoder: Encoder, train_set: list, test_set: list, *, steps: int,
                           batch_size: int, lr: float, pooling: str, seed: int) -> tuple:  # fmt: skip
    """One run of the recipe: a two-class head on ``encoder``, fine-tuned; ``(model, metrics "<name>_...")``.
    ``tests/`` re-runs the from-scratch control through it."""
    _setup(seed)
    model = SequenceClassifier(encoder, 2, pooling=pooling)
    history = train(model, _length_bucketed(train_set, batch_size, seed), classification_loss, steps=steps, lr=lr,
                    seed=seed, progress=False, log_every=10)  # fmt: skip
    return model, {f"{name}_test_accuracy": 100 * classifier_eval(model, test_set)["accuracy"],
                   f"{name}_train_seconds": round(history.elapsed_s, 1),
                   f"{name}_final_train_loss": history.train_loss[-1]}  # fmt: skip


def sentiment_zh(out_dir: str | Path | None = None, *, steps: int = 700, batch_size: int = 32, lr: float = 1e-3,
                 pooling: str = "mean", seed: int = 0, encoder_dir: str | Path | None = None) -> dict:  # fmt: skip
    """Fine-tune ``encoder-zh`` on the reviews (shipped) and, at equal steps and settings, the same model
    from scratch; both are scored on the test reviews beside the majority baseline."""
    _setup(seed)
    out_dir = Path(out_dir or checkpoint_dir("sentiment-zh"))
    tok, data = load_zh_tokenizer(encoder_dir), load_classification("reviews_zh")
    train_set, test_set = review_set(tok, "train"), review_set(tok, "test")
    metrics: dict = {}

    def run(name: str, encoder: Encoder) -> SequenceClassifier:
        model, scores = fine_tune_sentiment_zh(name, encoder, train_set, test_set, steps=steps,
                                               batch_size=batch_size, lr=lr, pooling=pooling, seed=seed)
        metrics.update(scores)
        return model

    model = run("pretrained", load_pretrained("encoder-zh", encoder_dir).train())
    run("scratch", scratch_encoder(model.config.encoder, seed))
    metrics.update({"test_accuracy": metrics["pretrained_test_accuracy"],
                    "majority_baseline_test_accuracy": 100 * majority_baseline_accuracy(data.train, data.test),
                    "steps": steps, "parameters": count_parameters(model)})  # fmt: skip
    extra = {"command": "python -m lmbook.recipes sentiment-zh", "labels": list(data.label_names),
             "tokenizer": "lmbook/checkpoints/encoder-zh/tokenizer.json",
             "data": f"lmbook.finetuning.sentiment_zh.review_set: {len(train_set)} train / {len(test_set)} test "
                     f"reviews, NFKC, first {MAX_LEN - 2} characters",
             "recipe": dict(steps=steps, batch_size=batch_size, lr=lr, pooling=pooling, seed=seed)}  # fmt: skip
    save_checkpoint(model, out_dir, metrics=metrics, extra=extra)
    return metrics
