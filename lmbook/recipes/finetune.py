"""Chapter 5 recipes: the fine-tuned checkpoints shipped in ``lmbook/checkpoints/``.

    python -m lmbook.recipes classifier   # BBC News topics: pretrained / scratch / frozen / MLM-only (~12 min)
    python -m lmbook.recipes qa           # extractive QA (SpanQA): pretrained / scratch (~8 min)
    (the translator's recipe is lmbook/recipes/translate.py)

Each recipe is deterministic (seeded, one thread), trains, evaluates on held-out data against
a trivial baseline, and writes ``model.safetensors`` + ``config.json`` (with the metrics) via
``lmbook.checkpointing.save_checkpoint``. The evaluation data, baselines and loaders they use live in
``lmbook.finetuning`` (``classifier_eval``, ``qa_eval_features``, ...), so that
``tests/test_checkpoints_finetune.py`` and the notebooks re-measure the shipped numbers with the same code.
"""

from __future__ import annotations

import random
import shlex
import sys
from pathlib import Path

import torch

from lmbook.checkpointing import checkpoint_dir, load_pretrained, save_checkpoint
from lmbook.finetuning import (
    SequenceClassifier,
    SpanQA,
    baseline_answer,
    classification_batch,
    classification_loss,
    classifier_eval,
    confusion_matrix,
    encode_articles,
    freeze_encoder,
    predict_answers,
    qa_batch,
    qa_eval_features,
    qa_metrics,
    span_loss,
)
from lmbook.models import Encoder
from lmbook.recipes import _setup
from lmbook.training import count_parameters, train

__all__ = ["classifier", "fine_tune_classifier", "fine_tune_qa", "qa", "scratch_encoder"]


def _command(name: str) -> str:
    return f"python -m lmbook.recipes {name}" + (" " + shlex.join(sys.argv[2:]) if len(sys.argv) > 2 else "")


def _provenance(**dirs) -> dict:
    """Which pretrained checkpoints a recipe started from: sha256 (16 hex digits) of the weights and their metrics."""
    import hashlib
    import json

    out = {}
    for name, folder in dirs.items():
        folder = Path(folder or checkpoint_dir(name.replace("_", "-")))
        meta = json.loads((folder / "config.json").read_text()).get("metrics", {})
        digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()[:16]
        keep = {k: meta[k] for k in ("mlm_accuracy", "nsp_accuracy", "steps") if k in meta}
        out[name] = {"sha256_16": digest, **keep}
    return out


def _sampler(items: list, batch_size: int, make_batch, seed: int):
    """``step -> batch``: shuffled epochs of ``items`` from a seeded generator (same batches every run)."""
    rng, order = random.Random(seed), []

    def batch(step: int):
        nonlocal order
        if len(order) < batch_size:
            order = list(range(len(items)))
            rng.shuffle(order)
        chosen, order = order[:batch_size], order[batch_size:]
        return make_batch([items[i] for i in chosen])

    return batch


