"""Attention, by the numbers (book: sec-attention; source sections 4.1 and 3.1 step 3).

Scaled dot-product attention mixes the value vectors of a sequence with weights
that say how well each query matches each key:

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V

Shapes follow the convention used throughout the book:

    query  (..., L_q, d_k)      key (..., L_k, d_k)      value (..., L_k, d_v)
    scores (..., L_q, L_k)      output (..., L_q, d_v)

Masks follow ``torch.nn.functional.scaled_dot_product_attention``: a *boolean*
mask is ``True`` where a query may attend to a key; a *float* mask is added to
the scores (``-inf`` blocks a key). A query row whose keys are all blocked gets
zero weights and a zero output, never NaN.

When the caller does not ask for the weights, the fused PyTorch kernel does the
work (the fast path); when it does, the weights are computed explicitly so that
they can be returned and plotted.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "KVCache",
    "MultiHeadAttention",
    "QKVRows",
    "attention_scores",
    "check_attention",
    "causal_mask",
    "padding_mask",
    "scaled_dot_product_attention",
]


def _check_float(name: str, t: Tensor) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if t.dim() < 2:
        raise ValueError(f"{name} must have at least 2 dims (..., seq, dim), got shape {tuple(t.shape)}")


def _check_finite(name: str, t: Tensor) -> None:
    """Refuse a NaN or inf in ``t``: it would make every output it touches NaN.

    The fast test is one sum (NaN and inf survive any sum; ~60x cheaper than ``isfinite(t).all()``,
    which allocates a mask); only a non-finite sum is looked at element by element, so a sum that
    merely overflowed passes.
    """
    t = t.detach()
    total = t.sum(dtype=torch.float32) if t.element_size() < 4 else t.sum()
    if math.isfinite(total.item()) or torch.isfinite(t).all():
        return
    bad = (~torch.isfinite(t)).nonzero()[0].tolist()
    raise ValueError(f"{name} holds NaN or inf (first at index {tuple(bad)} of shape {tuple(t.shape)}); "
                     f"attention needs finite inputs")


def causal_mask(len_q: int, len_k: int | None = None, device=None) -> Tensor:
    """Boolean (L_q, L_k) mask, ``True`` where query i may see key j (book: sec-attention-masks).

    Query i sits at position ``len_k - len_q + i``, so the mask stays correct when
    new queries attend to a longer key/value cache (bottom-right alignment).
    """
    len_k = len_q if len_k is None else len_k
    if len_q < 1 or len_k < len_q:
        raise ValueError(f"causal_mask needs 1 <= len_q <= len_k, got len_q={len_q}, len_k={len_k}")
    return torch.ones(len_q, len_k, dtype=torch.bool, device=device).tril(diagonal=len_k - len_q)


def padding_mask(attention_mask: Tensor) -> Tensor:
    """Turn a (batch, L_k) 1/0 "real token" mask into a (batch, 1, 1, L_k) boolean mask.

    The result broadcasts over heads and queries: no query attends to padding.
    """
    if not isinstance(attention_mask, Tensor) or attention_mask.dim() != 2:
        shape = tuple(attention_mask.shape) if isinstance(attention_mask, Tensor) else type(attention_mask).__name__
        raise ValueError(f"attention_mask must have shape (batch, seq_len), got {shape}")
    return attention_mask.bool()[:, None, None, :]


def _combine_masks(mask: Tensor | None, causal: bool, len_q: int, len_k: int, device, dtype) -> Tensor | None:
    """One mask for the scores: boolean if every part is boolean, additive otherwise."""
    if mask is not None:
        if not isinstance(mask, Tensor):
            raise TypeError(f"mask must be a torch.Tensor or None, got {type(mask).__name__}")
        if mask.dim() < 2 or mask.shape[-2] not in (1, len_q) or mask.shape[-1] != len_k:
            raise ValueError(
                f"mask has shape {tuple(mask.shape)} but the scores are (..., {len_q}, {len_k}); "
                f"mask must broadcast to (..., L_q={len_q}, L_k={len_k})"
            )
        if mask.dtype != torch.bool and not mask.is_floating_point():
            raise TypeError(f"mask must be boolean (True = attend) or float (added to scores), got dtype {mask.dtype}")
        if mask.is_floating_point() and (torch.isnan(mask).any() or torch.isposinf(mask).any()):
            raise ValueError("mask holds NaN or +inf; a float mask is added to the scores: "
                             "0 keeps a key, -inf blocks it")
    if not causal:
        return mask
    c = causal_mask(len_q, len_k, device=device)
    if mask is None:
        return c
    if mask.dtype == torch.bool:
        return mask & c
    return mask.to(dtype).masked_fill(~c, float("-inf"))


def _check_sdpa_args(
    query: Tensor, key: Tensor, value: Tensor, scale: float | None, temperature: float, dropout_p: float
) -> None:
    """The argument checks of :func:`scaled_dot_product_attention`, each naming what was expected."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        _check_float(name, t)
        _check_finite(name, t)
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"query has shape {tuple(query.shape)} but key has shape {tuple(key.shape)}; "
            f"both need the same last dim d_k ({query.shape[-1]} != {key.shape[-1]})"
        )
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"key has shape {tuple(key.shape)} but value has shape {tuple(value.shape)}; "
            f"they need the same sequence length L_k ({key.shape[-2]} != {value.shape[-2]})"
        )
    if scale is not None and not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0 (or None for 1/sqrt(d_k)), got {scale!r}")
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    if not math.isfinite(temperature):
        raise ValueError(f"temperature must be finite, got {temperature!r}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p!r}")


