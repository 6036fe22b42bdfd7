"""lmbook.attention against PyTorch's references, masks, gradients and bad input."""

import math

import pytest
import torch
import torch.nn.functional as F

from lmbook.attention import (
    KVCache,
    MultiHeadAttention,
    QKVRows,
    attention_scores,
    causal_mask,
    check_attention,
    padding_mask,
    scaled_dot_product_attention,
)


def qkv(*shape, dv=None, dtype=torch.float32):
    q, k = torch.randn(*shape, dtype=dtype), torch.randn(*shape, dtype=dtype)
    v = torch.randn(*shape[:-1], dv or shape[-1], dtype=dtype)
    return q, k, v


@pytest.mark.parametrize("shape", [(5, 8), (2, 7, 16), (3, 4, 6, 32)])
def test_matches_torch_sdpa_with_and_without_weights(shape):
    q, k, v = qkv(*shape, dv=3)
    ref = F.scaled_dot_product_attention(q, k, v)
    out, w = scaled_dot_product_attention(q, k, v)
    fast, none = scaled_dot_product_attention(q, k, v, need_weights=False)
    assert none is None
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(fast, ref, atol=1e-6, rtol=0)
    assert w.shape == (*shape[:-1], shape[-2]) and torch.allclose(w.sum(-1), torch.ones(()))


def test_weights_equal_the_formula_by_hand():
    q, k, v = qkv(4, 8)
    w = torch.softmax(q @ k.T / math.sqrt(8), -1)
    out, weights = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(weights, w)
    torch.testing.assert_close(out, w @ v)
    torch.testing.assert_close(attention_scores(q, k), q @ k.T / math.sqrt(8))


@pytest.mark.parametrize("need_weights", [True, False])
def test_boolean_and_additive_masks_match_torch(need_weights):
    q, k, v = qkv(2, 3, 6, 8)
    bool_mask = torch.rand(2, 1, 6, 6) > 0.3
    bool_mask[..., 0] = True  # every row keeps one key
    add_mask = torch.zeros(2, 1, 6, 6).masked_fill(~bool_mask, float("-inf"))
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=bool_mask)
    for m in (bool_mask, add_mask):
        out, _ = scaled_dot_product_attention(q, k, v, m, need_weights=need_weights)
        torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("need_weights", [True, False])
def test_causal_matches_torch_is_causal(need_weights):
    q, k, v = qkv(2, 4, 9, 16)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    out, w = scaled_dot_product_attention(q, k, v, causal=True, need_weights=need_weights)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    if need_weights:
        assert (w.triu(1) == 0).all()


def test_causal_with_a_cache_is_bottom_right_aligned():
    assert causal_mask(2, 5).tolist() == [[True, True, True, True, False], [True, True, True, True, True]]
    q, k, v = qkv(1, 7, 8)
    full, _ = scaled_dot_product_attention(q, k, v, causal=True)
    last, _ = scaled_dot_product_attention(q[:, -2:], k, v, causal=True)
    torch.testing.assert_close(last, full[:, -2:])


def test_causal_combines_with_padding_mask():
    q, k, v = qkv(2, 1, 5, 4)
    pad = padding_mask(torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]))
    _, w = scaled_dot_product_attention(q, k, v, pad, causal=True)
    assert (w[0, 0, :, 3:] == 0).all() and (w[..., :, :].triu(1) == 0).all()
    _, w_add = scaled_dot_product_attention(q, k, v, torch.zeros(2, 1, 1, 5).masked_fill(~pad, -math.inf), causal=True)
    torch.testing.assert_close(w, w_add)


@pytest.mark.parametrize("need_weights", [True, False])
def test_fully_masked_rows_give_zeros_not_nan(need_weights):
    q, k, v = qkv(3, 4)
    mask = torch.tensor([[True, False, True], [False, False, False], [True, True, True]])
    out, w = scaled_dot_product_attention(q, k, v, mask, need_weights=need_weights)
    assert not torch.isnan(out).any()
    assert (out[1] == 0).all()
    if need_weights:
        assert (w[1] == 0).all() and torch.allclose(w[[0, 2]].sum(-1), torch.ones(2))


