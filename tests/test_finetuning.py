"""Tests for lmbook.finetuning (Chapter 5): heads, freezing, QA spans, metrics (translation: test_translation.py)."""

from __future__ import annotations

import math

import pytest
import torch

from lmbook.finetuning import (
    ClassifierConfig,
    QAExample,
    SequenceClassifier,
    SpanQA,
    accuracy,
    best_span,
    char_span_to_tokens,
    classification_batch,
    classification_loss,
    confusion_matrix,
    corpus_bleu,
    exact_match,
    freeze_encoder,
    load_qa,
    normalize_answer,
    predict_answers,
    qa_batch,
    qa_features,
    qa_metrics,
    sequence_exact_match,
    span_loss,
    token_f1,
    token_offsets,
)
from lmbook.models import Encoder, EncoderConfig
from lmbook.tokenizers import CLS_ID, PAD_ID, SEP_ID, BPETokenizer
from lmbook.training import count_parameters, load_checkpoint, save_checkpoint, train

torch.set_num_threads(1)


def tiny_encoder(vocab_size: int = 50, max_len: int = 32, seed: int = 0) -> Encoder:
    torch.manual_seed(seed)
    return Encoder(EncoderConfig(vocab_size=vocab_size, max_len=max_len, n_layers=1, n_heads=2, d_model=16, d_ff=32,
                                 dropout=0.0))  # fmt: skip


@pytest.fixture(scope="module")
def qa_tokenizer() -> BPETokenizer:
    """A small BPE tokenizer (merged tokens with leading spaces, like the shipped one) trained in about a second."""
    return BPETokenizer.train([e.context for e in load_qa("train")[:60]], 400)


# ----------------------------------------------------------------------------- metrics on hand-computed examples
def test_accuracy_and_confusion_matrix():
    assert accuracy([0, 1, 2, 1], [0, 1, 1, 1]) == 0.75
    m = confusion_matrix([0, 1, 2, 1, 0], [0, 1, 1, 1, 2], n_classes=3)  # rows: true class, columns: predicted
    assert m.tolist() == [[1, 0, 0], [0, 2, 1], [1, 0, 0]]
    assert m.sum() == 5
    with pytest.raises(ValueError, match="same non-empty shape"):
        accuracy([0, 1], [0])


def test_squad_normalisation_exact_match_and_f1():
    assert normalize_answer("  The Cat, sat!  ") == "cat sat"
    assert exact_match("the Eiffel Tower.", "Eiffel tower") == 1.0
    assert exact_match("Eiffel", "Eiffel Tower") == 0.0
    assert token_f1("Barack Obama", "President Barack Obama") == pytest.approx(0.8)  # P = 1, R = 2/3
    assert token_f1("a b c", "d") == 0.0
    assert token_f1("x x y", "x y y") == pytest.approx(2 / 3)  # overlap counts are clipped: 2 common of 3
    assert qa_metrics(["1900", "John Smith"], ["1900", "Smith"]) == pytest.approx({"exact_match": 0.5,
                                                                                   "f1": (1 + 2 / 3) / 2})


