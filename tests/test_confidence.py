import math

import pytest

from lmbook.confidence import paired_bootstrap_difference, wilson_interval


def test_wilson_interval_matches_the_formula_and_stays_in_range():
    lo, hi = wilson_interval(45, 100)
    assert (round(lo, 3), round(hi, 3)) == (0.356, 0.548)  # computed by hand from Wilson (1927)
    assert wilson_interval(0, 20)[0] == 0.0 and 0.1 < wilson_interval(0, 20)[1] < 0.2
    assert wilson_interval(20, 20)[1] == 1.0
    lo_small, hi_small = wilson_interval(15, 30)
    lo_big, hi_big = wilson_interval(150, 300)
    assert hi_big - lo_big < (hi_small - lo_small) / math.sqrt(10) * 1.1, "ten times the data, ~sqrt(10) narrower"


def test_paired_bootstrap_sees_a_real_difference_and_no_difference():
    a = [True] * 70 + [False] * 30
    b = [True] * 50 + [False] * 50
    r = paired_bootstrap_difference(a, b)
    assert r["difference"] == pytest.approx(0.2) and 0.1 < r["low"] < 0.2 < r["high"] < 0.3
    assert r["p_a_not_better"] < 0.01
    same = paired_bootstrap_difference(a, a)
    assert same["difference"] == same["low"] == same["high"] == 0.0 and same["p_a_not_better"] == 1.0


@pytest.mark.parametrize("call, name", [
    (lambda: wilson_interval(5, 0), "n"), (lambda: wilson_interval(11, 10), "correct"),
    (lambda: wilson_interval(1, 10, z=float("nan")), "z"), (lambda: paired_bootstrap_difference([], []), "a and b"),
    (lambda: paired_bootstrap_difference([True], [True, False]), "a and b"),
    (lambda: paired_bootstrap_difference([True], [False], resamples=5), "resamples"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