def _bucketed_sampler(items: list, batch_size: int, make_batch, seed: int, length, pool: int = 32):
    """Like ``_sampler``, but each shuffled pool of ``pool`` batches is sorted by ``length`` before it is cut
    into batches (then the batches are shuffled), so that a batch wastes little time on padding."""
    rng, queue = random.Random(seed), []

    def batch(step: int):
        nonlocal queue
        if not queue:
            order = list(range(len(items)))
            rng.shuffle(order)
            n = pool * batch_size
            key = lambda k: length(items[k])  # noqa: E731
            order = [k for i in range(0, len(order), n) for k in sorted(order[i : i + n], key=key)]
            queue = [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
            rng.shuffle(queue)
        return make_batch([items[k] for k in queue.pop()])

    return batch


# ----------------------------------------------------------------------------- classification
def _fine_tune(model, train_set, *, steps, batch_size, lr, seed):
    batches = _sampler(train_set, batch_size, classification_batch, seed)
    return train(model, batches, classification_loss, steps=steps, lr=lr, seed=seed, progress=False, log_every=10)


def scratch_encoder(config, seed: int = 0) -> Encoder:
    """The from-scratch control: the pretrained encoder's architecture with random weights drawn after
    ``_setup(seed)``, so that a test can rebuild exactly the control a recipe trained."""
    _setup(seed)
    return Encoder(config)


def fine_tune_classifier(name: str, encoder: Encoder, train_set: list, test_set: list, n_classes: int, *,
                         steps: int, batch_size: int, lr: float, pooling: str, seed: int) -> tuple:  # fmt: skip
    """One classifier run of the recipe: a fresh head on ``encoder``, ``steps`` of full fine-tuning, the test
    accuracy. Returns ``(model, metrics named "<name>_...", test predictions)``; ``tests/`` re-runs the
    from-scratch control through it."""
    _setup(seed)
    model = SequenceClassifier(encoder, n_classes, pooling=pooling)
    history = _fine_tune(model, train_set, steps=steps, batch_size=batch_size, lr=lr, seed=seed)
    result = classifier_eval(model, test_set)
    metrics = {f"{name}_test_accuracy": 100 * result["accuracy"], f"{name}_train_seconds": history.elapsed_s,
               f"{name}_trainable_parameters": count_parameters(model, trainable_only=True),
               f"{name}_final_train_loss": history.train_loss[-1]}  # fmt: skip
    return model, metrics, result["predictions"]


def classifier(out_dir: str | Path | None = None, *, steps: int = 400, batch_size: int = 16, max_len: int = 64,
               lr: float = 1e-3, pooling: str = "mean", head_steps: int = 400, head_lr: float = 3e-3, seed: int = 0,
               encoder_dir: str | Path | None = None, mlm_only_dir: str | Path | None = None,
               extra_seeds: tuple[int, ...] = (1, 2), other_lrs: tuple[float, ...] = (5e-4, 2e-3)) -> dict:  # fmt: skip
    """BBC News topics: fine-tune the pretrained encoder (shipped), and compare, at equal steps, with the same
    model from scratch, a frozen encoder (head only, on pooled features) and the MLM-only encoder.

    The pretrained and from-scratch runs are repeated with ``extra_seeds`` (another head and random init,
    another order of batches, other dropout) and every seed's accuracy is recorded: with all labels the two
    differ by about as much as one seed from the next (a 3-point spread was seen), so one run each would
    not say which start is better. Both are also run (seed ``seed``) at ``other_lrs``, so that neither start
    is judged at a learning rate that suits only the other."""
    from lmbook.data import load_classification, majority_baseline_accuracy

    _setup(seed)
    out_dir = Path(out_dir or checkpoint_dir("classifier"))
    tok, data = load_pretrained("tokenizer-wiki"), load_classification("bbc_news")
    train_set, test_set = encode_articles(tok, data.train, max_len), encode_articles(tok, data.test, max_len)
    n_classes, runs, metrics = len(data.label_names), {}, {}

    def run(name: str, encoder: Encoder) -> SequenceClassifier:
        model, scores, runs[name] = fine_tune_classifier(name, encoder, train_set, test_set, n_classes, steps=steps,
                                                         batch_size=batch_size, lr=lr, pooling=pooling, seed=seed)
        metrics.update(scores)
        return model

    model = run("pretrained", load_pretrained("encoder", encoder_dir).train())
    run("scratch", scratch_encoder(model.config.encoder, seed))
    run("mlm_only", load_pretrained("encoder-mlm-only", mlm_only_dir).train())
    for name, start in (("pretrained", lambda s: load_pretrained("encoder", encoder_dir).train()),
                        ("scratch", lambda s: scratch_encoder(model.config.encoder, s))):  # fmt: skip
        accs = [metrics[f"{name}_test_accuracy"]]
        for other in extra_seeds:
            _, scores, _ = fine_tune_classifier(name, start(other), train_set, test_set, n_classes, steps=steps,
                                                batch_size=batch_size, lr=lr, pooling=pooling, seed=other)
            accs.append(scores[f"{name}_test_accuracy"])
        metrics[f"{name}_seeds_test_accuracy"] = accs  # seed, *extra_seeds
        by_lr = {lr: metrics[f"{name}_test_accuracy"]}
        for other in other_lrs:
            _, scores, _ = fine_tune_classifier(name, start(seed), train_set, test_set, n_classes, steps=steps,
                                                batch_size=batch_size, lr=other, pooling=pooling, seed=seed)
            by_lr[other] = scores[f"{name}_test_accuracy"]
        metrics[f"{name}_lr_test_accuracy"] = {f"{k:g}": v for k, v in sorted(by_lr.items())}
    # frozen encoder: features are computed once (eval mode), then only the head learns
    _setup(seed)
    frozen = SequenceClassifier(load_pretrained("encoder", encoder_dir), n_classes, pooling=pooling)
    freeze_encoder(frozen)
    frozen.eval()
    with torch.no_grad():
        feats = []
        for i in range(0, len(train_set), 64):
            b = classification_batch(train_set[i : i + 64])
            h = frozen.encoder(b["input_ids"], attention_mask=b["attention_mask"], compute_heads=False).hidden_states
            feats.append(frozen.pool(h, b["attention_mask"]))  # (B, d)
    feats, labels = torch.cat(feats), torch.tensor([y for _, y in train_set])
    head_batches = _sampler(list(range(len(labels))), 64, lambda idx: (feats[idx], labels[idx]), seed)
    head_loss = lambda m, b: torch.nn.functional.cross_entropy(m(b[0]), b[1])  # noqa: E731
    history = train(frozen.head, head_batches, head_loss, steps=head_steps, lr=head_lr, seed=seed, progress=False)
    result = classifier_eval(frozen, test_set)
    metrics.update({"frozen_test_accuracy": 100 * result["accuracy"], "frozen_train_seconds": history.elapsed_s,
                    "frozen_trainable_parameters": count_parameters(frozen, trainable_only=True),
                    "majority_baseline_test_accuracy": 100 * majority_baseline_accuracy(data.train, data.test),
                    "test_accuracy": metrics["pretrained_test_accuracy"], "steps": steps,
                    "parameters": count_parameters(model)})  # fmt: skip
    extra = {"command": _command("classifier"), "labels": list(data.label_names),
             "pretrained": _provenance(encoder=encoder_dir, encoder_mlm_only=mlm_only_dir),
             "data": f"lmbook.data.load_classification('bbc_news'): {len(train_set)} train / {len(test_set)} test "
                     f"articles, first {max_len} tokens of each (tokenizer-wiki)",
             "recipe": dict(steps=steps, batch_size=batch_size, max_len=max_len, lr=lr, pooling=pooling,
                            head_steps=head_steps,
                            head_lr=head_lr, seed=seed, extra_seeds=list(extra_seeds),
                            other_lrs=list(other_lrs)),
             "confusion_matrix_pretrained": confusion_matrix(runs["pretrained"], [y for _, y in test_set],
                                                             n_classes).tolist()}  # fmt: skip
    save_checkpoint(model, out_dir, metrics=metrics, extra=extra)
    return metrics


# ----------------------------------------------------------------------------- extractive QA
def fine_tune_qa(name: str, encoder: Encoder, train_feats: list, test_feats: list, answers: list[str], *,
                 steps: int, batch_size: int, lr: float, max_answer_len: int, seed: int) -> tuple:  # fmt: skip
    """One QA run of the recipe: span heads on ``encoder``, ``steps`` of fine-tuning, test EM and F1 (in %).
    Returns ``(model, metrics named "<name>_...")``."""
    _setup(seed)
    model = SpanQA(encoder)
    batches = _bucketed_sampler(train_feats, batch_size, qa_batch, seed, lambda f: len(f.input_ids))
    history = train(model, batches, span_loss, steps=steps, lr=lr, seed=seed, progress=False, log_every=10)
    scores = qa_metrics(predict_answers(model, test_feats, max_answer_len=max_answer_len), answers)
    return model, {f"{name}_test_exact_match": 100 * scores["exact_match"], f"{name}_test_f1": 100 * scores["f1"],
                   f"{name}_train_seconds": history.elapsed_s, f"{name}_final_train_loss": history.train_loss[-1]}


def qa(out_dir: str | Path | None = None, *, steps: int = 500, batch_size: int = 16, max_len: int = 192,
       lr: float = 5e-4, max_answer_len: int = 10, seed: int = 0, encoder_dir: str | Path | None = None) -> dict:
    """Extractive QA: fine-tune SpanQA from the pretrained encoder (shipped) and, at equal steps, from scratch.

    ``max_answer_len=10`` tokens is the 95th percentile of the training answers' lengths."""
    _setup(seed)
    out_dir = Path(out_dir or checkpoint_dir("qa"))
    tok = load_pretrained("tokenizer-wiki")
    _, train_feats = qa_eval_features(tok, "train", max_len)
    test_examples, test_feats = qa_eval_features(tok, "test", max_len)
    answers = [e.answer for e in test_examples]
    metrics = {}

    def run(name: str, encoder: Encoder) -> SpanQA:
        model, scores = fine_tune_qa(name, encoder, train_feats, test_feats, answers, steps=steps,
                                     batch_size=batch_size, lr=lr, max_answer_len=max_answer_len, seed=seed)
        metrics.update(scores)
        return model

    model = run("pretrained", load_pretrained("encoder", encoder_dir).train())
    run("scratch", scratch_encoder(model.config.encoder, seed))
    baseline = qa_metrics([baseline_answer(e.question, e.context) for e in test_examples], answers)
    first3 = qa_metrics([" ".join(e.context.split()[:3]) for e in test_examples], answers)
    metrics.update({"test_exact_match": metrics["pretrained_test_exact_match"],
                    "test_f1": metrics["pretrained_test_f1"],
                    "baseline_rule_test_exact_match": 100 * baseline["exact_match"],
                    "baseline_rule_test_f1": 100 * baseline["f1"],
                    "baseline_first3_test_exact_match": 100 * first3["exact_match"],
                    "baseline_first3_test_f1": 100 * first3["f1"],
                    "test_answers_truncated": sum(f.start == 0 for f in test_feats), "test_examples": len(test_feats),
                    "steps": steps, "parameters": count_parameters(model)})  # fmt: skip
    extra = {"command": _command("qa"), "pretrained": _provenance(encoder=encoder_dir),
             "data": f"lmbook.finetuning.load_qa: {len(train_feats)} train / {len(test_feats)} test examples, "
                     f"[CLS] question [SEP] passage [SEP] cut to {max_len} tokens (tokenizer-wiki)",
             "recipe": dict(steps=steps, batch_size=batch_size, max_len=max_len, lr=lr, max_answer_len=max_answer_len,
                            seed=seed)}  # fmt: skip
    save_checkpoint(model, out_dir, metrics=metrics, extra=extra)
    return metrics
