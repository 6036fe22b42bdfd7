"""lmbook.generation: sampling filters, cached vs uncached decoding, greedy and beam search."""

import dataclasses
import itertools

import pytest
import torch

from lmbook.generation import (
    apply_temperature,
    beam_search,
    generate,
    greedy_decode,
    top_k_filter,
    top_p_filter,
)
from lmbook.models import Decoder, DecoderConfig, Transformer, TransformerConfig

DEC = DecoderConfig(vocab_size=20, max_len=16, n_layers=2, n_heads=2, d_model=16, dropout=0.0)
S2S = TransformerConfig(src_vocab_size=12, tgt_vocab_size=12, max_len=12, n_encoder_layers=1, n_decoder_layers=1,
                        n_heads=2, d_model=32, d_ff=64, dropout=0.0)
BOS, EOS = 1, 2


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_apply_temperature():
    logits = torch.tensor([1.0, 2.0, 4.0])
    torch.testing.assert_close(apply_temperature(logits, 2.0), torch.tensor([0.5, 1.0, 2.0]))
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="temperature must be > 0"):
            apply_temperature(logits, bad)


def test_top_k_filter():
    logits = torch.tensor([[1.0, 5.0, 3.0, 2.0], [0.0, -1.0, 4.0, 9.0]])
    out = top_k_filter(logits, 2)
    assert torch.equal(torch.isfinite(out), torch.tensor([[False, True, True, False], [False, False, True, True]]))
    torch.testing.assert_close(out[0, 1], logits[0, 1])
    torch.testing.assert_close(top_k_filter(logits, 10), logits)  # k larger than the vocabulary keeps all
    for bad in (0, -2):
        with pytest.raises(ValueError, match="top_k must be an integer >= 1"):
            top_k_filter(logits, bad)


def test_top_p_filter():
    probs = torch.tensor([0.15, 0.5, 0.05, 0.3])  # ranked: 0.5, 0.3, 0.15, 0.05
    logits = probs.log()
    kept = lambda p: torch.isfinite(top_p_filter(logits, p)).tolist()  # noqa: E731
    assert kept(0.5) == [False, True, False, False]
    assert kept(0.7) == [False, True, False, True]
    assert kept(0.9) == [True, True, False, True]
    assert kept(1.0) == [True, True, True, True]
    assert kept(0.01) == [False, True, False, False]  # the top token always survives
    batch = torch.stack([logits, logits.flip(0)])
    assert torch.isfinite(top_p_filter(batch, 0.7)).tolist() == [kept(0.7), kept(0.7)[::-1]]
    for bad in (0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
            top_p_filter(logits, bad)


def _greedy_by_hand(model, ids, n):
    for _ in range(n):
        nxt = model(ids[:, -model.config.max_len :]).logits[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], 1)
    return ids


def test_greedy_generation_is_identical_with_and_without_cache():
    torch.manual_seed(0)
    model = Decoder(DEC).eval()
    prompt = torch.randint(0, 20, (2, 5))
    # 20 new tokens: the context outgrows max_len=16, so the window slides
    cached = generate(model, prompt, 20, greedy=True, use_cache=True)
    uncached = generate(model, prompt, 20, greedy=True, use_cache=False)
    assert cached.shape == (2, 25)
    assert torch.equal(cached[:, :5], prompt)
    assert torch.equal(cached, uncached)
    with torch.no_grad():
        assert torch.equal(cached, _greedy_by_hand(model, prompt, 20))
    one = generate(model, prompt[0], 3, greedy=True)  # a 1-D prompt gives a 1-D answer
    assert torch.equal(one, cached[0, :8])


def test_sampling_is_reproducible_and_top_k_1_is_greedy():
    torch.manual_seed(1)
    model = Decoder(DEC)
    model.train()
    prompt = torch.randint(0, 20, (3, 4))
    a = generate(model, prompt, 10, temperature=0.8, top_p=0.9, generator=torch.Generator().manual_seed(7))
    b = generate(model, prompt, 10, temperature=0.8, top_p=0.9, generator=torch.Generator().manual_seed(7),
                 use_cache=False)
    assert torch.equal(a, b)
    assert model.training  # mode restored
    greedy = generate(model, prompt, 10, greedy=True)
    assert torch.equal(generate(model, prompt, 10, top_k=1, generator=torch.Generator().manual_seed(3)), greedy)


