"""lmbook.layers: equivalence with torch.nn Transformer layers, shapes, masks, switches."""

import math

import pytest
import torch
from torch import nn

from lmbook.attention import KVCache, padding_mask
from lmbook.layers import (
    DecoderLayer,
    EncoderLayer,
    FeedForward,
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    TokenEmbedding,
    sinusoidal_encoding,
)

D, H, FF = 16, 4, 32


def _pad_mask(B, T):
    real = torch.ones(B, T, dtype=torch.long)
    real[1, T - 2 :] = 0  # second sequence ends in two padding tokens
    return real


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_matches_torch(norm_first, activation):
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, activation=activation, batch_first=True,
                                     norm_first=norm_first).eval()
    mine = EncoderLayer(D, H, FF, dropout=0.0, activation=activation, norm_first=norm_first).eval()
    mine.load_from_torch(ref)
    x = torch.randn(3, 7, D)
    real = _pad_mask(3, 7)
    # torch: key_padding_mask True = ignore; lmbook: True = may attend.
    expected = ref(x, src_key_padding_mask=real == 0)
    got, w = mine(x, padding_mask(real))
    assert w is None
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # causal self-attention as well
    cm = nn.Transformer.generate_square_subsequent_mask(7)
    expected = ref(x, src_mask=cm, is_causal=True)
    got, _ = mine(x, causal=True)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(norm_first):
    torch.manual_seed(1)
    ref = nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    mine = DecoderLayer(D, H, FF, dropout=0.0, norm_first=norm_first).eval()
    mine.load_from_torch(ref)
    tgt, mem = torch.randn(2, 5, D), torch.randn(2, 7, D)
    real = _pad_mask(2, 7)
    expected = ref(tgt, mem, tgt_mask=nn.Transformer.generate_square_subsequent_mask(5), tgt_is_causal=True,
                   memory_key_padding_mask=real == 0)
    got, ws, wc = mine(tgt, mem, memory_mask=padding_mask(real))
    assert ws is None and wc is None
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_need_weights_path_equals_fast_path_and_weights_are_proper():
    torch.manual_seed(2)
    layer = DecoderLayer(D, H, FF, dropout=0.0, norm_first=True).eval()
    x, mem = torch.randn(2, 6, D), torch.randn(2, 4, D)
    real = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    fast, _, _ = layer(x, mem, memory_mask=padding_mask(real))
    slow, ws, wc = layer(x, mem, memory_mask=padding_mask(real), need_weights=True)
    torch.testing.assert_close(slow, fast, atol=1e-5, rtol=1e-5)
    assert ws.shape == (2, H, 6, 6) and wc.shape == (2, H, 6, 4)  # bertviz (B, heads, q, k)
    torch.testing.assert_close(ws.sum(-1), torch.ones(2, H, 6))
    torch.testing.assert_close(wc.sum(-1), torch.ones(2, H, 6))
    assert torch.all(ws.triu(diagonal=1) == 0)  # causal: nothing above the diagonal
    assert torch.all(wc[1, :, :, 2:] == 0)  # padding keys get no weight


def test_decoder_layer_cache_matches_full_sequence():
    torch.manual_seed(3)
    layer = DecoderLayer(D, H, FF, dropout=0.0, norm_first=True, cross_attention=False).eval()
    x = torch.randn(1, 5, D)
    full, _, _ = layer(x)
    cache = KVCache()
    first, _, _ = layer(x[:, :3], cache=cache)
    steps = [layer(x[:, t : t + 1], cache=cache)[0] for t in (3, 4)]
    torch.testing.assert_close(torch.cat([first, *steps], dim=1), full, atol=1e-5, rtol=1e-5)
    assert len(cache) == 5


def test_decoder_layer_memory_errors():
    with_cross = DecoderLayer(D, H, FF, cross_attention=True)
    without = DecoderLayer(D, H, FF, cross_attention=False)
    x = torch.randn(1, 3, D)
    with pytest.raises(ValueError, match="memory is required"):
        with_cross(x)
    with pytest.raises(ValueError, match="no cross-attention"):
        without(x, x)


def test_residual_and_layer_norm_switches():
    torch.manual_seed(4)
    x = torch.randn(2, 5, D)
    plain = EncoderLayer(D, H, FF, dropout=0.0, residual=False, use_layer_norm=False).eval()
    assert isinstance(plain.norm1, nn.Identity)
    y, _ = plain(x)
    # No residual, no norm: the layer is just FFN(attention(x)).
    expected = plain.ff(plain.self_attn(x)[0])
    torch.testing.assert_close(y, expected)
    full = EncoderLayer(D, H, FF, dropout=0.0).eval()
    y, _ = full(x)
    torch.testing.assert_close(y.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)  # post-LN output is normalised


