"""The book's own decoder, generating live in the page (book: sec-prompting-live; anywidget).

The reader types a prompt; the page tokenises it with the book's BPE and runs the pretrained
decoder (``load_pretrained("decoder")``) in JavaScript with a KV cache, picking each new token
greedily or by sampling with temperature, top-k and top-p from a seeded generator. Clicking a
generated token shows the distribution it was drawn from. Python sends, once:

- the weights, from :func:`decoder_payload` (:mod:`lmbook.widgets.live`): matrices as float16
  (~3.2 MB of page; greedy continuations agree with the float32 model's) or int8 with a scale per
  row (~1.7 MB); vectors as float32. The LM head is the token embedding (tied), sent once;
- the tokenizer's merges, which ``bpe_explorer.js`` applies exactly as ``BPETokenizer`` does.

``lmbook/widgets/js/live_decoder.js`` holds ``forward()`` (``Decoder.forward`` with a cache) and
``generate()`` (``lmbook.generation.generate``); its sampling is ``samplingDistribution`` of
``sampling_explorer.js``. The Python twins (:meth:`LiveGenerator.continuation`,
:meth:`LiveGenerator.next_logits`) use lmbook's own ``generate`` on the same rounded weights.
"""

from __future__ import annotations

import torch
import traitlets as t

from lmbook.generation import generate
from lmbook.models import Decoder
from lmbook.tokenizers import BYTE_OFFSET, SPECIAL_TOKENS, BPETokenizer
from lmbook.tokenizers.base import BOS_ID, EOS_ID
from lmbook.validation import check_int, check_number
from lmbook.widgets.base import Explorer
from lmbook.widgets.live import check_model_and_tokenizer, live_esm, model_from_payload, weights_payload

__all__ = ["LiveGenerator", "decoder_payload", "live_decoder_esm"]


def decoder_payload(model: Decoder, precision: str = "float16") -> dict:
    """The weights the page needs, JSON-able (:func:`lmbook.widgets.live.weights_payload`)."""
    if not isinstance(model, Decoder):
        raise TypeError(f"model must be an lmbook Decoder (e.g. load_pretrained('decoder')), "
                        f"got {type(model).__name__}")
    c = model.config
    config = {k: getattr(c, k) for k in ("vocab_size", "max_len", "n_layers", "n_heads", "d_model", "activation",
                                         "layer_norm_eps")}  # fmt: skip
    config["d_ff"] = c.d_ff or 4 * c.d_model
    return weights_payload(model, config, precision=precision)


def live_decoder_esm() -> str:
    """The widget's ES module: ``bpe`` and ``sampling`` helpers, ``live_transformer.js``, ``live_decoder.js``."""
    return live_esm("live_decoder.js", ("bpe", "sampling"))


class LiveGenerator(Explorer):
    """Type a prompt; the book's pretrained decoder continues it in the page (book: sec-prompting-live).

    Args:
        model: an lmbook :class:`~lmbook.models.Decoder`, e.g. ``load_pretrained("decoder")``.
        tokenizer: its :class:`~lmbook.tokenizers.BPETokenizer` (``load_pretrained("tokenizer-wiki")``).
        prompt: the text in the box at first.
        max_new_tokens: how many tokens the page generates (it stops earlier at ``<eos>``).
        temperature: 0 means greedy; top_k: 0 = off; top_p: 1 = off; seed: the page's random
            generator starts from it, so a sampled continuation can be reproduced.
        greedy: always take the most likely token, whatever the temperature.
        precision: how the page stores the matrices, ``"float16"`` or ``"int8"``.
        bos_id: the token put before the prompt (``<bos>``, as Chapters 4 and 6 do), or None.
    """

    _esm = live_decoder_esm()

    weights = t.Dict().tag(sync=True)  # decoder_payload(model)
    merges = t.List().tag(sync=True)
    byte_offset = t.Int(BYTE_OFFSET).tag(sync=True)
    special_tokens = t.List(t.Unicode()).tag(sync=True)
    eos_id = t.Int(EOS_ID).tag(sync=True)
    bos_id = t.Int(BOS_ID).tag(sync=True)  # put before the prompt, as the book's chapters do; -1: nothing
    prompt = t.Unicode("").tag(sync=True)
    max_new_tokens = t.Int(20).tag(sync=True)
    temperature = t.Float(1.0).tag(sync=True)
    top_k = t.Int(0).tag(sync=True)
    top_p = t.Float(1.0).tag(sync=True)
    seed = t.Int(0).tag(sync=True)
    greedy = t.Bool(False).tag(sync=True)

    def __init__(self, model: Decoder, tokenizer: BPETokenizer, prompt: str = "The history of the city", *,
                 max_new_tokens: int = 20, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 seed: int = 0, greedy: bool = False, precision: str = "float16",
                 bos_id: int | None = BOS_ID) -> None:  # fmt: skip
        check_model_and_tokenizer(model, Decoder, "decoder", tokenizer, precision)
        if not isinstance(prompt, str) or not tokenizer.encode(prompt):
            raise ValueError(f"prompt must be a non-empty string, got {prompt!r}")
        check_int("max_new_tokens", max_new_tokens, low=1, high=model.config.max_len)
        check_number("temperature", temperature, low=0, high=2)
        check_int("top_k", top_k, low=0)
        check_number("top_p", top_p, low=0, high=1, low_open=True)
        check_int("seed", seed, low=0)
        if not isinstance(greedy, bool):
            raise TypeError(f"greedy must be True or False, got {greedy!r}")
        if bos_id is not None:
            check_int("bos_id", bos_id, low=0, high=model.config.vocab_size - 1)
        payload = decoder_payload(model, precision)
        self._tokenizer = tokenizer
        self._model = model_from_payload(payload, model)  # the page's rounded weights
        super().__init__(
            weights=payload, merges=[[a, b] for a, b in tokenizer.merges], byte_offset=BYTE_OFFSET,
            special_tokens=list(SPECIAL_TOKENS), eos_id=EOS_ID, bos_id=-1 if bos_id is None else bos_id,
            prompt=prompt, max_new_tokens=max_new_tokens, temperature=float(temperature), top_k=top_k,
            top_p=float(top_p), seed=seed, greedy=greedy,
        )  # fmt: skip

    def ids(self, prompt: str | None = None) -> list[int]:
        """The ids the page feeds the decoder for ``prompt`` (default: the box's prompt), ``bos_id`` first."""
        text = self.prompt if prompt is None else prompt
        return [self.bos_id] * (self.bos_id >= 0) + self._tokenizer.encode(text)

    @torch.no_grad()
    def next_logits(self, ids: list[int]) -> torch.Tensor:
        """Python twin of one step of the page: the (V,) next-token logits after ``ids``."""
        return self._model(torch.tensor([ids[-self._model.config.max_len:]])).logits[0, -1]

    def continuation_ids(self, prompt: str | None = None, n: int | None = None) -> list[int]:
        """Python twin of the page's greedy generation: ``n`` new ids (default ``max_new_tokens``),
        ``<eos>`` included when the model stops, from lmbook's own ``generate``."""
        ids = torch.tensor(self.ids(prompt))
        n = self.max_new_tokens if n is None else n
        out = generate(self._model, ids, n, greedy=True, eos_id=EOS_ID)
        return out[len(ids):].tolist()

    def continuation(self, prompt: str | None = None, n: int | None = None) -> str:
        """The greedy continuation as text, as the page shows it (without ``<eos>``)."""
        return self._tokenizer.decode([i for i in self.continuation_ids(prompt, n) if i != EOS_ID])
