"""lmbook.corpora.bible: the shipped English-Spanish verse pairs (Chapter 5, "Machine translation")."""

import pytest

from lmbook.corpora import (
    TEST_BOOKS,
    VAL_BOOKS,
    alignment_error_rate,
    dictionary_baseline,
    load_bible_pairs,
    tokenize,
    word_alignments,
)

SIZES = {"train": 30343, "val": 318, "test": 416}


@pytest.fixture(scope="module")
def splits():
    return {s: load_bible_pairs(s) for s in SIZES}


def test_split_sizes_and_disjoint_books(splits):
    assert {s: len(v) for s, v in splits.items()} == SIZES
    books = {s: {v.book for v in vs} for s, vs in splits.items()}
    assert books["test"] == set(TEST_BOOKS) and books["val"] == set(VAL_BOOKS)
    assert len(books["train"]) == 57
    assert not (books["train"] & books["val"] or books["train"] & books["test"] or books["val"] & books["test"])
    assert len(load_bible_pairs("all")) == sum(SIZES.values())


def test_alignment_indices_in_range(splits):
    linked = 0
    for vs in splits.values():
        for v in vs:
            n_en, n_es = len(tokenize(v.en)), len(tokenize(v.es))
            assert v.en.strip() and v.es.strip()
            assert all(0 <= i < n_en for i, _ in v.en_strongs) and all(0 <= j < n_es for j, _ in v.es_strongs)
            assert all(0 <= i < n_en and 0 <= j < n_es for i, j in word_alignments(v))
            linked += bool(v.alignments)
    assert linked > 0.9 * sum(SIZES.values())


def test_gold_alignment_example():
    gen = load_bible_pairs("all")[0]
    assert (gen.book, gen.chapter, gen.verse) == ("Genesis", 1, 1)
    en, es = tokenize(gen.en), tokenize(gen.es)
    assert (en.index("God"), es.index("Dios")) in word_alignments(gen)
    assert es[0] == "En"  # the drop-cap "EN el principio" is re-cased


def test_aer():
    gold = {(0, 0), (1, 2), (3, 1)}
    assert alignment_error_rate(gold, gold) == 0.0
    assert alignment_error_rate({(5, 5), (6, 6)}, gold) == 1.0
    assert alignment_error_rate({(0, 0)}, {(0, 0), (1, 1)}) == pytest.approx(1 - 2 / 3)


def test_dictionary_baseline_bleu(splits):
    import sacrebleu

    test = splits["test"]
    hyp = dictionary_baseline(splits["train"], [v.en for v in test])
    assert len(hyp) == len(test)
    bleu = sacrebleu.corpus_bleu(hyp, [[v.es for v in test]]).score
    assert bleu > 6.5  # measured 7.3 (chrF 32.6)


def test_bad_split_names_the_argument():
    with pytest.raises(ValueError, match="split"):
        load_bible_pairs("dev")