def test_bleu_hand_computed():
    assert corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(1.0)
    # only the brevity penalty: every n-gram matches, 5 words against 6
    assert corpus_bleu(["a b c d e"], ["a b c d e f"]) == pytest.approx(math.exp(1 - 6 / 5))
    # p1 = 5/5, p2 = 3/4, p3 = 2/3, p4 = 1/2, BP = exp(1 - 6/5)
    got = corpus_bleu(["the cat sat on mat"], ["the cat sat on the mat"])
    assert got == pytest.approx(math.exp(1 - 6 / 5) * (1 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25)
    # clipping (Papineni et al.'s example): "the" counts at most twice, as in the reference
    assert corpus_bleu(["the the the the the the the"], ["the cat is on the mat"], max_n=1) == pytest.approx(2 / 7)
    # corpus level: counts are summed over sentences before the precisions (p = 4/6, 3/4, 2/2, 1/1)
    assert corpus_bleu(["a b c d", "x y"], ["a b c d", "p q"]) == pytest.approx((4 / 6 * 3 / 4) ** 0.25)
    assert corpus_bleu(["x y z w"], ["a b c d"]) == 0.0
    assert corpus_bleu([["a", "b"]], [["a", "b"]], max_n=2) == pytest.approx(1.0)  # token lists work too
    with pytest.raises(ValueError, match="hypotheses"):
        corpus_bleu(["a"], ["a", "b"])


def test_sequence_exact_match():
    assert sequence_exact_match(["a b", "c"], ["a  b", "d"]) == 0.5


# ----------------------------------------------------------------------------- heads
def test_head_shapes_and_padding():
    enc = tiny_encoder()
    ids = torch.tensor([[CLS_ID, 10, 11, SEP_ID, PAD_ID], [CLS_ID, 12, SEP_ID, PAD_ID, PAD_ID]])
    mask = (ids != PAD_ID).long()
    clf = SequenceClassifier(enc, n_classes=3).eval()
    assert clf(ids, mask).shape == (2, 3)
    logits, attns = clf(ids, mask, need_weights=True)
    assert logits.shape == (2, 3) and len(attns) == 1 and attns[0].shape == (2, 2, 5, 5)
    qa = SpanQA(tiny_encoder()).eval()
    start, end = qa(ids, torch.zeros_like(ids), mask)
    assert start.shape == end.shape == (2, 5)
    assert (start[mask == 0] == -1e4).all() and (end[mask == 0] == -1e4).all()
    with pytest.raises(ValueError, match="n_classes"):
        SequenceClassifier(enc, n_classes=1)


def test_mean_pooling_ignores_padding():
    enc = tiny_encoder().eval()
    ids = torch.tensor([[CLS_ID, 10, 11, SEP_ID, PAD_ID], [CLS_ID, 12, SEP_ID, PAD_ID, PAD_ID]])
    mask = (ids != PAD_ID).long()
    clf = SequenceClassifier(enc, n_classes=3, pooling="mean").eval()
    h = enc(ids, attention_mask=mask, compute_heads=False).hidden_states  # (2, 5, 16)
    torch.testing.assert_close(clf.pool(h, mask)[1], h[1, :3].mean(0))
    assert clf(ids, mask).shape == (2, 3)
    with pytest.raises(ValueError, match="pooling"):
        SequenceClassifier(enc, n_classes=3, pooling="max")


@pytest.mark.parametrize("make", [lambda e: SequenceClassifier(e, 4), SpanQA])
def test_checkpoint_round_trip(tmp_path, make):
    model = make(tiny_encoder()).eval()
    save_checkpoint(model, tmp_path / "m")
    loaded = load_checkpoint(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.config == model.config
    ids = torch.tensor([[CLS_ID, 9, 8, SEP_ID]])
    a, b = model(ids), loaded(ids)
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,), strict=True):
        torch.testing.assert_close(x, y)


def test_freeze_encoder_keeps_encoder_weights():
    model = SequenceClassifier(tiny_encoder(), n_classes=2)
    n_head = count_parameters(model.head)
    assert freeze_encoder(model) == n_head
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    head_before = model.head.weight.clone()
    batch = classification_batch([([CLS_ID, 10, SEP_ID], 0), ([CLS_ID, 11, 12, SEP_ID], 1)])
    train(model, [batch], classification_loss, steps=2, lr=1e-2, warmup_steps=0, progress=False)
    for k, v in model.encoder.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert not torch.equal(model.head.weight, head_before)
    assert freeze_encoder(model, frozen=False) == count_parameters(model)


def test_classifier_learns_a_toy_task():
    """Label 1 iff token 10 occurs anywhere in the sequence: the [CLS] state must gather it by attention."""
    g = torch.Generator().manual_seed(0)
    examples = []
    for _ in range(256):
        body = torch.randint(11, 30, (6,), generator=g).tolist()
        label = int(torch.rand(1, generator=g) < 0.5)
        if label:
            body[torch.randint(0, 6, (1,), generator=g).item()] = 10
        examples.append(([CLS_ID, *body, SEP_ID], label))
    train_set, test_set = examples[:192], examples[192:]
    model = SequenceClassifier(tiny_encoder(seed=1), n_classes=2, dropout=0.0)
    batches = [classification_batch(train_set[i : i + 32]) for i in range(0, 192, 32)]
    train(model, batches, classification_loss, steps=150, lr=3e-3, seed=0, progress=False)
    b = classification_batch(test_set)
    with torch.no_grad():
        preds = model.eval()(b["input_ids"], b["attention_mask"]).argmax(-1)
    assert accuracy(preds, b["labels"]) >= 0.95


def test_classification_batch_truncates(qa_tokenizer):
    b = classification_batch([("word " * 100, 1), ("short", 0)], qa_tokenizer, max_len=16)
    assert b["input_ids"].shape == (2, 16)
    assert b["input_ids"][0, 0] == CLS_ID and b["input_ids"][0, -1] == SEP_ID
    assert b["attention_mask"][1].sum() < 16 and b["labels"].tolist() == [1, 0]
    with pytest.raises(ValueError, match="tokenizer"):
        classification_batch([("text", 0)])