def attention_scores(query: Tensor, key: Tensor, scale: float | None = None) -> Tensor:
    """Q Kᵀ · scale, shape (..., L_q, L_k); the default scale is 1/√d_k."""
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    return (query @ key.transpose(-2, -1)) * scale


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    mask: Tensor | None = None,
    *,
    causal: bool = False,
    scale: float | None = None,
    temperature: float = 1.0,
    dropout_p: float = 0.0,
    training: bool = False,
    need_weights: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """softmax(Q Kᵀ / (√d_k · temperature) + mask) V  (book: sec-attention-scaling).

    Args:
        query: (..., L_q, d_k) float tensor.
        key: (..., L_k, d_k) float tensor.
        value: (..., L_k, d_v) float tensor.
        mask: boolean (True = may attend) or additive float mask broadcastable to (..., L_q, L_k).
        causal: also block keys that lie in each query's future.
        scale: multiplies the scores; ``None`` means 1/√d_k, ``1.0`` turns scaling off.
        temperature: divides the scores; > 0. Higher flattens the weights, lower sharpens them.
        dropout_p: dropout on the weights, applied only when ``training`` is True.
        training: whether dropout is active (pass ``module.training``).
        need_weights: return the (..., L_q, L_k) weights; ``False`` takes the fused fast path.

    Returns:
        ``(output, weights)``: output is (..., L_q, d_v); weights is None when not requested.
    """
    _check_sdpa_args(query, key, value, scale, temperature, dropout_p)
    scale = (1.0 / math.sqrt(query.shape[-1]) if scale is None else scale) / temperature
    return _attend(query, key, value, mask, causal, scale, dropout_p if training else 0.0, need_weights)


def _attend(query, key, value, mask, causal: bool, scale: float, p: float, need_weights: bool):
    """The computation of :func:`scaled_dot_product_attention` on arguments already checked."""
    if not need_weights:  # fast path: one fused kernel, same numbers
        return _fused_attention(query, key, value, mask, causal, scale, p), None

    scores = (query * scale) @ key.transpose(-2, -1)  # (..., L_q, L_k); scaling q is cheaper than the scores
    mask = _combine_masks(mask, causal, query.shape[-2], key.shape[-2], query.device, query.dtype)
    weights = _masked_softmax(scores, mask)  # (..., L_q, L_k), each row sums to 1 (or is all zero)
    weights = F.dropout(weights, p=p) if p > 0 else weights
    return weights @ value, weights  # (..., L_q, d_v)


