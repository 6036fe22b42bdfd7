"""What every tokenizer of the book shares (book: sec-background-language-changes, sec-architecture-five-steps).

A tokenizer is the pair of maps

    encode: str -> list[int]        decode: list[int] -> str

with ``decode(encode(s)) == s``. This module holds what the two tokenizers of the
book (``char.py``, ``bpe.py``) have in common: the special tokens, the checks and
wrapping around ``encode``/``decode``, saving and loading with validation, and the
two small helpers byte-pair encoding is built from, :func:`get_stats` and :func:`merge`.

Special tokens
--------------
Every tokenizer in the book reserves the same seven ids for tokens that no text
produces, so that every model and data pipeline can rely on them:

    0 [PAD]   1 [UNK]   2 [CLS]   3 [SEP]   4 [MASK]   5 <bos>   6 <eos>

``[PAD]`` fills short sequences of a batch, ``[UNK]`` replaces characters a
character tokenizer never saw, ``[CLS]``/``[SEP]``/``[MASK]`` are used by the
BERT-style encoder, ``<bos>``/``<eos>`` mark the start and end of a document
for the GPT-style decoder. ``encode`` treats its input as plain text: the
string ``"[MASK]"`` typed in text is six ordinary characters, never id 4.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path

__all__ = [
    "BOS_ID", "CLS_ID", "EOS_ID", "MASK_ID", "PAD_ID", "SEP_ID", "SPECIAL_TOKENS", "UNK_ID",
    "Tokenizer", "get_stats", "merge",
]

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<bos>", "<eos>"]
"""The special tokens shared by every tokenizer of the book; their ids are 0..6 in this order."""

PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID, BOS_ID, EOS_ID = range(len(SPECIAL_TOKENS))

FORMAT_VERSION = 1


def get_stats(ids: Sequence[int], counts: dict[tuple[int, int], int] | None = None) -> dict[tuple[int, int], int]:
    """How often each pair of adjacent ids occurs, in order of first appearance.

    Pass ``counts`` to add to an existing dict (it is updated and returned).

    Example:
        >>> get_stats([1, 2, 3, 1, 2])
        {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    """
    counts = {} if counts is None else counts
    for pair in pairwise(ids):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids``, scanning left to right, by ``new_id``.

    Example:
        >>> merge([7, 7, 7, 8], (7, 7), 263)
        [263, 7, 8]
    """
    a, b = pair
    out = []
    i, n = 0, len(ids)
    while i < n:
        if i < n - 1 and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


class Tokenizer:
    """The skeleton every tokenizer shares: special ids, checked ``encode``/``decode``, save/load.

    A subclass says how text becomes ids (``_encode_text``), how ids become text
    (``_decode_ids``), how big its vocabulary is, and how it is written to JSON
    (``format_name``, ``to_json_dict``, ``from_json_dict``).
    """

    special_tokens: tuple[str, ...] = tuple(SPECIAL_TOKENS)
    special_ids: frozenset[int] = frozenset(range(len(SPECIAL_TOKENS)))
    pad_id: int = PAD_ID
    unk_id: int = UNK_ID
    cls_id: int = CLS_ID
    sep_id: int = SEP_ID
    mask_id: int = MASK_ID
    bos_id: int = BOS_ID
    eos_id: int = EOS_ID
    format_name: str = ""  # the "format" field of the saved JSON
    json_separators: tuple[str, str] = (", ", ": ")

    # ------------------------------------------------------------------ what a subclass provides
    @property
    def vocab_size(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def _encode_text(self, text: str) -> list[int]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _decode_ids(self, ids: list[int]) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def to_json_dict(self) -> dict:  # pragma: no cover - overridden
        raise NotImplementedError

    @classmethod
    def from_json_dict(cls, data: dict, path: str | Path) -> Tokenizer:  # pragma: no cover - overridden
        raise NotImplementedError

    # ------------------------------------------------------------------ the shared skeleton
    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str, add_special_tokens: bool | str = False) -> list[int]:
        """Turn a string into token ids.

        Args:
            text: Any string (special-token text like ``"[MASK]"`` is encoded as ordinary text).
            add_special_tokens: ``False`` (default), ``True``/``"bos_eos"`` to wrap in
                ``<bos>``...``<eos>``, or ``"cls_sep"`` to wrap in ``[CLS]``...``[SEP]``.

        Returns:
            The token ids.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self._wrap(self._encode_text(text), add_special_tokens)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Turn token ids back into a string; special tokens decode to their text, e.g. ``"<eos>"``.

        Args:
            ids: Token ids (list, tuple or 1-D tensor), each in ``0..vocab_size-1``.
            skip_special_tokens: Drop ids 0..6 instead of writing their text.

        Returns:
            The decoded string.
        """
        ids = self._check_ids(ids)
        if skip_special_tokens:
            ids = [i for i in ids if i not in self.special_ids]
        return self._decode_ids(ids)

    def _wrap(self, ids: list[int], add_special_tokens: bool | str) -> list[int]:
        """Add ``<bos>``/``<eos>`` (``True`` or ``"bos_eos"``) or ``[CLS]``/``[SEP]`` (``"cls_sep"``)."""
        if add_special_tokens is False:
            return ids
        if add_special_tokens is True or add_special_tokens == "bos_eos":
            return [BOS_ID, *ids, EOS_ID]
        if add_special_tokens == "cls_sep":
            return [CLS_ID, *ids, SEP_ID]
        raise ValueError(
            f"add_special_tokens must be False, True, 'bos_eos' or 'cls_sep', got {add_special_tokens!r}"
        )

    def _check_ids(self, ids) -> list[int]:
        """Turn ``ids`` (list, tuple or 1-D tensor/array) into a list of valid ints, or raise naming the bad id."""
        if hasattr(ids, "tolist") and not isinstance(ids, list):
            ids = ids.tolist()
        if isinstance(ids, int | str | bytes) or not isinstance(ids, Iterable):
            raise TypeError(f"ids must be a sequence of ints, got {type(ids).__name__}")
        ids = list(ids)
        n = self.vocab_size
        for pos, i in enumerate(ids):
            if isinstance(i, bool) or not hasattr(type(i), "__index__"):
                raise TypeError(f"ids[{pos}] must be an int, got {type(i).__name__} ({i!r})")
            i = ids[pos] = operator.index(i)  # numpy / torch integer scalars -> int
            if not 0 <= i < n:
                raise ValueError(f"ids[{pos}] = {i} is out of range: vocab_size is {n}, so ids must be in 0..{n - 1}")
        return ids

    # ------------------------------------------------------------------ saving
    def save(self, path: str | Path) -> None:
        """Write the tokenizer (the dict of ``to_json_dict``) to a JSON file, e.g. ``"bpe_2000.json"``."""
        text = json.dumps(self.to_json_dict(), ensure_ascii=False, separators=self.json_separators)
        Path(path).write_text(text, encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """Read a tokenizer written by :meth:`save`.

        Raises:
            ValueError: naming what is wrong with the file (not JSON, another format or
                version, other special tokens, or content the tokenizer rejects).
        """
        return cls.from_json_dict(read_json(path, cls.format_name), path)


def read_json(path: str | Path, expected_format: str) -> dict:
    """The JSON object saved at ``path``, after checking its format, version and special tokens."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    fmt = data.get("format")
    if fmt != expected_format:
        raise ValueError(f"{path}: 'format' must be {expected_format!r}, got {fmt!r}")
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: 'version' must be {FORMAT_VERSION}, got {data.get('version')!r}")
    if data.get("special_tokens") != SPECIAL_TOKENS:
        raise ValueError(f"{path}: 'special_tokens' must be {SPECIAL_TOKENS}, got {data.get('special_tokens')!r}")
    return data
