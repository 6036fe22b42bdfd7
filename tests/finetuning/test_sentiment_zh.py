"""lmbook.finetuning.sentiment_zh: tokenisation comparison helpers, the checker, the Chinese model's data."""

from __future__ import annotations

import pytest
import torch

from lmbook.finetuning.sentiment_zh import (
    MAX_LEN,
    attention_shading_html,
    check_oov_rate,
    jieba_words,
    mlm_windows,
    normalize_zh,
    oov_by_corpus_size,
    oov_rate,
    tokenization_row,
    zh_char_tokenizer,
    zh_encoder_config,
)
from lmbook.tokenizers import CLS_ID, SEP_ID, UNK_ID


def test_normalize_zh_maps_full_width_to_ascii():
    assert normalize_zh("１９９８年，ＣＤＭＡ！") == "1998年,CDMA!"
    assert normalize_zh("房间很干净") == "房间很干净"
    with pytest.raises(TypeError, match="text must be a str"):
        normalize_zh(b"abc")


def test_jieba_words_cuts_words_and_drops_spaces():
    words = jieba_words("房间很干净 服务也不错")
    assert "".join(words) == "房间很干净服务也不错"
    assert "房间" in words and " " not in words


def test_oov_rate_counts_occurrences():
    assert oov_rate([["a", "b"], ["b", "z"]], {"a", "b"}) == 0.25
    assert oov_rate([["z", "z", "z", "a"]], ["a"]) == 0.75
    with pytest.raises(ValueError, match="no tokens"):
        oov_rate([[], []], {"a"})


def test_check_oov_rate_accepts_the_reference_and_names_mistakes():
    assert "pass" in check_oov_rate(oov_rate)

    def distinct(pieces, vocab):
        types = {p for t in pieces for p in t}
        return len(types - set(vocab)) / len(types)

    with pytest.raises(AssertionError, match="occurrences"):
        check_oov_rate(distinct)
    with pytest.raises(AssertionError, match="percentage"):
        check_oov_rate(lambda p, v: 100 * oov_rate(p, v))


def test_tokenization_row_and_byte_level_row():
    row = tokenization_row("chars", "ab", [["a", "b", "c"], ["a"]])
    assert row == {"tokenizer": "chars", "vocab_size": 2, "oov_percent": 25.0, "mean_tokens": 2.0,
                   "median_tokens": 2.0}  # fmt: skip
    assert tokenization_row("bpe", None, [["x"]], vocab_size=300)["oov_percent"] == 0.0
    with pytest.raises(ValueError, match="vocab_size is required"):
        tokenization_row("bpe", None, [["x"]])


def test_oov_by_corpus_size_falls_as_the_vocabulary_grows():
    assert oov_by_corpus_size(["ab", "c", "ab"], [2, 3], [["ab", "c"]]) == [0.5, 0.0]
    assert oov_by_corpus_size(list("aab"), [1, 2, 3], [list("ab")]) == [0.5, 0.5, 0.0]
    with pytest.raises(ValueError, match="increasing"):
        oov_by_corpus_size(list("ab"), [3, 1], [["a"]])


def test_zh_char_tokenizer_keeps_frequent_characters():
    tok = zh_char_tokenizer(["好好好差", "好差差"], min_count=3)
    assert tok.chars == ["好", "差"]  # "\n" occurs once: dropped
    assert tok.encode("好坏") == [tok.stoi["好"], UNK_ID]
    with pytest.raises(ValueError, match="min_count"):
        zh_char_tokenizer(["好"], min_count=0)


def test_mlm_windows_cover_the_text():
    tok = zh_char_tokenizer(["一二三四五六七"], min_count=1)
    windows = mlm_windows(tok, ["一二三四五六七"], max_len=5)
    assert [len(w[0]) for w in windows] == [5, 5, 3]
    assert all(w[0][0] == CLS_ID and w[0][-1] == SEP_ID and len(w[1]) == len(w[0]) for w in windows)
    assert tok.decode([t for w in windows for t in w[0][1:-1]]) == "一二三四五六七"


def test_zh_encoder_config_is_small_pre_ln():
    c = zh_encoder_config(3823)
    assert (c.norm_first, c.dropout, c.max_len, c.vocab_size) == (True, 0.1, MAX_LEN, 3823)


def test_attention_shading_html_escapes_and_scales():
    out = attention_shading_html(["<", "好"], torch.tensor([0.5, 1.0]), "t")
    assert "&lt;" in out and "rgba(220, 38, 38, 0.50)" in out and "rgba(220, 38, 38, 1.00)" in out
    with pytest.raises(ValueError, match="one value per token"):
        attention_shading_html(["a"], [0.1, 0.2])
