"""How sure is a measured accuracy? Confidence intervals for the book's small test sets.

A test set of a few hundred examples gives an accuracy with an error bar of several points:
one more right answer out of 200 moves it by half a point, and a different draw of the test
examples by much more. Whenever the book compares two prompts or two models on the same
examples it reports these intervals (book: sec-prompting-wording), so that a reader can tell a difference from noise.

Example:
    >>> lo, hi = wilson_interval(45, 100)
    >>> round(lo, 3), round(hi, 3)
    (0.356, 0.548)
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

__all__ = ["paired_bootstrap_difference", "wilson_interval"]


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a proportion ``correct / n`` (95 % for the default ``z``).

    Unlike the textbook ``p ± z·sqrt(p(1-p)/n)`` it stays inside [0, 1] and is honest near 0 % or
    100 %, where the simple one collapses to a single point.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if not isinstance(correct, int) or not 0 <= correct <= n:
        raise ValueError(f"correct must be an int between 0 and n={n}, got {correct!r}")
    if not (math.isfinite(z) and z > 0):
        raise ValueError(f"z must be finite and > 0, got {z!r}")
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_bootstrap_difference(a: Sequence[bool], b: Sequence[bool], *, resamples: int = 2000,
                                seed: int = 0) -> dict[str, float]:  # fmt: skip
    """Accuracy of ``a`` minus accuracy of ``b`` on the *same* examples, with a 95 % bootstrap interval.

    ``a`` and ``b`` say, per example, whether each system got it right. Resampling examples (not
    the two systems separately) keeps the pairing, so an example that is hard for both does not
    widen the interval. ``p_a_not_better`` is the share of resamples in which ``a`` does not beat ``b``.
    """
    if len(a) != len(b) or not a:
        raise ValueError(f"a and b must be non-empty and of equal length, got {len(a)} and {len(b)}")
    if not isinstance(resamples, int) or resamples < 100:
        raise ValueError(f"resamples must be an int >= 100, got {resamples!r}")
    diff = [int(x) - int(y) for x, y in zip(a, b, strict=True)]
    n, rng = len(diff), random.Random(seed)
    stats = sorted(sum(diff[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return {"difference": sum(diff) / n, "low": stats[int(0.025 * resamples)],
            "high": stats[int(0.975 * resamples) - 1], "p_a_not_better": sum(s <= 0 for s in stats) / resamples}
