"""Helpers for the architecture chapter (book: sec-architecture; source sections 2.1, 3.1, 4.2, 4.3).

* ``DeepStack``: a deep causal stack of ``lmbook.layers.EncoderLayer`` blocks whose residual
  connections and layer norms can be switched off, for the experiment of (book: sec-architecture-residual-layernorm)
  ("residual connections prevent vanishing gradients; layer normalisation speeds up
  training"), and ``STACK_VARIANTS``, the five wirings compared there; ``use_ffn=False`` removes
  the feed-forward sublayer for the ablation of (book: sec-architecture-ffn-ablation).
* ``layer_gradient_norms``: the gradient norm of each block's parameters after ``backward()``.
* ``check_sinusoidal_encoding``: the checker of the chapter's exercise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmbook.layers import EncoderLayer, SinusoidalPositionalEncoding, TokenEmbedding, sinusoidal_encoding

__all__ = ["STACK_VARIANTS", "DeepStack", "check_sinusoidal_encoding", "layer_gradient_norms"]

STACK_VARIANTS: dict[str, dict[str, bool]] = {
    "post-LN (2017)": dict(residual=True, use_layer_norm=True, norm_first=False),
    "pre-LN (GPT-2)": dict(residual=True, use_layer_norm=True, norm_first=True),
    "no residual": dict(residual=False, use_layer_norm=True, norm_first=False),
    "no layer norm": dict(residual=True, use_layer_norm=False, norm_first=False),
    "neither": dict(residual=False, use_layer_norm=False, norm_first=False),
}
"""Name -> the ``EncoderLayer`` switches of each wiring compared in (book: sec-architecture-residual-layernorm)."""


class _NoFeedForward(nn.Module):
    """Stands in for a removed feed-forward sublayer: adds nothing to the residual stream."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.zeros_like(x)


class DeepStack(nn.Module):
    """Token embedding + sinusoidal positions + ``n_layers`` causal ``EncoderLayer`` blocks + a linear head.

    A pre-LN stack gets a final LayerNorm before the head (as GPT-2 does); the others do not
    need one. Dropout is 0, so runs differ only through the wiring.

    Args:
        vocab_size, n_layers, d_model, n_heads, d_ff, max_len: sizes.
        residual, use_layer_norm, norm_first: the switches of :class:`lmbook.layers.EncoderLayer`.
        use_ffn: ``False`` removes each block's feed-forward sublayer and its LayerNorm, leaving
            attention-only blocks (the residual path of that sublayer becomes the identity).
    """

    def __init__(self, vocab_size: int, n_layers: int = 12, d_model: int = 64, n_heads: int = 4, d_ff: int = 128,
                 max_len: int = 128, *, residual: bool = True, use_layer_norm: bool = True,
                 norm_first: bool = False, use_ffn: bool = True) -> None:  # fmt: skip
        super().__init__()
        if not isinstance(use_ffn, bool):
            raise TypeError(f"use_ffn must be True or False, got {use_ffn!r}")
        if not use_ffn and not residual:
            raise ValueError("use_ffn=False needs residual=True: without the skip path a removed sublayer "
                             "would pass on zeros")
        self.emb = TokenEmbedding(vocab_size, d_model, scale=True)
        self.pos = SinusoidalPositionalEncoding(d_model, max_len)
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, n_heads, d_ff, dropout=0.0, norm_first=norm_first, residual=residual,
                         use_layer_norm=use_layer_norm)  # fmt: skip
            for _ in range(n_layers)
        )
        if not use_ffn:
            for layer in self.layers:  # x + 0 (pre-LN) or Identity(x + 0) (post-LN): the sublayer is gone
                layer.ff, layer.norm2 = _NoFeedForward(), nn.Identity()
        self.final_norm = nn.LayerNorm(d_model) if (norm_first and use_layer_norm) else nn.Identity()
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, ids: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """ids (B, T) -> (logits (B, T, V), mean cross-entropy against targets (B, T) or None)."""
        x = self.pos(self.emb(ids))  # (B, T, d)
        for layer in self.layers:
            x, _ = layer(x, causal=True)  # (B, T, d)
        logits = self.head(self.final_norm(x))  # (B, T, V)
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


def layer_gradient_norms(model: DeepStack) -> list[float]:
    """L2 norm of the gradient of each block's parameters, first block first (call after ``backward()``)."""
    norms = []
    for i, layer in enumerate(model.layers):
        grads = [p.grad.flatten() for p in layer.parameters() if p.grad is not None]
        if not grads:
            raise ValueError(f"layer {i} has no gradients; call loss.backward() first")
        norms.append(torch.cat(grads).norm().item())
    return norms


def check_sinusoidal_encoding(fn: Callable[[int, int], Tensor]) -> str:
    """Check a reader's ``fn(n_positions, d_model) -> (n_positions, d_model)`` sinusoidal table.

    (book: sec-architecture-exercises)

    Raises AssertionError saying what differs from ``lmbook.layers.sinusoidal_encoding``.
    """
    for n, d in ((1, 2), (6, 4), (50, 16), (128, 64)):
        want = sinusoidal_encoding(n, d).double()
        got = torch.as_tensor(fn(n, d)).double()
        if tuple(got.shape) != (n, d):
            raise AssertionError(f"fn({n}, {d}) should have shape ({n}, {d}) = (positions, d_model), "
                                 f"got {tuple(got.shape)}")
        if torch.allclose(got, want, atol=1e-4):
            continue
        swapped = torch.stack([want[:, 1::2], want[:, 0::2]], -1).flatten(1)  # cos in the even columns
        if torch.allclose(got, swapped, atol=1e-4):
            raise AssertionError("sin and cos are swapped: even columns 2i hold sin, odd columns 2i+1 hold cos")
        if torch.allclose(got, torch.cat([want[:, 0::2], want[:, 1::2]], 1), atol=1e-4):
            raise AssertionError("the sin half and cos half are concatenated; the paper interleaves them "
                                 "(column 2i sin, column 2i+1 cos)")  # fmt: skip
        if torch.allclose(got, want.T.reshape(d, n).T, atol=1e-4) and n != d:
            raise AssertionError("rows and columns look transposed: row = position, column = dimension")
        if not torch.allclose(got[0], want[0], atol=1e-4):
            raise AssertionError(f"position 0 should be [0, 1, 0, 1, ...] (sin 0, cos 0), got {got[0, :4].tolist()}...")
        i = 2 if d > 2 else 0  # the first frequency is 1 in every correct table; look at the second
        freq = torch.atan2(got[1, i], got[1, i + 1]).item()
        want_freq = math.exp(-math.log(10000.0) * i / d)
        raise AssertionError(
            f"for d_model={d}, columns {i}, {i + 1} should turn by {want_freq:.4g} radians per position "
            f"(1 / 10000^({i}/{d})), yours turn by {freq:.4g}: check the exponent 2i/d_model and the base 10000")
    return "all 4 tables equal lmbook.layers.sinusoidal_encoding"