def test_gradients_flow_to_query_key_and_value():
    q, k, v = (t.requires_grad_() for t in qkv(2, 5, 8))
    out, _ = scaled_dot_product_attention(q, k, v, causal=True)
    out.square().sum().backward()
    for name, t in (("q", q), ("k", k), ("v", v)):
        assert t.grad is not None and t.grad.abs().sum() > 0, name
    # Gradient of the weights path equals the fused path's gradient.
    q2, k2, v2 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    out2, _ = scaled_dot_product_attention(q2, k2, v2, causal=True, need_weights=False)
    out2.square().sum().backward()
    torch.testing.assert_close(q.grad, q2.grad, atol=1e-5, rtol=0)


def test_temperature_flattens_and_sharpens():
    q, k, v = qkv(6, 8)
    entropy = lambda w: -(w * w.clamp_min(1e-12).log()).sum(-1).mean()  # noqa: E731
    _, w_cold = scaled_dot_product_attention(q, k, v, temperature=0.25)
    _, w_one = scaled_dot_product_attention(q, k, v)
    _, w_hot = scaled_dot_product_attention(q, k, v, temperature=4.0)
    assert entropy(w_cold) < entropy(w_one) < entropy(w_hot)
    _, w_scale = scaled_dot_product_attention(q, k, v, scale=1 / (4.0 * math.sqrt(8)))
    torch.testing.assert_close(w_hot, w_scale)


def test_dropout_only_in_training():
    q, k, v = qkv(4, 8)
    a, _ = scaled_dot_product_attention(q, k, v, dropout_p=0.5, training=False)
    torch.testing.assert_close(a, scaled_dot_product_attention(q, k, v)[0])
    b, w = scaled_dot_product_attention(q, k, v, dropout_p=0.5, training=True)
    assert (w == 0).any() and not torch.allclose(a, b)


def test_multi_head_matches_torch_multihead_attention():
    torch.manual_seed(1)
    ref = torch.nn.MultiheadAttention(32, 4, batch_first=True).eval()
    mha = MultiHeadAttention(32, 4).eval().load_from_torch(ref)
    x, mem = torch.randn(2, 6, 32), torch.randn(2, 9, 32)
    key_padding = torch.tensor([[False] * 9, [False] * 6 + [True] * 3])  # torch: True = ignore
    y, w = mha(x, mem, need_weights=True, mask=padding_mask(~key_padding))
    y_ref, w_ref = ref(x, mem, mem, key_padding_mask=key_padding, average_attn_weights=False)
    torch.testing.assert_close(y, y_ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(w, w_ref, atol=1e-6, rtol=0)
    y_fast, none = mha(x, mem, mask=padding_mask(~key_padding))
    assert none is None
    torch.testing.assert_close(y_fast, y_ref, atol=1e-6, rtol=0)
    causal_ref, _ = ref(x, x, x, attn_mask=~causal_mask(6), need_weights=False)
    torch.testing.assert_close(mha(x, causal=True)[0], causal_ref, atol=1e-6, rtol=0)


def test_multi_head_split_merge_round_trip_and_shapes():
    mha = MultiHeadAttention(24, 3)
    x = torch.randn(2, 5, 24)
    assert mha.split_heads(x).shape == (2, 3, 5, 8)
    torch.testing.assert_close(mha.merge_heads(mha.split_heads(x)), x)
    y, w = mha(x, need_weights=True)
    assert y.shape == (2, 5, 24) and w.shape == (2, 3, 5, 5)


@pytest.mark.parametrize("bias", [True, False])
def test_fused_qkv_projection_equals_the_three_projections(bias):
    mha = MultiHeadAttention(16, 4, bias=bias).eval()
    x = torch.randn(2, 5, 16)
    q, k, v = mha.in_proj(x).split(16, dim=-1)
    for got, proj in ((q, mha.q_proj), (k, mha.k_proj), (v, mha.v_proj)):
        torch.testing.assert_close(got, proj(x), atol=1e-6, rtol=0)
    # self-attention takes the fused path; passing a copy as key/value takes the separate one
    for causal in (False, True):
        fused, _ = mha(x, causal=causal)
        apart, _ = mha(x, x.clone(), x.clone(), causal=causal)
        torch.testing.assert_close(fused, apart, atol=1e-6, rtol=0)
    fused.sum().backward()  # the gradient reaches the rows of q, k and v in the one fused parameter
    assert mha.in_proj_weight.grad is not None and all(g.abs().sum() > 0 for g in mha.in_proj_weight.grad.chunk(3))


def test_kv_cache_gives_the_same_output_as_full_causal_attention():
    mha = MultiHeadAttention(16, 2).eval()
    x = torch.randn(1, 6, 16)
    full, _ = mha(x, causal=True)
    cache = KVCache()
    steps = [mha(x[:, i : i + 1], causal=True, cache=cache)[0] for i in range(6)]
    assert len(cache) == 6
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-6, rtol=0)


