"""The sampling explorer (book: sec-prompting-sampling; anywidget; the math runs in the browser).

Python stores, for a few real prompts, the ``n`` largest next-token logits of a model and
their token strings; the JavaScript applies temperature, top-k and top-p when a slider
moves and redraws the distribution, so it works in the static book. :meth:`SamplingExplorer.distribution`
is the Python twin, built from ``lmbook.generation``'s own filters.
"""

from __future__ import annotations

import torch
import traitlets as t

from lmbook.generation import apply_temperature, top_k_filter, top_p_filter
from lmbook.validation import check_int, check_number
from lmbook.widgets.base import Explorer

__all__ = ["SamplingExplorer"]


class SamplingExplorer(Explorer, js="sampling_explorer.js"):
    """Bars of the next-token distribution with temperature, top-k and top-p sliders (book: sec-prompting-sampling).

    Args:
        prompts: ``{name: (prompt text, logits (V,), token strings (V,))}``; only the ``n``
            most likely tokens of each are stored, so the explorer renormalises over them
            (``covered`` in each entry says how much of the T = 1 probability they hold).
        n: tokens stored per prompt. rows: how many bars are drawn.
        temperature, top_k (0 = off), top_p (1 = off), prompt_index: initial control values.
    """

    prompts = t.List().tag(sync=True)  # [{name, text, tokens, logits, covered, vocab_size}]
    rows = t.Int(20).tag(sync=True)
    prompt_index = t.Int(0).tag(sync=True)
    temperature = t.Float(1.0).tag(sync=True)
    top_k = t.Int(0).tag(sync=True)
    top_p = t.Float(1.0).tag(sync=True)

    def __init__(self, prompts: dict, *, n: int = 200, rows: int = 20, temperature: float = 1.0,
                 top_k: int = 0, top_p: float = 1.0, prompt_index: int = 0) -> None:  # fmt: skip
        if not prompts:
            raise ValueError("prompts is empty; give {name: (text, logits, token strings)}")
        check_number("temperature", temperature, low=0, low_open=True)
        check_number("top_p", top_p, low=0, high=1, low_open=True)
        check_int("n", n, low=1)
        check_int("rows", rows, low=1)
        check_int("top_k", top_k, low=0)
        check_int("prompt_index", prompt_index, low=0, high=len(prompts) - 1)
        entries = []
        for name, (text, logits, tokens) in prompts.items():
            logits = torch.as_tensor(logits, dtype=torch.float64).flatten()
            if len(logits) == 0:
                raise ValueError(f"prompt {name!r}: logits is empty; give one logit per vocabulary token")
            if not torch.isfinite(logits).all():
                raise ValueError(f"prompt {name!r}: logits hold NaN or infinite values (the browser would get NaN)")
            if len(tokens) != len(logits):
                raise ValueError(f"prompt {name!r}: {len(tokens)} token strings for {len(logits)} logits")
            top = logits.topk(min(n, len(logits)))
            covered = top.values.logsumexp(0).sub(logits.logsumexp(0)).exp().item()
            entries.append({"name": name, "text": text, "tokens": [tokens[i] for i in top.indices.tolist()],
                            "logits": [round(v, 5) for v in top.values.tolist()], "covered": covered,
                            "vocab_size": len(logits)})  # fmt: skip
        super().__init__(prompts=entries, rows=rows, prompt_index=prompt_index, temperature=float(temperature),
                         top_k=top_k, top_p=float(top_p))  # fmt: skip

    def distribution(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(probs after temperature, kept mask, final sampling distribution) over the stored tokens,
        for the current settings, computed with ``lmbook.generation``."""
        logits = torch.tensor(self.prompts[self.prompt_index]["logits"], dtype=torch.float64)
        z = apply_temperature(logits, self.temperature)
        probs = z.softmax(-1)
        filtered = z
        if self.top_k > 0:
            filtered = top_k_filter(filtered, self.top_k)
        if self.top_p < 1:
            filtered = top_p_filter(filtered, self.top_p)
        kept = torch.isfinite(filtered)
        return probs, kept, filtered.softmax(-1)