def _fused_attention(query, key, value, mask, causal: bool, scale: float, p: float) -> Tensor:
    """``torch.nn.functional.scaled_dot_product_attention`` with lmbook's masks (no weights returned).

    A purely causal mask over as many keys as queries becomes ``is_causal=True``, which lets the
    kernel skip the blocked half of the scores. With a KV cache (more keys than queries) the causal
    mask is bottom-right aligned, which ``is_causal`` is not, so the mask is built explicitly,
    except for a single new query, which may see every key.
    """
    len_q, len_k = query.shape[-2], key.shape[-2]
    if causal and mask is None and len_q == len_k:
        return F.scaled_dot_product_attention(query, key, value, dropout_p=p, is_causal=True, scale=scale)
    if causal and mask is None and len_q == 1:  # one new token after a cache sees every key: no mask
        return F.scaled_dot_product_attention(query, key, value, dropout_p=p, scale=scale)
    m = _combine_masks(mask, causal, len_q, len_k, query.device, query.dtype)
    return F.scaled_dot_product_attention(query, key, value, attn_mask=m, dropout_p=p, scale=scale)


def _masked_softmax(scores: Tensor, mask: Tensor | None) -> Tensor:
    """softmax(scores + mask) over the last dim; a row whose keys are all blocked gets zeros, not NaN."""
    blocked = None  # query rows whose keys are all blocked, found from the (small) mask
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
            blocked = ~mask.any(dim=-1, keepdim=True)
        else:
            scores = scores + mask
            blocked = torch.isneginf(mask).all(dim=-1, keepdim=True)
    weights = torch.softmax(scores, dim=-1)
    if blocked is not None and blocked.any():
        # softmax(-inf, ..., -inf) is 0/0 = NaN; such a row attends to nothing: zeros.
        weights = weights.masked_fill(blocked, 0.0)
    return weights


