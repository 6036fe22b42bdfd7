"""lmbook attention vs PyTorch's fused SDPA vs a naive version (Chapter 3).

Batch 12, 4 heads, head dim 32, sequence 64 and 256; forward and forward+backward.
The three are timed round-robin in one run (this machine is shared and noisy), and
the medians are reported as ratios to SDPA. Targets: without weights lmbook is within
1.1x of SDPA (it calls it); with weights it is no slower than the naive version.

    python benchmarks/attention.py [--threads N] [--repeats R]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F

from lmbook.attention import scaled_dot_product_attention


def naive(q, k, v):
    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    return w @ v


CANDIDATES = {
    "torch SDPA": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
    "lmbook (no weights)": lambda q, k, v: scaled_dot_product_attention(q, k, v, causal=True, need_weights=False)[0],
    "lmbook (weights)": lambda q, k, v: scaled_dot_product_attention(q, k, v, causal=True)[0],
    "naive": lambda q, k, v: naive_causal(q, k, v),
}


def naive_causal(q, k, v):
    T = q.shape[-2]
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(s, -1) @ v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats} interleaved runs")
    for T in (64, 256):
        for backward in (False, True):
            q, k, v = (torch.randn(12, 4, T, 32, requires_grad=backward) for _ in range(3))
            times = {name: [] for name in CANDIDATES}
            for _ in range(3):  # warm-up
                for fn in CANDIDATES.values():
                    fn(q, k, v)
            for _ in range(args.repeats):
                for name, fn in CANDIDATES.items():  # round-robin
                    t0 = time.perf_counter()
                    out = fn(q, k, v)
                    if backward:
                        out.sum().backward()
                    times[name].append(time.perf_counter() - t0)
            med = {name: statistics.median(ts) * 1e3 for name, ts in times.items()}
            base = med["torch SDPA"]
            label = "fwd+bwd" if backward else "forward"
            print(f"\nT={T:4d} {label}")
            for name, ms in med.items():
                print(f"  {name:22s} {ms:8.3f} ms   {ms / base:5.2f}x SDPA")
            print(f"  lmbook(no weights)/SDPA = {med['lmbook (no weights)'] / base:.2f} (target <= 1.1); "
                  f"lmbook(weights)/naive = {med['lmbook (weights)'] / med['naive']:.2f} (target <= 1.0)")


if __name__ == "__main__":
    main()
