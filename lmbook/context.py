"""How far back a language model looks (book: sec-background-long-range).

The source (its Section 2.1) credits the Transformer with capturing *long-range dependencies*.
Two measurements make that visible on held-out text:

* ``loss_by_position``: cut the text into windows of ``max_len`` tokens, run the decoder on each
  window from scratch, and average the next-token loss at each position. The prediction at
  position ``t`` has seen ``t + 1`` tokens, so a model that uses distant context gets better
  further into the window. ``stream_loss_by_position`` groups any other model's per-token
  log-probabilities (an n-gram's, say) by the same positions, for comparison.
* ``attention_by_distance``: the share of each layer's attention that lands ``k`` tokens back,
  summed over distance bins.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["DISTANCE_BINS", "attention_by_distance", "loss_by_position", "stream_loss_by_position", "windows"]

DISTANCE_BINS: tuple[tuple[int, int], ...] = ((0, 0), (1, 1), (2, 3), (4, 7), (8, 15), (16, 31), (32, 63), (64, 127))
"""Inclusive ranges of "how many tokens back" (0 = the token itself), doubling in width."""


def windows(ids: Sequence[int] | Tensor, size: int) -> Tensor:
    """ids (N,) -> (N // size, size): consecutive, non-overlapping windows; a tail shorter than one is dropped."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() != 1:
        raise ValueError(f"ids must be one stream of token ids (1-D), got shape {tuple(ids.shape)}")
    if not isinstance(size, int) or size < 2:
        raise ValueError(f"size must be an int >= 2 (a window needs a token to predict), got {size!r}")
    n = len(ids) // size
    if n == 0:
        raise ValueError(f"ids has {len(ids)} tokens, fewer than one window of size={size}")
    return ids[: n * size].view(n, size)


@torch.no_grad()
def loss_by_position(decoder, ids: Sequence[int] | Tensor, *, batch_size: int = 32) -> Tensor:
    """Mean next-token loss (nats) at each window position: (max_len - 1,).

    Entry ``t`` is the loss of predicting token ``t + 1`` of a window from tokens ``0..t``, averaged
    over the windows of :func:`windows` (each run from scratch, so nothing before the window is seen).
    """
    w = windows(ids, decoder.config.max_len)  # (n, T)
    was_training = decoder.training
    decoder.eval()
    total = torch.zeros(w.shape[1] - 1, dtype=torch.float64)
    for chunk in w.split(batch_size):
        logp = F.log_softmax(decoder(chunk).logits.double(), -1)  # (b, T, V)
        total -= logp[:, :-1].gather(2, chunk[:, 1:, None])[..., 0].sum(0)  # (T-1,)
    decoder.train(was_training)
    return total / len(w)


def stream_loss_by_position(token_log_probs: Sequence[float] | Tensor, size: int) -> Tensor:
    """Another model's losses at the targets :func:`loss_by_position` scores: (size - 1,).

    ``token_log_probs[i]`` is ``log p(ids[i + 1] | ids[:i + 1])`` over the whole stream (what
    ``lmbook.baselines`` models' ``token_log_probs(ids)`` return); entry ``t`` averages the loss at
    the targets that sit at position ``t + 1`` of a window of ``size`` tokens.
    """
    lp = torch.as_tensor(token_log_probs, dtype=torch.float64)
    if lp.dim() != 1:
        raise ValueError(f"token_log_probs must be 1-D (one per predicted token), got shape {tuple(lp.shape)}")
    n = (len(lp) + 1) // size  # a stream of N ids has N - 1 log-probs and N // size windows
    if n == 0:
        raise ValueError(f"token_log_probs has {len(lp)} entries, fewer than one window of size={size}")
    padded = torch.cat([lp[: n * size - 1], lp.new_zeros(1)])  # the last target of the last window is lp[n*size-2]
    return -padded.view(n, size)[:, : size - 1].mean(0)


def attention_by_distance(attentions: Sequence[Tensor], first_query: int = 0) -> Tensor:
    """Share of attention at each distance bin, per layer: (layers, len(DISTANCE_BINS)).

    ``attentions``: one (B, heads, T, T) causal weight tensor per layer, as ``need_weights=True``
    returns. Averaged over batch, heads and the queries ``first_query..T-1`` (queries late in the
    window can reach every bin); each row sums to 1.
    """
    if not attentions:
        raise ValueError("attentions is empty: pass the per-layer weights of a forward(need_weights=True)")
    rows = []
    for i, a in enumerate(attentions):
        if a.dim() != 4 or a.shape[-1] != a.shape[-2]:
            raise ValueError(f"attentions[{i}] must be (batch, heads, T, T) self-attention, got {tuple(a.shape)}")
        T = a.shape[-1]
        if not 0 <= first_query < T:
            raise ValueError(f"first_query must be in 0..{T - 1}, got {first_query}")
        q = torch.arange(T)[:, None]
        dist = q - torch.arange(T)[None, :]  # (T, T): how far back key j is from query i
        w = a[..., first_query:, :].double().mean((0, 1))  # (T - first_query, T)
        d = dist[first_query:]
        rows.append(torch.stack([w[(d >= lo) & (d <= hi)].sum() for lo, hi in DISTANCE_BINS]) / len(w))
    return torch.stack(rows)
