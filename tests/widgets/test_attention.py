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


def test_js_prints_a_weight_of_one_as_1_00():
    """A cell of weight 1 used to read ".00" (the leading "1" was sliced off with the "0")."""
    assert run_js("attention_explorer.js", "formatWeight", 1.0) == "1.00"
    assert run_js("attention_explorer.js", "formatWeight", 0.996) == "1.00"
    assert run_js("attention_explorer.js", "formatWeight", 0.42) == ".42"
    assert run_js("attention_explorer.js", "formatWeight", 0.004) == ""


@pytest.mark.parametrize(("temperature", "use_scale", "causal", "query"),
                         [(1.0, True, False, 3), (0.3, False, False, 0), (2.0, True, True, 2), (1.0, False, True, 6)])
def test_js_raw_scores_equal_python_twin(explorer, temperature, use_scale, causal, query):
    explorer.temperature, explorer.use_scale, explorer.causal, explorer.query = temperature, use_scale, causal, query
    scores = explorer.scores[explorer.head]
    js = run_js("attention_explorer.js", "softmaxInputs", scores[query],
                {"dK": explorer.d_k, "temperature": temperature, "useScale": use_scale, "causal": causal,
                 "query": query, "nQueries": len(scores)})
    js = torch.tensor([float("-inf") if v is None else v for v in js], dtype=torch.float64)  # JSON: -inf -> null
    torch.testing.assert_close(js, explorer.softmax_inputs(), atol=1e-9, rtol=0)
    torch.testing.assert_close(js.softmax(-1), explorer.weights()[query], atol=1e-9, rtol=0)
    html = run_js("attention_explorer.js", "rawScoresHtml", explorer.tokens, scores[query],
                  [None if v == float("-inf") else v for v in js.tolist()], explorer.weights()[query].tolist(),
                  {"dK": explorer.d_k, "useScale": use_scale, "temperature": temperature})
    assert 'class="raw"' in html and f"{scores[query][0]:.2f}" in html


@pytest.mark.parametrize("d_k", [1, 16, 32, 64, 24])
def test_temperature_slider_reaches_the_unscaled_softmax(d_k):
    """Unticking ÷√d_k equals T = 1/√d_k with it ticked; the slider must reach that T (and √d_k)."""
    r = run_js("attention_explorer.js", "temperatureRange", d_k)
    assert 2 ** r["min"] == pytest.approx(min(0.25, d_k**-0.5)) and 2 ** r["max"] == pytest.approx(max(4, d_k**0.5))
    steps = (r["max"] - r["min"]) / r["step"]
    assert steps == pytest.approx(round(steps)) and 0.04 < r["step"] < 0.06, "both ends must be slider positions"
    g = torch.Generator().manual_seed(d_k)
    q, k = torch.randn(5, d_k, generator=g) * 2, torch.randn(5, d_k, generator=g) * 2
    w = AttentionExplorer(list("abcde"), q, k, use_scale=False)
    unticked = w.weights()
    w.use_scale, w.temperature = True, d_k**-0.5
    torch.testing.assert_close(w.weights(), unticked, atol=1e-12, rtol=0)
    js = run_js("attention_explorer.js", "attentionWeights", w.scores[0],
                {"dK": d_k, "temperature": 2 ** r["min"] if d_k >= 16 else d_k**-0.5, "useScale": True})
    torch.testing.assert_close(torch.tensor(js, dtype=torch.float64), unticked, atol=1e-9, rtol=0)
    ticked_js = run_js("attention_explorer.js", "attentionWeights", w.scores[0],
                       {"dK": d_k, "temperature": d_k**0.5, "useScale": False})
    w.temperature = 1.0
    torch.testing.assert_close(torch.tensor(ticked_js, dtype=torch.float64), w.weights(), atol=1e-9, rtol=0)


def test_js_note_states_the_temperature_equivalence():
    note = run_js("attention_explorer.js", "temperatureNote", 32)
    assert "unticking ÷√d<sub>k</sub> is the same as keeping it ticked and setting T = 1/√d<sub>k</sub> = 0.18" in note
    assert "unticked at T = √d<sub>k</sub> = 5.66" in note
