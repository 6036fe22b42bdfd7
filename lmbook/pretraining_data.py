"""What the pretraining checkpoints (book: sec-pretraining) were trained and measured on, in one place.

The shipped ``tokenizer-wiki``, ``encoder``, ``encoder-mlm-only`` and ``decoder`` all learn from
the Wikipedia corpus (``lmbook.data.load_corpus("wikipedia")``), split 90/10 by ``wiki_split``.
Their sizes are ``ENCODER_CONFIG`` and ``DECODER_CONFIG``; their fixed evaluation sets are
``decoder_eval_tokens`` and ``encoder_eval_batches``; the encoders start from the decoder through
``init_from_decoder``. The recipes (``lmbook.recipes.pretrain``), the drift tests
(``tests/test_checkpoints_pretrain.py``) and the notebooks all use these, so the numbers they
report are measured the same way.
"""

from __future__ import annotations

import functools

import torch

from lmbook import pretraining as P
from lmbook.data import load_corpus, load_documents, train_val_split
from lmbook.models import Decoder, DecoderConfig, Encoder, EncoderConfig

__all__ = ["DECODER_CONFIG", "ENCODER_CONFIG", "VOCAB_SIZE", "decoder_eval_tokens", "encoder_eval_batches",
           "init_from_decoder", "train_token_ids", "wiki_split"]  # fmt: skip

VOCAB_SIZE = 3000
# Pre-LN (norm_first) like the decoder it starts from (init_from_decoder); dropout 0.1 as in BERT.
# 8 heads of 16 dims where the decoder has 4 of 32 (the same matrices, split finer): with 4 heads
# the encoder merged "previous token" and "next token" into one neighbour head; with 8 it has room for both.
ENCODER_CONFIG = EncoderConfig(vocab_size=VOCAB_SIZE, max_len=256, n_layers=4, n_heads=8, d_model=128, d_ff=512,
                               dropout=0.1, norm_first=True)  # fmt: skip
# Dropout 0.1: the decoder sees its 0.8 M training tokens about 20 times and overfits without it.
DECODER_CONFIG = DecoderConfig(vocab_size=VOCAB_SIZE, max_len=128, n_layers=4, n_heads=4, d_model=128, dropout=0.1)


@functools.cache
def wiki_split() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Wikipedia documents split as ``train_val_split(load_corpus("wikipedia"), 0.1)``: (train docs, val docs)."""
    docs = load_documents("wikipedia")
    train_text, _ = train_val_split(load_corpus("wikipedia"), 0.1)
    n_train = train_text.count("\n\n") + 1
    return docs[:n_train], docs[n_train:]


def train_token_ids(tokenizer) -> torch.Tensor:
    """The Wikipedia training split as one stream of ids, documents joined by ``<eos>``."""
    ids: list[int] = []
    for doc in wiki_split()[0]:
        ids += tokenizer.encode(doc) + [tokenizer.eos_id]
    return torch.tensor(ids)


def decoder_eval_tokens(tokenizer, n_windows: int = 128) -> torch.Tensor:
    """The fixed validation slice for the decoder: the first ``n_windows * 128 + 1`` ids of the val split."""
    ids: list[int] = []
    for doc in wiki_split()[1]:
        ids += tokenizer.encode(doc) + [tokenizer.eos_id]
    n = n_windows * DECODER_CONFIG.max_len + 1
    if len(ids) < n:
        raise ValueError(f"the validation split has {len(ids)} tokens, fewer than the {n} asked for")
    return torch.tensor(ids[:n])


def encoder_eval_batches(tokenizer, n: int = 512, batch_size: int = 64) -> list[dict]:
    """The fixed MLM + NSP evaluation set: ``n`` pairs from the val documents, masks seeded (seed 0)."""
    docs = P.tokenize_documents(tokenizer, wiki_split()[1])
    examples = P.nsp_examples(docs, n, max_len=128, seed=1234)
    g = torch.Generator().manual_seed(0)
    return [P.collate_mlm(examples[i:i + batch_size], vocab_size=tokenizer.vocab_size, generator=g)
            for i in range(0, n, batch_size)]  # fmt: skip


@torch.no_grad()
def init_from_decoder(encoder: Encoder, decoder: Decoder) -> Encoder:
    """Warm start: copy the trained decoder's embeddings and blocks into an encoder of the same sizes.

    Trained from random weights for a few hundred steps, a 4-layer MLM encoder stays on the
    unigram plateau (it predicts frequent tokens and ignores the context); starting from the
    decoder, whose attention already reads the context, it leaves it at once. Both models are
    pre-LN; the decoder's ``norm3`` (its feed-forward norm) is the encoder's ``norm2``, its
    ``ln_f`` the encoder's ``final_norm``. Positions beyond the decoder's context, the segment
    embeddings and the heads keep their random initial values; the embedding LayerNorm's gain
    is set to the decoder embeddings' scale so that the blocks see inputs of the size they know.
    The encoder may split the same width into more heads (``ENCODER_CONFIG`` has 8 where the
    decoder has 4): the matrices copy unchanged, each decoder head becoming two narrower ones.
    """
    e, d = encoder.state_dict(), decoder.state_dict()
    copy = {"tok_emb.embedding.weight": "tok_emb.embedding.weight", "final_norm.weight": "ln_f.weight",
            "final_norm.bias": "ln_f.bias"}  # fmt: skip
    for name in e:
        if name.startswith("layers."):
            copy[name] = "blocks." + name.removeprefix("layers.").replace("norm2", "norm3")
    for mine, theirs in copy.items():
        e[mine].copy_(d[theirs])
    n = decoder.config.max_len
    e["pos_emb.embedding.weight"][:n] = d["pos_emb.embedding.weight"]
    emb = d["tok_emb.embedding.weight"][:, None] + d["pos_emb.embedding.weight"][None]  # (V, n, dim)
    e["emb_norm.weight"].fill_(emb.std().item())
    return encoder
