"""Tests for lmbook.tokenizers (Section 2.1 Tokenisation)."""

from __future__ import annotations

import json
import random
import timeit
from pathlib import Path

import pytest
import torch

import lmbook
from lmbook.data import load_corpus
from lmbook.tokenizers import (
    BYTE_OFFSET,
    SPECIAL_TOKENS,
    BPETokenizer,
    CharTokenizer,
    get_stats,
    merge,
    split_into_chunks,
    train_bpe,
)
from lmbook.tokenizers.bpe import _merge_long, _merge_short

ENGLISH = (
    "The cat sat on the mat. The dog sat on the log, and the cat saw the dog.\n"
    "It's a small world: the dogs and the cats don't mind the rain in 2024!\n\n"
    "    Indented line\twith a tab; the end.\n"
)

ROUND_TRIP_STRINGS = [
    "hello world",
    "Supercalifragilisticexpialidocious zxqv unseenword",
    "你好，世界",
    "🙂👍🏽",
    "  leading, trailing  \n\n\tmixed \r\n whitespace\n",
    "snake_case_name = 42_000 ** 2; x²\u0301 Ⅻ",
    "[MASK] <eos> is just text",
    "",
    "\x00\x7f\ufeff\U0010ffff",
]


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return BPETokenizer.train(ENGLISH * 20, vocab_size=320)


# ---------------------------------------------------------------- special tokens
@pytest.mark.parametrize("tok", [CharTokenizer.train("abc"), BPETokenizer()], ids=["char", "bpe"])
def test_special_token_ids_are_fixed(tok):
    assert SPECIAL_TOKENS == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<bos>", "<eos>"]
    got = (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id, tok.bos_id, tok.eos_id)
    assert got == (0, 1, 2, 3, 4, 5, 6)
    assert tok.special_ids == {0, 1, 2, 3, 4, 5, 6}
    assert [tok.decode([i]) for i in range(7)] == SPECIAL_TOKENS
    assert tok.decode([5, 0, 6], skip_special_tokens=True) == ""


def test_add_special_tokens(bpe):
    ids = bpe.encode("the cat")
    assert bpe.encode("the cat", add_special_tokens=True) == [5, *ids, 6]
    assert bpe.encode("the cat", add_special_tokens="cls_sep") == [2, *ids, 3]
    char = CharTokenizer.train("ab")
    assert char.encode("ab", add_special_tokens="bos_eos") == [5, 7, 8, 6]
    with pytest.raises(ValueError, match="add_special_tokens"):
        bpe.encode("x", add_special_tokens="yes")


# ---------------------------------------------------------------- CharTokenizer
def test_char_tokenizer_encode_decode_and_unknown():
    tok = CharTokenizer.train("hello")
    assert tok.chars == ["e", "h", "l", "o"]
    assert tok.vocab_size == len(tok) == 11
    assert tok.encode("hello") == [8, 7, 9, 9, 10]
    assert tok.encode("hell!") == [8, 7, 9, 9, 1]
    assert tok.decode([8, 7, 9, 9, 10]) == "hello"
    assert tok.decode(torch.tensor([8, 7])) == "he"
    assert tok.tokens("hex") == ["h", "e", "[UNK]"]
    assert CharTokenizer("ba").encode("ab") == [8, 7]


def test_char_tokenizer_save_load(tmp_path):
    tok = CharTokenizer.train("héllo 世界🙂")
    tok.save(tmp_path / "char.json")
    loaded = CharTokenizer.load(tmp_path / "char.json")
    assert loaded.chars == tok.chars
    assert loaded.encode("世界 hé!") == tok.encode("世界 hé!")
    (tmp_path / "bad.json").write_text(json.dumps({**tok.to_json_dict(), "chars": ["a", "a"]}))
    with pytest.raises(ValueError, match=r"chars\[1\].*duplicate"):
        CharTokenizer.load(tmp_path / "bad.json")


def test_char_tokenizer_errors():
    with pytest.raises(ValueError, match="text must be a non-empty str"):
        CharTokenizer.train("")
    with pytest.raises(TypeError, match="text must be a str, got int"):
        CharTokenizer.train("ab").encode(12)
    with pytest.raises(ValueError, match=r"ids\[1\] = 9 is out of range: vocab_size is 9"):
        CharTokenizer.train("ab").decode([7, 9])
    with pytest.raises(ValueError, match=r"chars\[0\] must be a single character"):
        CharTokenizer(["ab"])


# ---------------------------------------------------------------- pre-splitting
def test_split_into_chunks():
    assert split_into_chunks("Hello, world!  It's 2024.\n\nok_go") == [
        "Hello", ",", " world", "!", " ", " It", "'s", " 2024", ".", "\n\n", "ok", "_", "go",
    ]
    for s in ROUND_TRIP_STRINGS:
        assert "".join(split_into_chunks(s)) == s


