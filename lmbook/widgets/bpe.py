"""The BPE explorer (book: sec-background-language-changes; anywidget; the tokenizer runs in the browser).

The reader types any text and sees the pieces a byte-level BPE tokenizer cuts it into,
next to what a word-level vocabulary keeps of it (``[UNK]`` for every unseen word). A
slider sets how many of the learned merges are used: 0 merges is one token per byte,
all merges is the trained tokenizer. Python sends the merges once; the JavaScript in
``lmbook/widgets/js/bpe_explorer.js`` applies them, so the explorer works in the static book.
"""

from __future__ import annotations

import traitlets as t

from lmbook.baselines import word_level_tokens
from lmbook.tokenizers import BYTE_OFFSET, SPECIAL_TOKENS, BPETokenizer
from lmbook.validation import check_int
from lmbook.widgets.base import Explorer

__all__ = ["BPEExplorer"]


class BPEExplorer(Explorer, js="bpe_explorer.js"):
    """Type a word, see its BPE pieces and its word-level fate (book: sec-background-language-changes).

    Args:
        tokenizer: a trained :class:`lmbook.tokenizers.BPETokenizer`.
        text: the initial text in the box.
        word_vocab: the word-level vocabulary to compare with (lower-case words); empty: none.
        n_merges: how many merges to use at first (default: all).
    """

    merges = t.List().tag(sync=True)  # [[left_id, right_id], ...]
    byte_offset = t.Int(BYTE_OFFSET).tag(sync=True)
    special_tokens = t.List(t.Unicode()).tag(sync=True)
    word_vocab = t.List(t.Unicode()).tag(sync=True)
    text = t.Unicode("").tag(sync=True)
    n_merges = t.Int(0).tag(sync=True)

    def __init__(self, tokenizer: BPETokenizer, text: str = "tokenization", *, word_vocab=(),
                 n_merges: int | None = None) -> None:  # fmt: skip
        if not isinstance(tokenizer, BPETokenizer):
            raise TypeError(f"tokenizer must be an lmbook BPETokenizer, got {type(tokenizer).__name__}")
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        if n_merges is not None:
            check_int("n_merges", n_merges)
        n = len(tokenizer.merges) if n_merges is None else n_merges
        if not 0 <= n <= len(tokenizer.merges):
            raise ValueError(f"n_merges must be in 0..{len(tokenizer.merges)}, got {n_merges}")
        super().__init__(
            merges=[[a, b] for a, b in tokenizer.merges], byte_offset=BYTE_OFFSET,
            special_tokens=list(SPECIAL_TOKENS), word_vocab=sorted(word_vocab), text=text, n_merges=n,
        )  # fmt: skip

    def _tokenizer(self) -> BPETokenizer:
        return BPETokenizer([tuple(m) for m in self.merges[: self.n_merges]])

    def encode(self, text: str | None = None) -> list[int]:
        """The ids the widget shows for ``text`` (default: its current text) with its current merges."""
        return self._tokenizer().encode(self.text if text is None else text)

    def pieces(self, text: str | None = None) -> list[str]:
        """The readable pieces the widget shows (``BPETokenizer.tokens``)."""
        return self._tokenizer().tokens(self.text if text is None else text)

    def word_level(self, text: str | None = None) -> list[str]:
        """What the word-level vocabulary keeps of ``text``: each word or ``[UNK]``."""
        return word_level_tokens(self.text if text is None else text, set(self.word_vocab))
