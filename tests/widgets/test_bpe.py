"""The BPE explorer's JavaScript tokenizer equals lmbook's Python BPETokenizer."""

import re

import pytest
from jsrun import run_js

from lmbook.baselines import word_level_tokens
from lmbook.tokenizers import BPETokenizer, split_into_chunks
from lmbook.widgets.bpe import BPEExplorer

TRAIN = ("Tokenization splits text into tokens. The tokenizer learns merges; tokenizers don't "
         "know every word, but they know the pieces. 2024 tokens... 你好世界 café naïve ") * 30
TEXTS = [
    "tokenization", " untokenizable words", "The tokenizer's 12,345 tokens!!", "café naïve über",
    "你好, 世界。", "emoji 🙂🚀 and  double  spaces\n\nnew\r\nlines\t tabs", "it's we're they'll I'd",
    "x_y snake_case __init__", "", "   ", "ＦＵＬＬ width ①②", "Ελληνικά русский עברית",
]


@pytest.fixture(scope="module")
def tok():
    return BPETokenizer.train(TRAIN, vocab_size=400)


def test_js_chunks_equal_python_chunks():
    for text in TEXTS:
        assert run_js("bpe_explorer.js", "splitChunks", text) == split_into_chunks(text), text


@pytest.mark.parametrize("n_merges", [0, 10, 60, 10_000])
def test_js_encode_equals_python_encode(tok, n_merges):
    merges = [list(m) for m in tok.merges]
    n = min(n_merges, len(merges))
    for text in TEXTS:
        js = run_js("bpe_explorer.js", "bpeEncode", text, merges, {"byteOffset": 7, "nMerges": n})
        assert js == BPETokenizer(tok.merges[:n]).encode(text), text


def test_js_encode_with_all_merges_and_widget_twin(tok):
    w = BPEExplorer(tok, " untokenizable words")
    js = run_js("bpe_explorer.js", "bpeEncode", w.text, w.merges, {"byteOffset": w.byte_offset})
    assert js == w.encode() == tok.encode(w.text)
    assert w.pieces() == tok.tokens(w.text)
    assert "".join(w.pieces()) == w.text


def test_js_piece_text_equals_token_str(tok):
    vocab = run_js("bpe_explorer.js", "tokenBytes", [list(m) for m in tok.merges],
                   {"byteOffset": 7, "specialTokens": list(tok.special_tokens)})
    assert vocab == [list(tok.vocab[i]) for i in range(tok.vocab_size)]
    for i in (0, 7 + 65, 7 + 0xE4, tok.vocab_size - 1):
        assert run_js("bpe_explorer.js", "pieceText", vocab[i]) == tok.token_str(i)


def test_js_word_level_equals_python():
    vocab = ["the", "cat", "don't"]
    text = "The cat DON'T purr, the zebra's café"
    expected = ["the", "cat", "don't", "[UNK]", "the", "[UNK]", "[UNK]"]
    assert word_level_tokens(text, set(vocab)) == expected
    assert run_js("bpe_explorer.js", "wordLevel", text, vocab) == expected


def test_widget_validates_its_input(tok):
    with pytest.raises(TypeError, match="BPETokenizer"):
        BPEExplorer("not a tokenizer")
    n = len(tok.merges)
    with pytest.raises(ValueError, match=f"n_merges must be in 0..{n}, got {n + 1}"):
        BPEExplorer(tok, n_merges=n + 1)


def test_widget_with_fewer_merges_gives_more_pieces(tok):
    w = BPEExplorer(tok, "tokenization", word_vocab=["tokenization"], n_merges=0)
    assert len(w.pieces()) == len("tokenization")
    w.n_merges = len(tok.merges)
    assert len(w.pieces()) < len("tokenization")
    assert w.word_level() == ["tokenization"] and w.word_level("tokenisation") == ["[UNK]"]


def test_rows_of_pieces_wrap_within_the_column():
    """The pieces are inline spans with no space between them, so without a wrapping flex
    container a long text ran off the column (20 of 38 pieces visible)."""
    css = run_js("bpe_explorer.js", "cssText")
    rules = {sel.strip(): body for sel, body in re.findall(r"([^{}]+)\{([^}]*)\}", css)}
    pieces = rules[".lmb-bpe .pieces, .lmb-bpe .words"]
    assert "display: flex" in pieces and "flex-wrap: wrap" in pieces and "min-width: 0" in pieces
    assert "display: flex" in rules[".lmb-bpe .row"]
