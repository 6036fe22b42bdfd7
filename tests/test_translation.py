"""Tests for lmbook.finetuning.translation (Chapter 5, section "Machine translation") and the teaching BLEU."""

from __future__ import annotations

import pytest
import torch

from lmbook.corpora.bible import dictionary_baseline, load_bible_pairs, tokenize
from lmbook.finetuning import (
    check_word_attention,
    corpus_bleu,
    cross_attention_alignment,
    piece_to_word_attention,
    train_translation_tokenizer,
    translate,
    translation_batch,
    translation_pairs,
    word_pieces,
)
from lmbook.models import Transformer, TransformerConfig
from lmbook.tokenizers import BOS_ID, EOS_ID, PAD_ID, BPETokenizer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def verses():
    return load_bible_pairs("val")[:60]


@pytest.fixture(scope="module")
def tokenizer(verses):
    return train_translation_tokenizer(verses, vocab_size=400)


def tiny_model(vocab_size: int, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(TransformerConfig(src_vocab_size=vocab_size, tgt_vocab_size=vocab_size, max_len=128,
                                         n_encoder_layers=1, n_decoder_layers=2, n_heads=2, d_model=16, d_ff=32,
                                         dropout=0.0, norm_first=True)).eval()  # fmt: skip


def test_tokenizer_is_joint_and_pairs_filter_by_length(verses, tokenizer):
    assert tokenizer.vocab_size == 400
    v = verses[0]
    assert tokenizer.decode(tokenizer.encode(v.en)) == v.en and tokenizer.decode(tokenizer.encode(v.es)) == v.es
    pairs = translation_pairs(verses, tokenizer)
    assert len(pairs) == len(verses) and pairs[0] == (tokenizer.encode(v.en), tokenizer.encode(v.es))
    short = translation_pairs(verses, tokenizer, max_tokens=80)
    assert 0 < len(short) < len(pairs) and all(max(len(s), len(t)) <= 80 for s, t in short)
    with pytest.raises(ValueError, match="at least one"):
        train_translation_tokenizer([], 300)


def test_translation_batch_shapes_and_shift():
    b = translation_batch([([10, 11], [20]), ([12], [21, 22])])
    assert b["src"].tolist() == [[10, 11, EOS_ID], [12, EOS_ID, PAD_ID]]
    assert b["tgt_in"].tolist() == [[BOS_ID, 20, EOS_ID], [BOS_ID, 21, 22]]
    assert b["targets"].tolist() == [[20, EOS_ID, PAD_ID], [21, 22, EOS_ID]]


def test_word_pieces_map_bpe_pieces_to_corpus_words():
    tok = BPETokenizer.train("God’s word, “yes.” " * 20 + "el Señor dijo: «sí»", vocab_size=300)
    for text in ["God’s word, “yes.”", "Y dijo el Señor: ¿qué es?", "Beth-lehem  de Judá"]:
        ids, owner = word_pieces(text, tok)
        assert ids == tok.encode(text) and len(owner) == len(ids)
        words = tokenize(text)
        for w, word in enumerate(words):
            pieces = tok.decode([i for i, o in zip(ids, owner, strict=True) if o == w])
            if word[0].isalnum() or pieces:  # a word's pieces, joined, contain the word ...
                assert word in pieces
            else:  # ... except punctuation right after punctuation: `.”` may be one piece, owned by `.`
                assert not words[w - 1][0].isalnum()
    ids, owner = word_pieces("a  b", BPETokenizer())  # bytes only: the first of two spaces belongs to no word
    assert owner == [0, -1, -1, 1]


def test_piece_to_word_attention_sums_sources_and_averages_targets():
    attn = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6]])  # (3 target pieces, 3 source pieces)
    A = piece_to_word_attention(attn, tgt_owner=[0, 0, 1], src_owner=[0, 0, 1])
    assert torch.allclose(A, torch.tensor([[0.725, 0.275], [0.4, 0.6]]))
    B = piece_to_word_attention(attn, tgt_owner=[0, -1, 1], src_owner=[0, -1, 1])  # whitespace pieces dropped
    assert torch.allclose(B, torch.tensor([[0.5, 0.25], [0.2, 0.6]]))
    with pytest.raises(ValueError, match="attn must have shape"):
        piece_to_word_attention(attn, [0, 1], [0, 1, 2])


