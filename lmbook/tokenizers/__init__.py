"""Tokenisation: from text to integer ids and back (book: sec-background-language-changes, sec-architecture-five-steps).

A language model never sees characters; it sees a sequence of integer *token ids*,
each one a row of its embedding table. One idea per module, as in minbpe:

    base.py   what every tokenizer shares: special tokens, checked encode/decode,
              save/load, and the helpers ``get_stats`` and ``merge``
    char.py   ``CharTokenizer``: one token per character
    bpe.py    ``BPETokenizer`` and ``train_bpe``: byte-level byte-pair encoding

Example:
    >>> tok = BPETokenizer.train("low lower lowest " * 50, vocab_size=270)
    >>> tok.decode(tok.encode("lowly 你好 🙂")) == "lowly 你好 🙂"
    True
"""

from lmbook.tokenizers.base import (
    BOS_ID,
    CLS_ID,
    EOS_ID,
    MASK_ID,
    PAD_ID,
    SEP_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    Tokenizer,
    get_stats,
    merge,
)
from lmbook.tokenizers.bpe import BYTE_OFFSET, SPLIT_PATTERN, BPETokenizer, split_into_chunks, train_bpe
from lmbook.tokenizers.char import CharTokenizer

__all__ = [
    "BOS_ID",
    "BYTE_OFFSET",
    "CLS_ID",
    "EOS_ID",
    "MASK_ID",
    "PAD_ID",
    "SEP_ID",
    "SPECIAL_TOKENS",
    "SPLIT_PATTERN",
    "UNK_ID",
    "BPETokenizer",
    "CharTokenizer",
    "Tokenizer",
    "get_stats",
    "merge",
    "split_into_chunks",
    "train_bpe",
]
