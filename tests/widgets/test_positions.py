"""The positional-encoding explorer's JavaScript equals lmbook's sinusoidal encoding."""

import pytest
import torch
from jsrun import run_js

from lmbook.layers import sinusoidal_encoding
from lmbook.widgets.positions import PositionExplorer


@pytest.mark.parametrize(("n", "d"), [(1, 2), (10, 8), (50, 64)])
def test_js_table_equals_lmbook_table(n, d):
    js = torch.tensor(run_js("position_explorer.js", "sinusoidalEncoding", n, d), dtype=torch.float64)
    torch.testing.assert_close(js, sinusoidal_encoding(n, d).double(), atol=2e-5, rtol=0)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("position", [0, 7, 39])
def test_js_similarity_equals_widget_twin(position, normalize):
    w = PositionExplorer(40, 32, position=position, normalize=normalize)
    pe = run_js("position_explorer.js", "sinusoidalEncoding", 40, 32)
    js = run_js("position_explorer.js", "positionSimilarity", pe, position, {"normalize": normalize})
    torch.testing.assert_close(torch.tensor(js, dtype=torch.float64), w.similarities(), atol=1e-4, rtol=0)


def test_similarity_depends_only_on_offset_and_peaks_at_zero():
    w = PositionExplorer(100, 64)
    s10, s50 = w.similarities(10), w.similarities(50)
    torch.testing.assert_close(s10[10:40], s50[50:80], atol=1e-4, rtol=0)  # same offsets, same numbers
    assert s10[10] == pytest.approx(1.0, abs=1e-5) and s10.argmax().item() == 10
    assert s10[11] > s10[13] > s10[20]  # nearby positions are more similar


def test_js_rejects_bad_arguments():
    with pytest.raises(RuntimeError, match="even dModel"):
        run_js("position_explorer.js", "sinusoidalEncoding", 4, 7)
    with pytest.raises(RuntimeError, match="position must be in 0..1"):
        run_js("position_explorer.js", "positionSimilarity", [[0, 1], [1, 0]], 2)


def test_widget_validates_its_input():
    with pytest.raises(ValueError, match="d_model must be one of"):
        PositionExplorer(10, 12)
    with pytest.raises(ValueError, match="position must be in 0..9"):
        PositionExplorer(10, 16, position=10)
    with pytest.raises(ValueError, match="n_positions must be >= 2"):
        PositionExplorer(1, 16, position=0)


def _half_width(sim: torch.Tensor, p: int) -> int:
    return next(k for k in range(1, len(sim) - p) if sim[p + k] < 0.5)


def test_more_dimensions_make_the_curve_smoother_and_the_peak_wider_not_sharper():
    """What the plot shows (the book's text once said "sharper"): as d_model grows, the next
    position gets more similar, the curve first drops below 0.5 further away, and it wiggles less;
    with few dimensions a far position can look almost like a neighbour."""
    p, stats = 20, []
    for d in (8, 16, 32, 64, 128, 256):
        sim = PositionExplorer(100, d, position=p).similarities()
        far = sim[(torch.arange(100) - p).abs() >= 10].max().item()
        stats.append((sim[p + 1].item(), _half_width(sim, p), (sim[1:] - sim[:-1]).abs().sum().item(), far))
    next_sim, half, wiggle, far = zip(*stats, strict=True)
    assert list(next_sim) == sorted(next_sim) and list(half) == sorted(half) and half[0] < half[-1] / 5
    assert list(wiggle) == sorted(wiggle, reverse=True)
    assert far[0] > next_sim[0] and far[0] > 0.9 and max(far[3:]) < 0.7


def test_js_farthest_lookalike_equals_python():
    for d in (8, 128):
        w = PositionExplorer(100, d, position=20)
        sim = w.similarities()
        js = run_js("position_explorer.js", "farthestLookalike", sim.tolist(), 20, 10)
        offsets = torch.arange(100) - 20
        masked = sim.masked_fill(offsets.abs() < 10, float("-inf"))
        assert js["offset"] == offsets[masked.argmax()].item() and js["value"] == pytest.approx(masked.max().item())
