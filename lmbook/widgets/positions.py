"""The positional-encoding explorer (book: sec-architecture-positional-encoding); the math runs in the browser.

A slider picks a position p; the explorer plots PE[p] · PE[q] for every position q of
the sinusoidal table, so the reader sees that nearby positions are similar and that the
curve only shifts when p moves (the similarity depends on the offset q - p alone). The
table is computed in ``lmbook/widgets/js/position_explorer.js``; :meth:`PositionExplorer.similarities`
is its Python twin, built on :func:`lmbook.layers.sinusoidal_encoding`.
"""

from __future__ import annotations

import torch
import traitlets as t

from lmbook.layers import sinusoidal_encoding
from lmbook.validation import check_int
from lmbook.widgets.base import Explorer

__all__ = ["PositionExplorer"]


class PositionExplorer(Explorer, js="position_explorer.js"):
    """Dot-product similarity between sinusoidal positional encodings (book: sec-architecture-positional-encoding).

    Args:
        n_positions: number of positions shown (the slider's range).
        d_model: initial width of the encoding; must be one of ``d_model_choices``.
        position: initial position p.
        normalize: divide by d_model / 2 (every row's squared norm), giving a cosine.
        d_model_choices: the widths offered in the menu.
    """

    n_positions = t.Int(64).tag(sync=True)
    d_model = t.Int(64).tag(sync=True)
    d_model_choices = t.List(t.Int()).tag(sync=True)
    position = t.Int(0).tag(sync=True)
    normalize = t.Bool(True).tag(sync=True)

    def __init__(self, n_positions: int = 64, d_model: int = 64, *, position: int = 10, normalize: bool = True,
                 d_model_choices=(8, 16, 32, 64, 128, 256)) -> None:  # fmt: skip
        check_int("n_positions", n_positions, low=2)
        check_int("position", position)
        if d_model not in d_model_choices or any(d < 2 or d % 2 for d in d_model_choices):
            raise ValueError(f"d_model must be one of d_model_choices {list(d_model_choices)} (even widths), "
                             f"got {d_model}")  # fmt: skip
        if not 0 <= position < n_positions:
            raise ValueError(f"position must be in 0..{n_positions - 1}, got {position}")
        super().__init__(n_positions=n_positions, d_model=d_model, d_model_choices=list(d_model_choices),
                         position=position, normalize=normalize)  # fmt: skip

    def encoding(self) -> torch.Tensor:
        """The (n_positions, d_model) table the widget shows, in float64."""
        return sinusoidal_encoding(self.n_positions, self.d_model).double()

    def similarities(self, position: int | None = None) -> torch.Tensor:
        """PE[position] · PE[q] for every q (divided by d_model/2 if ``normalize``), as the widget plots them."""
        p = self.position if position is None else position
        pe = self.encoding()
        sim = pe @ pe[p]  # (n_positions,)
        return sim / (self.d_model / 2) if self.normalize else sim