def test_checker_accepts_a_correct_answer_and_explains_a_wrong_one():
    assert "match" in check_attention(lambda q, k, v, mask=None: scaled_dot_product_attention(q, k, v, mask))

    def unscaled(q, k, v, mask=None):
        w = torch.softmax(q @ k.transpose(-2, -1), -1)
        return w @ v, w

    with pytest.raises(AssertionError, match="sqrt"):
        check_attention(unscaled)

    def ignores_mask(q, k, v, mask=None):
        return scaled_dot_product_attention(q, k, v)

    with pytest.raises(AssertionError, match="mask"):
        check_attention(ignores_mask)


# ---- bad input: clear errors that name the argument ----

def test_mismatched_d_k_names_both_shapes():
    with pytest.raises(ValueError, match=r"query has shape \(2, 5, 16\) but key has shape \(2, 5, 8\)"):
        scaled_dot_product_attention(torch.randn(2, 5, 16), torch.randn(2, 5, 8), torch.randn(2, 5, 8))


def test_key_value_length_mismatch():
    with pytest.raises(ValueError, match="key .* value"):
        scaled_dot_product_attention(torch.randn(5, 8), torch.randn(5, 8), torch.randn(4, 8))


def test_wrong_mask_shape_names_mask_and_scores():
    with pytest.raises(ValueError, match=r"mask has shape \(4, 4\).*\(\.\.\., 5, 5\)"):
        scaled_dot_product_attention(*qkv(5, 8), torch.ones(4, 4, dtype=torch.bool))


def test_integer_mask_is_rejected():
    with pytest.raises(TypeError, match="mask must be boolean"):
        scaled_dot_product_attention(*qkv(5, 8), torch.ones(5, 5, dtype=torch.long))


@pytest.mark.parametrize("name", ["query", "key", "value"])
def test_non_float_tensors_are_rejected(name):
    args = dict(zip(("query", "key", "value"), qkv(5, 8), strict=True))
    args[name] = torch.ones(5, 8, dtype=torch.long)
    with pytest.raises(TypeError, match=f"{name} must be a floating-point tensor, got dtype torch.int64"):
        scaled_dot_product_attention(**args)


def test_non_tensor_is_rejected():
    with pytest.raises(TypeError, match="query must be a torch.Tensor, got list"):
        scaled_dot_product_attention([[1.0]], torch.randn(1, 1), torch.randn(1, 1))


@pytest.mark.parametrize("temperature", [0, -1.0])
def test_non_positive_temperature_is_rejected(temperature):
    with pytest.raises(ValueError, match=f"temperature must be a number > 0, got {temperature}"):
        scaled_dot_product_attention(*qkv(3, 4), temperature=temperature)


def test_bad_dropout_is_rejected():
    with pytest.raises(ValueError, match="dropout_p"):
        scaled_dot_product_attention(*qkv(3, 4), dropout_p=1.5)


def test_multi_head_configuration_errors():
    with pytest.raises(ValueError, match=r"d_model \(30\) must be divisible by n_heads \(4\)"):
        MultiHeadAttention(30, 4)
    mha = MultiHeadAttention(16, 4)
    with pytest.raises(ValueError, match=r"query must have shape \(batch, seq, d_model=16\), got \(2, 5, 12\)"):
        mha(torch.randn(2, 5, 12))
    with pytest.raises(ValueError, match="key must have shape"):
        mha(torch.randn(2, 5, 16), torch.randn(3, 5, 16))
    with pytest.raises(ValueError, match="attention_mask must have shape"):
        padding_mask(torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="len_q"):
        causal_mask(5, 3)