# ---------------------------------------------------------------- BPE training
def test_bpe_first_merges_on_hand_checkable_text():
    # Chunks: "aaab" once, " aaab" twice. Pair counts: (a,a) 6, (a,b) 3, (" ",a) 2.
    # 1. (a,a) -> "aa". Then (aa,a) and (a,b) tie at 3; the smaller ids win: (a,b) -> "ab".
    # 3. (aa,ab) -> "aaab" (3).  4. (" ",aaab) -> " aaab" (2). Then no pairs are left.
    tok = BPETokenizer.train("aaab aaab aaab", vocab_size=300)
    a, b, space = BYTE_OFFSET + ord("a"), BYTE_OFFSET + ord("b"), BYTE_OFFSET + ord(" ")
    assert tok.merges == [(a, a), (a, b), (263, 264), (space, 265)]
    assert [tok.vocab[i] for i in range(263, 267)] == [b"aa", b"ab", b"aaab", b" aaab"]
    assert tok.vocab_size == 267  # stopped early: every chunk is one token
    assert tok.encode("aaab aaab") == [265, 266]
    assert tok.encode("aaaa") == [263, 263]


def test_bpe_reaches_vocab_size_and_learns_frequent_words(bpe):
    assert bpe.vocab_size == len(bpe) == 320
    assert len(bpe.merges) == 320 - 263
    assert len(bpe.vocab) == 320
    for word in [" the", " cat", " dog", " sat"]:
        assert bpe.tokens(word) == [word]
        assert len(bpe.encode(word)) == 1
    # Merged tokens are the concatenation of their parts.
    for k, (left, right) in enumerate(bpe.merges):
        assert bpe.vocab[263 + k] == bpe.vocab[left] + bpe.vocab[right]


def test_bpe_training_and_encoding_are_deterministic(bpe):
    again = BPETokenizer.train(ENGLISH * 20, vocab_size=320)
    assert again.merges == bpe.merges
    text = "The cats and dogs sat in the rain."
    assert bpe.encode(text) == bpe.encode(text) == again.encode(text)
    assert len(bpe.encode(text)) < len(text.encode("utf-8"))


def test_bpe_train_verbose_prints_merges(capsys):
    BPETokenizer.train("aaab aaab aaab", vocab_size=300, verbose=True)
    out = capsys.readouterr().out
    assert "merge 1/37: (104, 104) -> 263 b'aa' (count 6)" in out
    assert "no pairs left to merge: stopping at vocab_size 267" in out


def test_bpe_train_on_documents_never_merges_across_them():
    tok = BPETokenizer.train(["ab", "ab"], vocab_size=300)
    assert tok.merges == [(BYTE_OFFSET + ord("a"), BYTE_OFFSET + ord("b"))]


