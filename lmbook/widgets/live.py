"""What the live widgets share: the model's weights as JSON the page can carry, and their ES module.

(book: sec-attention-pretrained, sec-prompting-live)

The live explorers (:mod:`lmbook.widgets.live_encoder`, :mod:`lmbook.widgets.live_decoder`) run the
book's own models in JavaScript, so the weights travel inside the page's widget state. Two formats:

- ``"float16"``: each matrix as IEEE half precision, 2 bytes a number (about 3 significant digits);
- ``"int8"``: each matrix row as 8-bit integers ``q`` plus one float32 scale ``s`` per row, the
  number being ``q * s`` with ``s = max |row| / 127``: ~1 byte a number, relative error up to
  1/254 of the row's largest entry.

Vectors (biases, LayerNorm gains: a few thousand numbers) stay float32 in both. Every byte string
is little-endian and base64-encoded, which adds a third. ``lmbook/widgets/js/live_transformer.js``
(``decodeWeights``) reads both formats; :func:`model_from_payload` gives the Python model with
exactly the numbers the page computes with.

:func:`live_esm` builds a live widget's one ES module: helper files wrapped into named objects
(``bpe`` from ``bpe_explorer.js``, ``sampling`` from ``sampling_explorer.js``), then
``live_transformer.js`` (weights, linear, LayerNorm, GELU, attention), then the widget's own file.
One module string means the static page imports nothing from anywhere.
"""

from __future__ import annotations

import base64
import re

import numpy as np
import torch
from torch import nn

from lmbook.widgets.base import JS_DIR

__all__ = ["PAYLOAD_FORMAT", "PRECISIONS", "check_model_and_tokenizer", "live_esm", "model_from_payload",
           "payload_bytes", "weights_payload"]

PAYLOAD_FORMAT = "lmbook-live-weights/1"
PRECISIONS = ("float16", "int8")


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(array.tobytes()).decode("ascii")


def _unb64(data: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(data), dtype=dtype)


def _encode(array: np.ndarray, precision: str) -> dict:
    """One tensor (float32 numpy) -> {dtype, shape, data[, scale]}."""
    out = {"shape": list(array.shape)}
    if array.ndim < 2:
        return out | {"dtype": "float32", "data": _b64(array.astype("<f4"))}
    if precision == "float16":
        return out | {"dtype": "float16", "data": _b64(array.astype("<f2"))}
    rows = array.reshape(array.shape[0], -1)  # (rows, n)
    scale = (np.abs(rows).max(axis=1) / 127).astype(np.float32)  # (rows,)
    safe = np.where(scale > 0, scale, 1).astype(np.float32)
    q = np.clip(np.rint(rows / safe[:, None]), -127, 127).astype("i1")
    return out | {"dtype": "int8", "data": _b64(q), "scale": _b64(scale.astype("<f4"))}


def _decode(v: dict) -> torch.Tensor:
    """The inverse of :func:`_encode`, as float32: the very numbers the page computes with."""
    if v["dtype"] == "float32":
        array = _unb64(v["data"], "<f4").astype(np.float32)
    elif v["dtype"] == "float16":
        array = _unb64(v["data"], "<f2").astype(np.float32)
    elif v["dtype"] == "int8":
        scale = _unb64(v["scale"], "<f4")
        array = (_unb64(v["data"], "i1").reshape(len(scale), -1).astype(np.float32) * scale[:, None])
    else:
        raise ValueError(f"tensor dtype must be float32, float16 or int8, got {v['dtype']!r}")
    return torch.from_numpy(array.reshape(v["shape"]).copy())


