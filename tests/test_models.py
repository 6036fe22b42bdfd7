"""lmbook.models: the three model families, their attention outputs, training and input checks."""

import dataclasses

import pytest
import torch

from lmbook.models import (
    Decoder,
    DecoderConfig,
    Encoder,
    EncoderConfig,
    Transformer,
    TransformerConfig,
)

ENC = EncoderConfig(vocab_size=50, max_len=16, n_layers=2, n_heads=2, d_model=16, d_ff=32, dropout=0.0)
DEC = DecoderConfig(vocab_size=20, max_len=16, n_layers=2, n_heads=2, d_model=16, dropout=0.0)


S2S = TransformerConfig(src_vocab_size=30, tgt_vocab_size=25, max_len=16, n_encoder_layers=2, n_decoder_layers=2,
                        n_heads=2, d_model=16, d_ff=32, dropout=0.0)


@pytest.fixture(autouse=True)
def one_thread():
    """Small models run fastest (and reproducibly) on one thread, even on a shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_config_round_trips_through_a_dict():
    for cls, cfg in ((Encoder, ENC), (Decoder, DEC), (Transformer, S2S)):
        model = cls(cfg)
        assert dataclasses.is_dataclass(model.config)
        rebuilt = cls(type(cfg)(**dataclasses.asdict(model.config)))
        assert rebuilt.config == cfg


def test_encoder_outputs_and_attentions():
    torch.manual_seed(0)
    model = Encoder(ENC).eval()
    ids = torch.randint(0, 50, (2, 7))
    mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2])
    tt = torch.tensor([[0] * 4 + [1] * 3] * 2)
    fast = model(ids, tt, mask)
    assert fast.attentions is None and fast.all_hidden_states is None
    assert fast.hidden_states.shape == (2, 7, 16)
    assert fast.mlm_logits.shape == (2, 7, 50) and fast.nsp_logits.shape == (2, 2)
    slow = model(ids, tt, mask, need_weights=True, output_hidden_states=True)
    torch.testing.assert_close(slow.hidden_states, fast.hidden_states, atol=1e-5, rtol=1e-5)
    assert len(slow.attentions) == 2 and all(a.shape == (2, 2, 7, 7) for a in slow.attentions)
    assert len(slow.all_hidden_states) == 3
    for a in slow.attentions:
        torch.testing.assert_close(a.sum(-1), torch.ones(2, 2, 7))
        assert torch.all(a[1, :, :, 5:] == 0)  # padding gets no attention
    # the MLM decoder is tied to the token embedding
    assert model.mlm_bias.shape == (50,)
    # the same padded sentence alone (without padding) gives the same hidden states on real tokens
    alone = model(ids[1:, :5], tt[1:, :5]).hidden_states
    torch.testing.assert_close(alone[0], fast.hidden_states[1, :5], atol=1e-5, rtol=1e-5)


def test_decoder_attentions_are_causal_and_match_fast_path():
    torch.manual_seed(1)
    model = Decoder(DEC).eval()
    ids = torch.randint(0, 20, (2, 9))
    fast = model(ids)
    slow = model(ids, need_weights=True)
    torch.testing.assert_close(slow.logits, fast.logits, atol=1e-5, rtol=1e-5)
    assert fast.attentions is None and fast.loss is None
    assert len(slow.attentions) == 2
    for a in slow.attentions:
        assert a.shape == (2, 2, 9, 9)
        torch.testing.assert_close(a.sum(-1), torch.ones(2, 2, 9))
        assert torch.all(a.triu(diagonal=1) == 0)
    # causality: changing a later token leaves earlier logits untouched
    ids2 = ids.clone()
    ids2[:, 6] = (ids2[:, 6] + 1) % 20
    torch.testing.assert_close(model(ids2).logits[:, :6], fast.logits[:, :6])
    assert model.lm_head.weight is model.tok_emb.weight  # tied head


def test_decoder_cache_gives_same_logits():
    torch.manual_seed(2)
    model = Decoder(DEC).eval()
    ids = torch.randint(0, 20, (1, 8))
    full = model(ids).logits
    caches = model.new_caches()
    first = model(ids[:, :5], caches=caches).logits
    rest = [model(ids[:, t : t + 1], caches=caches).logits for t in range(5, 8)]
    torch.testing.assert_close(torch.cat([first, *rest], dim=1), full, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="after 8 cached tokens, longer than max_len=16"):
        model(torch.zeros(1, 9, dtype=torch.long), caches=caches)


def test_tiny_decoder_overfits_a_batch_and_every_parameter_gets_a_gradient():
    torch.manual_seed(3)
    model = Decoder(DEC)
    data = torch.randint(0, 20, (4, 13))
    x, y = data[:, :-1], data[:, 1:]
    out = model(x, y)
    assert out.loss.item() == pytest.approx(torch.log(torch.tensor(20.0)).item(), abs=0.3)  # ≈ uniform at init
    x_full = torch.randint(0, 20, (4, 16))  # every position used, so every position embedding gets a gradient
    model(x_full, x_full).loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    model.zero_grad()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss = model(x, y).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


def test_transformer_seq2seq_shapes_masks_and_loss():
    torch.manual_seed(4)
    model = Transformer(S2S).eval()
    src = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 7, 0, 0]])  # pad_id = 0
    tgt = torch.tensor([[1, 11, 12, 13], [1, 14, 15, 0]])
    fast = model(src, tgt)
    assert fast.logits.shape == (2, 4, 25) and fast.encoder_attentions is None
    slow = model(src, tgt, need_weights=True)
    torch.testing.assert_close(slow.logits, fast.logits, atol=1e-5, rtol=1e-5)
    assert [a.shape for a in slow.encoder_attentions] == [(2, 2, 5, 5)] * 2
    assert [a.shape for a in slow.decoder_attentions] == [(2, 2, 4, 4)] * 2
    assert [a.shape for a in slow.cross_attentions] == [(2, 2, 4, 5)] * 2
    for a in slow.cross_attentions + slow.encoder_attentions:
        assert torch.all(a[1, :, :, 3:] == 0)  # source padding is never attended to
    for a in slow.decoder_attentions:
        assert torch.all(a.triu(diagonal=1) == 0)
    memory, _ = model.encode(src)
    torch.testing.assert_close(model.decode(tgt, memory, src).logits, fast.logits, atol=1e-5, rtol=1e-5)
    # padding in the targets is not scored
    targets = torch.tensor([[11, 12, 13, 2], [14, 15, 2, 0]])
    out = model(src, tgt, targets)
    logp = fast.logits.log_softmax(-1)
    keep = targets != 0
    expected = -logp.gather(-1, targets[..., None])[..., 0][keep].mean()
    torch.testing.assert_close(out.loss, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_trains_to_copy(norm_first):
    torch.manual_seed(5)
    cfg = dataclasses.replace(S2S, norm_first=norm_first, tgt_vocab_size=30)
    model = Transformer(cfg)
    src = torch.randint(3, 30, (8, 6))
    tgt_in = torch.cat([torch.ones(8, 1, dtype=torch.long), src], 1)[:, :-1]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = model(src, tgt_in, src).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"DecoderConfig.d_model=30 must divide by n_heads=4"):
        Decoder(dataclasses.replace(DEC, d_model=30, n_heads=4))
    with pytest.raises(ValueError, match="d_model"):
        Encoder(dataclasses.replace(ENC, d_model=30, n_heads=4))
    dec, enc, s2s = Decoder(DEC), Encoder(ENC), Transformer(S2S)
    with pytest.raises(ValueError, match="input_ids has sequence length 17, longer than max_len=16"):
        dec(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="input_ids has sequence length 17"):
        enc(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="src has sequence length 17"):
        s2s(torch.ones(1, 17, dtype=torch.long), torch.ones(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"input_ids must lie in \[0, vocab_size=20\)"):
        dec(torch.tensor([[1, 20]]))
    with pytest.raises(ValueError, match=r"input_ids must lie in \[0, vocab_size=50\)"):
        enc(torch.tensor([[-3, 2]]))
    with pytest.raises(ValueError, match="attention_mask must have shape"):
        enc(torch.zeros(2, 5, dtype=torch.long), attention_mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match="token_type_ids must have shape"):
        enc(torch.zeros(2, 5, dtype=torch.long), token_type_ids=torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="src_mask must have shape"):
        s2s(torch.ones(2, 5, dtype=torch.long), torch.ones(2, 3, dtype=torch.long), src_mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match="input_ids is empty"):
        dec(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="targets must have shape"):
        dec(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))
