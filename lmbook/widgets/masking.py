"""The masking explorer (book: sec-pretraining-mlm; anywidget; the math runs in the browser).

BERT's masked-language-modelling input (book: sec-pretraining-mlm; source section 3.2):
select a fraction ``rate`` of the tokens; of those, 80 % become ``[MASK]``, 10 % a random
token and 10 % stay as they are. ``lmbook/widgets/js/masking_explorer.js`` redraws the choice
when the rate slider moves, with a seeded PRNG (mulberry32) so that a page shows the same
masks every time. :func:`mulberry32` and :meth:`MaskingExplorer.mask` are the Python twins
of that JavaScript; ``tests/widgets/test_masking.py`` runs both and compares.

The training code uses :func:`lmbook.masking.mask_tokens_for_mlm` (same rule, torch's PRNG).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

import traitlets as t

from lmbook.validation import check_int, check_number
from lmbook.widgets.base import Explorer

__all__ = ["MaskingExplorer", "mask_sequence", "mulberry32"]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<bos>", "<eos>")
_M32 = 0xFFFFFFFF


def _imul(x: int, y: int) -> int:
    return (x * y) & _M32  # JavaScript's Math.imul, on unsigned 32-bit patterns


def mulberry32(seed: int) -> Iterator[float]:
    """The mulberry32 PRNG of ``masking_explorer.js``: an endless stream of floats in [0, 1)."""
    a = seed & _M32
    while True:
        a = (a + 0x6D2B79F5) & _M32
        x = _imul(a ^ (a >> 15), 1 | a)
        x = ((x + _imul(x ^ (x >> 7), 61 | x)) & _M32) ^ x
        yield ((x ^ (x >> 14)) & _M32) / 4294967296


def mask_sequence(special: Sequence[bool], *, rate: float, seed: int, pool_size: int,
                  mask_prob: float = 0.8, random_prob: float = 0.1) -> list[tuple[str, int]]:
    """Python twin of ``maskSequence`` in ``masking_explorer.js``: BERT's 80/10/10 rule on one sequence.

    Each position draws three numbers u, v, w (always, so that raising ``rate`` only adds
    selections): selected if ``u < rate`` and the position is not special; then
    ``v < mask_prob`` gives ``"mask"``, ``v < mask_prob + random_prob`` gives ``"random"``
    (token ``floor(w * pool_size)`` of the pool), otherwise ``"same"``.

    Returns:
        One ``(kind, pool_index)`` per position, kind in ``keep``/``mask``/``random``/``same``,
        ``pool_index`` = -1 unless kind is ``random``.
    """
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    if pool_size < 1:
        raise ValueError(f"pool_size must be >= 1, got {pool_size}")
    stream, out = mulberry32(seed), []
    for is_special in special:
        u, v, w = next(stream), next(stream), next(stream)
        if is_special or not u < rate:
            out.append(("keep", -1))
        elif v < mask_prob:
            out.append(("mask", -1))
        elif v < mask_prob + random_prob:
            out.append(("random", int(w * pool_size)))
        else:
            out.append(("same", -1))
    return out


class MaskingExplorer(Explorer, js="masking_explorer.js"):
    """A passage with BERT's masks drawn on it, and a slider for the masking rate (book: sec-pretraining-mlm).

    Args:
        tokens: the token strings of the passage, in order.
        pool: token strings a "random" replacement is drawn from (say, the tokenizer's vocabulary
            without its special tokens).
        special: which positions may never be selected; by default the tokens in ``SPECIAL_TOKENS``.
        rate: initial masking rate (BERT: 0.15).
        seed: seed of the PRNG; the "re-mask" button adds one.
    """

    tokens = t.List(t.Unicode()).tag(sync=True)
    special = t.List(t.Bool()).tag(sync=True)
    pool = t.List(t.Unicode()).tag(sync=True)
    rate = t.Float(0.15).tag(sync=True)
    seed = t.Int(0).tag(sync=True)

    def __init__(self, tokens: Sequence[str], pool: Sequence[str], *, special: Sequence[bool] | None = None,
                 rate: float = 0.15, seed: int = 0) -> None:
        if isinstance(tokens, str):
            raise TypeError(f"tokens must be a list of token strings, got one string {tokens[:20]!r}")
        if not tokens:
            raise ValueError("tokens is empty; give the explorer at least one token")
        if not pool:
            raise ValueError("pool is empty; random replacements need at least one token to draw")
        if special is None:
            special = [tok in SPECIAL_TOKENS for tok in tokens]
        if len(special) != len(tokens):
            raise ValueError(f"special has {len(special)} entries but tokens has {len(tokens)}")
        check_number("rate", rate, low=0, high=1)
        check_int("seed", seed)
        super().__init__(tokens=list(tokens), pool=list(pool), special=[bool(s) for s in special],
                         rate=float(rate), seed=int(seed))

    def mask(self) -> list[tuple[str, int]]:
        """What the widget shows for its current rate and seed, computed in Python."""
        return mask_sequence(self.special, rate=self.rate, seed=self.seed, pool_size=len(self.pool))

    def masked_tokens(self) -> list[str]:
        """The model's input: each token, ``[MASK]``, or its random replacement."""
        return [tok if kind in ("keep", "same") else "[MASK]" if kind == "mask" else self.pool[j]
                for tok, (kind, j) in zip(self.tokens, self.mask(), strict=True)]

    def counts(self) -> dict[str, int]:
        """Positions per kind: ``keep``, ``mask``, ``random``, ``same``."""
        c = Counter(kind for kind, _ in self.mask())
        return {k: c.get(k, 0) for k in ("keep", "mask", "random", "same")}
