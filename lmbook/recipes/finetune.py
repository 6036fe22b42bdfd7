"""Chapter 5 recipes: the fine-tuned checkpoints shipped in ``lmbook/checkpoints/``.

    python -m lmbook.recipes translator   # Transformer English -> Mirror, from scratch   (~5 min, 1 core)
    python -m lmbook.recipes classifier   # BBC News topics from the pretrained encoder   (~6 min)
    python -m lmbook.recipes qa           # extractive QA (SpanQA) from the pretrained encoder (~6 min)

Each recipe is deterministic (seeded, one thread), trains, evaluates on held-out data against
a trivial baseline, and writes ``model.safetensors`` + ``config.json`` (with the metrics) via
``lmbook.training.save_checkpoint``. The ``*_eval_*`` helpers rebuild the fixed evaluation data,
so that ``tests/test_checkpoints_finetune.py`` can check the shipped numbers.
"""

from __future__ import annotations

import random
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

import torch

from lmbook.finetuning import (
    WordVocab,
    corpus_bleu,
    sequence_exact_match,
    translate,
    translation_batch,
)
from lmbook.models import Transformer, TransformerConfig
from lmbook.training import count_parameters, save_checkpoint, train

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
ARTICLES = {"the", "a", "an"}


def _setup(seed: int) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    random.seed(seed)


def _command(name: str) -> str:
    return f"python -m lmbook.recipes {name}" + (" " + shlex.join(sys.argv[2:]) if len(sys.argv) > 2 else "")


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


# ----------------------------------------------------------------------------- translation
def translation_split(n_test: int = 400, seed: int = 0):
    """(train, test) lists of ``TranslationPair``: a fixed shuffle of all pairs, the first ``n_test`` held out."""
    from lmbook.qa_data import load_translation_pairs

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
    from lmbook.training import load_checkpoint

    path = Path(path or CHECKPOINTS / "translator")
    return load_checkpoint(path), WordVocab.load(path / "source_vocab.json"), WordVocab.load(path / "target_vocab.json")


def translator_eval(model, src_vocab, tgt_vocab, pairs, beam_size: int = 1) -> dict[str, float]:
    """BLEU (0-100) and exact match (%) of ``translate`` on ``pairs``."""
    hyps = translate(model, [p.source for p in pairs], src_vocab, tgt_vocab, beam_size=beam_size)
    refs = [p.target for p in pairs]
    return {"bleu": 100 * corpus_bleu(hyps, refs), "exact_match": 100 * sequence_exact_match(hyps, refs)}


def translator(out_dir: str | Path | None = None, *, steps: int = 2400, batch_size: int = 64, d_model: int = 64,
               layers: int = 2, min_count: int = 2, lr: float = 1e-3, beam_size: int = 4, n_beam_eval: int = 100,
               seed: int = 0) -> dict:  # fmt: skip
    """Train the English -> Mirror encoder-decoder from scratch and save it with its vocabularies."""
    _setup(seed)
    out_dir = Path(out_dir or CHECKPOINTS / "translator")
    train_pairs, test_pairs = translation_split(seed=seed)
    src_vocab = WordVocab.build([p.source for p in train_pairs], min_count)
    tgt_vocab = WordVocab.build([p.target for p in train_pairs], min_count)
    config = TransformerConfig(src_vocab_size=len(src_vocab), tgt_vocab_size=len(tgt_vocab), max_len=64,
                               n_encoder_layers=layers, n_decoder_layers=layers, n_heads=4, d_model=d_model,
                               d_ff=4 * d_model, dropout=0.1)  # fmt: skip
    model = Transformer(config)
    items = [(p.source, p.target) for p in train_pairs]
    batches = _sampler(items, batch_size, lambda b: translation_batch(b, src_vocab, tgt_vocab), seed)
    history = train(model, batches, lambda m, b: m(b["src"], b["tgt_in"], b["targets"]).loss, steps=steps, lr=lr,
                    warmup_steps=steps // 20, seed=seed, progress=False, log_every=50)  # fmt: skip
    model.eval()
    start = time.perf_counter()
    greedy = translator_eval(model, src_vocab, tgt_vocab, test_pairs)
    subset = test_pairs[:n_beam_eval]
    greedy_sub = translator_eval(model, src_vocab, tgt_vocab, subset)
    beam_sub = translator_eval(model, src_vocab, tgt_vocab, subset, beam_size)
    refs = [p.target for p in test_pairs]
    copy = [p.source for p in test_pairs]
    word = dictionary_baseline(train_pairs, [p.source for p in test_pairs])
    known = [p for p in test_pairs if all(w in tgt_vocab.stoi for w in p.target.split())]
    metrics = {
        "test_bleu_greedy": greedy["bleu"], "test_exact_match_greedy": greedy["exact_match"],
        f"test{n_beam_eval}_bleu_greedy": greedy_sub["bleu"],
        f"test{n_beam_eval}_exact_match_greedy": greedy_sub["exact_match"],
        f"test{n_beam_eval}_bleu_beam{beam_size}": beam_sub["bleu"],
        f"test{n_beam_eval}_exact_match_beam{beam_size}": beam_sub["exact_match"],
        "baseline_copy_bleu": 100 * corpus_bleu(copy, refs),
        "baseline_dictionary_bleu": 100 * corpus_bleu(word, refs),
        "baseline_dictionary_exact_match": 100 * sequence_exact_match(word, refs),
        "test_in_vocab_sentences": len(known),
        "test_in_vocab_exact_match_greedy": translator_eval(model, src_vocab, tgt_vocab, known)["exact_match"],
        "test_target_oov_rate": 100 * sum(w not in tgt_vocab.stoi for r in refs for w in r.split())
        / sum(len(r.split()) for r in refs),
        "final_train_loss": history.train_loss[-1], "train_seconds": history.elapsed_s,
        "eval_seconds": time.perf_counter() - start, "steps": steps, "parameters": count_parameters(model),
    }  # fmt: skip
    extra = {"command": _command("translator"), "data": f"lmbook.qa_data.load_translation_pairs(): "
             f"{len(train_pairs)} train / {len(test_pairs)} test pairs (translation_split(seed={seed}))",
             "recipe": dict(steps=steps, batch_size=batch_size, d_model=d_model, layers=layers, min_count=min_count,
                            lr=lr, beam_size=beam_size, n_beam_eval=n_beam_eval, seed=seed),
             "history": {"steps": history.steps, "train_loss": history.train_loss}}  # fmt: skip
    save_checkpoint(model, out_dir, metrics=metrics, extra=extra)
    src_vocab.save(out_dir / "source_vocab.json")
    tgt_vocab.save(out_dir / "target_vocab.json")
    return metrics