def test_check_word_attention_names_the_mistake():
    assert check_word_attention(piece_to_word_attention) == "correct"

    def mean_over_source(attn, tgt_owner, src_owner):
        A = piece_to_word_attention(attn, tgt_owner, src_owner)
        return A / torch.tensor([1.0, 3.0, 1.0])

    def first_piece_only(attn, tgt_owner, src_owner):
        keep = [i == 0 or tgt_owner[i] != tgt_owner[i - 1] for i in range(len(tgt_owner))]
        rows = attn[torch.tensor(keep)]
        return piece_to_word_attention(rows, [o for o, k in zip(tgt_owner, keep, strict=True) if k], src_owner)

    with pytest.raises(AssertionError, match="SUM of its pieces"):
        check_word_attention(mean_over_source)
    with pytest.raises(AssertionError, match="target word 0 has two pieces"):
        check_word_attention(first_piece_only)
    with pytest.raises(AssertionError, match="shape"):
        check_word_attention(lambda a, t, s: a)


def test_translate_greedy_equals_beam_of_one_and_outputs_text(verses, tokenizer):
    model = tiny_model(tokenizer.vocab_size)
    sources = [v.en for v in verses[:3]]
    greedy = translate(model, sources, tokenizer, max_len=12)
    assert len(greedy) == 3 and all(isinstance(s, str) for s in greedy)
    assert translate(model, sources, tokenizer, max_len=12, batch_size=2) == greedy  # batching changes nothing
    beam = translate(model, sources, tokenizer, beam_size=3, max_len=12)
    assert len(beam) == 3 and all(isinstance(s, str) for s in beam)
    with pytest.raises(TypeError, match="list of English strings"):
        translate(model, sources[0], tokenizer)


def test_cross_attention_alignment_links_every_spanish_word_with_a_piece(verses, tokenizer):
    model = tiny_model(tokenizer.vocab_size)
    v = next(v for v in verses if v.alignments)
    n_en, n_es = len(tokenize(v.en)), len(tokenize(v.es))
    for layer, shift in [(-1, 1), (0, 0)]:
        A, links = cross_attention_alignment(model, tokenizer, v, layer=layer, shift=shift)
        assert A.shape == (n_es, n_en) and (A >= 0).all() and (A.sum(1) <= 1 + 1e-5).all()
        _, owner = word_pieces(v.es, tokenizer)
        assert {j for _, j in links} == set(owner) - {-1} and all(0 <= i < n_en for i, _ in links)
        assert all(A[j, i] == A[j].max() for i, j in links)


def test_teaching_bleu_equals_sacrebleu_on_pretokenised_text():
    """``lmbook.finetuning.corpus_bleu`` (the chapter's BLEU written out) equals sacrebleu's BLEU when both see
    the same tokens: text split by ``lmbook.corpora.tokenize`` and joined by spaces, sacrebleu told not to
    tokenise again (``tokenize="none"``) and not to smooth (``smooth_method="none"``, as the teaching BLEU)."""
    import sacrebleu

    train, test = load_bible_pairs("train")[:3000], load_bible_pairs("test")[:120]
    hyps = dictionary_baseline(train, [v.en for v in test])
    pre = lambda texts: [" ".join(tokenize(t)) for t in texts]  # noqa: E731
    refs = pre(v.es for v in test)
    ours = 100 * corpus_bleu(pre(hyps), refs)
    theirs = sacrebleu.corpus_bleu(pre(hyps), [refs], tokenize="none", smooth_method="none", force=True).score
    assert ours > 1 and ours == pytest.approx(theirs, abs=1e-9)
    short = pre(h.split(",")[0] for h in hyps)  # shorter hypotheses: the brevity penalty must agree too
    theirs = sacrebleu.corpus_bleu(short, [refs], tokenize="none", smooth_method="none", force=True).score
    assert 100 * corpus_bleu(short, refs) == pytest.approx(theirs, abs=1e-9)
