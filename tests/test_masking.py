"""lmbook.masking's exercise checker (Chapter 4) accepts the library's masking and names what breaks."""

import pytest
import torch

from lmbook.masking import check_mlm_masking, mask_tokens_for_mlm


def test_mlm_checker_accepts_lmbook_masking():
    assert "all 18 checks passed" in check_mlm_masking(lambda ids, **kw: mask_tokens_for_mlm(ids, **kw))


def _always_mask(ids, vocab_size, mask_id, special_ids, mlm_probability=0.15, generator=None):
    special = torch.isin(ids, torch.tensor(special_ids))
    chosen = (torch.rand(ids.shape, generator=generator) < mlm_probability) & ~special
    return torch.where(chosen, mask_id, ids), torch.where(chosen, ids, -100)


def _masks_specials(ids, **kw):
    masked, labels = mask_tokens_for_mlm(ids, **kw)
    labels[:, 0], masked[:, 0] = ids[:, 0], kw["mask_id"]
    return masked, labels


@pytest.mark.parametrize(("fn", "message"), [
    (_always_mask, "became \\[MASK\\]"),
    (_masks_specials, "special tokens"),
    (lambda ids, **kw: mask_tokens_for_mlm(ids, **{**kw, "generator": None}), "same generator seed"),
    (lambda ids, **kw: mask_tokens_for_mlm(ids, **{**kw, "mlm_probability": 0.15}), "with mlm_probability=0.3"),
])
def test_mlm_checker_names_the_mistake(fn, message):
    with pytest.raises(AssertionError, match=message):
        check_mlm_masking(fn)