# ----------------------------------------------------------------------------- extractive QA
def test_token_offsets_cover_multibyte_text(qa_tokenizer):
    text = "The café in Zürich costs 5€ — 你好 🙂."
    ids, offsets = token_offsets(qa_tokenizer, text)
    assert ids == qa_tokenizer.encode(text)
    assert offsets[0][0] == 0 and offsets[-1][1] == len(text)
    assert all(a[1] <= b[1] and a[0] <= b[0] for a, b in zip(offsets, offsets[1:], strict=False))
    pieces = {text[s:e] for s, e in offsets}
    assert " café" in pieces or "é" in "".join(pieces)
    assert char_span_to_tokens(offsets, text.index("Zürich"), text.index("Zürich") + 6) is not None
    assert char_span_to_tokens(offsets, 5, 5) is None  # an empty span overlaps no token


def test_span_mapping_round_trip_on_real_examples(qa_tokenizer):
    examples = load_qa("val") + load_qa("test")
    assert len(examples) > 300
    for ex in examples:
        f = qa_features(ex, qa_tokenizer, max_len=1024)
        assert f.input_ids[0] == CLS_ID and f.input_ids.count(SEP_ID) == 2
        assert f.token_type_ids[f.start] == 1 and f.start <= f.end
        text = ex.context[f.offsets[f.start][0] : f.offsets[f.end][1]].strip()
        assert text == ex.answer, ex.id


def test_truncated_answer_points_at_cls(qa_tokenizer):
    ex = QAExample("x", "Who?", "Filler words come first here. " * 8 + "Then Ada Lovelace spoke.", "Ada Lovelace",
                   len("Filler words come first here. " * 8) + 5).validate()  # fmt: skip
    full = qa_features(ex, qa_tokenizer, max_len=512)
    assert full.start > 0
    cut = qa_features(ex, qa_tokenizer, max_len=full.start + 1)  # the passage now ends before the answer
    assert (cut.start, cut.end) == (0, 0) and len(cut.input_ids) == full.start + 1
    b = qa_batch([full, cut])
    assert b["input_ids"].shape == b["token_type_ids"].shape == b["attention_mask"].shape
    assert b["start_positions"].tolist() == [full.start, 0]
    with pytest.raises(ValueError, match="no room"):
        qa_features(ex, qa_tokenizer, max_len=3)


def test_best_span():
    start = torch.tensor([5.0, 1.0, 0.0, 3.0, 0.0])
    end = torch.tensor([5.0, 0.0, 2.0, 0.0, 4.0])
    allowed = torch.tensor([False, True, True, True, True])  # position 0 ([CLS]) may not be chosen
    assert best_span(start, end, allowed, max_answer_len=30)[:2] == (3, 4)  # 3 + 4
    assert best_span(start, end, allowed, max_answer_len=1)[:2] == (4, 4)  # spans of one token: 0 + 4
    with pytest.raises(ValueError, match="no allowed"):
        best_span(start, end, torch.zeros(5, dtype=torch.bool))


def test_predict_answers_returns_passage_text(qa_tokenizer):
    examples = load_qa("val")[:4]
    feats = [qa_features(e, qa_tokenizer, max_len=256) for e in examples]
    torch.manual_seed(0)
    model = SpanQA(Encoder(EncoderConfig(vocab_size=qa_tokenizer.vocab_size, max_len=256, n_layers=1, n_heads=2,
                                         d_model=16, d_ff=32)))  # fmt: skip
    loss = span_loss(model, qa_batch(feats))
    assert loss.dim() == 0 and loss.item() > 0
    for answer, ex in zip(predict_answers(model, feats, max_answer_len=5), examples, strict=True):
        assert answer and answer in ex.context and len(qa_tokenizer.encode(answer)) <= 6


def test_config_from_dict_rebuilds_encoder_config():
    enc = tiny_encoder()
    config = ClassifierConfig(encoder=vars(enc.config).copy(), n_classes=2)
    assert config.encoder == enc.config


def test_check_mean_pooling_accepts_the_right_answer_and_names_mistakes():
    from lmbook.finetuning.classification import check_mean_pooling

    def right(h, m):
        m = m.float()[..., None]
        return (h * m).sum(1) / m.sum(1)

    assert "correct" in check_mean_pooling(right)
    mistakes = {
        "padded positions": lambda h, m: h.mean(1),
        "sum of the token vectors": lambda h, m: (h * m[..., None]).sum(1),
        "shape": lambda h, m: (h * m[..., None]).sum(1, keepdim=True),
    }
    for words, fn in mistakes.items():
        with pytest.raises(AssertionError, match=words):
            check_mean_pooling(fn)
