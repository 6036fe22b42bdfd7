"""The attention explorer (book: sec-attention-pretrained; anywidget; the math runs in the browser).

Python sends the data once (tokens, raw scores); ``lmbook/widgets/js/attention_explorer.js`` does
the small math when a slider moves (see ``lmbook.widgets.base``). :meth:`AttentionExplorer.weights`
is the Python twin the tests check it against.
"""

from __future__ import annotations

import math

import torch
import traitlets as t

from lmbook.attention import attention_scores, scaled_dot_product_attention
from lmbook.validation import check_int, check_number
from lmbook.widgets.base import Explorer

__all__ = ["AttentionExplorer"]


class AttentionExplorer(Explorer, js="attention_explorer.js"):
    """Heatmap of attention weights with temperature, √d_k and causal-mask controls (book: sec-attention-pretrained).

    Args:
        tokens: the L tokens of the sentence (labels for rows and columns).
        query: (L, d_k) or (heads, L, d_k) query vectors.
        key: same shape as ``query``.
        temperature, use_scale, causal, query_index, head: the initial control values.
    """

    tokens = t.List(t.Unicode()).tag(sync=True)
    scores = t.List().tag(sync=True)  # [head][L_q][L_k] raw q·k, unscaled
    d_k = t.Int(1).tag(sync=True)
    temperature = t.Float(1.0).tag(sync=True)
    use_scale = t.Bool(True).tag(sync=True)
    causal = t.Bool(False).tag(sync=True)
    query = t.Int(0).tag(sync=True)
    head = t.Int(0).tag(sync=True)

    def __init__(
        self,
        tokens: list[str],
        query: torch.Tensor,
        key: torch.Tensor,
        *,
        temperature: float = 1.0,
        use_scale: bool = True,
        causal: bool = False,
        query_index: int = 0,
        head: int = 0,
    ) -> None:
        if not isinstance(query, torch.Tensor) or not isinstance(key, torch.Tensor):
            raise TypeError(f"query and key must be tensors, got {type(query).__name__} and {type(key).__name__}")
        if query.dim() == 2:
            query, key = query[None], key[None]
        if query.dim() != 3 or key.shape != query.shape:
            raise ValueError(
                f"query and key must both be (L, d_k) or (heads, L, d_k); got query {tuple(query.shape)}, "
                f"key {tuple(key.shape)}"
            )
        if isinstance(tokens, str) or not len(tokens):
            raise ValueError(f"tokens must be a non-empty list of token strings, got {tokens!r}")
        if len(tokens) != query.shape[1]:
            raise ValueError(f"tokens has {len(tokens)} entries but query has {query.shape[1]} positions")
        if not (torch.isfinite(query).all() and torch.isfinite(key).all()):
            raise ValueError("query and key must be finite; they hold NaN or infinite values "
                             "(the browser would get NaN)")
        check_number("temperature", temperature, low=0, low_open=True)
        check_int("head", head, low=0, high=query.shape[0] - 1)
        check_int("query_index", query_index, low=0, high=query.shape[1] - 1)
        scores = attention_scores(query.detach().double(), key.detach().double(), scale=1.0)
        super().__init__(
            tokens=list(tokens),
            scores=[[[round(v, 6) for v in row] for row in h] for h in scores.tolist()],
            d_k=int(query.shape[-1]),
            temperature=float(temperature),
            use_scale=use_scale,
            causal=causal,
            query=query_index,
            head=head,
        )

    def softmax_inputs(self, query: int | None = None) -> torch.Tensor:
        """What the softmax sees for one query row (default: the selected one): q·k / √d_k / T
        (no √d_k when ``use_scale`` is off), -inf where the causal mask hides a key."""
        q = self.query if query is None else query
        s = torch.tensor(self.scores[self.head], dtype=torch.float64)
        scale = 1 / math.sqrt(self.d_k) if self.use_scale else 1.0
        row = s[q] * scale / self.temperature
        if self.causal:
            row[q + 1 + s.shape[1] - s.shape[0]:] = float("-inf")
        return row

    def weights(self) -> torch.Tensor:
        """The (L, L) weights the widget shows for its current settings, computed in Python."""
        s = torch.tensor(self.scores[self.head], dtype=torch.float64)
        scale = 1 / math.sqrt(self.d_k) if self.use_scale else 1.0
        # scores are q·k already, so feed them as q = scores, k = identity.
        _, w = scaled_dot_product_attention(
            s, torch.eye(s.shape[-1], dtype=s.dtype), torch.eye(s.shape[-1], dtype=s.dtype),
            causal=self.causal, scale=scale, temperature=self.temperature,
        )
        return w
