"""Chapter 2's helpers: the switchable deep stack, per-layer gradient norms and the PE checker."""

import pytest
import torch

from lmbook.architecture import STACK_VARIANTS, DeepStack, check_sinusoidal_encoding, layer_gradient_norms
from lmbook.layers import sinusoidal_encoding


@pytest.mark.parametrize("name", list(STACK_VARIANTS))
def test_deep_stack_shapes_and_causality(name):
    net = DeepStack(20, n_layers=3, d_model=16, n_heads=2, d_ff=32, **STACK_VARIANTS[name]).eval()
    ids = torch.randint(0, 20, (2, 7))
    logits, loss = net(ids, ids)
    assert logits.shape == (2, 7, 20) and loss.dim() == 0
    changed = ids.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 20
    assert torch.allclose(net(changed)[0][:, :5], logits[:, :5], atol=1e-6), "position < 5 must not see token 5"
    assert isinstance(net.final_norm, torch.nn.LayerNorm) == (name == "pre-LN (GPT-2)")


def test_layer_gradient_norms_one_per_layer():
    net = DeepStack(20, n_layers=4, d_model=16, n_heads=2, d_ff=32)
    with pytest.raises(ValueError, match="backward"):
        layer_gradient_norms(net)
    ids = torch.randint(0, 20, (2, 6))
    net(ids, ids)[1].backward()
    norms = layer_gradient_norms(net)
    assert len(norms) == 4 and all(n > 0 for n in norms)


def test_check_sinusoidal_encoding_accepts_lmbook_and_names_mistakes():
    assert "equal" in check_sinusoidal_encoding(sinusoidal_encoding)

    def swapped(n, d):
        t = sinusoidal_encoding(n, d)
        return torch.stack([t[:, 1::2], t[:, 0::2]], -1).flatten(1)

    def halves(n, d):
        t = sinusoidal_encoding(n, d)
        return torch.cat([t[:, 0::2], t[:, 1::2]], 1)

    def base_1000(n, d):
        pos = torch.arange(n)[:, None].float()
        freq = 1000 ** (-torch.arange(0, d, 2).float() / d)
        return torch.stack([torch.sin(pos * freq), torch.cos(pos * freq)], -1).flatten(1)

    with pytest.raises(AssertionError, match="swapped"):
        check_sinusoidal_encoding(swapped)
    with pytest.raises(AssertionError, match="interleaves"):
        check_sinusoidal_encoding(halves)
    with pytest.raises(AssertionError, match="base 10000"):
        check_sinusoidal_encoding(base_1000)
    with pytest.raises(AssertionError, match="shape"):
        check_sinusoidal_encoding(lambda n, d: torch.zeros(d, n + 1))


@pytest.mark.parametrize("norm_first", [False, True])
def test_deep_stack_without_ffn_is_attention_only(norm_first):
    torch.manual_seed(0)
    full = DeepStack(20, n_layers=2, d_model=16, n_heads=2, d_ff=32, norm_first=norm_first).eval()
    torch.manual_seed(0)
    bare = DeepStack(20, n_layers=2, d_model=16, n_heads=2, d_ff=32, norm_first=norm_first, use_ffn=False).eval()
    ffn, norm2 = (16 * 32 + 32) + (32 * 16 + 16), 2 * 16  # W1, b1, W2, b2; the second LayerNorm's γ, β
    assert sum(p.numel() for p in full.parameters()) - sum(p.numel() for p in bare.parameters()) == 2 * (ffn + norm2)
    ids = torch.randint(0, 20, (2, 7))
    # By hand: each block is only the attention sublayer, wired post-LN LN(x + A(x)) or pre-LN x + A(LN(x)).
    x = bare.pos(bare.emb(ids))
    for layer in bare.layers:
        if norm_first:
            x = x + layer.self_attn(layer.norm1(x), causal=True)[0]
        else:
            x = layer.norm1(x + layer.self_attn(x, causal=True)[0])
    want = bare.head(bare.final_norm(x))
    assert torch.allclose(bare(ids)[0], want, atol=1e-6)
    assert not torch.allclose(full(ids)[0], want, atol=1e-3)


def test_deep_stack_bad_switches_are_named():
    with pytest.raises(ValueError, match="use_ffn=False needs residual=True"):
        DeepStack(20, n_layers=2, d_model=16, n_heads=2, d_ff=32, residual=False, use_ffn=False)
    with pytest.raises(TypeError, match="use_ffn must be True or False, got 'no'"):
        DeepStack(20, n_layers=2, d_model=16, n_heads=2, d_ff=32, use_ffn="no")