def test_eos_stops_generation_and_pads_finished_rows():
    torch.manual_seed(2)
    model = Decoder(DEC)
    prompt = torch.randint(0, 20, (2, 4))
    free = generate(model, prompt, 6, greedy=True)
    eos = free[0, 4].item()  # the first token row 0 would produce
    out = generate(model, prompt, 6, greedy=True, eos_id=eos)
    assert out[0, 4] == eos and torch.all(out[0, 5:] == eos)
    row1 = free[1, 4:].tolist()
    if eos in row1:
        assert out.shape[1] == 4 + row1.index(eos) + 1
    else:
        assert torch.equal(out[1], free[1])


def test_generation_argument_errors():
    model = Decoder(DEC)
    prompt = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="non-empty"):
        generate(model, torch.zeros(1, 0, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="top_p"):
        generate(model, prompt, 5, top_p=0.0)
    with pytest.raises(ValueError, match="top_p"):
        generate(model, prompt, 5, top_p=1.2)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, prompt, 5, temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        generate(model, prompt, 5, top_k=0)
    assert generate(model, prompt, 2, greedy=True, temperature=0.0).shape == (1, 5)  # greedy ignores temperature


def _log_prob(model, src, ys):
    """Sum of log p(y_t | y_<t, src) for the tokens after bos, by teacher forcing."""
    logp = model(src, ys[None, :-1]).logits.log_softmax(-1)[0]  # (T, V)
    return logp.gather(-1, ys[1:, None]).sum().item()


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_wide_beam_search_finds_the_exact_best_output(length_penalty):
    torch.manual_seed(3)
    cfg = dataclasses.replace(S2S, tgt_vocab_size=4)  # tokens 0 (pad), 1 (bos), 2 (eos), 3
    model = Transformer(cfg).eval()
    src = torch.tensor([[5, 6, 7]])
    max_len = 4  # bos + at most 3 tokens
    with torch.no_grad():
        candidates = []
        for n in range(1, max_len):
            for body in itertools.product([0, 1, 3], repeat=n - 1):
                candidates.append([BOS, *body, EOS])
        candidates += [[BOS, *body] for body in itertools.product([0, 1, 3], repeat=max_len - 1)]
        scored = [(_log_prob(model, src, torch.tensor(c)) / (len(c) - 1) ** length_penalty, c) for c in candidates]
        best_score, best = max(scored)
    (ids, score), = beam_search(model, src, beam_size=27, max_len=max_len, bos_id=BOS, eos_id=EOS,
                                length_penalty=length_penalty)
    assert ids.tolist() == best
    assert score == pytest.approx(best_score, abs=1e-4)


def test_beam_size_one_equals_greedy_and_batches_are_independent():
    torch.manual_seed(4)
    model = Transformer(S2S).eval()
    src = torch.tensor([[3, 4, 5, 6], [7, 8, 9, 0]])
    greedy = greedy_decode(model, src, max_len=8, bos_id=BOS, eos_id=EOS)
    assert greedy.shape[0] == 2 and torch.all(greedy[:, 0] == BOS) and greedy.shape[1] <= 8
    beams = beam_search(model, src, beam_size=1, max_len=8, bos_id=BOS, eos_id=EOS)
    for row, (ids, _) in zip(greedy.tolist(), beams, strict=True):
        if EOS in row:
            row = row[: row.index(EOS) + 1]
        assert ids.tolist() == row
    alone = greedy_decode(model, src[1:, :3], max_len=8, bos_id=BOS, eos_id=EOS)  # padding makes no difference
    assert alone[0].tolist() == greedy[1, : alone.shape[1]].tolist()
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(model, src, beam_size=0, max_len=8, bos_id=BOS, eos_id=EOS)
    with pytest.raises(ValueError, match="max_len"):
        greedy_decode(model, src, max_len=99, bos_id=BOS, eos_id=EOS)


def test_greedy_decode_with_cache_matches_step_by_step_argmax():
    torch.manual_seed(5)
    model = Transformer(S2S).eval()
    src = torch.tensor([[3, 9, 4, 11, 5], [10, 10, 6, 0, 0]])
    got = greedy_decode(model, src, max_len=10, bos_id=BOS, eos_id=EOS)
    with torch.no_grad():  # by hand: re-run the whole prefix each step, no cache
        memory, _ = model.encode(src)
        ys = torch.full((2, 1), BOS)
        done = torch.zeros(2, dtype=torch.bool)
        while ys.shape[1] < 10 and not done.all():
            nxt = model.decode(ys, memory, src).logits[:, -1].argmax(-1).masked_fill(done, EOS)
            done |= nxt == EOS
            ys = torch.cat([ys, nxt[:, None]], 1)
    assert torch.equal(got, ys)
