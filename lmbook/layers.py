"""The building blocks of a Transformer (book: sec-architecture, sec-attention; source section 4.3).

A Transformer is a stack of identical *blocks*. Each block has sublayers --
self-attention, (in a decoder) cross-attention over the encoder's output, and a
position-wise feed-forward network -- and every sublayer is wrapped the same way:

    post-LN (the 2017 paper):   x = LayerNorm(x + Sublayer(x))
    pre-LN  (GPT-2 and later):  x = x + Sublayer(LayerNorm(x))

Before the first block, token ids become vectors (``TokenEmbedding``) and the
order of the tokens is added in, either as a fixed sinusoidal table or as a
learned table of position vectors.

Shapes: B batch, T (or L_q) query length, S (or L_k) key length, d d_model,
nh heads, hs head size. Masks follow ``lmbook.attention``: boolean, ``True`` where
a query may attend to a key, broadcastable to (B, nh, L_q, L_k).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmbook.attention import KVCache, MultiHeadAttention

__all__ = [
    "DecoderLayer",
    "EncoderLayer",
    "FeedForward",
    "LearnedPositionalEncoding",
    "SinusoidalPositionalEncoding",
    "TokenEmbedding",
    "sinusoidal_encoding",
]

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh")}


def _activation(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


class TokenEmbedding(nn.Module):
    """Token ids (B, T) -> vectors (B, T, d); optionally times √d_model as in the 2017 paper.

    (book: sec-architecture-five-steps)
    """

    def __init__(self, vocab_size: int, d_model: int, *, scale: bool = False, padding_idx: int | None = None) -> None:
        super().__init__()
        self.vocab_size, self.d_model, self.scale = vocab_size, d_model, scale
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=padding_idx)

    @property
    def weight(self) -> Tensor:
        return self.embedding.weight

    def forward(self, ids: Tensor) -> Tensor:
        if ids.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"input_ids must be an integer tensor, got dtype {ids.dtype}")
        if ids.numel():
            lo, hi = (int(v) for v in torch.aminmax(ids))  # one pass over the ids for both ends
            if lo < 0 or hi >= self.vocab_size:
                raise ValueError(f"input_ids must lie in [0, vocab_size={self.vocab_size}), got values in [{lo}, {hi}]")
        x = self.embedding(ids)  # (B, T, d)
        return x * math.sqrt(self.d_model) if self.scale else x


def sinusoidal_encoding(n_positions: int, d_model: int) -> Tensor:
    """The fixed (n_positions, d_model) table of the 2017 paper (book: sec-architecture-positional-encoding).

    PE[pos, 2i] = sin(pos / 10000^(2i/d)),  PE[pos, 2i+1] = cos(pos / 10000^(2i/d)).
    Each pair of columns is a clock ticking at its own frequency, so a fixed
    offset between two positions is a rotation, the same wherever it happens.
    """
    if n_positions < 1 or d_model < 2 or d_model % 2:
        raise ValueError(f"need n_positions >= 1 and an even d_model >= 2, got {n_positions}, {d_model}")
    pos = torch.arange(n_positions, dtype=torch.float32)[:, None]  # (P, 1)
    inv_freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))  # (d/2,)
    pe = torch.zeros(n_positions, d_model)
    pe[:, 0::2] = torch.sin(pos * inv_freq)  # (P, d/2)
    pe[:, 1::2] = torch.cos(pos * inv_freq)
    return pe


def _check_length(start: int, T: int, max_len: int) -> None:
    if start + T > max_len:
        raise ValueError(
            f"sequence length {start + T} (start={start}, new tokens={T}) is longer than max_len={max_len}"
        )


class SinusoidalPositionalEncoding(nn.Module):
    """x + PE[start : start + T] with the fixed sinusoidal table kept as a buffer.

    (book: sec-architecture-positional-encoding)
    """

    def __init__(self, d_model: int, max_len: int = 5000) -> None:
        super().__init__()
        self.max_len = max_len
        self.register_buffer("pe", sinusoidal_encoding(max_len, d_model), persistent=False)  # (max_len, d)

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        T = x.shape[1]
        _check_length(start, T, self.max_len)
        return x + self.pe[start : start + T].to(x.dtype)  # (B, T, d)


class LearnedPositionalEncoding(nn.Module):
    """x + P[start : start + T] with a learned (max_len, d) table, as in BERT and GPT.

    (book: sec-architecture-positional-encoding)
    """

    def __init__(self, max_len: int, d_model: int) -> None:
        super().__init__()
        self.max_len = max_len
        self.embedding = nn.Embedding(max_len, d_model)

    @property
    def weight(self) -> Tensor:
        return self.embedding.weight

    @torch.no_grad()
    def init_sinusoidal(self, scale: float) -> LearnedPositionalEncoding:
        """Start the learned table from ``scale`` times the fixed sinusoidal one (``sinusoidal_encoding``).

        Random N(0, 0.02) rows are unrelated to each other, so a head that should look "one token
        back" must learn that offset for every position separately; sinusoidal rows turn any fixed
        offset into the same rotation, which one pair of query/key matrices can learn once.
        The table stays a parameter and keeps training.
        """
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive finite number, got {scale!r}")
        self.embedding.weight.copy_(scale * sinusoidal_encoding(*self.embedding.weight.shape))
        return self

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        T = x.shape[1]
        _check_length(start, T, self.max_len)
        return x + self.embedding.weight[start : start + T]  # (B, T, d); a slice, not a lookup of arange(T)


class FeedForward(nn.Module):
    """Position-wise FFN(x) = W2 · act(W1 x + b1) + b2, applied to each token alone.

    (book: sec-architecture-five-steps)
    """

    def __init__(self, d_model: int, d_ff: int, *, dropout: float = 0.0, activation: str = "relu") -> None:
        super().__init__()
        self.act = _activation(activation)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear2(_dropout(self.dropout, self.act(self.linear1(x))))  # (B, T, d_ff) -> (B, T, d)


def _dropout(drop: nn.Dropout, x: Tensor) -> Tensor:
    """``drop(x)``, or ``x`` itself when dropout is off (p = 0 or eval mode): same numbers, one call less."""
    return drop(x) if drop.p > 0 and drop.training else x


def _norm(d_model: int, eps: float, use: bool) -> nn.Module:
    return nn.LayerNorm(d_model, eps=eps) if use else nn.Identity()


class _Block(nn.Module):
    """Shared wiring: residual + LayerNorm around each sublayer, post-LN or pre-LN."""

    norm_first: bool
    residual: bool

    def _sublayer(self, x: Tensor, norm: nn.Module, drop: nn.Module, fn) -> tuple[Tensor, Tensor | None]:
        if self.norm_first:  # pre-LN: x + f(LN(x))
            y, w = fn(norm(x))
            y = _dropout(drop, y)
            return (x + y if self.residual else y), w
        y, w = fn(x)  # post-LN: LN(x + f(x))
        y = _dropout(drop, y)
        return norm(x + y if self.residual else y), w

    @torch.no_grad()
    def _load_ff_from_torch(self, layer: nn.Module) -> None:
        self.ff.linear1.load_state_dict(layer.linear1.state_dict())
        self.ff.linear2.load_state_dict(layer.linear2.state_dict())


class EncoderLayer(_Block):
    """Self-attention + feed-forward, each with residual and LayerNorm (book: sec-architecture-five-steps).

    ``norm_first=False`` is the post-LN block of the 2017 paper and BERT; ``True`` is the
    pre-LN block of GPT-2. ``residual=False`` and ``use_layer_norm=False`` remove the
    skip connections or the normalisation, for the deep-stack experiment (book: sec-architecture-residual-layernorm).
    ``forward(x, causal=True)`` turns it into a decoder-only block without cross-attention.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        *,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
        residual: bool = True,
        use_layer_norm: bool = True,
    ) -> None:
        super().__init__()
        self.norm_first, self.residual = norm_first, residual
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.ff = FeedForward(d_model, d_ff, dropout=dropout, activation=activation)
        self.norm1 = _norm(d_model, layer_norm_eps, use_layer_norm)
        self.norm2 = _norm(d_model, layer_norm_eps, use_layer_norm)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        *,
        causal: bool = False,
        need_weights: bool = False,
        cache: KVCache | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """x (B, T, d) -> (x (B, T, d), weights (B, nh, T, S) or None)."""
        x, w = self._sublayer(
            x, self.norm1, self.dropout1,
            lambda h: self.self_attn(h, mask=mask, causal=causal, need_weights=need_weights, cache=cache),
        )
        x, _ = self._sublayer(x, self.norm2, self.dropout2, lambda h: (self.ff(h), None))
        return x, w

    @torch.no_grad()
    def load_from_torch(self, layer: nn.TransformerEncoderLayer) -> EncoderLayer:
        """Copy the weights of a ``torch.nn.TransformerEncoderLayer`` with the same sizes."""
        self.self_attn.load_from_torch(layer.self_attn)
        self._load_ff_from_torch(layer)
        self.norm1.load_state_dict(layer.norm1.state_dict())
        self.norm2.load_state_dict(layer.norm2.state_dict())
        return self


