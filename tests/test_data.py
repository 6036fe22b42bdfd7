"""Tests for lmbook.data, lmbook.masking and the built data sets: corpora, masking, batches, labelled sets."""

import re
import time

import pytest
import torch

from lmbook import data, masking
from lmbook.finetuning import qa_data

SPECIAL = [0, 1, 2, 3, 4, 5, 6]  # [PAD] [UNK] [CLS] [SEP] [MASK] <bos> <eos> of lmbook.tokenizers
PAD, CLS, SEP, MASK = 0, 2, 3, 4


# ----------------------------------------------------------------------------- corpora
@pytest.mark.parametrize("name", sorted(data.CORPORA))
def test_corpus_size_matches_catalogue(name):
    text = data.load_corpus(name)
    assert len(text) == data.CORPORA[name].chars
    assert data.load_corpus(name) is text  # cached in memory


def test_wikipedia_is_clean_prose():
    text = data.load_corpus("wikipedia")
    assert len(text) > 1_000_000 and len(data.load_documents("wikipedia")) == 103
    for markup in ("{{", "}}", "[[", "]]", "<ref", "'''", "==", "http"):
        assert markup not in text, markup
    assert text.startswith("Anarchism is a political philosophy")


def test_news_and_chinese_content():
    news = data.load_documents("news")
    assert len(news) == 300 and news[0].startswith("Hundreds of people have been forced to vacate")
    zh = data.load_corpus("chinese")
    assert zh.startswith("迈向充满希望的新世纪") and "/n" not in zh and "[" not in zh
    assert sum("\u4e00" <= c <= "\u9fff" for c in zh) > 1_400_000


def test_corpus_loading_is_fast_when_cached():
    data.load_corpus("wikipedia")
    start = time.perf_counter()
    for name in data.CORPORA:
        data.load_corpus(name)
    assert time.perf_counter() - start < 0.01


def test_unknown_corpus_lists_names():
    with pytest.raises(KeyError, match="available: chinese, news, wikipedia"):
        data.load_corpus("shakespeare")


def test_missing_package_and_missing_file_errors():
    with pytest.raises(ImportError, match=r"pip install not-a-package==1\.0"):
        data.package_file("not_a_package_xyz", "a.txt", "pip install not-a-package==1.0")
    missing = "'test/test_data/nope.txt' is missing from the installed package 'gensim'"
    with pytest.raises(FileNotFoundError, match=missing):
        data.package_file("gensim", "test/test_data/nope.txt", "pip install gensim==4.4.0")


def test_clean_wikitext_removes_markup():
    raw = ("'''Albedo''' ({{IPAc-en|æ|l}}) is the [[diffuse reflection|diffuse reflectivity]] of a surface, "
           "measured from zero to one.<ref>Some book, 2003</ref>\n==References==\n* Some reference that is long enough")
    assert data.clean_wikitext(raw) == ("Albedo is the diffuse reflectivity of a surface, measured from zero to one.")


def test_train_val_split_is_deterministic_on_boundaries():
    text = data.load_corpus("news")
    train, val = data.train_val_split(text)
    assert (train, val) == data.train_val_split(text)
    assert train + "\n\n" + val == text
    assert 0.08 < len(val) / len(text) < 0.12
    assert val.startswith(data.load_documents("news")[len(train.split("\n\n"))])
    t2, v2 = data.train_val_split("a\nb\nc\nd", val_fraction=0.25)
    assert (t2, v2) == ("a\nb\nc", "d")
    with pytest.raises(ValueError, match="val_fraction"):
        data.train_val_split(text, val_fraction=1.5)


def test_split_sentences_handles_abbreviations_and_chinese():
    text = 'Mr. Smith went to Washington. He said "Hello." Then U.S. troops left.\n我们走。你好！'
    assert data.split_sentences(text) == ["Mr. Smith went to Washington.", 'He said "Hello."',
                                          "Then U.S. troops left.", "我们走。", "你好！"]


