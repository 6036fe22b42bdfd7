"""lmbook.context: loss by position in the window, and where attention goes (Chapter 1)."""

import pytest
import torch
import torch.nn.functional as F

from lmbook.context import DISTANCE_BINS, attention_by_distance, loss_by_position, stream_loss_by_position, windows
from lmbook.models import Decoder, DecoderConfig


def _decoder(max_len=8):
    torch.manual_seed(0)
    return Decoder(DecoderConfig(vocab_size=30, d_model=16, n_layers=2, n_heads=2, max_len=max_len)).eval()


def test_windows_cut_and_drop_the_tail():
    w = windows(list(range(19)), 6)
    assert w.tolist() == [list(range(6)), list(range(6, 12)), list(range(12, 18))]
    with pytest.raises(ValueError, match="size must be an int >= 2"):
        windows(range(10), 1)
    with pytest.raises(ValueError, match="fewer than one window of size=8"):
        windows(list(range(5)), 8)
    with pytest.raises(ValueError, match=r"1-D\), got shape \(2, 3\)"):
        windows(torch.zeros(2, 3, dtype=torch.long), 2)


def test_loss_by_position_matches_each_window_scored_alone():
    dec = _decoder()
    ids = torch.randint(0, 30, (8 * 5 + 3,))
    got = loss_by_position(dec, ids, batch_size=2)  # batches that do not divide the windows
    assert got.shape == (7,)
    want = torch.zeros(7, dtype=torch.float64)
    for w in windows(ids, 8):
        with torch.no_grad():
            logits = dec(w[None]).logits[0].double()
        want += F.cross_entropy(logits[:-1], w[1:], reduction="none")
    assert torch.allclose(got, want / 5, atol=1e-9)
    dec.train()
    loss_by_position(dec, ids)
    assert dec.training, "the model's mode is restored"


def test_stream_loss_by_position_picks_the_same_targets():
    # log p(ids[i + 1]) = -(i + 1): the loss of target ids[j] is j, so entry t averages w * size + t + 1.
    n_ids, size = 3 * 4 + 2, 4
    lp = -torch.arange(1, n_ids, dtype=torch.float64)
    got = stream_loss_by_position(lp, size)
    assert got.tolist() == pytest.approx([sum(w * size + t + 1 for w in range(3)) / 3 for t in range(size - 1)])
    with pytest.raises(ValueError, match="fewer than one window"):
        stream_loss_by_position(lp[:2], size)


def test_attention_by_distance_sums_to_one_and_bins_by_offset():
    T = 8
    previous = torch.zeros(1, 1, T, T)
    previous[0, 0, 0, 0] = 1
    previous[0, 0, torch.arange(1, T), torch.arange(T - 1)] = 1  # every query attends 1 token back
    uniform = torch.ones(T, T).tril()
    uniform = (uniform / uniform.sum(-1, keepdim=True))[None, None].expand(2, 3, T, T)
    share = attention_by_distance([previous, uniform], first_query=4)
    assert share.shape == (2, len(DISTANCE_BINS)) and torch.allclose(share.sum(1), torch.ones(2, dtype=torch.float64))
    assert share[0, 1] == 1  # all of it one token back
    # uniform over 0..q back for q = 4..7: distance 0 gets (1/5 + 1/6 + 1/7 + 1/8) / 4
    assert share[1, 0].item() == pytest.approx((1 / 5 + 1 / 6 + 1 / 7 + 1 / 8) / 4)
    with pytest.raises(ValueError, match="empty"):
        attention_by_distance([])
    with pytest.raises(ValueError, match=r"first_query must be in 0..7, got 8"):
        attention_by_distance([previous], first_query=8)
    with pytest.raises(ValueError, match=r"\(batch, heads, T, T\)"):
        attention_by_distance([torch.zeros(1, 4, 4)])


def test_a_model_that_uses_context_gains_with_position():
    """A decoder trained on a sequence that repeats with period 5 can only predict from position 5 on."""
    dec = _decoder(max_len=16)
    torch.manual_seed(1)
    opt = torch.optim.Adam(dec.parameters(), lr=1e-2)
    for _ in range(150):
        period = torch.randint(3, 30, (16, 5))
        batch = period.repeat(1, 4)[:, :16]  # (16, 16): five random tokens, repeated
        loss = F.cross_entropy(dec(batch).logits[:, :-1].flatten(0, 1), batch[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    stream = torch.randint(3, 30, (40, 5)).repeat(1, 4)[:, :16].flatten()
    by_pos = loss_by_position(dec.eval(), stream)
    assert by_pos[:4].mean() > 2.0 > 0.5 > by_pos[5:].mean(), by_pos
