"""How fast is lmbook's Decoder next to the same model built from torch.nn? (Chapter 4, CPU budget)

1. Median milliseconds per training step (AdamW: forward + backward + step) on nanoGPT's
   CPU config (4 layers, 4 heads, width 128, context 64, batch 12, dropout 0, vocab 65),
   against two references with the same sizes: a pre-LN causal stack of
   ``torch.nn.TransformerEncoderLayer``, and a nanoGPT-style GPT written directly on
   ``F.scaled_dot_product_attention(is_causal=True)`` with one fused QKV projection (the
   fastest plain-PyTorch way to write it). The models alternate step by step (round robin),
   so background load hits all alike; the goal is lmbook / fused GPT <= 1.0.
2. Tokens per second of greedy generation, 256 new tokens, with and without the KV cache.

Run:  python benchmarks/train_speed.py [--steps 30]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from lmbook.generation import generate
from lmbook.models import Decoder, DecoderConfig

CFG = DecoderConfig(vocab_size=65, max_len=64, n_layers=4, n_heads=4, d_model=128, dropout=0.0)
BATCH = 12


class TorchDecoder(nn.Module):
    """The same GPT, from torch.nn.TransformerEncoderLayer (norm_first=True) with a causal mask."""

    def __init__(self, c: DecoderConfig) -> None:
        super().__init__()
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        self.pos_emb = nn.Embedding(c.max_len, c.d_model)
        layer = nn.TransformerEncoderLayer(c.d_model, c.n_heads, 4 * c.d_model, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, c.n_layers, enable_nested_tensor=False)
        self.ln_f = nn.LayerNorm(c.d_model)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(T)
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(T))  # (B, T, d)
        x = self.blocks(x, mask=mask, is_causal=True)
        logits = self.lm_head(self.ln_f(x))  # (B, T, vocab)
        return nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())


class FusedBlock(nn.Module):
    """A pre-LN block with one (d, 3d) QKV projection and fused causal attention, as nanoGPT writes it."""

    def __init__(self, c: DecoderConfig) -> None:
        super().__init__()
        self.n_heads = c.n_heads
        self.ln1, self.ln2 = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model)
        self.proj = nn.Linear(c.d_model, c.d_model)
        self.mlp = nn.Sequential(nn.Linear(c.d_model, 4 * c.d_model), nn.GELU(), nn.Linear(4 * c.d_model, c.d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)  # 3 x (B, T, C)
        q, k, v = (t.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp(self.ln2(x))


class FusedGPT(nn.Module):
    """nanoGPT's model shape: embeddings, fused-QKV blocks, final LayerNorm, tied head."""

    def __init__(self, c: DecoderConfig) -> None:
        super().__init__()
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        self.pos_emb = nn.Embedding(c.max_len, c.d_model)
        self.blocks = nn.ModuleList(FusedBlock(c) for _ in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(idx.shape[1]))  # (B, T, d)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))  # (B, T, vocab)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def train_step_times(threads: int, steps: int, warmup: int = 5) -> dict[str, float]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    ours, ref, fused = Decoder(CFG), TorchDecoder(CFG), FusedGPT(CFG)
    losses = {"lmbook": lambda x, y: ours(x, y).loss, "torch.nn": ref, "fused GPT": fused}
    opts = {"lmbook": torch.optim.AdamW(ours.parameters(), lr=1e-3),
            "torch.nn": torch.optim.AdamW(ref.parameters(), lr=1e-3),
            "fused GPT": torch.optim.AdamW(fused.parameters(), lr=1e-3)}
    times: dict[str, list[float]] = {k: [] for k in losses}
    for i in range(warmup + steps):
        x = torch.randint(0, CFG.vocab_size, (BATCH, CFG.max_len))
        y = torch.randint(0, CFG.vocab_size, (BATCH, CFG.max_len))
        for name, loss_fn in losses.items():  # round robin
            t0 = time.perf_counter()
            loss = loss_fn(x, y)
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            opts[name].step()
            if i >= warmup:
                times[name].append((time.perf_counter() - t0) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def generation_speed(new_tokens: int = 256, prompt_len: int = 16) -> dict[str, float]:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = dataclasses.replace(CFG, max_len=prompt_len + new_tokens)  # room for the whole output
    model = Decoder(cfg).eval()
    prompt = torch.randint(0, cfg.vocab_size, (1, prompt_len))
    out = {}
    for use_cache in (True, False):
        generate(model, prompt, 8, greedy=True, use_cache=use_cache)  # warm-up
        t0 = time.perf_counter()
        ids = generate(model, prompt, new_tokens, greedy=True, use_cache=use_cache)
        out["with cache" if use_cache else "without cache"] = new_tokens / (time.perf_counter() - t0)
        out.setdefault("ids", ids)
        assert torch.equal(out["ids"], ids), "cached and uncached greedy decoding disagree"
    del out["ids"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="measured training steps per model and thread count")
    args = parser.parse_args()
    print(f"training step, batch {BATCH} x context {CFG.max_len}, {CFG.n_layers} layers x {CFG.d_model} wide "
          f"({sum(p.numel() for p in Decoder(CFG).parameters()) / 1e6:.2f}M params), median of {args.steps}:")
    for threads in (1, 2):
        t = train_step_times(threads, args.steps)
        print(f"  {threads} thread(s): lmbook {t['lmbook']:.1f} ms   torch.nn {t['torch.nn']:.1f} ms   "
              f"fused GPT {t['fused GPT']:.1f} ms   ratio lmbook/torch.nn {t['lmbook'] / t['torch.nn']:.2f}   "
              f"lmbook/fused GPT {t['lmbook'] / t['fused GPT']:.2f} (goal <= 1.0)")
    g = generation_speed()
    print(f"greedy generation, 256 new tokens, 1 thread: with KV cache {g['with cache']:.0f} tok/s, "
          f"without {g['without cache']:.0f} tok/s, speed-up {g['with cache'] / g['without cache']:.1f}x")


if __name__ == "__main__":
    main()
