"""Tokenisation: from text to integer ids and back (Chapter 2, Section 2.1; source section 3.1 "tokenise").

A language model never sees characters; it sees a sequence of integer *token
ids*, each one a row of its embedding table. A tokenizer is the pair of maps

    encode: str -> list[int]        decode: list[int] -> str

with ``decode(encode(s)) == s``. This module builds two of them.

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

Characters (``CharTokenizer``)
------------------------------
The simplest tokenizer gives each distinct character of the training text its
own id. Sequences are long (one id per character) and any character not seen in
training becomes ``[UNK]``, so the round trip fails on new text.

Byte-level byte-pair encoding (``BPETokenizer``)
-----------------------------------------------
Byte-pair encoding (Sennrich et al., 2016; GPT-2's byte-level variant) fixes both
problems:

1. **Start from bytes.** Any string is a sequence of UTF-8 bytes, and there are
   only 256 byte values. Tokens 7..262 are the bytes 0..255, so *every* string
   can be encoded - an emoji or a Chinese character is simply 3-4 byte tokens.
   Nothing is ever unknown.
2. **Merge the most frequent pair.** Count how often each pair of adjacent
   tokens occurs in the training text. Give the most frequent pair, say
   ``("t", "h")``, a new id 263 and replace it everywhere by that one token.
   Count again, merge again: ``("th", "e")`` becomes 264, and so on until the
   vocabulary has ``vocab_size`` tokens. Frequent words end up as single
   tokens, rare words as a few pieces, and unseen strings fall back to bytes.
3. **Never merge across word boundaries.** Before counting, the text is split
   by a regular expression into word-like *chunks*: a run of letters with its
   leading space (``" cat"``), a run of digits, a run of punctuation, line
   breaks, or other whitespace. Merges happen only inside a chunk, so
   ``"dog."`` and ``"dog!"`` share the token ``" dog"`` instead of growing
   separate tokens ``"dog."`` and ``"dog!"``.

Encoding new text repeats the merges in the order they were learned: split into
chunks, turn each chunk into byte tokens, then keep applying the earliest-learned
merge that still applies. Decoding concatenates the bytes of the tokens and
decodes them as UTF-8, so the round trip is exact for any Unicode string.

Training efficiently. Recounting all pairs after every merge costs a pass over
the whole corpus per merge. Instead we count each distinct chunk once (English
has far fewer distinct words than words), keep the pair counts in a dictionary,
and after a merge update only the chunks that contained the merged pair,
adding and subtracting their pair counts. A heap finds the most frequent pair.
With this, 2,000 tokens on 1 MB of English train in a few seconds on one CPU
core (``benchmarks/bpe_train.py``).

Example:
    >>> tok = BPETokenizer.train("low lower lowest " * 50, vocab_size=270)
    >>> tok.tokens(" lowest")
    [' lowest']
    >>> tok.decode(tok.encode("lowly 你好 🙂")) == "lowly 你好 🙂"
    True
"""

from __future__ import annotations

import heapq
import json
import operator
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path

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
    "split_into_chunks",
]

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<bos>", "<eos>"]
"""The special tokens shared by every tokenizer of the book; their ids are 0..6 in this order."""

PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID, BOS_ID, EOS_ID = range(len(SPECIAL_TOKENS))

BYTE_OFFSET = len(SPECIAL_TOKENS)
"""Id of byte 0 in a :class:`BPETokenizer`; byte ``b`` has id ``BYTE_OFFSET + b``."""

SPLIT_PATTERN = (
    r"'(?:s|t|re|ve|m|ll|d)\b"  # English contractions: 's 't 're 've 'm 'll 'd
    r"| ?[^\W\d_]+"  # letters, with one optional leading space: " cat"
    r"| ?\d+"  # digits: " 2024"
    r"| ?(?:[^\s\w]|_)+"  # punctuation and symbols (emoji too): " (", "...", "🙂"
    r"|\s*[\r\n]+"  # line breaks, with the spaces before them: "\n\n"
    r"|\s+(?!\S)"  # whitespace, leaving the last space to the next word
    r"|\s+"  # any other whitespace
    r"|[\s\S]"  # safety net: nothing is ever dropped
)
"""Regular expression that splits text into the chunks BPE merges within (Section 2.1)."""

_SPLIT_RE = re.compile(SPLIT_PATTERN)

_FORMAT_BPE = "lmbook-bpe"
_FORMAT_CHAR = "lmbook-char"
_FORMAT_VERSION = 1
_CACHE_LIMIT = 100_000