# ---------------------------------------------------------------- BPE encode / decode
@pytest.mark.parametrize("text", ROUND_TRIP_STRINGS)
def test_bpe_round_trip_any_unicode(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text
    assert BPETokenizer().decode(BPETokenizer().encode(text)) == text  # bytes only


def test_bpe_unseen_text_falls_back_to_bytes(bpe):
    assert bpe.encode("你") == [BYTE_OFFSET + b for b in "你".encode()]
    assert bpe.tokens("你") == ["<0xE4>", "<0xBD>", "<0xA0>"]
    assert bpe.tokens("The cat") == ["The", " cat"]


def test_bpe_decode_invalid_utf8_and_tensors(bpe):
    assert bpe.decode([BYTE_OFFSET + 0xE4]) == "\ufffd"
    ids = bpe.encode("the dog")
    assert bpe.decode(torch.tensor(ids)) == "the dog"
    assert bpe.decode([torch.tensor(i) for i in ids]) == "the dog"


# ---------------------------------------------------------------- saving / browser form
def test_bpe_save_load_round_trip(bpe, tmp_path):
    path = tmp_path / "bpe.json"
    bpe.save(path)
    loaded = BPETokenizer.load(path)
    assert loaded == bpe
    assert loaded.merges == bpe.merges
    text = ENGLISH + "你好 🙂👍🏽"
    assert loaded.encode(text) == bpe.encode(text)
    stored = json.loads(path.read_text())
    assert stored["merges"][0] == list(bpe.merges[0])
    assert all(isinstance(i, int) for m in stored["merges"] for i in m)


def _apply_merges_like_the_browser(d: dict, chunk: str) -> list[int]:
    """Python transcription of the JavaScript in BPETokenizer.to_json_dict's docstring."""
    ids = [b + d["byte_offset"] for b in chunk.encode("utf-8")]
    rank = {tuple(m): k for k, m in enumerate(d["merges"])}
    while True:
        ranks = [(rank.get((ids[i], ids[i + 1]), float("inf")), i) for i in range(len(ids) - 1)]
        if not ranks or min(ranks)[0] == float("inf"):
            return ids
        k = min(ranks)[0]
        a, b = d["merges"][k]
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and ids[i] == a and ids[i + 1] == b:
                out.append(d["byte_offset"] + 256 + k)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        ids = out


def test_to_json_dict_is_enough_for_a_browser(bpe):
    d = json.loads(json.dumps(bpe.to_json_dict()))
    assert d["byte_offset"] == 7
    assert d["special_tokens"] == SPECIAL_TOKENS
    assert len(d["vocab"]) == bpe.vocab_size
    assert d["vocab"][BYTE_OFFSET + ord("a")] == [ord("a")]
    for chunk in [" the", " cats", "Indented", " unseenword", "🙂"]:
        ids = _apply_merges_like_the_browser(d, chunk)
        assert ids == bpe.encode(chunk)
        assert bytes(b for i in ids for b in d["vocab"][i]).decode() == chunk


def test_bpe_load_names_what_is_wrong(bpe, tmp_path):
    good = bpe.to_json_dict()
    cases = [
        ({**good, "format": "hf"}, "'format' must be 'lmbook-bpe', got 'hf'"),
        ({**good, "special_tokens": ["[PAD]"]}, "'special_tokens' must be"),
        ({**good, "merges": [[7, 8], [7, 999]]}, r"merges\[1\] right id is 999"),
        ({**good, "merges": [[7, 8, 9]]}, r"merges\[0\] must be a pair"),
        ({**good, "vocab": good["vocab"][:10]}, r"'vocab' must list 320 tokens"),
        ({**good, "vocab": [*good["vocab"][:263], [1, 2], *good["vocab"][264:]]}, r"'vocab'\[263\]"),
    ]
    path = tmp_path / "bad.json"
    for data, message in cases:
        path.write_text(json.dumps(data))
        with pytest.raises(ValueError, match=message):
            BPETokenizer.load(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        BPETokenizer.load(path)


# ---------------------------------------------------------------- errors
def test_bpe_errors_name_the_argument(bpe):
    with pytest.raises(ValueError, match=r"vocab_size must be >= 263 .* got 100"):
        BPETokenizer.train("abc", vocab_size=100)
    with pytest.raises(TypeError, match=r"vocab_size must be an int >= 263, got float"):
        BPETokenizer.train("abc", vocab_size=300.0)
    with pytest.raises(ValueError, match="text must be a non-empty str"):
        BPETokenizer.train("", vocab_size=300)
    with pytest.raises(TypeError, match=r"text\[1\] must be a str, got bytes"):
        BPETokenizer.train(["ok", b"bytes"], vocab_size=300)
    with pytest.raises(TypeError, match="text must be a str, got list"):
        bpe.encode(["the"])
    with pytest.raises(ValueError, match=r"ids\[2\] = 5000 is out of range: vocab_size is 320"):
        bpe.decode([7, 8, 5000])
    with pytest.raises(ValueError, match=r"ids\[0\] = -1 is out of range"):
        bpe.decode([-1])
    with pytest.raises(TypeError, match=r"ids\[0\] must be an int, got str"):
        bpe.decode(["7"])


# ---------------------------------------------------------------- helpers and long inputs
def test_get_stats_and_merge_examples():
    assert get_stats([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert merge([7, 7, 7, 8], (7, 7), 263) == [263, 7, 8]
    assert train_bpe("low lower lowest " * 50, vocab_size=270) == BPETokenizer.train(
        "low lower lowest " * 50, vocab_size=270).merges


def test_heap_merging_gives_the_same_ids_as_the_simple_loop(bpe):
    rng = random.Random(0)
    texts = ["a" * 200, "ab" * 150, "the" * 90, ENGLISH.replace(" ", "") * 3, "你好" * 40]
    texts += ["".join(rng.choice("theabcdnos") for _ in range(rng.randrange(2, 400))) for _ in range(50)]
    for text in texts:
        ids = [BYTE_OFFSET + b for b in text.encode("utf-8")]
        assert _merge_long(ids, bpe._merge_id) == _merge_short(ids, bpe._merge_id), text[:40]


def test_encoding_a_long_run_of_letters_grows_near_linearly():
    # No spaces: the whole input is one chunk. Re-scanning it once per merge was quadratic
    # (up to the number of merges, so the test needs the shipped 2,000-odd merges). Below
    # ~40 KB the time per byte still grows as the work outgrows the CPU caches; from there on
    # it is flat, so the sizes start there.
    bpe = BPETokenizer.load(Path(lmbook.__file__).parent / "checkpoints" / "tokenizer-wiki" / "tokenizer.json")
    text = "".join(c for c in load_corpus("wikipedia")[:600_000] if c.isalpha())[:400_000]  # English, no spaces
    assert len(text) == 400_000

    def seconds(s):  # best of 2, with the garbage collector off as timeit does
        bpe._cache.clear()
        return min(timeit.repeat(lambda: bpe.encode(s), setup=bpe._cache.clear, number=1, repeat=2))

    ratio = seconds(text) / seconds(text[:40_000])
    assert ratio < 20, f"10x longer input took {ratio:.1f}x as long"
