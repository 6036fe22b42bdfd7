"""The book's own encoder, live in the page (book: sec-attention-pretrained; anywidget).

The reader types a sentence; the page tokenises it with the book's BPE and runs the pretrained
encoder (``load_pretrained("encoder")``) in JavaScript, then draws any layer's and head's
attention and the top-5 guesses for each ``[MASK]``. Python sends two things once:

- the weights, from :func:`encoder_payload` (:mod:`lmbook.widgets.live`): every matrix as float16
  (half the bytes of float32; about 3 significant digits) or int8 with a scale per row (a quarter;
  the book's pages use it, see the size budget in that module), every vector (biases, LayerNorm
  gains, ~12 k numbers) as float32. The NSP head is left out: the page does not use it.
- the tokenizer's merges, which ``bpe_explorer.js`` applies exactly as ``BPETokenizer`` does.

``lmbook/widgets/js/live_encoder.js`` holds ``forward()``, a plain re-telling of
``Encoder.forward``; the widget's ESM is ``bpe_explorer.js`` (wrapped as a ``bpe`` object),
``live_transformer.js`` (the pieces it shares with the live decoder), then that file.
:meth:`LiveAttentionExplorer.forward` is the Python twin: the same steps with lmbook's own
functions, on the same rounded weights.
"""

from __future__ import annotations

import torch
import traitlets as t

from lmbook.attention import scaled_dot_product_attention
from lmbook.models import Encoder
from lmbook.tokenizers import BYTE_OFFSET, SPECIAL_TOKENS, BPETokenizer
from lmbook.tokenizers.base import CLS_ID, MASK_ID, SEP_ID
from lmbook.validation import check_int, check_number
from lmbook.widgets.base import Explorer
from lmbook.widgets.live import (
    check_model_and_tokenizer,
    live_esm,
    model_from_payload,
    payload_bytes,
    weights_payload,
)

__all__ = [
    "LiveAttentionExplorer", "encoder_from_payload", "encoder_payload", "live_encoder_esm", "live_ids", "payload_bytes",
]

_LEFT_OUT = ("pooler.", "nsp_head.")  # the NSP head: not needed in the page


def encoder_payload(model: Encoder, precision: str = "float16") -> dict:
    """The weights the page needs, JSON-able (:func:`lmbook.widgets.live.weights_payload`).

    Names are the model's ``state_dict`` names; matrices are ``precision`` (float16 or int8 with
    per-row scales), vectors float32.
    """
    if not isinstance(model, Encoder):
        raise TypeError(f"model must be an lmbook Encoder (e.g. load_pretrained('encoder')), "
                        f"got {type(model).__name__}")
    config = {k: getattr(model.config, k) for k in (
        "vocab_size", "max_len", "n_layers", "n_heads", "d_model", "d_ff", "activation", "layer_norm_eps",
        "norm_first")}
    return weights_payload(model, config, precision=precision, leave_out=_LEFT_OUT)


def encoder_from_payload(payload: dict, like: Encoder) -> Encoder:
    """A copy of ``like`` whose weights are the payload's (rounded) values: what the page computes with."""
    return model_from_payload(payload, like)


def live_encoder_esm() -> str:
    """The widget's ES module: ``bpe_explorer.js`` (as ``bpe``), ``live_transformer.js``, ``live_encoder.js``."""
    return live_esm("live_encoder.js", ("bpe",))


def live_ids(tokenizer: BPETokenizer, text: str) -> list[int]:
    """``[CLS] text [SEP]`` with each typed ``"[MASK]"`` as the mask id (``lmbook.pretraining.fill_in_the_blank``)."""
    pieces = text.split("[MASK]")
    ids = [CLS_ID]
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        ids += tokenizer.encode(piece if last else piece.rstrip(" "))
        if not last:
            ids.append(MASK_ID)
    return ids + [SEP_ID]


