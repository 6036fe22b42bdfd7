"""The sampling explorer's JavaScript math equals lmbook.generation's temperature / top-k / top-p."""

import re

import pytest
import torch
from jsrun import run_js

from lmbook.widgets.sampling import SamplingExplorer


@pytest.fixture
def explorer():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(300, generator=g) * 3
    tokens = [f"t{i}" for i in range(300)]
    return SamplingExplorer({"a": ("prompt a", logits, tokens), "b": ("prompt b", -logits, tokens)}, n=64)


def _js(explorer):
    out = run_js("sampling_explorer.js", "samplingDistribution", explorer.prompts[explorer.prompt_index]["logits"],
                 {"temperature": explorer.temperature, "topK": explorer.top_k or None,
                  "topP": explorer.top_p if explorer.top_p < 1 else None})
    return (torch.tensor(out["probs"], dtype=torch.float64), torch.tensor(out["kept"]),
            torch.tensor(out["final"], dtype=torch.float64))


@pytest.mark.parametrize(("temperature", "top_k", "top_p"),
                         [(1.0, 0, 1.0), (0.3, 5, 1.0), (2.5, 0, 0.5), (0.7, 10, 0.8), (1.0, 1, 0.9)])
def test_js_distribution_equals_python(explorer, temperature, top_k, top_p):
    explorer.temperature, explorer.top_k, explorer.top_p = temperature, top_k, top_p
    js_probs, js_kept, js_final = _js(explorer)
    probs, kept, final = explorer.distribution()
    assert torch.equal(js_kept, kept)
    torch.testing.assert_close(js_probs, probs, atol=1e-9, rtol=0)
    torch.testing.assert_close(js_final, final, atol=1e-9, rtol=0)


def test_filters_keep_the_expected_number_of_tokens(explorer):
    explorer.top_k = 7
    _, kept, final = _js(explorer)
    assert kept.sum() == 7 and final.sum().item() == pytest.approx(1.0)
    explorer.top_k, explorer.top_p = 0, 1e-6
    _, kept, _ = _js(explorer)
    assert kept.sum() == 1 and kept[0], "top-p with a tiny p keeps only the most likely token"


def test_temperature_flattens_and_sharpens(explorer):
    entropies = []
    for temperature in (0.2, 1.0, 5.0):
        explorer.temperature = temperature
        _, _, final = _js(explorer)
        entropies.append(run_js("sampling_explorer.js", "entropyBits", final.tolist()))
    assert entropies[0] < entropies[1] < entropies[2]


def test_js_rejects_bad_settings():
    with pytest.raises(RuntimeError, match="temperature must be > 0"):
        run_js("sampling_explorer.js", "samplingDistribution", [1.0, 2.0], {"temperature": 0})
    with pytest.raises(RuntimeError, match="top_p must be in"):
        run_js("sampling_explorer.js", "samplingDistribution", [1.0, 2.0], {"topP": 1.5})


def test_widget_stores_the_most_likely_tokens_sorted(explorer):
    entry = explorer.prompts[0]
    assert len(entry["logits"]) == 64 and entry["logits"] == sorted(entry["logits"], reverse=True)
    assert 0 < entry["covered"] <= 1


def test_widget_validates_its_input():
    with pytest.raises(ValueError, match="2 token strings for 3 logits"):
        SamplingExplorer({"x": ("x", torch.zeros(3), ["a", "b"])})
    with pytest.raises(ValueError, match="temperature must be > 0"):
        SamplingExplorer({"x": ("x", torch.zeros(2), ["a", "b"])}, temperature=0)
    with pytest.raises(ValueError, match="prompts is empty"):
        SamplingExplorer({})


def _css_rules(css: str) -> list[tuple[str, str]]:
    return [(sel.strip(), body) for sel, body in re.findall(r"([^{}]+)\{([^}]*)\}", css)]


def test_dropped_tokens_are_struck_through(explorer):
    """The line-through rule must match the token cell that carries "row-dropped" (it used to
    target `.row-dropped .tok`, a .tok inside a .row-dropped, which never exists)."""
    explorer.top_k = 3
    out = run_js("sampling_explorer.js", "samplingDistribution", explorer.prompts[0]["logits"], {"topK": 3})
    html = run_js("sampling_explorer.js", "barsHtml", explorer.prompts[0]["tokens"], out, 10)
    tok_classes = [set(c.split()) for c in re.findall(r'<div class="(tok[^"]*)"', html)]
    assert len(tok_classes) == 10 and sum("row-dropped" in c for c in tok_classes) == 7
    css = run_js("sampling_explorer.js", "cssText")
    strike = [sel for sel, body in _css_rules(css) if "line-through" in body]
    assert strike, "no line-through rule"
    for sel in strike:
        last = sel.split()[-1]  # the compound selector that must match the token cell itself
        needed = set(last.strip(".").split("."))
        dropped = [c for c in tok_classes if needed <= c]
        kept = [c for c in tok_classes if needed <= c and "row-dropped" not in c]
        assert len(dropped) == 7 and not kept, f"{sel!r} does not strike exactly the dropped token cells"


def test_prompt_box_opens_at_the_end_of_the_prompt():
    """The box clips long prompts; it must show their end (where the next token goes), not their start."""
    rules = dict(_css_rules(run_js("sampling_explorer.js", "cssText")))
    box = rules[".lmb-samp .prompt-text"]
    assert "overflow: auto" in box and "flex-direction: column-reverse" in box and "display: flex" in box
    assert "pre-wrap" in rules[".lmb-samp .prompt-text > div"]


def test_widget_says_how_many_tokens_it_keeps_out_of_the_vocabulary():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(49_152, generator=g) * 4
    w = SamplingExplorer({"p": ("text", logits, [f"t{i}" for i in range(49_152)])}, n=200)
    entry = w.prompts[0]
    assert entry["vocab_size"] == 49_152 and len(entry["logits"]) == 200
    expected = logits.topk(200).values.logsumexp(0).sub(logits.logsumexp(0)).exp().item()
    text = run_js("sampling_explorer.js", "coverageText", entry)
    assert text.startswith(f"showing the 200 most likely of 49,152 tokens; they hold {100 * expected:.1f} % of")
    full = SamplingExplorer({"p": ("text", logits[:50], [f"t{i}" for i in range(50)])}, n=200).prompts[0]
    assert run_js("sampling_explorer.js", "coverageText", full) == "showing all 50 tokens of the vocabulary."