def split_into_chunks(text: str) -> list[str]:
    """Split text into the word-like chunks that BPE merges within (Section 2.1 Tokenisation).

    The chunks always concatenate back to ``text``.

    Args:
        text: Any string.

    Returns:
        The chunks, e.g. ``["Hello", ",", " world", "!"]`` for ``"Hello, world!"``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _SPLIT_RE.findall(text)


class _SpecialTokens:
    """Ids of the special tokens, shared by every tokenizer (Section 2.1 Tokenisation)."""

    special_tokens: tuple[str, ...] = tuple(SPECIAL_TOKENS)
    special_ids: frozenset[int] = frozenset(range(len(SPECIAL_TOKENS)))
    pad_id: int = PAD_ID
    unk_id: int = UNK_ID
    cls_id: int = CLS_ID
    sep_id: int = SEP_ID
    mask_id: int = MASK_ID
    bos_id: int = BOS_ID
    eos_id: int = EOS_ID

    @property
    def vocab_size(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def __len__(self) -> int:
        return self.vocab_size

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


def _check_encode_text(text) -> None:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")


def _read_json(path: str | Path, expected_format: str) -> dict:
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
    if data.get("version") != _FORMAT_VERSION:
        raise ValueError(f"{path}: 'version' must be {_FORMAT_VERSION}, got {data.get('version')!r}")
    if data.get("special_tokens") != SPECIAL_TOKENS:
        raise ValueError(f"{path}: 'special_tokens' must be {SPECIAL_TOKENS}, got {data.get('special_tokens')!r}")
    return data


class CharTokenizer(_SpecialTokens):
    """One token per character, plus the seven special tokens (Section 2.1 Tokenisation).

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

    def __init__(self, chars: Iterable[str]):
        if isinstance(chars, str):
            chars = list(chars)
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
        """Build the vocabulary from the sorted distinct characters of ``text``.

        Args:
            text: Training text; must be a non-empty str.

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

    def encode(self, text: str, add_special_tokens: bool | str = False) -> list[int]:
        """Map each character to its id; unknown characters become ``[UNK]``.

        Args:
            text: The string to encode.
            add_special_tokens: ``False`` (default), ``True``/``"bos_eos"`` to wrap in
                ``<bos>``...``<eos>``, or ``"cls_sep"`` to wrap in ``[CLS]``...``[SEP]``.

        Returns:
            One id per character (plus the wrapping special ids, if asked).
        """
        _check_encode_text(text)
        unk = UNK_ID
        return self._wrap([self.stoi.get(c, unk) for c in text], add_special_tokens)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Join the characters of ``ids``; special tokens decode to their text, e.g. ``"[PAD]"``.

        Args:
            ids: Token ids (list, tuple or 1-D tensor), each in ``0..vocab_size-1``.
            skip_special_tokens: Drop ids 0..6 instead of writing their text.

        Returns:
            The decoded string.
        """
        ids = self._check_ids(ids)
        if skip_special_tokens:
            ids = [i for i in ids if i not in self.special_ids]
        return "".join(self.itos[i] for i in ids)

    def tokens(self, text: str) -> list[str]:
        """The pieces ``text`` is cut into: one per character (``"[UNK]"`` for unknown ones)."""
        return [self.itos[i] for i in self.encode(text)]

    def to_json_dict(self) -> dict:
        """The tokenizer as a JSON-serialisable dict (the format :meth:`save` writes)."""
        return {
            "format": _FORMAT_CHAR,
            "version": _FORMAT_VERSION,
            "special_tokens": list(SPECIAL_TOKENS),
            "chars": list(self.chars),
        }

    def save(self, path: str | Path) -> None:
        """Write the tokenizer to a JSON file.

        Args:
            path: Destination file, e.g. ``"char_tokenizer.json"``.
        """
        Path(path).write_text(json.dumps(self.to_json_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        """Read a tokenizer written by :meth:`save`; raises ``ValueError`` naming what is wrong with the file."""
        data = _read_json(path, _FORMAT_CHAR)
        chars = data.get("chars")
        if not isinstance(chars, list):
            raise ValueError(f"{path}: 'chars' must be a list of characters, got {type(chars).__name__}")
        try:
            return cls(chars)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


def _merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids``, scanning left to right, by ``new_id``.

    Example: ``_merge_pair([7, 7, 7, 8], (7, 7), 263) == [263, 7, 8]``.
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


class BPETokenizer(_SpecialTokens):
    """Byte-level byte-pair-encoding tokenizer (Section 2.1 Tokenisation).

    Ids 0..6 are the special tokens, 7..262 the 256 bytes, and id ``263 + k`` the
    token made by the ``k``-th merge. Build one with :meth:`train` or :meth:`load`.

    Args:
        merges: The learned merges in order, each a pair ``(left_id, right_id)``;
            merge ``k`` creates id ``263 + k`` and may only use ids below that.

    Attributes:
        merges: The ordered list of merges, ``[(left_id, right_id), ...]``.
        vocab: ``id -> bytes`` for every id (special tokens map to their UTF-8 text).
    """

    def __init__(self, merges: Sequence[tuple[int, int]] = ()):
        vocab: dict[int, bytes] = {i: s.encode("utf-8") for i, s in enumerate(SPECIAL_TOKENS)}
        for b in range(256):
            vocab[BYTE_OFFSET + b] = bytes([b])
        clean: list[tuple[int, int]] = []
        seen: set[tuple[int, int]] = set()
        for k, pair in enumerate(merges):
            new_id = BYTE_OFFSET + 256 + k
            if not (isinstance(pair, list | tuple) and len(pair) == 2):
                raise ValueError(f"merges[{k}] must be a pair [left_id, right_id], got {pair!r}")
            for side, i in zip(("left", "right"), pair, strict=True):
                if isinstance(i, bool) or not isinstance(i, int):
                    raise ValueError(f"merges[{k}] {side} id must be an int, got {i!r}")
                if not BYTE_OFFSET <= i < new_id:
                    raise ValueError(
                        f"merges[{k}] {side} id is {i}, but merge {k} creates id {new_id} and may only "
                        f"join byte or earlier merged ids in {BYTE_OFFSET}..{new_id - 1}"
                    )
            a, b = pair
            if (a, b) in seen:
                raise ValueError(f"merges[{k}] = {list(pair)} repeats an earlier merge")
            seen.add((a, b))
            clean.append((a, b))
            vocab[new_id] = vocab[a] + vocab[b]
        self.merges: list[tuple[int, int]] = clean
        self.vocab: dict[int, bytes] = vocab
        # pair -> id of the merged token; a smaller id means the merge was learned earlier.
        self._merge_id: dict[tuple[int, int], int] = {p: BYTE_OFFSET + 256 + k for k, p in enumerate(clean)}
        self._cache: dict[str, list[int]] = {}

    # ------------------------------------------------------------------ training
    @classmethod
    def train(cls, text: str | Iterable[str], vocab_size: int, *, verbose: bool = False) -> BPETokenizer:
        """Learn merges from ``text`` until the vocabulary has ``vocab_size`` tokens.

        Training stops early, with fewer tokens, if every chunk of the text has
        already become a single token (no adjacent pair is left to merge). Ties
        between equally frequent pairs go to the pair with the smaller ids, so
        training is deterministic.

        Args:
            text: Training text, or an iterable of documents (chunks never span two documents).
            vocab_size: Total number of ids wanted, including the 7 special tokens and
                256 bytes; an int >= 263.
            verbose: Print the first merges and then every 100th.

        Returns:
            The trained tokenizer.
        """
        base = BYTE_OFFSET + 256
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise TypeError(f"vocab_size must be an int >= {base}, got {type(vocab_size).__name__} ({vocab_size!r})")
        if vocab_size < base:
            raise ValueError(
                f"vocab_size must be >= {base} (7 special tokens + 256 bytes), got {vocab_size}"
            )
        docs = [text] if isinstance(text, str) else list(text)
        for pos, d in enumerate(docs):
            if not isinstance(d, str):
                where = "text" if isinstance(text, str) else f"text[{pos}]"
                raise TypeError(f"{where} must be a str, got {type(d).__name__}")
        if not any(docs):
            raise ValueError("text must be a non-empty str (or documents with some text), got no text")

        # 1. Count each distinct chunk once.
        chunk_counts: Counter[str] = Counter()
        for d in docs:
            chunk_counts.update(_SPLIT_RE.findall(d))
        words: list[list[int]] = [[BYTE_OFFSET + b for b in c.encode("utf-8")] for c in chunk_counts]
        freqs: list[int] = list(chunk_counts.values())

        # 2. Count adjacent pairs, weighted by chunk frequency; remember which chunks hold each pair.
        pair_counts: dict[tuple[int, int], int] = defaultdict(int)
        where: dict[tuple[int, int], set[int]] = defaultdict(set)
        for w_idx, (w, f) in enumerate(zip(words, freqs, strict=True)):
            for p in pairwise(w):
                pair_counts[p] += f
                where[p].add(w_idx)
        # Max-heap via negated counts; stale entries are skipped when popped.
        heap = [(-c, p) for p, c in pair_counts.items()]
        heapq.heapify(heap)

        tok = cls()
        vocab = tok.vocab
        merges: list[tuple[int, int]] = []
        n_merges = vocab_size - base
        while len(merges) < n_merges:
            # 3. Most frequent pair (skip heap entries whose count has changed).
            best = None
            while heap:
                neg_c, p = heapq.heappop(heap)
                if pair_counts.get(p, 0) == -neg_c:
                    best, count = p, -neg_c
                    break
            if best is None:
                if verbose:
                    print(f"no pairs left to merge: stopping at vocab_size {base + len(merges)}")
                break
            new_id = base + len(merges)
            merges.append(best)
            vocab[new_id] = vocab[best[0]] + vocab[best[1]]
            if verbose and (len(merges) <= 10 or len(merges) % 100 == 0):
                print(f"merge {len(merges)}/{n_merges}: {best} -> {new_id} {vocab[new_id]!r} (count {count})")

            # 4. Re-tokenise only the chunks that contain the pair; update the counts by difference.
            delta: dict[tuple[int, int], int] = defaultdict(int)
            for w_idx in where.pop(best):
                w = words[w_idx]
                new_w = _merge_pair(w, best, new_id)
                if len(new_w) == len(w):  # stale index: the pair left this chunk earlier
                    continue
                f = freqs[w_idx]
                for p in pairwise(w):
                    delta[p] -= f
                for p in pairwise(new_w):
                    delta[p] += f
                    where[p].add(w_idx)
                words[w_idx] = new_w
            del pair_counts[best]
            delta.pop(best, None)
            for p, d in delta.items():
                if d == 0:
                    continue
                c = pair_counts[p] + d
                if c > 0:
                    pair_counts[p] = c
                    heapq.heappush(heap, (-c, p))
                else:
                    del pair_counts[p]
                    where.pop(p, None)
        return cls(merges)

    # ------------------------------------------------------------------ encode / decode
    @property
    def vocab_size(self) -> int:
        """Number of ids: 7 special tokens + 256 bytes + one per merge."""
        return BYTE_OFFSET + 256 + len(self.merges)

    def _encode_chunk(self, chunk: str) -> list[int]:
        """Bytes of one chunk, then the earliest-learned applicable merge, again and again."""
        cached = self._cache.get(chunk)
        if cached is not None:
            return cached
        ids = [BYTE_OFFSET + b for b in chunk.encode("utf-8")]
        merge_id = self._merge_id
        while len(ids) >= 2:
            # The pair learned first (smallest merged id) among the adjacent pairs.
            pair = min(pairwise(ids), key=lambda p: merge_id.get(p, float("inf")))
            if pair not in merge_id:
                break
            ids = _merge_pair(ids, pair, merge_id[pair])
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[chunk] = ids
        return ids

    def encode(self, text: str, add_special_tokens: bool | str = False) -> list[int]:
        """Turn a string into token ids.

        Args:
            text: Any string (special-token text like ``"[MASK]"`` is encoded as ordinary text).
            add_special_tokens: ``False`` (default), ``True``/``"bos_eos"`` to wrap in
                ``<bos>``...``<eos>``, or ``"cls_sep"`` to wrap in ``[CLS]``...``[SEP]``.

        Returns:
            The token ids.
        """
        _check_encode_text(text)
        ids: list[int] = []
        for chunk in _SPLIT_RE.findall(text):
            ids.extend(self._encode_chunk(chunk))
        return self._wrap(ids, add_special_tokens)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Turn token ids back into a string.

        Special tokens decode to their text (``"<eos>"``). Byte sequences that are
        not valid UTF-8 (possible when decoding an arbitrary id list) become ``"�"``.

        Args:
            ids: Token ids (list, tuple or 1-D tensor), each in ``0..vocab_size-1``.
            skip_special_tokens: Drop ids 0..6 instead of writing their text.

        Returns:
            The decoded string.
        """
        ids = self._check_ids(ids)
        if skip_special_tokens:
            ids = [i for i in ids if i not in self.special_ids]
        vocab = self.vocab
        return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")

    def token_str(self, token_id: int) -> str:
        """Readable text of one token: its UTF-8 text, or ``<0xE4><0xBD>``-style hex for partial characters."""
        (token_id,) = self._check_ids([token_id])
        raw = self.vocab[token_id]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "".join(f"<0x{b:02X}>" for b in raw)

    def tokens(self, text: str) -> list[str]:
        """The readable pieces ``text`` is cut into, for teaching (Section 2.1 Tokenisation).

        Example: ``tok.tokens("the cat")`` might give ``["the", " cat"]``; a piece
        holding part of a multi-byte character shows as hex, e.g. ``"<0xF0><0x9F>"``.
        """
        return [self.token_str(i) for i in self.encode(text)]

    # ------------------------------------------------------------------ saving
    def to_json_dict(self) -> dict:
        """The tokenizer as a JSON-serialisable dict, ready for a browser widget.

        Keys:
            ``merges``: ``[[left_id, right_id], ...]``; merge ``k`` creates id ``byte_offset + 256 + k``.
            ``vocab``: list indexed by id, each entry the token's bytes as a list of ints.
            ``byte_offset``: id of byte 0 (7); ``special_tokens``; ``pattern`` (Python regex).

        A small JavaScript function can apply the merges to one chunk of text::

            function bpe(word, tok) {            // word: one chunk, e.g. " tokenization"
              let ids = [...new TextEncoder().encode(word)].map(b => b + tok.byte_offset);
              const rank = new Map(tok.merges.map(([a, b], k) => [a + "," + b, k]));
              for (;;) {
                let best = -1, bestRank = Infinity;
                for (let i = 0; i + 1 < ids.length; i++) {
                  const r = rank.get(ids[i] + "," + ids[i + 1]);
                  if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
                }
                if (best < 0) return ids;
                const [a, b] = tok.merges[bestRank], id = tok.byte_offset + 256 + bestRank, out = [];
                for (let i = 0; i < ids.length; i++) {
                  if (i + 1 < ids.length && ids[i] === a && ids[i + 1] === b) { out.push(id); i++; }
                  else out.push(ids[i]);
                }
                ids = out;
              }
            }

        and ``tok.vocab[id]`` gives the bytes to show for each resulting piece.
        """
        return {
            "format": _FORMAT_BPE,
            "version": _FORMAT_VERSION,
            "special_tokens": list(SPECIAL_TOKENS),
            "byte_offset": BYTE_OFFSET,
            "pattern": SPLIT_PATTERN,
            "merges": [[a, b] for a, b in self.merges],
            "vocab": [list(self.vocab[i]) for i in range(self.vocab_size)],
        }

    def save(self, path: str | Path) -> None:
        """Write the tokenizer (the dict of :meth:`to_json_dict`) to a JSON file.

        Args:
            path: Destination file, e.g. ``"bpe_2000.json"``.
        """
        Path(path).write_text(json.dumps(self.to_json_dict(), separators=(",", ":")), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """Read a tokenizer written by :meth:`save`.

        Raises:
            ValueError: naming what is wrong with the file (format, special tokens,
                a malformed merge, a vocab entry that disagrees with the merges).
        """
        data = _read_json(path, _FORMAT_BPE)
        if data.get("byte_offset") != BYTE_OFFSET:
            raise ValueError(f"{path}: 'byte_offset' must be {BYTE_OFFSET}, got {data.get('byte_offset')!r}")
        if data.get("pattern", SPLIT_PATTERN) != SPLIT_PATTERN:
            raise ValueError(f"{path}: 'pattern' differs from lmbook.tokenizers.SPLIT_PATTERN (another version?)")
        merges = data.get("merges")
        if not isinstance(merges, list):
            raise ValueError(f"{path}: 'merges' must be a list of [left_id, right_id], got {type(merges).__name__}")
        try:
            tok = cls([tuple(m) if isinstance(m, list) else m for m in merges])
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        vocab = data.get("vocab")
        if vocab is not None:
            if not isinstance(vocab, list) or len(vocab) != tok.vocab_size:
                n = len(vocab) if isinstance(vocab, list) else type(vocab).__name__
                raise ValueError(f"{path}: 'vocab' must list {tok.vocab_size} tokens (one per id), got {n}")
            for i, entry in enumerate(vocab):
                if entry != list(tok.vocab[i]):
                    raise ValueError(f"{path}: 'vocab'[{i}] = {entry!r} disagrees with the merges, which give "
                                     f"{list(tok.vocab[i])!r}")
        return tok

    def __eq__(self, other) -> bool:
        return isinstance(other, BPETokenizer) and self.merges == other.merges

    __hash__ = None  # equality compares the merges, which may be edited, so no hash

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)})"

