"""The attention explorer's JavaScript math equals lmbook's Python attention."""

import pytest
import torch
from jsrun import run_js

from lmbook.widgets import AttentionExplorer


@pytest.fixture
def explorer():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(3, 7, 16, generator=g), torch.randn(3, 7, 16, generator=g)
    return AttentionExplorer([f"t{i}" for i in range(7)], q, k, head=1)


@pytest.mark.parametrize("temperature", [0.25, 1.0, 3.0])
@pytest.mark.parametrize("use_scale", [True, False])
@pytest.mark.parametrize("causal", [True, False])
def test_js_weights_equal_python_weights(explorer, temperature, use_scale, causal):
    explorer.temperature, explorer.use_scale, explorer.causal = temperature, use_scale, causal
    js = run_js("attention_explorer.js", "attentionWeights", explorer.scores[explorer.head],
                {"dK": explorer.d_k, "temperature": temperature, "useScale": use_scale, "causal": causal})
    torch.testing.assert_close(torch.tensor(js, dtype=torch.float64), explorer.weights(), atol=1e-9, rtol=0)


def test_js_entropy_in_bits():
    assert run_js("attention_explorer.js", "entropyBits", [0.25, 0.25, 0.25, 0.25]) == pytest.approx(2.0)
    assert run_js("attention_explorer.js", "entropyBits", [1.0, 0.0]) == pytest.approx(0.0)


def test_js_rejects_non_positive_temperature():
    with pytest.raises(RuntimeError, match="temperature must be > 0"):
        run_js("attention_explorer.js", "attentionWeights", [[1.0]], {"dK": 1, "temperature": 0})


def test_widget_validates_its_input():
    with pytest.raises(ValueError, match="tokens has 2 entries but query has 3 positions"):
        AttentionExplorer(["a", "b"], torch.randn(3, 4), torch.randn(3, 4))
    with pytest.raises(ValueError, match="query and key must both be"):
        AttentionExplorer(["a", "b"], torch.randn(2, 4), torch.randn(2, 5))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        AttentionExplorer(["a", "b"], torch.randn(2, 4), torch.randn(2, 4), temperature=0)


def test_widget_state_carries_raw_scores(explorer):
    assert explorer.d_k == 16 and len(explorer.scores) == 3 and len(explorer.scores[0]) == 7
