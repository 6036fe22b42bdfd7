"""Pretraining recipes (Chapter 4): the tokenizer, a BERT-style encoder (MLM + NSP, and MLM only)
and a GPT-style decoder, all trained on the Wikipedia corpus (``lmbook.data.load_corpus("wikipedia")``).

Run one with ``python -m lmbook.recipes <name>``; each takes a few minutes on one CPU
core, uses one torch thread and fixed seeds, and writes ``lmbook/checkpoints/<name>/``.
The models use the shipped ``tokenizer-wiki`` and the encoders start from the shipped ``decoder``
(``init_from_decoder``), so run ``tokenizer-wiki``, then ``decoder``, then the encoders.

The model sizes, the Wikipedia split and the fixed evaluation data (``encoder_eval_batches``,
``decoder_eval_tokens``) live in ``lmbook.pretraining_data``, so that ``tests/test_checkpoints_pretrain.py``
and the notebooks re-measure exactly what the recipe recorded.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from pathlib import Path

import torch

from lmbook import pretraining as P
from lmbook.checkpointing import checkpoint_dir, load_pretrained, save_checkpoint
from lmbook.generation import generate
from lmbook.models import Decoder, Encoder
from lmbook.pretraining_data import (
    DECODER_CONFIG,
    ENCODER_CONFIG,
    VOCAB_SIZE,
    decoder_eval_tokens,
    encoder_eval_batches,
    init_from_decoder,
    train_token_ids,
    wiki_split,
)
from lmbook.recipes import _setup
from lmbook.tokenizers import BOS_ID, BPETokenizer
from lmbook.training import count_parameters, train

__all__ = ["decoder", "encoder", "encoder_mlm_only", "tokenizer_wiki"]


def _environment() -> dict:
    from lmbook.distributed import current_device, world_size

    return {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
            "device": current_device().type, "processes": world_size()}  # fmt: skip


# ----------------------------------------------------------------------------- tokenizer
def tokenizer_wiki(out_dir: Path | None = None, vocab_size: int = VOCAB_SIZE) -> dict:
    """Byte-level BPE with ``vocab_size`` ids, trained on the Wikipedia training documents."""
    _setup()
    out_dir = Path(out_dir or checkpoint_dir("tokenizer-wiki"))
    train_docs, val_docs = wiki_split()
    start = time.perf_counter()
    tok = BPETokenizer.train(list(train_docs), vocab_size)
    train_s = time.perf_counter() - start
    val_text = "\n\n".join(val_docs)
    val_ids = tok.encode(val_text)
    metrics = {
        "vocab_size": tok.vocab_size,
        "val_bytes_per_token": len(val_text.encode("utf-8")) / len(val_ids),
        "val_chars_per_token": len(val_text) / len(val_ids),
        "val_tokens": len(val_ids),
        "train_tokens": sum(len(tok.encode(d)) for d in train_docs),
        "train_s": round(train_s, 2),
        "command": "python -m lmbook.recipes tokenizer-wiki",
        "data": f"wikipedia train split ({len(train_docs)} documents); compression measured on the "
                f"val split ({len(val_docs)} documents)",
        "environment": _environment(),
    }  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save(out_dir / "tokenizer.json")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


# ----------------------------------------------------------------------------- encoder (BERT)
def _encoder(name: str, use_nsp: bool, out_dir: Path | None, steps: int, batch_size: int, lr: float,
             mlm_probability: float) -> dict:  # fmt: skip
    _setup()
    out_dir = Path(out_dir or checkpoint_dir(name))
    tok = load_pretrained("tokenizer-wiki")
    docs = P.tokenize_documents(tok, wiki_split()[0])
    short = P.nsp_examples(docs, 60_000, max_len=128, seed=1)  # phase 1: sequences up to 128 tokens
    long = P.nsp_examples(docs, 2_000, max_len=256, seed=2)  # phase 2 (last 10 %): up to 256, as BERT did
    phase2 = int(0.9 * steps)

    kw = {"vocab_size": tok.vocab_size, "seed": 1_000, "mlm_probability": mlm_probability}
    short_batch = P.mlm_batches(short, batch_size=batch_size, **kw)
    long_batch = P.mlm_batches(long, batch_size=batch_size // 2, **kw)

    def batch(step: int) -> dict:
        return short_batch(step) if step < phase2 else long_batch(step)

    model = init_from_decoder(Encoder(ENCODER_CONFIG), load_pretrained("decoder"))
    loss_fn = P.mlm_nsp_loss if use_nsp else P.mlm_loss
    history = train(model, batch, loss_fn, steps=steps, lr=lr, warmup_steps=steps // 20, seed=0, log_every=10)
    start = time.perf_counter()
    eval_batches = encoder_eval_batches(tok)
    metrics = {
        "mlm_accuracy": P.mlm_accuracy(model, eval_batches),
        "unigram_mlm_accuracy": P.unigram_mlm_baseline(train_token_ids(tok), eval_batches),
        "nsp_accuracy": P.nsp_accuracy(model, eval_batches),
        "nsp_chance": 0.5,
        "final_train_loss": history.train_loss[-1],
        "train_s": round(history.elapsed_s, 1),
        "ms_per_step": round(history.ms_per_step, 1),
        "eval_s": round(time.perf_counter() - start, 1),
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "mlm_probability_train": mlm_probability,
        "mlm_probability_eval": 0.15,
        "objective": "MLM + NSP" if use_nsp else "MLM only",
        "init": "warm start from the decoder checkpoint (init_from_decoder)",
        "parameters": count_parameters(model),
        "command": f"python -m lmbook.recipes {name}",
        "eval_data": "lmbook.pretraining_data.encoder_eval_batches(tokenizer): 512 pairs of the wikipedia "
                     "val split, max_len 128, seed 1234, masks seed 0",
        "environment": _environment(),
    }  # fmt: skip
    if not use_nsp:
        metrics["nsp_note"] = "NSP head never trained: its accuracy is chance"
    extra = {"tokenizer": "tokenizer-wiki", "config": dataclasses.asdict(ENCODER_CONFIG),
             "history": history.to_dict()}  # fmt: skip
    save_checkpoint(model, out_dir, metrics=metrics, extra=extra)
    return metrics


def encoder(out_dir: Path | None = None, steps: int = 3000, batch_size: int = 16, lr: float = 1e-3,
            mlm_probability: float = 0.4) -> dict:  # fmt: skip
    """BERT-style encoder pretrained with MLM + NSP on Wikipedia (book: sec-pretraining-live).

    What worked on one CPU core (about 25 min): a warm start from the shipped decoder
    (``init_from_decoder``), dropout 0.1, 3000 steps of 16 sequences, peak lr 1e-3. It masks
    40 % of the tokens in training, not BERT's 15 %: more targets per batch make each step
    worth more (Wettig et al. 2023 found 40 % at least as good); it is evaluated with the standard
    15 %. With 400 steps and no dropout the masked-word accuracy was 6.3 % (unigram guess 3.1 %).
    Warm-started from the earlier decoder (random position rows, perplexity 95.4): 13.1 % masked
    words (MLM only: 13.5 %), NSP 69.5 %, every head spread almost evenly (best previous-token
    weight 0.03), QA fine-tuned from it EM 31.5 / F1 45.3. From the decoder whose positions start
    sinusoidal (``decoder``): 19.6 % (MLM only: 22.2 %), NSP 60.0 %, a neighbour head in layer 0
    (0.40 of its weight on the previous token, 0.35 on the next), QA EM 78.3 / F1 83.8. With the
    same matrices split into 8 heads of 16 dims instead of 4 of 32 (``ENCODER_CONFIG``), layer 0
    grew two heads where it had one neighbour head: one on the previous token (0.74; MLM only
    0.93) and one on the next (0.75); masked words 23.9 % (MLM only 27.6 %), NSP 63.1 %.
    """
    return _encoder("encoder", True, out_dir, steps, batch_size, lr, mlm_probability)


def encoder_mlm_only(out_dir: Path | None = None, steps: int = 3000, batch_size: int = 16, lr: float = 1e-3,
                     mlm_probability: float = 0.4) -> dict:  # fmt: skip
    """Same encoder, data and steps, trained with MLM only: the NSP ablation.

    (book: sec-pretraining-nsp-ablation; RoBERTa's finding)
    """
    return _encoder("encoder-mlm-only", False, out_dir, steps, batch_size, lr, mlm_probability)


# ----------------------------------------------------------------------------- decoder (GPT)
WEIGHT_DECAY = 0.1  # AdamW's weight decay on the decoder's matrices (train's default is 0.01)
POSITION_INIT_SCALE = 0.05  # the learned positions start as 0.05 x the sinusoidal table (0: random rows)

def decoder(out_dir: Path | None = None, steps: int = 8000, batch_size: int = 16, lr: float = 2e-3,
            weight_decay: float = WEIGHT_DECAY, position_init_scale: float = POSITION_INIT_SCALE,
            eval_every: int = 250) -> dict:  # fmt: skip
    """GPT-style decoder trained on random 128-token windows of the Wikipedia training split.

    What worked on one CPU core (about 40 min): dropout 0.1, AdamW weight decay 0.1, peak lr 2e-3
    with 5 % warm-up and a cosine to 10 %, batch 16 x 128 tokens, 8000 steps (about 24 passes over
    the training split), and the learned positions started from 0.05 x the sinusoidal table
    (``LearnedPositionalEncoding.init_sinusoidal``). Measured on the fixed held-out tokens:
    300 steps, no dropout: perplexity 343; 8000 steps with dropout 0.1, weight decay 0.01 and
    random N(0, 0.02) positions: 95.4 (its best head put 0.26 of its weight on the previous
    token); the same with weight decay 0.1 and sinusoidal positions: 88.4 (best previous-token
    head 0.49); with dropout 0.2 instead it was 16 points worse at step 5000 (113.5 vs 97.4). A
    larger position scale, 0.2, learned a previous-token head sooner (0.58 vs 0.44 at step 5000)
    and ended ahead: perplexity 86.5, previous-token head 0.67 (``position_init_scale=0.2``; not
    yet the default, because the encoders, classifier and QA checkpoints start from this decoder).

    The validation perplexity is logged every ``eval_every`` steps against the number of training
    tokens seen; (book: sec-background-four-generations) plots it.
    """
    _setup()
    out_dir = Path(out_dir or checkpoint_dir("decoder"))
    tok = load_pretrained("tokenizer-wiki")
    train_ids = train_token_ids(tok)
    val = decoder_eval_tokens(tok)
    batches = P.lm_batches(train_ids, batch_size=batch_size, context=DECODER_CONFIG.max_len, seed=0)
    model = Decoder(DECODER_CONFIG)
    if position_init_scale:
        model.pos_emb.init_sinusoidal(position_init_scale)
    history = train(model, batches, P.lm_loss, steps=steps, lr=lr, weight_decay=weight_decay,
                    warmup_steps=steps // 20, seed=0, log_every=10,
                    eval_fn=lambda m: P.model_perplexity(m, val), eval_every=eval_every)  # fmt: skip
    settings = {"steps": steps, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
                "position_init_scale": position_init_scale}  # fmt: skip
    return save_decoder(model, history.to_dict(), out_dir, settings)


def save_decoder(model: Decoder, history: dict, out_dir: Path, settings: dict) -> dict:
    """Measure the trained decoder and write its checkpoint (the second half of :func:`decoder`)."""
    tok = load_pretrained("tokenizer-wiki")
    train_ids = train_token_ids(tok)
    val = decoder_eval_tokens(tok)
    start = time.perf_counter()
    prompt = torch.tensor([BOS_ID, *tok.encode("The history of")])
    sample = generate(model, prompt, 40, top_k=20, generator=torch.Generator().manual_seed(0))
    tokens_per_step = settings["batch_size"] * DECODER_CONFIG.max_len
    metrics = {
        "val_perplexity": P.model_perplexity(model, val),
        "unigram_perplexity": P.unigram_perplexity(train_ids, val[1:], tok.vocab_size),
        "uniform_perplexity": tok.vocab_size,
        "final_train_loss": history["train_loss"][-1],
        "val_curve": {"tokens_seen": [s * tokens_per_step for s in history["eval_steps"]],
                      "val_perplexity": history["eval_metrics"]["eval"]},
        "sample": tok.decode(sample[1:]),
        "train_s": round(history["elapsed_s"], 1),
        "ms_per_step": round(history["ms_per_step"], 1),
        "eval_s": round(time.perf_counter() - start, 1),
        **settings,
        "dropout": DECODER_CONFIG.dropout,
        "train_tokens_seen": settings["steps"] * tokens_per_step,
        "parameters": count_parameters(model),
        "command": "python -m lmbook.recipes decoder",
        "eval_data": "lmbook.pretraining_data.decoder_eval_tokens(tokenizer): first 16,385 ids of the wikipedia "
                     "val split, 128 non-overlapping windows of 128",
        "environment": _environment(),
    }  # fmt: skip
    extra = {"tokenizer": "tokenizer-wiki", "history": history}
    save_checkpoint(model, out_dir, metrics=metrics, extra=extra)
    return metrics