def check_model_and_tokenizer(model, model_class: type, recipe: str, tokenizer, precision: str) -> None:
    """The checks every live widget starts with: ``model`` is a ``model_class`` (e.g. ``load_pretrained(recipe)``),
    ``tokenizer`` an lmbook BPE tokenizer of the model's vocabulary size, ``precision`` one of :data:`PRECISIONS`.

    Raises:
        TypeError / ValueError: naming the argument, what was expected and what came.
    """
    from lmbook.tokenizers import BPETokenizer

    if not isinstance(model, model_class):
        raise TypeError(f"model must be an lmbook {model_class.__name__} (e.g. load_pretrained({recipe!r})), "
                        f"got {type(model).__name__}")  # fmt: skip
    if not isinstance(tokenizer, BPETokenizer):
        raise TypeError(f"tokenizer must be an lmbook BPETokenizer, got {type(tokenizer).__name__}")
    if tokenizer.vocab_size != model.config.vocab_size:
        raise ValueError(f"tokenizer has {tokenizer.vocab_size} tokens but the model's vocab_size is "
                         f"{model.config.vocab_size}; pass the tokenizer the model was trained with")  # fmt: skip
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def weights_payload(model: nn.Module, config: dict, *, precision: str = "float16", leave_out: tuple = ()) -> dict:
    """``{"format", "model", "precision", "config", "tensors": {state_dict name: {dtype, shape, data[, scale]}}}``.

    Args:
        model: the lmbook model; its ``state_dict`` names are kept, so the page finds
            ``blocks.0.self_attn.q_proj.weight`` under the same name.
        config: the config fields the page needs (sizes, activation, LayerNorm epsilon).
        precision: ``"float16"`` or ``"int8"`` (per-row scales) for every matrix.
        leave_out: name prefixes the page does not use (e.g. the NSP head).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    tensors, seen = {}, set()
    for name, value in model.state_dict().items():
        if name.startswith(tuple(leave_out)) or value.data_ptr() in seen:
            continue  # left out, or tied to a tensor already sent (the decoder's LM head is its embedding)
        seen.add(value.data_ptr())
        tensors[name] = _encode(value.detach().float().cpu().numpy(), precision)
    return {"format": PAYLOAD_FORMAT, "model": type(model).__name__, "precision": precision, "config": config,
            "tensors": tensors}  # fmt: skip


def payload_bytes(payload: dict) -> int:
    """Characters of base64 the payload carries (what the page stores, give or take the JSON around it)."""
    return sum(len(v["data"]) + len(v.get("scale", "")) for v in payload["tensors"].values())


def model_from_payload(payload: dict, like: nn.Module) -> nn.Module:
    """A copy of ``like`` (same class and config) holding the payload's rounded weights, in eval mode."""
    if payload.get("format") != PAYLOAD_FORMAT:
        raise ValueError(f"payload format must be {PAYLOAD_FORMAT!r}, got {payload.get('format')!r}")
    if payload.get("model") != type(like).__name__:
        raise ValueError(f"payload holds a {payload.get('model')}, but like is a {type(like).__name__}")
    model = type(like)(like.config)
    state = like.state_dict()
    owner = {state[name].data_ptr(): name for name in payload["tensors"]}
    for name, v in payload["tensors"].items():
        state[name] = _decode(v)
    for name, value in state.items():  # a tied tensor takes its owner's rounded values
        if name not in payload["tensors"] and value.data_ptr() in owner:
            state[name] = state[owner[value.data_ptr()]]
    model.load_state_dict(state)
    return model.eval()


def _wrapped(filename: str, name: str, names: tuple[str, ...]) -> str:
    """``filename`` as ``export const name = (() => { ...; return { names }; })();``, its widget code unused.

    Wrapping keeps each file's own names (``render``, ``CSS``) apart from the widget's.
    """
    source = (JS_DIR / filename).read_text().replace("export default { render };", "")
    source = re.sub(r"^export (function|const) ", r"\1 ", source, flags=re.M)
    if "export " in source:
        raise RuntimeError(f"{filename} has an export live_esm() does not know how to inline")
    return f"export const {name} = (() => {{\n{source}\nreturn {{ {', '.join(names)} }};\n}})();\n\n"


HELPERS = {
    "bpe": ("bpe_explorer.js", ("bpeEncode", "tokenBytes", "pieceText")),
    "sampling": ("sampling_explorer.js", ("samplingDistribution",)),
}


def live_esm(widget_js: str, helpers: tuple[str, ...] = ("bpe",)) -> str:
    """A live widget's ES module: ``helpers`` (``HELPERS`` names) wrapped, ``live_transformer.js``, ``widget_js``."""
    parts = [_wrapped(HELPERS[h][0], h, HELPERS[h][1]) for h in helpers]
    parts += [(JS_DIR / "live_transformer.js").read_text(), "\n", (JS_DIR / widget_js).read_text()]
    return "".join(parts)
