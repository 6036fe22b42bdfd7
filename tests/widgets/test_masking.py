"""The masking explorer's JavaScript (PRNG and 80/10/10 rule) equals its Python twin."""

import itertools

import pytest
from jsrun import run_js

from lmbook.widgets.masking import MaskingExplorer, mask_sequence, mulberry32

TOKENS = ["[CLS]"] + [f"w{i}" for i in range(60)] + ["[SEP]"] + [f"v{i}" for i in range(40)] + ["[SEP]"]
POOL = [f"p{i}" for i in range(37)]


@pytest.mark.parametrize("seed", [0, 1, 123456789, 2**32 - 1])
def test_js_prng_equals_python_prng(seed):
    js = run_js("masking_explorer.js", "randomStream", seed, 50)
    py = list(itertools.islice(mulberry32(seed), 50))
    assert js == py  # bit for bit: both are exact float64 of a 32-bit integer / 2**32
    assert all(0 <= x < 1 for x in py)


@pytest.mark.parametrize("rate", [0.0, 0.15, 0.5, 1.0])
@pytest.mark.parametrize("seed", [0, 7])
def test_js_masks_equal_python_masks(rate, seed):
    ex = MaskingExplorer(TOKENS, POOL, rate=rate, seed=seed)
    js = run_js("masking_explorer.js", "maskSequence", ex.special, {"rate": rate, "seed": seed, "poolSize": len(POOL)})
    assert [tuple(x) for x in js] == ex.mask()
    assert run_js("masking_explorer.js", "countKinds", js) == ex.counts()


def test_specials_are_never_selected_and_rate_one_selects_everything_else():
    ex = MaskingExplorer(TOKENS, POOL, rate=1.0)
    kinds = [k for k, _ in ex.mask()]
    assert [kinds[i] for i, tok in enumerate(TOKENS) if tok.startswith("[")] == ["keep"] * 3
    assert ex.counts()["keep"] == 3
    assert ex.masked_tokens()[0] == "[CLS]"


def test_raising_the_rate_only_adds_selections():
    special = [False] * 300
    low = mask_sequence(special, rate=0.15, seed=3, pool_size=10)
    high = mask_sequence(special, rate=0.4, seed=3, pool_size=10)
    for a, b in zip(low, high, strict=True):
        if a[0] != "keep":
            assert a == b


def test_the_80_10_10_split_over_many_tokens():
    out = mask_sequence([False] * 20_000, rate=0.15, seed=0, pool_size=100)
    kinds = [k for k, _ in out]
    selected = len(kinds) - kinds.count("keep")
    assert selected / len(kinds) == pytest.approx(0.15, abs=0.01)
    assert kinds.count("mask") / selected == pytest.approx(0.8, abs=0.02)
    assert kinds.count("random") / selected == pytest.approx(0.1, abs=0.015)
    assert kinds.count("same") / selected == pytest.approx(0.1, abs=0.015)
    assert all(0 <= j < 100 for k, j in out if k == "random")


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="rate must be in"):
        MaskingExplorer(["a"], ["b"], rate=1.5)
    with pytest.raises(ValueError, match="special has 1 entries but tokens has 2"):
        MaskingExplorer(["a", "b"], ["c"], special=[True])
    with pytest.raises(ValueError, match="pool is empty"):
        MaskingExplorer(["a"], [])
    with pytest.raises(RuntimeError, match="rate must be in"):
        run_js("masking_explorer.js", "maskSequence", [False], {"rate": -1, "seed": 0, "poolSize": 3})