def test_q_k_v_are_rows_of_one_parameter_but_state_dicts_name_them_apart():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2)
    assert [n for n, _ in mha.named_parameters()] == ["in_proj_weight", "in_proj_bias", "out_proj.weight",
                                                      "out_proj.bias"]  # fmt: skip
    sd = mha.state_dict()
    assert list(sd) == [f"{p}_proj.{w}" for p in "qkvo" if p != "o" for w in ("weight", "bias")] + [
        "out_proj.weight", "out_proj.bias"]  # fmt: skip
    for i, p in enumerate("qkv"):
        torch.testing.assert_close(sd[f"{p}_proj.weight"], mha.in_proj_weight[8 * i : 8 * (i + 1)], rtol=0, atol=0)
    with torch.no_grad():  # a state dict's tensors are views: writing one writes the model, as for any parameter
        sd["k_proj.weight"].fill_(0.5)
    assert (mha.in_proj_weight[8:16] == 0.5).all() and (mha.k_proj.weight == 0.5).all()
    # three separate tensors load into the fused parameter
    other = MultiHeadAttention(8, 2)
    other.load_state_dict({k: v.clone() for k, v in sd.items()})
    torch.testing.assert_close(other.in_proj_weight, mha.in_proj_weight, rtol=0, atol=0)
    # one of them missing: reported under its own name, the others still load
    partial = {k: v.clone() for k, v in sd.items() if k != "v_proj.bias"}
    with pytest.raises(RuntimeError, match=r"Missing key\(s\).*v_proj\.bias"):
        MultiHeadAttention(8, 2).load_state_dict(partial)
    fresh = MultiHeadAttention(8, 2)
    old_v_bias = fresh.v_proj.bias.detach().clone()
    result = fresh.load_state_dict(partial, strict=False)
    assert result.missing_keys == ["v_proj.bias"] and not result.unexpected_keys
    torch.testing.assert_close(fresh.v_proj.bias.detach(), old_v_bias, rtol=0, atol=0)
    torch.testing.assert_close(fresh.k_proj.weight.detach(), mha.k_proj.weight.detach(), rtol=0, atol=0)
    with pytest.raises(RuntimeError, match=r"size mismatch for q_proj\.weight"):
        MultiHeadAttention(8, 2).load_state_dict({**sd, "q_proj.weight": torch.zeros(8, 4)})


def test_three_linear_layers_and_the_fused_parameter_start_alike():
    """The fused parameter starts with the numbers three nn.Linear would have drawn, in the same order."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2)
    torch.manual_seed(0)
    three = [torch.nn.Linear(8, 8) for _ in range(3)]
    torch.testing.assert_close(mha.in_proj_weight, torch.cat([lin.weight for lin in three]), rtol=0, atol=0)
    torch.testing.assert_close(mha.in_proj_bias, torch.cat([lin.bias for lin in three]), rtol=0, atol=0)
    torch.testing.assert_close(mha.out_proj.weight, torch.nn.Linear(8, 8).weight, rtol=0, atol=0)


def test_lora_on_a_row_view_and_merging_it_back_into_the_fused_parameter():
    from lmbook.lora import apply_lora, merge_lora
    from lmbook.models import Decoder, DecoderConfig

    torch.manual_seed(0)
    model = Decoder(DecoderConfig(vocab_size=20, max_len=8, n_layers=1, n_heads=2, d_model=16))
    names = list(model.state_dict())
    apply_lora(model, r=2, targets=("q_proj", "v_proj"))
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "lora_B"):
                m.lora_B.normal_()
    x = torch.randint(0, 20, (2, 8))
    a = model.blocks[0].self_attn
    want = torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight])  # W + (alpha / r) B A for q and v
    with torch.no_grad():
        adapted = model(x).logits
        merge_lora(model)
        merged = model(x).logits
    assert type(a.q_proj) is QKVRows and type(a.v_proj) is QKVRows  # back to views of the one parameter
    torch.testing.assert_close(a.in_proj_weight, want)
    torch.testing.assert_close(merged, adapted, atol=1e-5, rtol=0)
    assert list(model.state_dict()) == names


def test_a_whole_model_skips_the_nan_scan_a_lone_attention_layer_does():
    from lmbook.models import Decoder, DecoderConfig

    model = Decoder(DecoderConfig(vocab_size=20, max_len=8, n_layers=1, n_heads=2, d_model=16))
    assert not model.blocks[0].self_attn.check_inputs
    x = torch.randn(1, 3, 16)
    x[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="query holds NaN"):
        MultiHeadAttention(16, 2)(x)
