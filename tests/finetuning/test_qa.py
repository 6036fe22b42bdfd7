"""lmbook.finetuning.qa: the best-span exercise checker (Chapter 5, question answering)."""

import pytest
import torch

from lmbook.finetuning import best_span, check_best_span


def test_span_checker_accepts_lmbook_best_span():
    assert "every span valid and best" in check_best_span(lambda s, e, a, m: best_span(s, e, a, m)[:2])


def test_span_checker_rejects_independent_argmaxes():
    def separate(s, e, allowed, m):
        return s.masked_fill(~allowed, -1e9).argmax().item(), e.masked_fill(~allowed, -1e9).argmax().item()

    with pytest.raises(AssertionError, match="ends before it starts|more than max_answer_len|scores"):
        check_best_span(separate)


def test_span_checker_rejects_spans_outside_the_passage():
    def unmasked(s, e, allowed, m):
        return best_span(s, e, torch.ones_like(allowed), m)[:2]

    with pytest.raises(AssertionError, match="leaves the passage"):
        check_best_span(unmasked)