class KVCache:
    """Keys and values of the tokens generated so far, so each new token costs one step."""

    def __init__(self) -> None:
        self.key: Tensor | None = None  # (B, nh, T, hs)
        self.value: Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.key is None else self.key.shape[-2]

    def update(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Append the new (B, nh, T_new, hs) keys/values; return all of them."""
        if self.key is None:
            self.key, self.value = key, value
        else:
            self.key = torch.cat([self.key, key], dim=-2)
            self.value = torch.cat([self.value, value], dim=-2)
        return self.key, self.value


class MultiHeadAttention(nn.Module):
    """Multi-head attention (book: sec-attention-multi-head): split into heads, attend, merge.

    Each of ``n_heads`` heads attends in its own ``d_model // n_heads``-wide subspace;
    their outputs are concatenated and mixed by ``out_proj``. The query, key and value
    projections are stacked in one ``(3 d, d)`` parameter, ``in_proj_weight`` (as in
    ``torch.nn.MultiheadAttention``): self-attention computes all three with one matmul.
    ``q_proj``, ``k_proj`` and ``v_proj`` are ``nn.Linear`` views of its rows (``QKVRows``),
    and state dicts and checkpoints name the three apart.
    """

    def __init__(self, d_model: int, n_heads: int, *, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        if d_model <= 0 or n_heads <= 0:
            raise ValueError(f"d_model and n_heads must be positive, got d_model={d_model}, n_heads={n_heads}")
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, d_model // n_heads
        self.dropout = dropout
        self.check_inputs = True  # scan inputs for NaN/inf; a whole model turns this off (its own activations)
        # q, k and v live in one (3d, d) parameter, [Wq; Wk; Wv], so self-attention is one matmul and the
        # optimizer sees one tensor; q_proj, k_proj and v_proj are nn.Linear views of its rows. The three
        # start as three nn.Linear would (same random numbers), and state dicts keep the three names.
        q, k, v = (nn.Linear(d_model, d_model, bias=bias) for _ in range(3))
        self.in_proj_weight = nn.Parameter(torch.cat([q.weight, k.weight, v.weight]).detach())  # (3d, d)
        self.in_proj_bias = nn.Parameter(torch.cat([q.bias, k.bias, v.bias]).detach()) if bias else None  # (3d,)
        self.q_proj, self.k_proj, self.v_proj = (QKVRows(self, i) for i in range(3))
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.register_state_dict_post_hook(_save_qkv_apart)
        self.register_load_state_dict_pre_hook(_load_qkv_apart)

    def in_proj(self, x: Tensor) -> Tensor:
        """(B, T, d) -> (B, T, 3d): q, k and v side by side from one matmul with [Wq; Wk; Wv].

        When LoRA wraps one of the projections, its effective weight takes that one's rows.
        """
        if all(type(p) is QKVRows for p in (self.q_proj, self.k_proj, self.v_proj)):
            return F.linear(x, self.in_proj_weight, self.in_proj_bias)
        weight = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight])  # (3d, d)
        bias = None if self.q_proj.bias is None else torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias])
        return F.linear(x, weight, bias)

    def split_heads(self, x: Tensor) -> Tensor:
        """(B, T, d_model) -> (B, nh, T, hs)"""
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)

    def merge_heads(self, x: Tensor) -> Tensor:
        """(B, nh, T, hs) -> (B, T, d_model)"""
        B, _, T, _ = x.shape
        return x.transpose(1, 2).contiguous().view(B, T, self.d_model)

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
        cache: KVCache | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Self-attention when ``key``/``value`` are None, cross-attention otherwise.

        Args:
            query: (B, L_q, d_model).
            key, value: (B, L_k, d_model); default to ``query``.
            mask: boolean/additive mask, 2-D (L_q, L_k) for every row and head, or 4-D
                (B or 1, nh or 1, L_q or 1, L_k), e.g. from ``padding_mask``. A 3-D mask is refused:
                (B, L_q, L_k) would broadcast over *heads*, not batch rows; write ``mask[:, None]``.
            causal: block future keys.
            need_weights: also return the (B, nh, L_q, L_k) weights of every head.
            cache: a ``KVCache``; new keys/values are appended and attention runs over all.

        Returns:
            ``(output (B, L_q, d_model), weights or None)``.
        """
        _check_float("query", query)
        if query.dim() != 3 or query.shape[-1] != self.d_model:
            raise ValueError(f"query must have shape (batch, seq, d_model={self.d_model}), got {tuple(query.shape)}")
        if self.check_inputs:
            _check_finite("query", query)
        key = query if key is None else key
        value = key if value is None else value
        for name, t in (("key", key), ("value", value)):
            if t is query or (name == "value" and t is key):
                continue  # already checked
            _check_float(name, t)
            if t.dim() != 3 or t.shape[-1] != self.d_model or t.shape[0] != query.shape[0]:
                raise ValueError(
                    f"{name} must have shape (batch={query.shape[0]}, seq, d_model={self.d_model}), "
                    f"got {tuple(t.shape)}"
                )
            if self.check_inputs:
                _check_finite(name, t)
        if mask is not None:
            self._check_mask(mask, query.shape[0])
        if key is query and value is query:  # self-attention: one (d, 3d) matmul for q, k and v
            q, k, v = self.in_proj(query).split(self.d_model, dim=-1)  # 3 x (B, T, d)
            q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)  # (B, nh, T, hs)
        else:
            q = self.split_heads(self.q_proj(query))  # (B, nh, L_q, hs)
            k = self.split_heads(self.k_proj(key))  # (B, nh, L_k, hs)
            v = self.split_heads(self.v_proj(value))  # (B, nh, L_k, hs)
        if cache is not None:
            k, v = cache.update(k, v)
        # q, k, v come from checked inputs: attend without checking them again (saves 3 passes over them)
        p = self.dropout if self.training else 0.0
        y, w = _attend(q, k, v, mask, causal, 1.0 / math.sqrt(self.head_dim), p, need_weights)
        return self.out_proj(self.merge_heads(y)), w

    def _check_mask(self, mask: Tensor, batch: int) -> None:
        """2-D (L_q, L_k) or 4-D (B|1, nh|1, L_q|1, L_k); the last two dims are checked against the scores later."""
        if not isinstance(mask, Tensor):
            raise TypeError(f"mask must be a torch.Tensor or None, got {type(mask).__name__}")
        if mask.dim() == 3:
            raise ValueError(
                f"mask has shape {tuple(mask.shape)}: a 3-D mask is ambiguous. Read as (B, L, L) it would be "
                f"broadcast over the {self.n_heads} heads, not the batch rows; pass mask[:, None] for "
                f"(B, 1, L_q, L_k), or a 2-D (L_q, L_k) mask shared by every row"
            )
        if mask.dim() not in (2, 4):
            raise ValueError(
                f"mask must be 2-D (L_q, L_k) or 4-D (B, n_heads, L_q, L_k), got shape {tuple(mask.shape)}"
            )
        if mask.dim() == 4 and (mask.shape[0] not in (1, batch) or mask.shape[1] not in (1, self.n_heads)):
            raise ValueError(
                f"mask has shape {tuple(mask.shape)} but needs (B={batch} or 1, n_heads={self.n_heads} or 1, L_q, L_k)"
            )

    @torch.no_grad()
    def load_from_torch(self, mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of a ``torch.nn.MultiheadAttention`` (same d_model and heads)."""
        if mha.embed_dim != self.d_model or mha.num_heads != self.n_heads:
            raise ValueError(
                f"torch module has embed_dim={mha.embed_dim}, num_heads={mha.num_heads}; "
                f"this one has d_model={self.d_model}, n_heads={self.n_heads}"
            )
        self.in_proj_weight.copy_(mha.in_proj_weight)
        if mha.in_proj_bias is not None and self.in_proj_bias is not None:
            self.in_proj_bias.copy_(mha.in_proj_bias)
        self.out_proj.weight.copy_(mha.out_proj.weight)
        if mha.out_proj.bias is not None and self.out_proj.bias is not None:
            self.out_proj.bias.copy_(mha.out_proj.bias)
        return self


class QKVRows(nn.Linear):
    """``q_proj``, ``k_proj`` or ``v_proj``: an ``nn.Linear`` whose weight and bias are rows of the
    attention's fused ``in_proj_weight`` / ``in_proj_bias`` (no parameters of its own).

    ``attn.q_proj(x)`` computes ``x Wqᵀ + bq`` as a separate ``nn.Linear`` would, writing to
    ``attn.q_proj.weight`` (under ``torch.no_grad``) writes into the fused parameter, and LoRA can wrap it.
    """

    def __init__(self, owner: MultiHeadAttention, index: int) -> None:
        nn.Module.__init__(self)
        self.in_features = self.out_features = owner.d_model
        self.index = index
        object.__setattr__(self, "_owner", owner)  # a plain reference, not a submodule (that would be a cycle)

    @property
    def weight(self) -> Tensor:
        d = self.out_features
        return self._owner.in_proj_weight[self.index * d : (self.index + 1) * d]  # (d, d) view

    @property
    def bias(self) -> Tensor | None:
        b, d = self._owner.in_proj_bias, self.out_features
        return None if b is None else b[self.index * d : (self.index + 1) * d]

    def extra_repr(self) -> str:
        d = self.out_features
        return f"in_features={d}, out_features={d}, rows {self.index * d}:{(self.index + 1) * d} of in_proj_weight"


def _qkv_paths(attn: MultiHeadAttention) -> dict[str, QKVRows]:
    """Where the row views sit below ``attn``: ``q_proj``, or ``q_proj.base`` under a LoRA wrapper."""
    return {name: m for name, m in attn.named_modules() if isinstance(m, QKVRows) and m._owner is attn}


def _save_qkv_apart(attn: MultiHeadAttention, state_dict: dict, prefix: str, local_metadata) -> None:
    """State dicts name q, k and v apart (``q_proj.weight``, ...), as checkpoints and the widgets expect.

    The values are views of the fused parameter, so writing into one (under no_grad) changes the model.
    """
    tail = [k for k in state_dict if k.startswith(prefix)]  # attn's own entries come last: rebuild them in order
    items = {k: state_dict.pop(k) for k in tail}
    fused_w, fused_b = items[prefix + "in_proj_weight"], items.get(prefix + "in_proj_bias")
    d = attn.d_model
    for key, value in items.items():
        if key == prefix + "in_proj_weight":
            for path, rows in sorted(_qkv_paths(attn).items(), key=lambda item: item[1].index):
                part = slice(rows.index * d, (rows.index + 1) * d)
                state_dict[f"{prefix}{path}.weight"] = fused_w[part]
                if fused_b is not None:
                    state_dict[f"{prefix}{path}.bias"] = fused_b[part]
        elif key != prefix + "in_proj_bias":
            state_dict[key] = value


def _load_qkv_apart(attn: MultiHeadAttention, state_dict: dict, prefix: str, local_metadata, strict: bool,
                    missing_keys: list, unexpected_keys: list, error_msgs: list) -> None:  # fmt: skip
    """Accept q, k and v under their own names and stack them into the fused parameter's entry.

    One that is absent keeps its current rows and is reported missing, as it was when they were three layers.
    """
    paths = _qkv_paths(attn)
    for part, fused in (("weight", "in_proj_weight"), ("bias", "in_proj_bias")):
        current = getattr(attn, fused)
        if current is None or prefix + fused in state_dict:
            continue
        keys = {f"{prefix}{path}.{part}": rows.index for path, rows in paths.items()}
        if not any(k in state_dict for k in keys):
            continue  # nothing for q, k, v here: load_state_dict reports the fused entry as missing if strict
        blocks = list(current.detach().chunk(3))
        for key, index in keys.items():
            if key not in state_dict:
                missing_keys.append(key)
                continue
            value = state_dict.pop(key)
            if value.shape != blocks[index].shape:
                error_msgs.append(f"size mismatch for {key}: copying a param with shape {tuple(value.shape)}, "
                                  f"the shape in the current model is {tuple(blocks[index].shape)}")
                continue
            blocks[index] = value.to(current.dtype)
        state_dict[prefix + fused] = torch.cat(blocks)


def check_attention(fn, *, seed: int = 0) -> str:
    """Exercise checker: compare a reader's ``fn(q, k, v, mask=None) -> (output, weights)``
    with :func:`scaled_dot_product_attention` and say what is wrong (book: sec-attention-exercises).

    Raises:
        AssertionError: with a message that names the first failing case.
    """
    g = torch.Generator().manual_seed(seed)
    cases = [
        ("no mask, (5, 8)", (5, 8), None),
        ("batched heads, (2, 3, 7, 16)", (2, 3, 7, 16), None),
        ("causal boolean mask", (6, 4), causal_mask(6)),
        ("padding mask (last 2 keys blocked)", (2, 5, 8), torch.tensor([True] * 3 + [False] * 2).expand(5, 5)),
        ("a fully masked query row", (3, 4), torch.tensor([[True, True, False], [False] * 3, [True] * 3])),
    ]
    for name, shape, mask in cases:
        q, k, v = (torch.randn(*shape, generator=g) for _ in range(3))
        want_out, want_w = scaled_dot_product_attention(q, k, v, mask)
        got = fn(q, k, v, mask) if mask is not None else fn(q, k, v)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise AssertionError(f"[{name}] fn must return (output, weights), got {type(got).__name__}")
        out, w = got
        if tuple(w.shape) != tuple(want_w.shape):
            raise AssertionError(f"[{name}] weights have shape {tuple(w.shape)}, expected {tuple(want_w.shape)}")
        if tuple(out.shape) != tuple(want_out.shape):
            raise AssertionError(f"[{name}] output has shape {tuple(out.shape)}, expected {tuple(want_out.shape)}")
        if torch.isnan(w).any() or torch.isnan(out).any():
            raise AssertionError(f"[{name}] NaN in the result: a fully masked row should give zero weights")
        if not torch.allclose(w, want_w, atol=1e-5):
            unscaled = torch.softmax(q @ k.transpose(-2, -1), -1)
            hint = " (did you forget to divide the scores by sqrt(d_k)?)" if mask is None and torch.allclose(
                w, unscaled, atol=1e-5) else ""
            if mask is not None and (w.masked_select(~mask.expand_as(w)).abs() > 0).any():
                hint = " (some weights on blocked keys are not zero: apply the mask before the softmax)"
            raise AssertionError(f"[{name}] weights differ by up to {(w - want_w).abs().max():.3g}{hint}")
        if not torch.allclose(out, want_out, atol=1e-5):
            raise AssertionError(f"[{name}] output differs by up to {(out - want_out).abs().max():.3g}")
    return f"all {len(cases)} cases match lmbook.attention.scaled_dot_product_attention"