def test_sinusoidal_table_formula_and_module():
    pe = sinusoidal_encoding(50, 8)
    assert pe.shape == (50, 8)
    pos, i = 7, 2
    assert pe[pos, 2 * i].item() == pytest.approx(math.sin(pos / 10000 ** (2 * i / 8)), abs=1e-6)
    assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(pos / 10000 ** (2 * i / 8)), abs=1e-6)
    mod = SinusoidalPositionalEncoding(8, max_len=50)
    assert "pe" in dict(mod.named_buffers()) and not list(mod.parameters())
    x = torch.zeros(2, 4, 8)
    torch.testing.assert_close(mod(x, start=3), pe[3:7].expand(2, 4, 8))
    with pytest.raises(ValueError, match="max_len=50"):
        mod(torch.zeros(1, 51, 8))
    with pytest.raises(ValueError, match="even d_model"):
        sinusoidal_encoding(10, 7)


def test_learned_positions_and_token_embedding():
    lp = LearnedPositionalEncoding(10, 4)
    x = torch.zeros(1, 3, 4)
    torch.testing.assert_close(lp(x, start=2)[0], lp.weight[2:5])
    with pytest.raises(ValueError, match="longer than max_len=10"):
        lp(torch.zeros(1, 11, 4))
    emb = TokenEmbedding(5, 4, scale=True)
    ids = torch.tensor([[0, 4]])
    torch.testing.assert_close(emb(ids), emb.weight[ids] * 2.0)
    with pytest.raises(ValueError, match=r"input_ids must lie in \[0, vocab_size=5\)"):
        emb(torch.tensor([[5]]))
    with pytest.raises(ValueError, match="input_ids"):
        emb(torch.tensor([[-1]]))


def test_learned_positions_can_start_sinusoidal():
    lp = LearnedPositionalEncoding(16, 8)
    assert lp.init_sinusoidal(0.05) is lp and lp.weight.requires_grad
    torch.testing.assert_close(lp.weight.detach(), 0.05 * sinusoidal_encoding(16, 8))
    # a fixed offset is the same rotation everywhere: row 5 relates to row 4 as row 9 to row 8
    w = lp.weight.detach().view(16, 4, 2)
    def angle(a, b):
        return torch.atan2(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0], (a * b).sum(-1))

    torch.testing.assert_close(angle(w[4], w[5]), angle(w[8], w[9]))
    for bad in (0, -1.0, float("nan"), "0.1"):
        with pytest.raises(ValueError, match="scale must be a positive finite number"):
            lp.init_sinusoidal(bad)
    torch.testing.assert_close(lp.weight.detach(), 0.05 * sinusoidal_encoding(16, 8))  # a refused call changes nothing


def test_feed_forward_is_position_wise():
    torch.manual_seed(5)
    ff = FeedForward(D, FF, activation="gelu").eval()
    x = torch.randn(2, 5, D)
    torch.testing.assert_close(ff(x)[:, 2], ff(x[:, 2:3])[:, 0])
    expected = ff.linear2(torch.nn.functional.gelu(ff.linear1(x)))
    torch.testing.assert_close(ff(x), expected)
    with pytest.raises(ValueError, match="activation"):
        FeedForward(D, FF, activation="swish")


@pytest.mark.parametrize("norm_first", [False, True])
def test_dropout_acts_in_training_only(norm_first):
    """Dropout after each sublayer and inside the FFN is applied in training mode with p > 0, and only then."""
    torch.manual_seed(5)
    x = torch.randn(2, 6, D)
    layer = EncoderLayer(D, H, FF, dropout=0.5, norm_first=norm_first)
    eval_out = layer.eval()(x)[0]
    layer.train()
    a, b = layer(x)[0], layer(x)[0]
    assert not torch.allclose(a, eval_out) and not torch.allclose(a, b)  # random masks, drawn per call
    torch.manual_seed(6)
    ff = FeedForward(D, FF, dropout=0.5).train()
    h = ff.act(ff.linear1(x))
    torch.manual_seed(7)
    want = ff.linear2(nn.functional.dropout(h, 0.5, training=True))
    torch.manual_seed(7)
    torch.testing.assert_close(ff(x), want)
    no_drop = EncoderLayer(D, H, FF, dropout=0.0, norm_first=norm_first)
    torch.testing.assert_close(no_drop.train()(x)[0], no_drop.eval()(x)[0])
