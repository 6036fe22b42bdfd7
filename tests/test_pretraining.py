"""Tests for lmbook.pretraining (Chapter 4): MLM + NSP batches, losses, LM windows and evaluation."""

import math

import pytest
import torch

from lmbook import pretraining as P
from lmbook.models import Decoder, DecoderConfig, Encoder, EncoderConfig
from lmbook.tokenizers import CLS_ID, MASK_ID, PAD_ID, SEP_ID, BPETokenizer
from lmbook.training import train

torch.set_num_threads(1)
V = 60


def _docs(n_docs=6, n_sents=5, sent_len=4):
    """Document d's sentence s is [base, base+1, ...] with base unique per (d, s): every token names its place."""
    return [[[10 + d * 8 + s] * sent_len for s in range(n_sents)] for d in range(n_docs)]


def _owner(tok):  # document and sentence a token of _docs came from
    return (tok - 10) // 8, (tok - 10) % 8


def _tiny_encoder(vocab=V, max_len=64):
    return Encoder(EncoderConfig(vocab_size=vocab, max_len=max_len, n_layers=1, n_heads=2, d_model=16, d_ff=32,
                                 dropout=0.0))  # fmt: skip


# ----------------------------------------------------------------------------- examples
def test_nsp_examples_layout_and_exact_half_split():
    ex = P.nsp_examples(_docs(), 200, max_len=20, seed=3)
    assert len(ex) == 200 and sum(e[2] for e in ex) == 100
    for ids, types, is_next in ex:
        assert len(ids) == len(types) <= 20
        assert ids[0] == CLS_ID and ids[-1] == SEP_ID and ids.count(SEP_ID) == 2
        sep = ids.index(SEP_ID)
        a, b = ids[1:sep], ids[sep + 1:-1]
        assert a and b
        assert types == [0] * (sep + 1) + [1] * (len(b) + 1)
        doc_a, doc_b = {_owner(t)[0] for t in a}, {_owner(t)[0] for t in b}
        assert len(doc_a) == 1 and len(doc_b) == 1
        if is_next:  # B continues A: same document, the sentence right after A's last one
            assert doc_a == doc_b and _owner(b[0])[1] == _owner(a[-1])[1] + 1
        else:
            assert doc_a != doc_b


def test_nsp_examples_are_seeded_and_checked():
    assert P.nsp_examples(_docs(), 20, seed=1) == P.nsp_examples(_docs(), 20, seed=1)
    assert P.nsp_examples(_docs(), 20, seed=1) != P.nsp_examples(_docs(), 20, seed=2)
    with pytest.raises(ValueError, match="at least two documents"):
        P.nsp_examples(_docs(n_docs=1), 4)
    with pytest.raises(ValueError, match="max_len"):
        P.nsp_examples(_docs(), 4, max_len=4)


def test_tokenize_documents_splits_sentences():
    tok = BPETokenizer.train("The cat sat. The dog ran! A bird flew? " * 20, vocab_size=300)
    docs = P.tokenize_documents(tok, ["The cat sat. The dog ran!", "", "A bird flew?"])
    assert len(docs) == 2 and len(docs[0]) == 2
    assert tok.decode(docs[0][1]) == "The dog ran!"


def test_collate_mlm_masks_only_real_tokens():
    ex = P.nsp_examples(_docs(n_docs=8, n_sents=8, sent_len=6), 64, max_len=40, short_prob=0.5, seed=0)
    batch = P.collate_mlm(ex, vocab_size=80, generator=torch.Generator().manual_seed(0))  # _docs ids reach 73
    B, T = len(ex), max(len(e[0]) for e in ex)
    for key in ("input_ids", "token_type_ids", "attention_mask", "labels"):
        assert batch[key].shape == (B, T)
    assert batch["next_sentence_label"].tolist() == [e[2] for e in ex]
    original, _ = P.pad_batch([e[0] for e in ex], PAD_ID)
    target = batch["labels"] != -100
    assert torch.equal(batch["labels"][target], original[target])
    special = torch.isin(original, torch.tensor(P.SPECIAL_IDS))
    assert not (target & special).any() and not (target & (batch["attention_mask"] == 0)).any()
    assert torch.equal(batch["input_ids"][~target], original[~target])  # only targets are changed
    rate = target.sum() / (~special).sum()
    assert 0.10 < rate < 0.20
    assert (batch["input_ids"][target] == MASK_ID).float().mean() > 0.6  # ~80 % become [MASK]
    again = P.collate_mlm(ex, vocab_size=80, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(batch[k], again[k]) for k in batch)