class DecoderLayer(_Block):
    """Masked self-attention + cross-attention over the encoder output + feed-forward (book: sec-architecture-decoder).

    ``cross_attention=False`` drops the middle sublayer: the GPT-style decoder-only block.
    The self-attention is causal by default and can append to a ``KVCache`` (book: sec-pretraining-causal-lm).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        *,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
        cross_attention: bool = True,
    ) -> None:
        super().__init__()
        self.norm_first, self.residual = norm_first, True
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.norm1, self.dropout1 = nn.LayerNorm(d_model, eps=layer_norm_eps), nn.Dropout(dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout) if cross_attention else None
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps) if cross_attention else None
        self.dropout2 = nn.Dropout(dropout)
        self.ff = FeedForward(d_model, d_ff, dropout=dropout, activation=activation)
        self.norm3, self.dropout3 = nn.LayerNorm(d_model, eps=layer_norm_eps), nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        *,
        self_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        causal: bool = True,
        need_weights: bool = False,
        cache: KVCache | None = None,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """x (B, T, d), memory (B, S, d) -> (x, self weights (B, nh, T, T'), cross weights (B, nh, T, S))."""
        x, w_self = self._sublayer(
            x, self.norm1, self.dropout1,
            lambda h: self.self_attn(h, mask=self_mask, causal=causal, need_weights=need_weights, cache=cache),
        )
        w_cross = None
        if self.cross_attn is not None:
            if memory is None:
                raise ValueError("memory is required: this DecoderLayer has cross-attention (cross_attention=True)")
            x, w_cross = self._sublayer(
                x, self.norm2, self.dropout2,
                lambda h: self.cross_attn(h, memory, mask=memory_mask, need_weights=need_weights),
            )
        elif memory is not None:
            raise ValueError("memory was given but this DecoderLayer has no cross-attention (cross_attention=False)")
        x, _ = self._sublayer(x, self.norm3, self.dropout3, lambda h: (self.ff(h), None))
        return x, w_self, w_cross

    @torch.no_grad()
    def load_from_torch(self, layer: nn.TransformerDecoderLayer) -> DecoderLayer:
        """Copy the weights of a ``torch.nn.TransformerDecoderLayer`` with the same sizes."""
        if self.cross_attn is None:
            raise ValueError("cannot load a torch TransformerDecoderLayer into a layer without cross-attention")
        self.self_attn.load_from_torch(layer.self_attn)
        self.cross_attn.load_from_torch(layer.multihead_attn)
        self._load_ff_from_torch(layer)
        for mine, theirs in ((self.norm1, layer.norm1), (self.norm2, layer.norm2), (self.norm3, layer.norm3)):
            mine.load_state_dict(theirs.state_dict())
        return self
