"""Chapter 5 recipe: the English -> Spanish translator shipped in ``lmbook/checkpoints/translator/``.

    python -m lmbook.recipes translator                # ~27 min of training on one CPU core
    python -m lmbook.recipes translator --out /tmp/t   # same, written elsewhere

Data: the Bible verses of :mod:`lmbook.corpora.bible` (World English Bible -> Reina-Valera 1909), split
by book; training uses the train verses whose English and Spanish sides both fit in ``max_tokens`` BPE
tokens (90 % of them at 56). One byte-level BPE (``lmbook.tokenizers.BPETokenizer``) of ``vocab_size``
ids is trained on the English and Spanish training text together and saved beside the weights as
``tokenizer.json``. The model is ``lmbook.models.Transformer`` (pre-norm, tied output embedding),
trained from scratch with ``lmbook.training.train`` on length-bucketed batches.

Measured and recorded in ``config.json``: sacrebleu BLEU and chrF on the whole test split (416 verses
from six books never seen in training) for greedy and beam search, the word-by-word dictionary baseline
(``lmbook.corpora.bible.dictionary_baseline``), and the alignment error rate of the cross-attention
against the Strong's gold (``lmbook.finetuning.alignment_eval``) for every decoder layer and both query
positions (``shift``), the layer and shift being chosen on the validation split.

What worked (CPU, one thread, this corpus):

* Size. d_model 128, 3 + 3 pre-norm layers, 4 heads, d_ff 512 and one joint 4,000-id BPE: 2.42 M
  parameters, about 0.45 s per step of 64 length-bucketed verses on one core, 3,500 steps (~8 passes over
  the 27,258 training verses of <= 56 tokens) in 26 minutes. 1,500 steps gave test BLEU 8.9 greedy /
  10.5 beam (chrF below the dictionary's); 3,500 give 16.3 / 17.5 (chrF 36.8 / 38.1, dictionary
  7.3 / 32.6): the model was far from converged, and more steps are the cheapest gain. With one joint vocabulary
  a name both sides share (*Moab*) is the same ids in the source and the target.
* Storage. Weights are saved as float16 (4.8 MB instead of 9.7 MB; the shipped checkpoints share a
  30 MB budget); every metric is measured after rounding the weights to float16, so a reload
  reproduces them exactly.
* Length. 56 BPE tokens per side keeps 90 % of the training verses (the longest verses cost the most
  per step); decoding allows up to twice the source length + 8 tokens.
* Regularisation. Label smoothing 0.1 and dropout 0.1; lr 2e-3 with 100 warm-up steps and a cosine
  decay (``lmbook.training.train``).
* Alignment. Which decoder layer's cross-attention aligns best, and whether the row of the query
  that *predicts* a token (``shift=1``) or the one that *reads* it (``shift=0``) is used, is chosen
  on the validation books; ``config.json`` records every combination.

The shipped run's numbers are in ``config.json`` (``metrics``), with five sample translations.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lmbook.checkpointing import checkpoint_dir, save_checkpoint
from lmbook.corpora.bible import dictionary_baseline, load_bible_pairs
from lmbook.finetuning.translation import (
    alignment_eval,
    train_translation_tokenizer,
    translation_batch,
    translation_pairs,
    translator_eval,
)
from lmbook.models import Transformer, TransformerConfig
from lmbook.recipes import _setup
from lmbook.recipes.finetune import _bucketed_sampler, _command
from lmbook.training import count_parameters, train

__all__ = ["translator"]


def translator(out_dir: str | Path | None = None, *, steps: int = 3500, batch_size: int = 64, vocab_size: int = 4000,
               max_tokens: int = 56, d_model: int = 128, layers: int = 3, n_heads: int = 4, dropout: float = 0.1,
               label_smoothing: float = 0.1, lr: float = 2e-3, warmup_steps: int = 100, beam_size: int = 4,
               seed: int = 0) -> dict:  # fmt: skip
    """Train the English -> Spanish encoder-decoder from scratch on Bible verses; save weights, tokenizer, metrics."""
    import sacrebleu

    _setup(seed)
    out_dir = Path(out_dir or checkpoint_dir("translator"))
    train_verses, val_verses, test_verses = (load_bible_pairs(s) for s in ("train", "val", "test"))
    start = time.perf_counter()
    tokenizer = train_translation_tokenizer(train_verses, vocab_size)
    tokenizer_seconds = time.perf_counter() - start
    pairs = translation_pairs(train_verses, tokenizer, max_tokens)
    config = TransformerConfig(src_vocab_size=tokenizer.vocab_size, tgt_vocab_size=tokenizer.vocab_size,
                               max_len=2 * max_tokens + 8, n_encoder_layers=layers, n_decoder_layers=layers,
                               n_heads=n_heads, d_model=d_model, d_ff=4 * d_model, dropout=dropout,
                               norm_first=True)  # fmt: skip
    model = Transformer(config)

    def loss_fn(m, b):
        logits = m(b["src"], b["tgt_in"]).logits  # (B, T, V)
        targets = b["targets"].masked_fill(b["targets"] == config.pad_id, -100)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100,
                               label_smoothing=label_smoothing)  # fmt: skip

    batches = _bucketed_sampler(pairs, batch_size, translation_batch, seed, lambda p: max(len(p[0]), len(p[1])))
    history = train(model, batches, loss_fn, steps=steps, lr=lr, warmup_steps=warmup_steps, seed=seed,
                    progress=False, log_every=50)  # fmt: skip
    # the checkpoint stores float16 weights (half the size; the book's checkpoints share a 30 MB budget), so
    # every number below is measured with the weights rounded to float16, exactly as a reload gives them
    model = model.half().float().eval()

    start = time.perf_counter()
    greedy = translator_eval(model, tokenizer, test_verses)
    greedy_seconds = time.perf_counter() - start
    start = time.perf_counter()
    beam = translator_eval(model, tokenizer, test_verses, beam_size=beam_size)
    beam_seconds = time.perf_counter() - start
    refs = [[v.es for v in test_verses]]
    base = dictionary_baseline(train_verses, [v.en for v in test_verses])
    # alignment: every decoder layer, both query positions, chosen on val; reported on test
    choices = {(layer, shift): alignment_eval(model, tokenizer, val_verses, layer=layer, shift=shift)["aer"]
               for layer in range(layers) for shift in (0, 1)}  # fmt: skip
    best_layer, best_shift = min(choices, key=choices.get)
    aer_best = alignment_eval(model, tokenizer, test_verses, layer=best_layer, shift=best_shift)
    aer_last = alignment_eval(model, tokenizer, test_verses, layer=layers - 1, shift=best_shift)
    aer_all = alignment_eval(model, tokenizer, test_verses, layer=best_layer, shift=best_shift, tagged_only=False)
    metrics = {
        "test_bleu_greedy": greedy["bleu"], "test_chrf_greedy": greedy["chrf"],
        f"test_bleu_beam{beam_size}": beam["bleu"], f"test_chrf_beam{beam_size}": beam["chrf"],
        "baseline_dictionary_bleu": sacrebleu.corpus_bleu(base, refs).score,
        "baseline_dictionary_chrf": sacrebleu.corpus_chrf(base, refs).score,
        "test_aer": aer_best["aer"], "test_aer_precision": aer_best["precision"],
        "test_aer_recall": aer_best["recall"], "test_aer_verses": aer_best["verses"],
        "aer_layer": best_layer, "aer_shift": best_shift, "test_aer_last_layer": aer_last["aer"],
        "test_aer_all_words": aer_all["aer"],
        **{f"val_aer_layer{layer}_shift{shift}": v for (layer, shift), v in choices.items()},
        "test_verses": len(test_verses), "train_pairs": len(pairs), "train_verses": len(train_verses),
        "final_train_loss": history.train_loss[-1], "train_seconds": history.elapsed_s,
        "tokenizer_seconds": tokenizer_seconds, "greedy_eval_seconds": greedy_seconds,
        "beam_eval_seconds": beam_seconds, "steps": steps, "parameters": count_parameters(model),
        "vocab_size": tokenizer.vocab_size, "device": "cpu", "torch_threads": torch.get_num_threads(),
    }  # fmt: skip
    extra = {"command": _command("translator"),
             "data": f"lmbook.corpora.bible.load_bible_pairs: {len(pairs)} of {len(train_verses)} train verses "
                     f"(both sides <= {max_tokens} BPE tokens), test = all {len(test_verses)} test verses",
             "recipe": dict(steps=steps, batch_size=batch_size, vocab_size=vocab_size, max_tokens=max_tokens,
                            d_model=d_model, layers=layers, n_heads=n_heads, dropout=dropout,
                            label_smoothing=label_smoothing, lr=lr, warmup_steps=warmup_steps,
                            beam_size=beam_size, seed=seed),
             "samples": [{"en": v.en, "es": v.es, "greedy": g, "beam": b}
                         for v, g, b in zip(test_verses[:5], greedy["hypotheses"], beam["hypotheses"], strict=False)],
             "history": {"steps": history.steps, "train_loss": history.train_loss}}  # fmt: skip
    save_checkpoint(model.half(), out_dir, metrics=metrics, extra=extra)  # load_checkpoint casts back to float32
    model.float()
    for stale in ("source_vocab.json", "target_vocab.json"):  # the old word-level translator's files
        (out_dir / stale).unlink(missing_ok=True)
    tokenizer.save(out_dir / "tokenizer.json")
    return metrics
