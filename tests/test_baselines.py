"""Chapter 1's baselines: each model is a proper distribution, and the scores mean what they say."""

import math

import pytest
import torch

from lmbook.baselines import (
    MLPLM,
    NGramLM,
    RuleBasedLM,
    TransformerLM,
    check_perplexity,
    context_windows,
    oov_rate,
    perplexity_from_log_probs,
    sample_text,
    unseen_ngram_rate,
    word_level_tokens,
    word_vocabulary,
    words,
)
from lmbook.models import Decoder, DecoderConfig
from lmbook.tokenizers import BOS_ID, BPETokenizer

TEXT = "the cat sat on the mat. the dog sat on the log. " * 20


@pytest.fixture(scope="module")
def tok():
    return BPETokenizer.train(TEXT, vocab_size=280)


def test_perplexity_of_uniform_guess_is_the_number_of_choices():
    assert perplexity_from_log_probs(torch.full((7,), math.log(1 / 5))) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="empty"):
        perplexity_from_log_probs([])
    with pytest.raises(ValueError, match="must be <= 0"):
        perplexity_from_log_probs([0.5])


def test_rule_based_lm_puts_confidence_on_its_rules(tok):
    lm = RuleBasedLM(tok, {" on": [" the"]}, confidence=0.6)
    on, the = tok.encode(" on")[0], tok.encode(" the")[0]
    p = lm.next_token_probs([on])
    assert p.sum().item() == pytest.approx(1.0)
    assert p[the].item() == pytest.approx(0.6 + 0.4 / tok.vocab_size)
    assert torch.allclose(lm.next_token_probs([the]), torch.full((tok.vocab_size,), 1 / tok.vocab_size,
                                                                  dtype=torch.float64))
    with pytest.raises(ValueError, match="confidence"):
        RuleBasedLM(tok, confidence=1.0)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_ngram_distribution_sums_to_one_and_matches_prob(tok, order):
    ids = tok.encode(TEXT)
    lm = NGramLM(ids, tok.vocab_size, order=order)
    for ctx in ([], ids[:1], ids[:5], [BOS_ID, BOS_ID]):
        p = lm.next_token_probs(ctx)
        assert p.sum().item() == pytest.approx(1.0, abs=1e-9)
        assert (p > 0).all(), "smoothing must leave every token some probability"
        for t in (ids[3], 0, tok.vocab_size - 1):
            assert lm.prob(ctx, t) == pytest.approx(p[t].item())


def test_higher_order_ngram_fits_repetitive_text_better(tok):
    ids = tok.encode(TEXT)
    ppl = [perplexity_from_log_probs(NGramLM(ids, tok.vocab_size, order=n).token_log_probs(ids)) for n in (1, 2, 3)]
    assert ppl[0] > ppl[1] > ppl[2] >= 1.0
    with pytest.raises(ValueError, match="order"):
        NGramLM(ids, tok.vocab_size, order=0)


def test_unseen_ngram_rate():
    assert unseen_ngram_rate([1, 2, 3, 1, 2], [1, 2, 9], 2) == pytest.approx(0.5)
    assert unseen_ngram_rate([1, 2, 3], [1, 2, 3], 3) == 0.0


def test_context_windows_pad_with_bos():
    x, y = context_windows([10, 11, 12, 13], 2)
    assert x.tolist() == [[BOS_ID, 10], [10, 11], [11, 12]] and y.tolist() == [11, 12, 13]


def test_mlp_token_log_probs_match_next_token_probs(tok):
    ids = tok.encode(TEXT)[:30]
    lm = MLPLM(tok.vocab_size, context=3, d_emb=8, d_hidden=16)
    lp = lm.token_log_probs(ids)
    assert lp.shape == (len(ids) - 1,)
    for i in (1, 2, 10, 29):
        assert lp[i - 1].item() == pytest.approx(math.log(lm.next_token_probs(ids[:i])[ids[i]].item()), abs=1e-6)
    with pytest.raises(ValueError, match=r"shape \(batch, 3\)"):
        lm(torch.zeros(2, 4, dtype=torch.long))


def test_transformer_lm_sliding_window_scores_every_token_once(tok):
    model = Decoder(DecoderConfig(vocab_size=tok.vocab_size, max_len=8, n_layers=1, n_heads=2, d_model=16))
    lm = TransformerLM(model)
    ids = tok.encode(TEXT)[:29]
    lp = lm.token_log_probs(ids)
    assert lp.shape == (len(ids) - 1,)
    # token 5 (inside the first window) sees tokens 0..4; token 20 sees the last 8 or fewer tokens of a window.
    assert lp[4].item() == pytest.approx(math.log(lm.next_token_probs(ids[:5])[ids[5]].item()), abs=1e-6)
    assert all(lp <= 0)
    # windows of 8 start every 4 tokens: token 10 is scored by the window starting at 4, token 27 by the one at 20
    assert lp[9].item() == pytest.approx(math.log(lm.next_token_probs(ids[4:10])[ids[10]].item()), abs=1e-6)
    assert lp[26].item() == pytest.approx(math.log(lm.next_token_probs(ids[20:27])[ids[27]].item()), abs=1e-6)
    assert torch.allclose(lm.token_log_probs(ids, batch_size=1), lp)


def test_sample_text_is_reproducible(tok):
    lm = NGramLM(tok.encode(TEXT), tok.vocab_size, order=3)
    a, b = sample_text(lm, tok, "the cat", 10, seed=1), sample_text(lm, tok, "the cat", 10, seed=1)
    assert a == b and len(a) > 0


def test_vocabulary_drift_helpers():
    assert words("The cat's 3 hats, don't!") == ["the", "cat's", "hats", "don't"]
    vocab = word_vocabulary("a a a b b c", max_size=2)
    assert vocab == {"a", "b"}
    assert word_vocabulary("a a b", min_count=2) == {"a"}
    assert oov_rate(vocab, "a b c c") == pytest.approx(0.5)
    assert word_level_tokens("a zebra", vocab) == ["a", "[UNK]"]
    with pytest.raises(ValueError, match="no words"):
        oov_rate(vocab, "123")


def test_check_perplexity_accepts_right_and_explains_wrong():
    assert "correct" in check_perplexity(lambda lp: torch.exp(-lp.mean()))
    with pytest.raises(AssertionError, match="natural logs"):
        check_perplexity(lambda lp: 2 ** (-lp.mean()))
    with pytest.raises(AssertionError, match="mean over tokens"):
        check_perplexity(lambda lp: torch.exp(-lp.sum()))
    with pytest.raises(AssertionError, match="cross-entropy"):
        check_perplexity(lambda lp: -lp.mean())


def test_ngram_lower_orders_hold_continuation_counts():
    # "7 9" "8 9" "8 9" "9 7" "9 8" ...: token 9 follows two distinct tokens (7 and 8), token 8 follows one (9).
    ids = [7, 9, 8, 9, 8, 9, 7]
    lm = NGramLM(ids, vocab_size=10, order=2)
    assert lm.tables[1][(8,)] == {9: 2} and lm.tables[1][(9,)] == {8: 2, 7: 1}
    assert lm.tables[0][()] == {9: 2, 8: 1, 7: 1}
    D = lm.discount
    p_unigram_9 = (2 - D) / 4 + D * 3 / 4 / 10
    assert lm.prob([8], 9) == pytest.approx((2 - D) / 2 + D * 1 / 2 * p_unigram_9)
