"""Three Transformer families (book: sec-architecture-families; source sections 4.3-4.5).

- ``Encoder``: encoder-only, BERT-style. Every token sees every other token; heads
  for masked-language modelling (MLM) and next-sentence prediction (NSP).
- ``Decoder``: decoder-only, GPT-style. Causal self-attention; predicts the next token.
- ``Transformer``: the encoder-decoder of the 2017 paper, for sequence-to-sequence tasks.

Each model takes one config dataclass and keeps it as ``model.config``, so a
checkpoint can store ``dataclasses.asdict(model.config)`` and rebuild the model
with ``Config(**d)``. With ``need_weights=True`` every model returns the attention
weights of every layer as a tuple of (B, heads, query, key) tensors, the layout
that bertviz's ``head_view``/``model_view`` take; otherwise the fused kernel runs.

The file is longer than the ~300 lines CONTRIBUTING.md asks for on purpose: the three families
are built from the same layers and helpers and are meant to be read side by side, as
(book: sec-architecture-families) compares them. Loading Hugging Face BERT weights lives in
``lmbook.bert_weights``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmbook.attention import KVCache, MultiHeadAttention, padding_mask
from lmbook.bert_weights import bert_config_fields, bert_state_dict, load_bert_weights
from lmbook.checkpointing import register_model
from lmbook.layers import (
    DecoderLayer,
    EncoderLayer,
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    TokenEmbedding,
    _activation,
    _dropout,
)
from lmbook.validation import check_config

__all__ = [
    "Decoder", "DecoderConfig", "DecoderOutput", "Encoder", "EncoderConfig", "EncoderOutput",
    "Seq2SeqOutput", "Transformer", "TransformerConfig", "load_bert_weights",
]


def _check_heads(d_model: int, n_heads: int) -> None:
    if n_heads < 1 or d_model % n_heads:
        raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")


def _check_ids(name: str, ids: Tensor, max_len: int, start: int = 0) -> None:
    if not isinstance(ids, Tensor) or ids.dim() != 2:
        raise ValueError(f"{name} must be a (batch, seq_len) tensor of token ids, got {getattr(ids, 'shape', ids)}")
    if ids.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(ids.shape)}); it needs at least one token")
    if start + ids.shape[1] > max_len:
        cached = f" after {start} cached tokens" if start else ""
        raise ValueError(f"{name} has sequence length {ids.shape[1]}{cached}, longer than max_len={max_len}")


def _key_mask(name: str, mask: Tensor | None, ids: Tensor) -> Tensor | None:
    """(B, S) 1/0 real-token mask -> (B, 1, 1, S) boolean, after checking its shape."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor) or tuple(mask.shape) != tuple(ids.shape):
        got = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(f"{name} must have shape {tuple(ids.shape)} (batch, seq_len) like the ids, got {got}")
    return padding_mask(mask)


def _attention_trusts_its_inputs(model: nn.Module) -> None:
    """Inside a whole model, attention sees the model's own activations of checked token ids: skip its
    NaN/inf scan of them (a pass over the activations per layer). NaN can then only come from the weights,
    which ``lmbook.training`` (loss, gradient norm, parameters) and the checkpoint loader and saver check."""
    for m in model.modules():
        if isinstance(m, MultiHeadAttention):
            m.check_inputs = False


def _init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for Linear and Embedding weights, zero biases (GPT-2, BERT)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


# --------------------------------------------------------------------------- encoder-only (BERT)


@dataclass
class EncoderConfig:
    """BERT-style encoder; the defaults are CPU-sized, ``from_hf_config`` reads a BERT config.json."""

    vocab_size: int = 30522
    max_len: int = 128
    n_layers: int = 2
    n_heads: int = 4
    d_model: int = 128
    d_ff: int = 512
    dropout: float = 0.1
    activation: str = "gelu"  # exact (erf) GELU, as in BERT
    layer_norm_eps: float = 1e-12
    norm_first: bool = False
    type_vocab_size: int = 2

    def __post_init__(self) -> None:
        check_config(self)

    @classmethod
    def from_hf_config(cls, config: dict | str | Path, **overrides) -> EncoderConfig:
        """Read a Hugging Face ``BertConfig`` (a dict, a config.json, or the folder holding it);
        see ``lmbook.bert_weights.bert_config_fields``."""
        return cls(**(bert_config_fields(config) | overrides))


@dataclass
class EncoderOutput:
    hidden_states: Tensor  # (B, T, d) after the last layer
    mlm_logits: Tensor | None = None  # (B, T, vocab)
    nsp_logits: Tensor | None = None  # (B, 2)
    all_hidden_states: tuple[Tensor, ...] | None = None  # embeddings, then each layer: n_layers + 1 of (B, T, d)
    attentions: tuple[Tensor, ...] | None = None  # per layer (B, nh, T, T)