# ----------------------------------------------------------------------------- losses
def _batch(seed=0, n=32):
    ex = P.nsp_examples(_docs(), n, max_len=24, seed=seed)
    return P.collate_mlm(ex, vocab_size=V, generator=torch.Generator().manual_seed(seed))


def test_mlm_heads_on_targets_match_the_full_model():
    model, batch = _tiny_encoder().eval(), _batch()
    mlm_logits, labels, nsp_logits = P._encoder_heads(model, batch)
    full = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    target = batch["labels"] != -100
    torch.testing.assert_close(mlm_logits, full.mlm_logits[target])
    torch.testing.assert_close(nsp_logits, full.nsp_logits)
    assert torch.equal(labels, batch["labels"][target])


def test_mlm_nsp_loss_parts_and_values():
    model, batch = _tiny_encoder().eval(), _batch()
    out = P.mlm_nsp_loss(model, batch)
    assert set(out) == {"loss", "mlm", "nsp"}
    torch.testing.assert_close(out["loss"], out["mlm"] + out["nsp"])
    full = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    expected = torch.nn.functional.cross_entropy(full.mlm_logits.flatten(0, 1), batch["labels"].flatten())
    torch.testing.assert_close(out["mlm"], expected)
    assert abs(out["nsp"].item() - math.log(2)) < 0.1  # an untrained head is near chance
    assert set(P.mlm_loss(model, batch)) == {"loss", "mlm"}
    torch.testing.assert_close(P.mlm_loss(model, batch)["loss"], out["mlm"])


@pytest.mark.parametrize("loss_fn", [P.mlm_nsp_loss, P.mlm_loss])
def test_encoder_losses_decrease_when_training(loss_fn):
    model, batches = _tiny_encoder(), [_batch(seed=s) for s in range(4)]
    hist = train(model, batches, loss_fn, steps=60, lr=3e-3, progress=False, seed=0)
    assert sum(hist.train_loss[-4:]) / 4 < 0.9 * sum(hist.train_loss[:4]) / 4
    assert P.mlm_accuracy(model, batches) > P.unigram_mlm_baseline(torch.tensor([[10] * 5]), batches)


def test_accuracies_count_the_right_predictions():
    model, batches = _tiny_encoder().eval(), [_batch(0), _batch(1)]
    hits = total = nsp_hits = n = 0
    for b in batches:
        out = model(b["input_ids"], b["token_type_ids"], b["attention_mask"])
        target = b["labels"] != -100
        hits += (out.mlm_logits.argmax(-1)[target] == b["labels"][target]).sum().item()
        total += target.sum().item()
        nsp_hits += (out.nsp_logits.argmax(-1) == b["next_sentence_label"]).sum().item()
        n += len(b["next_sentence_label"])
    assert P.mlm_accuracy(model, batches) == pytest.approx(hits / total)
    assert P.nsp_accuracy(model, batches) == pytest.approx(nsp_hits / n)


def test_unigram_mlm_baseline_guesses_the_most_frequent_token():
    labels = torch.tensor([[7, 7, 9, -100], [8, 7, -100, -100]])
    batches = [{"labels": labels}]
    train_ids = torch.tensor([7, 7, 7, 9, CLS_ID, CLS_ID, CLS_ID, CLS_ID])  # special ids never count
    assert P.unigram_mlm_baseline(train_ids, batches) == pytest.approx(3 / 5)


