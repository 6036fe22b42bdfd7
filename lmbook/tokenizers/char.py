"""One token per character (book: sec-architecture-five-steps).

The simplest tokenizer gives each distinct character of the training text its
own id. Sequences are long (one id per character) and any character not seen in
training becomes ``[UNK]``, so the round trip fails on new text; ``bpe.py`` fixes both.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lmbook.tokenizers.base import FORMAT_VERSION, SPECIAL_TOKENS, UNK_ID, Tokenizer

__all__ = ["CharTokenizer"]


class CharTokenizer(Tokenizer):
    """One token per character, plus the seven special tokens.

    Ids 0..6 are the special tokens; the characters follow in the order given.
    Characters not in the vocabulary encode to ``[UNK]`` (id 1).

    Args:
        chars: The distinct characters of the vocabulary, e.g. ``"abc"`` or ``["a", "b"]``.

    Example:
        >>> tok = CharTokenizer.train("hello")
        >>> tok.encode("hell!")
        [8, 7, 9, 9, 1]
        >>> tok.decode(tok.encode("hello"))
        'hello'
    """

    format_name = "lmbook-char"

    def __init__(self, chars: Iterable[str]):
        chars = list(chars)
        seen: set[str] = set()
        for pos, c in enumerate(chars):
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"chars[{pos}] must be a single character (str of length 1), got {c!r}")
            if c in seen:
                raise ValueError(f"chars[{pos}] = {c!r} is a duplicate; each character may appear once")
            seen.add(c)
        self.chars: list[str] = chars
        self.itos: list[str] = [*SPECIAL_TOKENS, *chars]
        self.stoi: dict[str, int] = {c: i + len(SPECIAL_TOKENS) for i, c in enumerate(chars)}

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        """Build the vocabulary from the sorted distinct characters of ``text`` (a non-empty str).

        Returns:
            A tokenizer with ``7 + len(set(text))`` tokens.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if not text:
            raise ValueError("text must be a non-empty str, got ''")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        """Number of ids: 7 special tokens plus one per character."""
        return len(self.itos)

    def _encode_text(self, text: str) -> list[int]:
        return [self.stoi.get(c, UNK_ID) for c in text]  # one id per character, [UNK] if unseen

    def _decode_ids(self, ids: list[int]) -> str:
        return "".join(self.itos[i] for i in ids)

    def tokens(self, text: str) -> list[str]:
        """The pieces ``text`` is cut into: one per character (``"[UNK]"`` for unknown ones)."""
        return [self.itos[i] for i in self.encode(text)]

    def to_json_dict(self) -> dict:
        """The tokenizer as a JSON-serialisable dict (the format :meth:`save` writes)."""
        return {
            "format": self.format_name,
            "version": FORMAT_VERSION,
            "special_tokens": list(SPECIAL_TOKENS),
            "chars": list(self.chars),
        }

    @classmethod
    def from_json_dict(cls, data: dict, path: str | Path = "<dict>") -> CharTokenizer:
        """Rebuild the tokenizer from :meth:`to_json_dict`'s output; errors name ``path``."""
        chars = data.get("chars")
        if not isinstance(chars, list):
            raise ValueError(f"{path}: 'chars' must be a list of characters, got {type(chars).__name__}")
        try:
            return cls(chars)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"