@register_model
class Encoder(nn.Module):
    """Encoder-only Transformer with BERT's MLM and NSP heads (book: sec-pretraining-live; source section 4.4)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        c = self.config = config
        _check_heads(c.d_model, c.n_heads)
        self.tok_emb = TokenEmbedding(c.vocab_size, c.d_model)
        self.pos_emb = LearnedPositionalEncoding(c.max_len, c.d_model)
        self.seg_emb = nn.Embedding(c.type_vocab_size, c.d_model)
        self.emb_norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.emb_drop = nn.Dropout(c.dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(c.d_model, c.n_heads, c.d_ff, dropout=c.dropout, activation=c.activation,
                         norm_first=c.norm_first, layer_norm_eps=c.layer_norm_eps)
            for _ in range(c.n_layers)
        )
        self.final_norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps) if c.norm_first else nn.Identity()
        # MLM head: transform, then a decoder tied to the token embedding, plus a bias.
        self.mlm_dense = nn.Linear(c.d_model, c.d_model)
        self.mlm_act = _activation(c.activation)
        self.mlm_norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.mlm_bias = nn.Parameter(torch.zeros(c.vocab_size))
        # NSP head: pooler (dense + tanh on [CLS]) then 2 logits.
        self.pooler = nn.Linear(c.d_model, c.d_model)
        self.nsp_head = nn.Linear(c.d_model, 2)
        _init_weights(self)
        _attention_trusts_its_inputs(self)

    def forward(
        self,
        input_ids: Tensor,
        token_type_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        *,
        need_weights: bool = False,
        output_hidden_states: bool = False,
        compute_heads: bool = True,
    ) -> EncoderOutput:
        """input_ids (B, T); token_type_ids (B, T) segment 0/1; attention_mask (B, T) 1 = real token, 0 = padding."""
        c = self.config
        _check_ids("input_ids", input_ids, c.max_len)
        mask = _key_mask("attention_mask", attention_mask, input_ids)  # (B, 1, 1, T)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        elif tuple(token_type_ids.shape) != tuple(input_ids.shape):
            got = tuple(token_type_ids.shape)
            raise ValueError(f"token_type_ids must have shape {tuple(input_ids.shape)} like input_ids, got {got}")
        elif token_type_ids.min() < 0 or token_type_ids.max() >= c.type_vocab_size:
            raise ValueError(f"token_type_ids must lie in [0, type_vocab_size={c.type_vocab_size})")
        x = self.pos_emb(self.tok_emb(input_ids) + self.seg_emb(token_type_ids))  # (B, T, d)
        x = self.emb_drop(self.emb_norm(x))
        hidden, attns = [x], []
        for layer in self.layers:
            x, w = layer(x, mask, need_weights=need_weights)  # (B, T, d), (B, nh, T, T)
            hidden.append(x)
            attns.append(w)
        x = self.final_norm(x)
        out = EncoderOutput(
            hidden_states=x,
            all_hidden_states=tuple(hidden[:-1]) + (x,) if output_hidden_states else None,
            attentions=tuple(attns) if need_weights else None,
        )
        if compute_heads:
            h = self.mlm_norm(self.mlm_act(self.mlm_dense(x)))  # (B, T, d)
            out.mlm_logits = F.linear(h, self.tok_emb.weight, self.mlm_bias)  # (B, T, vocab)
            out.nsp_logits = self.nsp_head(torch.tanh(self.pooler(x[:, 0])))  # (B, 2)
        return out

    @classmethod
    def from_hf_bert(cls, state_dict_or_path: dict | str | Path, config: EncoderConfig | None = None) -> Encoder:
        """Build an Encoder from a Hugging Face BERT checkpoint: a state dict, or a folder with
        config.json and model.safetensors (the config is read from it when not given). The name
        mapping lives in ``lmbook.bert_weights``."""
        if isinstance(state_dict_or_path, dict):
            if config is None:
                raise ValueError("config is required when a state dict is given")
            state_dict = state_dict_or_path
        else:
            config = config or EncoderConfig.from_hf_config(state_dict_or_path)
            state_dict = bert_state_dict(state_dict_or_path)
        model = cls(config)
        load_bert_weights(model, state_dict)
        return model


# --------------------------------------------------------------------------- decoder-only (GPT)


@dataclass
class DecoderConfig:
    """GPT-style decoder; the defaults are nanoGPT's CPU "shakespeare_char" sizes."""

    vocab_size: int = 65
    max_len: int = 64
    n_layers: int = 4
    n_heads: int = 4
    d_model: int = 128
    d_ff: int | None = None  # None: 4 * d_model
    dropout: float = 0.0
    activation: str = "gelu"
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        check_config(self)