# ----------------------------------------------------------------------------- causal LM
def test_random_windows_shift_by_one_and_lm_batches_repeat():
    stream = torch.arange(100)
    x, y = P.random_windows(stream, 4, 10, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 10) and torch.equal(y, x + 1)
    sampler = P.lm_batches(stream, batch_size=4, context=10, seed=5)
    assert torch.equal(sampler(3)[0], sampler(3)[0]) and not torch.equal(sampler(3)[0], sampler(4)[0])
    with pytest.raises(ValueError, match="at least context"):
        P.random_windows(torch.arange(5), 2, 10)


def _tiny_decoder(vocab=V):
    return Decoder(DecoderConfig(vocab_size=vocab, max_len=16, n_layers=1, n_heads=2, d_model=16))


def test_perplexity_of_a_uniform_model_is_the_vocab_size():
    model = _tiny_decoder()
    with torch.no_grad():
        model.tok_emb.embedding.weight.zero_()  # tied head: every logit is 0
    assert P.model_perplexity(model, torch.randint(V, (16 * 5 + 1,))) == pytest.approx(V, rel=1e-6)


def test_perplexity_is_exp_of_the_mean_window_loss():
    model, ids = _tiny_decoder().eval(), torch.randint(V, (16 * 3 + 1 + 7,))  # the 7 left-over tokens are ignored
    windows = torch.stack([ids[i * 16:i * 16 + 17] for i in range(3)])
    loss = model(windows[:, :-1], windows[:, 1:]).loss
    assert P.model_perplexity(model, ids, batch_size=2) == pytest.approx(math.exp(loss.item()), rel=1e-5)
    assert P.lm_loss(model, (windows[:, :-1], windows[:, 1:])).item() == pytest.approx(loss.item())


def test_lm_loss_decreases_and_beats_unigram():
    stream = torch.arange(300) % 12 + 10  # a cycle: perfectly predictable from the last token
    model = _tiny_decoder()
    train(model, P.lm_batches(stream, batch_size=8, context=16), P.lm_loss, steps=60, lr=1e-2, progress=False,
          seed=0)  # fmt: skip
    assert P.model_perplexity(model, stream[:49]) < 2 < P.unigram_perplexity(stream, stream[:49], V)


def test_unigram_perplexity():
    assert P.unigram_perplexity(torch.arange(V), torch.arange(V), V) == pytest.approx(V)  # uniform counts
    # counts 3 and 1 (+1 smoothing on a 2-token vocabulary): p = 4/6, 2/6
    assert P.unigram_perplexity(torch.tensor([0, 0, 0, 1]), torch.tensor([0]), 2) == pytest.approx(6 / 4)


# ----------------------------------------------------------------------------- fill in the blank
def test_fill_in_the_blank_returns_top_k_per_mask():
    tok = BPETokenizer.train("the cat sat on the mat. " * 30, vocab_size=280)
    model = _tiny_encoder(vocab=tok.vocab_size).eval()
    out = P.fill_in_the_blank(model, tok, "the [MASK] sat on the [MASK].", k=3)
    assert len(out) == 2 and all(len(guesses) == 3 for guesses in out)
    probs = [p for _, p in out[0]]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
    assert all(isinstance(t, str) for t, _ in out[1])
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        P.fill_in_the_blank(model, tok, "no blank here")


def test_mlm_batches_draw_and_mask_afresh_each_step():
    ex = P.nsp_examples(_docs(), 50, max_len=24, seed=0)
    sampler = P.mlm_batches(ex, batch_size=8, vocab_size=V, seed=7)
    a, b = sampler(3), sampler(3)
    assert a["input_ids"].shape[0] == 8 and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(sampler(3)["labels"], sampler(4)["labels"])


def test_nsp_segments_are_never_empty_even_for_long_sentences():
    docs = [[[10 + d] * 30, [20 + d] * 3, [30 + d] * 30] for d in range(4)]  # sentences longer than max_len
    for ids, types, _ in P.nsp_examples(docs, 100, max_len=16, seed=0):
        sep = ids.index(SEP_ID)
        assert len(ids) == 16 and sep > 1 and ids[sep + 1] != SEP_ID and types[-1] == 1