class LiveAttentionExplorer(Explorer):
    """Type a sentence; the book's pretrained encoder runs in the page and shows its attention
    (book: sec-attention-pretrained).

    Args:
        model: an lmbook :class:`~lmbook.models.Encoder`, e.g. ``load_pretrained("encoder")``.
        tokenizer: its :class:`~lmbook.tokenizers.BPETokenizer` (``load_pretrained("tokenizer-wiki")``).
        text: the first sentence in the box; ``[MASK]`` asks for the encoder's guesses.
        precision: how the page stores the weights, ``"float16"`` (~3.3 MB of page for the shipped
            encoder) or ``"int8"`` (~1.7 MB; top-5 probabilities move by ~0.2 points).
        layer, head, temperature, use_scale, causal: the initial control values. Temperature,
            √d_k and the causal mask apply to every layer, so the guesses change with them too.
    """

    _esm = live_encoder_esm()

    weights = t.Dict().tag(sync=True)  # encoder_payload(model)
    merges = t.List().tag(sync=True)
    byte_offset = t.Int(BYTE_OFFSET).tag(sync=True)
    special_tokens = t.List(t.Unicode()).tag(sync=True)
    text = t.Unicode("").tag(sync=True)
    layer = t.Int(0).tag(sync=True)
    head = t.Int(0).tag(sync=True)
    temperature = t.Float(1.0).tag(sync=True)
    use_scale = t.Bool(True).tag(sync=True)
    causal = t.Bool(False).tag(sync=True)

    def __init__(self, model: Encoder, tokenizer: BPETokenizer, text: str = "The capital of France is [MASK].", *,
                 layer: int = 0, head: int = 0, temperature: float = 1.0, use_scale: bool = True,
                 causal: bool = False, precision: str = "float16") -> None:  # fmt: skip
        check_model_and_tokenizer(model, Encoder, "encoder", tokenizer, precision)
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        n = len(live_ids(tokenizer, text))
        if n > model.config.max_len:
            raise ValueError(f"text is {n} tokens with [CLS] and [SEP]; the encoder reads at most "
                             f"{model.config.max_len}")
        check_int("layer", layer, low=0, high=model.config.n_layers - 1)
        check_int("head", head, low=0, high=model.config.n_heads - 1)
        check_number("temperature", temperature, low=0, low_open=True)
        for name, value in (("use_scale", use_scale), ("causal", causal)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be True or False, got {value!r}")
        payload = encoder_payload(model, precision)
        self._tokenizer = tokenizer
        self._model = encoder_from_payload(payload, model)  # the page's rounded weights
        super().__init__(
            weights=payload, merges=[[a, b] for a, b in tokenizer.merges], byte_offset=BYTE_OFFSET,
            special_tokens=list(SPECIAL_TOKENS), text=text, layer=layer, head=head,
            temperature=float(temperature), use_scale=use_scale, causal=causal,
        )  # fmt: skip

    def ids(self, text: str | None = None) -> list[int]:
        """The ids the page feeds the encoder for ``text`` (default: the box's text)."""
        return live_ids(self._tokenizer, self.text if text is None else text)

    @torch.no_grad()
    def forward(self, text: str | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """Python twin of the page's ``forward()`` at the current controls.

        Returns:
            ``(hidden, attentions, logits)``: n_layers + 1 (T, d) hidden states (as
            ``EncoderOutput.all_hidden_states``), n_layers (nh, T, T) weights, (T, vocab) MLM logits.
        """
        m, c = self._model, self._model.config
        ids = torch.tensor([self.ids(text)])  # (1, T)
        x = m.emb_norm(m.pos_emb(m.tok_emb(ids) + m.seg_emb(torch.zeros_like(ids))))  # (1, T, d)
        scale = None if self.use_scale else 1.0
        hidden, attentions = [x], []
        for layer in m.layers:
            def attend(h, a=layer.self_attn):
                q, k, v = (a.split_heads(p) for p in a.in_proj(h).split(c.d_model, dim=-1))  # (1, nh, T, hs)
                y, w = scaled_dot_product_attention(q, k, v, causal=self.causal, scale=scale,
                                                    temperature=self.temperature)
                return a.out_proj(a.merge_heads(y)), w
            if c.norm_first:  # pre-LN: x + f(LN(x))
                y, w = attend(layer.norm1(x))
                x = x + y
                x = x + layer.ff(layer.norm2(x))
            else:  # post-LN: LN(x + f(x))
                y, w = attend(x)
                x = layer.norm1(x + y)
                x = layer.norm2(x + layer.ff(x))
            hidden.append(x)
            attentions.append(w[0])
        x = m.final_norm(x)
        hidden[-1] = x
        logits = torch.nn.functional.linear(m.mlm_norm(m.mlm_act(m.mlm_dense(x))), m.tok_emb.weight, m.mlm_bias)
        return [h[0] for h in hidden], attentions, logits[0]

    def attention(self, text: str | None = None) -> torch.Tensor:
        """The (T, T) weights the heatmap shows: the current layer and head."""
        return self.forward(text)[1][self.layer][self.head]

    def predictions(self, text: str | None = None, k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-``k`` guesses with probabilities for each ``[MASK]``, as the page lists them."""
        ids = self.ids(text)
        probs = self.forward(text)[2].softmax(-1)  # (T, vocab)
        out = []
        for pos in [i for i, token in enumerate(ids) if token == MASK_ID]:
            p, top = probs[pos].topk(k)
            out.append([(self._tokenizer.token_str(int(i)), float(q)) for i, q in zip(top, p, strict=True)])
        return out