@dataclass
class DecoderOutput:
    logits: Tensor  # (B, T, vocab)
    loss: Tensor | None = None  # mean cross-entropy over targets != -100
    attentions: tuple[Tensor, ...] | None = None  # per layer (B, nh, T, T_total)


@register_model
class Decoder(nn.Module):
    """Decoder-only language model: pre-LN blocks, causal attention, tied LM head (book: sec-pretraining-causal-lm)."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        c = self.config = config
        _check_heads(c.d_model, c.n_heads)
        d_ff = c.d_ff or 4 * c.d_model
        self.tok_emb = TokenEmbedding(c.vocab_size, c.d_model)
        self.pos_emb = LearnedPositionalEncoding(c.max_len, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            DecoderLayer(c.d_model, c.n_heads, d_ff, dropout=c.dropout, activation=c.activation,
                         norm_first=True, layer_norm_eps=c.layer_norm_eps, cross_attention=False)
            for _ in range(c.n_layers)
        )
        self.ln_f = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        _init_weights(self)
        self.lm_head.weight = self.tok_emb.embedding.weight  # weight tying
        _attention_trusts_its_inputs(self)
        for name, p in self.named_parameters():  # GPT-2: scale the projections that write into the residual
            if name.endswith(("out_proj.weight", "linear2.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layers))

    def new_caches(self) -> list[KVCache]:
        """One empty ``KVCache`` per block, for incremental decoding (``lmbook.generation``)."""
        return [KVCache() for _ in self.blocks]

    def forward(
        self,
        input_ids: Tensor,
        targets: Tensor | None = None,
        *,
        need_weights: bool = False,
        caches: list[KVCache] | None = None,
    ) -> DecoderOutput:
        """input_ids (B, T) -> logits (B, T, vocab); with ``caches`` the ids continue the cached ones."""
        if caches is not None and len(caches) != len(self.blocks):
            raise ValueError(f"caches must hold one KVCache per block ({len(self.blocks)}), got {len(caches)}")
        start = 0 if caches is None else len(caches[0])
        _check_ids("input_ids", input_ids, self.config.max_len, start)
        x = _dropout(self.drop, self.pos_emb(self.tok_emb(input_ids), start))  # (B, T, d)
        attns = []
        for i, block in enumerate(self.blocks):
            x, w, _ = block(x, need_weights=need_weights, cache=None if caches is None else caches[i])
            attns.append(w)
        logits = self.lm_head(self.ln_f(x))  # (B, T, vocab)
        loss = None
        if targets is not None:
            if tuple(targets.shape) != tuple(input_ids.shape):
                raise ValueError(f"targets must have shape {tuple(input_ids.shape)}, got {tuple(targets.shape)}")
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return DecoderOutput(logits, loss, tuple(attns) if need_weights else None)


# --------------------------------------------------------------------------- encoder-decoder (2017)


@dataclass
class TransformerConfig:
    """The encoder-decoder of "Attention Is All You Need" (defaults CPU-sized)."""

    src_vocab_size: int = 1000
    tgt_vocab_size: int = 1000
    max_len: int = 128
    n_encoder_layers: int = 2
    n_decoder_layers: int = 2
    n_heads: int = 4
    d_model: int = 128
    d_ff: int = 512
    dropout: float = 0.1
    activation: str = "relu"
    norm_first: bool = False
    layer_norm_eps: float = 1e-5
    pad_id: int | None = 0  # source tokens equal to pad_id are masked; target tokens equal to it are not scored
    tie_output: bool = True  # output projection shares the target embedding

    def __post_init__(self) -> None:
        check_config(self)


@dataclass
class Seq2SeqOutput:
    logits: Tensor  # (B, T, tgt_vocab)
    loss: Tensor | None = None
    encoder_attentions: tuple[Tensor, ...] | None = None  # per layer (B, nh, S, S)
    decoder_attentions: tuple[Tensor, ...] | None = None  # per layer (B, nh, T, T)
    cross_attentions: tuple[Tensor, ...] | None = None  # per layer (B, nh, T, S)


@register_model
class Transformer(nn.Module):
    """Encoder-decoder Transformer for sequence-to-sequence (book: sec-architecture-decoder, sec-translation).

    Source section 4.3.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        c = self.config = config
        _check_heads(c.d_model, c.n_heads)
        self.src_emb = TokenEmbedding(c.src_vocab_size, c.d_model, scale=True)
        self.tgt_emb = TokenEmbedding(c.tgt_vocab_size, c.d_model, scale=True)
        self.pos_enc = SinusoidalPositionalEncoding(c.d_model, c.max_len)
        self.drop = nn.Dropout(c.dropout)
        sizes = (c.d_model, c.n_heads, c.d_ff)
        switches = dict(dropout=c.dropout, activation=c.activation, norm_first=c.norm_first,
                        layer_norm_eps=c.layer_norm_eps)
        self.encoder_layers = nn.ModuleList(EncoderLayer(*sizes, **switches) for _ in range(c.n_encoder_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(*sizes, **switches) for _ in range(c.n_decoder_layers))
        self.enc_norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps) if c.norm_first else nn.Identity()
        self.dec_norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps) if c.norm_first else nn.Identity()
        self.out_proj = nn.Linear(c.d_model, c.tgt_vocab_size)
        # Xavier, as in the Annotated Transformer, on each matrix (the state dict holds q, k and v apart)
        for p in self.state_dict(keep_vars=True).values():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        if c.tie_output:
            self.out_proj.weight = self.tgt_emb.embedding.weight
        _attention_trusts_its_inputs(self)

    def source_mask(self, src: Tensor, src_mask: Tensor | None = None) -> Tensor | None:
        """(B, S) 1/0 mask given, or built from ``pad_id`` -> (B, 1, 1, S) boolean, or None."""
        if src_mask is None and self.config.pad_id is not None:
            src_mask = src != self.config.pad_id
        return _key_mask("src_mask", src_mask, src)

    def encode(self, src: Tensor, src_mask: Tensor | None = None, *, need_weights: bool = False):
        """src (B, S) -> (memory (B, S, d), encoder attentions or None)."""
        _check_ids("src", src, self.config.max_len)
        mask = self.source_mask(src, src_mask)
        x = self.drop(self.pos_enc(self.src_emb(src)))  # (B, S, d)
        attns = []
        for layer in self.encoder_layers:
            x, w = layer(x, mask, need_weights=need_weights)
            attns.append(w)
        return self.enc_norm(x), (tuple(attns) if need_weights else None)

    def decode(
        self,
        tgt: Tensor,
        memory: Tensor,
        src: Tensor | None = None,
        src_mask: Tensor | None = None,
        *,
        need_weights: bool = False,
        caches: list[KVCache] | None = None,
    ) -> Seq2SeqOutput:
        """tgt (B, T) attends causally to itself and to memory (B, S, d); pass ``src`` or ``src_mask``
        so that cross-attention skips source padding. With ``caches`` tgt continues the cached tokens."""
        start = 0 if caches is None else len(caches[0])
        _check_ids("tgt", tgt, self.config.max_len, start)
        if src is not None:
            mem_mask = self.source_mask(src, src_mask)  # (B, 1, 1, S)
        else:
            mem_mask = _key_mask("src_mask", src_mask, memory[..., 0])
        x = self.drop(self.pos_enc(self.tgt_emb(tgt), start))  # (B, T, d)
        self_w, cross_w = [], []
        for i, layer in enumerate(self.decoder_layers):
            cache = None if caches is None else caches[i]
            x, ws, wc = layer(x, memory, memory_mask=mem_mask, need_weights=need_weights, cache=cache)
            self_w.append(ws)
            cross_w.append(wc)
        logits = self.out_proj(self.dec_norm(x))  # (B, T, tgt_vocab)
        if not need_weights:
            return Seq2SeqOutput(logits)
        return Seq2SeqOutput(logits, decoder_attentions=tuple(self_w), cross_attentions=tuple(cross_w))

    def forward(
        self,
        src: Tensor,
        tgt_in: Tensor,
        targets: Tensor | None = None,
        src_mask: Tensor | None = None,
        *,
        need_weights: bool = False,
    ) -> Seq2SeqOutput:
        """Teacher forcing: src (B, S), tgt_in (B, T) = <bos> y_1 … y_{T-1}, targets (B, T) = y_1 … y_T."""
        memory, enc_w = self.encode(src, src_mask, need_weights=need_weights)
        out = self.decode(tgt_in, memory, src, src_mask, need_weights=need_weights)
        out.encoder_attentions = enc_w
        if targets is not None:
            if tuple(targets.shape) != tuple(tgt_in.shape):
                raise ValueError(f"targets must have shape {tuple(tgt_in.shape)}, got {tuple(targets.shape)}")
            if self.config.pad_id is not None:
                targets = targets.masked_fill(targets == self.config.pad_id, -100)
            out.loss = F.cross_entropy(out.logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return out