# ----------------------------------------------------------------------------- MLM masking
def _batch(n=400, T=128, vocab=1000, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(7, vocab, (n, T), generator=g)
    ids[:, 0], ids[:, -1] = CLS, SEP
    ids[:, -20:-1] = PAD  # padding must never be selected
    return ids


def test_mlm_80_10_10_proportions():
    ids = _batch()
    masked, labels = masking.mask_tokens_for_mlm(ids, vocab_size=1000, mask_id=MASK, special_ids=SPECIAL,
                                              generator=torch.Generator().manual_seed(1))
    counts = masking.mlm_category_counts(ids, masked, labels, MASK)
    maskable = int((~torch.isin(ids, torch.tensor(SPECIAL))).sum())
    assert counts["selected"] / maskable == pytest.approx(0.15, abs=0.005)
    assert counts["masked"] / counts["selected"] == pytest.approx(0.8, abs=0.015)
    assert counts["random"] / counts["selected"] == pytest.approx(0.1, abs=0.01)
    assert counts["unchanged"] / counts["selected"] == pytest.approx(0.1, abs=0.01)
    assert counts["selected"] + counts["not_selected"] == counts["tokens"] == ids.numel()


def test_mlm_labels_and_specials():
    ids = _batch(n=50)
    masked, labels = masking.mask_tokens_for_mlm(ids, vocab_size=1000, mask_id=MASK, special_ids=SPECIAL,
                                              generator=torch.Generator().manual_seed(2))
    selected = labels != -100
    assert torch.equal(labels[selected], ids[selected])  # labels hold the original ids
    assert torch.equal(masked[~selected], ids[~selected])  # unselected tokens untouched
    special = torch.isin(ids, torch.tensor(SPECIAL))
    assert not selected[special].any()
    changed = selected & (masked != ids) & (masked != MASK)
    assert not torch.isin(masked[changed], torch.tensor(SPECIAL)).any()  # random tokens are never special


def test_mlm_is_seeded():
    ids = _batch(n=10)
    kw = dict(vocab_size=1000, mask_id=MASK, special_ids=SPECIAL)
    a = masking.mask_tokens_for_mlm(ids, **kw, generator=torch.Generator().manual_seed(7))
    b = masking.mask_tokens_for_mlm(ids, **kw, generator=torch.Generator().manual_seed(7))
    c = masking.mask_tokens_for_mlm(ids, **kw, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[1], c[1])
    masked, labels = masking.mask_tokens_for_mlm([[2, 10, 11, 3]], **kw, mlm_probability=1.0)
    assert labels.tolist() == [[-100, 10, 11, -100]]


def test_pad_batch():
    ids, mask = data.pad_batch([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    ids, mask = data.pad_batch([[5, 6, 7], [8]], pad_id=0, side="left", max_length=2)
    assert ids.tolist() == [[5, 6], [0, 8]] and mask.tolist() == [[1, 1], [0, 1]]
    assert ids.dtype == torch.long
    with pytest.raises(ValueError, match="side must be"):
        data.pad_batch([[1]], 0, side="middle")


# ----------------------------------------------------------------------------- labelled sets
def test_bbc_news_split_and_baseline():
    s = data.load_classification("bbc_news")
    assert s.label_names == ("business", "entertainment", "politics", "sports", "tech")
    assert (len(s.train), len(s.val), len(s.test)) == (1701, 212, 214)  # 2,225 articles less 98 duplicates
    texts = [t for t, _ in s.train]
    assert not set(texts) & {t for t, _ in s.test}
    assert data.class_balance(s.test) == {0: 51, 1: 37, 2: 41, 3: 51, 4: 34}
    assert data.majority_baseline_accuracy(s.train, s.test) == pytest.approx(51 / 214)
    assert data.load_classification("bbc_news") is s


def test_chinese_reviews_and_errors():
    s = data.load_classification("reviews_zh")
    assert s.label_names == ("neg", "pos") and len(s.train) + len(s.val) + len(s.test) == 17457
    assert data.majority_baseline_accuracy(s.train, s.test) == pytest.approx(908 / 1746)
    with pytest.raises(KeyError, match="available: bbc_news, reviews_zh"):
        data.load_classification("imdb")


def test_majority_baseline_small():
    assert data.majority_baseline_accuracy([("a", 1), ("b", 1), ("c", 0)], [1, 0, 0, 1]) == 0.5


def test_nsp_pairs_balanced_and_correct():
    docs = [data.split_sentences(d) for d in data.load_documents("news")]
    pairs = data.make_nsp_pairs(docs, 1000, seed=3)
    assert len(pairs) == 1000 and sum(p[2] for p in pairs) == 500
    doc_of = {}
    for i, d in enumerate(docs):
        for s in d:
            doc_of.setdefault(s, set()).add(i)
    for a, b, is_next in pairs:
        if is_next:
            assert any(d[k] == a and d[k + 1] == b for i in doc_of[a] for d in [docs[i]] for k in range(len(d) - 1))
        else:
            assert doc_of[a] != doc_of[b] or len(doc_of[a]) > 1
    assert pairs == data.make_nsp_pairs(docs, 1000, seed=3)
    with pytest.raises(ValueError, match="two documents"):
        data.make_nsp_pairs([["only one sentence."]], 4)


# ----------------------------------------------------------------------------- QA
def test_qa_set_spans_and_size():
    examples = qa_data.load_qa()
    assert len(examples) >= 1000
    for ex in examples:
        assert ex.context[ex.answer_start:ex.answer_end] == ex.answer
    assert len({ex.id for ex in examples}) == len(examples)
    splits = {s: qa_data.load_qa(s) for s in ("train", "val", "test")}
    assert sum(map(len, splits.values())) == len(examples)
    docs = {s: {"-".join(ex.id.split("-")[:2]) for ex in exs} for s, exs in splits.items()}
    assert not docs["train"] & docs["test"] and not docs["train"] & docs["val"]


def test_qa_templates_give_right_answers():
    by_q = {ex.question: ex.answer for ex in qa_data.load_qa()}
    assert by_q["When was Allan Dwan born?"] == "3 April 1885"
    assert by_q["When did Henry David Thoreau die?"] == "1862"
    assert by_q["What is the capital of Texas?"] == "Austin"
    assert by_q["Where was Aldous Huxley born?"] == "Godalming, Surrey, England"
    for ex in qa_data.load_qa():
        if ex.template == "in_year":
            assert re.fullmatch(r"\d{4}", ex.answer)


def test_qa_example_validate():
    ok = qa_data.QAExample("x", "Who?", "Ann said hi.", "Ann", 0)
    assert ok.validate() is ok and ok.answer_end == 3
    with pytest.raises(ValueError, match=r"context\[1:4\] is 'nn ' but the answer is 'Ann'"):
        qa_data.QAExample("x", "Who?", "Ann said hi.", "Ann", 1).validate()
    with pytest.raises(ValueError, match="outside the context"):
        qa_data.QAExample("x", "Who?", "Ann", "Ann said", 0).validate()
    with pytest.raises(ValueError, match="non-empty"):
        qa_data.QAExample("x", "", "Ann", "Ann", 0).validate()
    with pytest.raises(ValueError, match="split must be"):
        qa_data.load_qa("dev")
