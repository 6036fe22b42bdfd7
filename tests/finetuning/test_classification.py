"""lmbook.finetuning.classification: mean pooling over the real tokens."""

from __future__ import annotations

import torch

from lmbook.finetuning import mean_pool


def test_mean_pool_averages_the_real_tokens_only():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[2.0, 0.0], [4.0, 2.0], [6.0, 4.0]]])  # (2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    torch.testing.assert_close(mean_pool(h, mask), torch.tensor([[2.0, 3.0], [4.0, 2.0]]))
    torch.testing.assert_close(mean_pool(h), h.sum(1) / 3)
