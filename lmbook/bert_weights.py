"""Hugging Face BERT checkpoints into lmbook's ``Encoder`` (book: sec-attention-pretrained).

A BERT checkpoint on the Hub is two files: ``config.json`` (sizes, named the Hugging Face way)
and ``model.safetensors`` (weights, named after Hugging Face's modules). Loading one into our
``Encoder`` is three small steps, one function each:

1. ``bert_config_fields``: rename the config fields (``hidden_size`` -> ``d_model`` ...);
2. ``bert_state_dict``: read the weights;
3. ``load_bert_weights``: copy each tensor to the parameter of the same meaning, using the
   name table ``_bert_name_map`` (``encoder.layer.0.attention.self.query`` -> ``layers.0.self_attn.q_proj``).

``EncoderConfig.from_hf_config`` and ``Encoder.from_hf_bert`` in ``lmbook.models`` are thin
wrappers over these, so the model module stays about models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from lmbook.models import Encoder

__all__ = ["bert_config_fields", "bert_state_dict", "load_bert_weights"]


def _folder_file(path: str | Path, name: str) -> Path:
    """``path/name`` when ``path`` is a checkpoint folder, else ``path`` itself."""
    path = Path(path)
    return path / name if path.is_dir() else path


def bert_config_fields(config: dict | str | Path) -> dict:
    """``EncoderConfig`` fields read from a Hugging Face ``BertConfig``: a dict, a config.json, or its folder.

    >>> bert_config_fields({"vocab_size": 30, "max_position_embeddings": 16, "num_hidden_layers": 1,
    ...                     "num_attention_heads": 2, "hidden_size": 8, "intermediate_size": 32})["d_model"]
    8
    """
    if not isinstance(config, dict):
        path = _folder_file(config, "config.json")
        if path.suffix != ".json":  # the weights file was given: its config sits beside it
            path = path.parent / "config.json"
        config = json.loads(path.read_text())
    try:
        return dict(
            vocab_size=config["vocab_size"], max_len=config["max_position_embeddings"],
            n_layers=config["num_hidden_layers"], n_heads=config["num_attention_heads"],
            d_model=config["hidden_size"], d_ff=config["intermediate_size"],
            dropout=config.get("hidden_dropout_prob", 0.1), activation=config.get("hidden_act", "gelu"),
            layer_norm_eps=config.get("layer_norm_eps", 1e-12), type_vocab_size=config.get("type_vocab_size", 2),
        )  # fmt: skip
    except KeyError as err:
        raise ValueError(f"config lacks the BertConfig field {err.args[0]!r}; is it a BERT config.json?") from None


def bert_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The weights of a Hugging Face checkpoint: ``model.safetensors`` in a folder, or that file itself."""
    from safetensors.torch import load_file

    return load_file(str(_folder_file(path, "model.safetensors")))


def _bert_name_map(n_layers: int) -> dict[str, str]:
    """lmbook parameter name -> Hugging Face BertModel / BertForPreTraining name."""
    m = {
        "tok_emb.embedding.weight": "embeddings.word_embeddings.weight",
        "pos_emb.embedding.weight": "embeddings.position_embeddings.weight",
        "seg_emb.weight": "embeddings.token_type_embeddings.weight",
        "emb_norm.weight": "embeddings.LayerNorm.weight", "emb_norm.bias": "embeddings.LayerNorm.bias",
        "pooler.weight": "pooler.dense.weight", "pooler.bias": "pooler.dense.bias",
        "mlm_dense.weight": "cls.predictions.transform.dense.weight",
        "mlm_dense.bias": "cls.predictions.transform.dense.bias",
        "mlm_norm.weight": "cls.predictions.transform.LayerNorm.weight",
        "mlm_norm.bias": "cls.predictions.transform.LayerNorm.bias",
        "mlm_bias": "cls.predictions.bias",
        "nsp_head.weight": "cls.seq_relationship.weight", "nsp_head.bias": "cls.seq_relationship.bias",
    }
    for i in range(n_layers):
        a, h = f"layers.{i}.", f"encoder.layer.{i}."
        pairs = {
            "self_attn.q_proj": "attention.self.query", "self_attn.k_proj": "attention.self.key",
            "self_attn.v_proj": "attention.self.value", "self_attn.out_proj": "attention.output.dense",
            "norm1": "attention.output.LayerNorm", "ff.linear1": "intermediate.dense",
            "ff.linear2": "output.dense", "norm2": "output.LayerNorm",
        }
        for mine, theirs in pairs.items():
            for p in ("weight", "bias"):
                m[f"{a}{mine}.{p}"] = f"{h}{theirs}.{p}"
    return m


@torch.no_grad()
def load_bert_weights(encoder: Encoder, hf_state_dict: dict[str, Tensor]) -> list[str]:
    """Copy a Hugging Face BERT state dict into ``encoder`` (book: sec-attention-pretrained).

    Accepts ``BertModel`` names and ``BertForPreTraining`` names (prefix ``bert.``). The
    encoder body and embeddings must all be present; heads absent from the checkpoint
    (a sentence-embedding model has no MLM/NSP head) keep their initial values.

    Returns:
        The lmbook parameter names that were *not* found in the checkpoint.
    """
    sd = {k.removeprefix("bert."): v for k, v in hf_state_dict.items()}
    own = encoder.state_dict()  # views of the parameters: copying into them fills the model
    missing = []
    for mine, theirs in _bert_name_map(encoder.config.n_layers).items():
        if theirs not in sd:
            missing.append(mine)
            continue
        if own[mine].shape != sd[theirs].shape:
            raise ValueError(f"{theirs} has shape {tuple(sd[theirs].shape)}, but {mine} has {tuple(own[mine].shape)}")
        own[mine].copy_(sd[theirs])
    body = [n for n in missing if not n.startswith(("mlm_", "nsp_", "pooler"))]
    if body:
        raise ValueError(f"checkpoint lacks weights for {body[:4]}{'...' if len(body) > 4 else ''}")
    return missing
