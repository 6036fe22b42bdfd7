"""Byte-level byte-pair encoding (book: sec-background-language-changes).

Byte-pair encoding (Sennrich et al., 2016; GPT-2's byte-level variant) fixes both
problems of the character tokenizer: long sequences and unknown characters.

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
decodes them as UTF-8, so the round trip is exact for any Unicode string. The
browser explorer does the same in JavaScript (``lmbook/widgets/js/bpe_explorer.js``,
checked against this module by ``tests/widgets/test_bpe.py``).

Training (:func:`train_bpe`) counts each distinct chunk once, keeps the pair counts
in a dictionary and, after a merge, updates only the chunks that held the merged
pair; a heap finds the most frequent pair. 2,000 tokens on 1 MB of English train
in a few seconds on one CPU core (``benchmarks/bpe_train.py``).

(About 400 lines, over the ~300 of CONTRIBUTING.md: the training loop and the two ways
of applying merges are commented step by step, and belong together.)

Example:
    >>> tok = BPETokenizer.train("low lower lowest " * 50, vocab_size=270)
    >>> tok.tokens(" lowest")
    [' lowest']
    >>> tok.decode(tok.encode("lowly 你好 🙂")) == "lowly 你好 🙂"
    True
"""

from __future__ import annotations

import heapq
import re
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path

from lmbook.tokenizers.base import FORMAT_VERSION, SPECIAL_TOKENS, Tokenizer, merge

__all__ = ["BYTE_OFFSET", "SPLIT_PATTERN", "BPETokenizer", "split_into_chunks", "train_bpe"]

BYTE_OFFSET = len(SPECIAL_TOKENS)
"""Id of byte 0 in a :class:`BPETokenizer`; byte ``b`` has id ``BYTE_OFFSET + b``."""

N_BASE = BYTE_OFFSET + 256  # ids below this are special tokens and bytes; merge k creates id N_BASE + k

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
"""Regular expression that splits text into the chunks BPE merges within."""

_SPLIT_RE = re.compile(SPLIT_PATTERN)
_CACHE_LIMIT = 100_000  # chunks remembered by an encoder before its cache is emptied
_LONG_CHUNK = 64  # byte tokens; longer chunks are merged with a heap (same ids, near-linear time)


def split_into_chunks(text: str) -> list[str]:
    """Split text into the word-like chunks that BPE merges within; they concatenate back to ``text``.

    Example:
        >>> split_into_chunks("Hello, world!")
        ['Hello', ',', ' world', '!']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _SPLIT_RE.findall(text)


# --------------------------------------------------------------------------- training


def train_bpe(text: str | Iterable[str], vocab_size: int, *, verbose: bool = False) -> list[tuple[int, int]]:
    """Learn merges from ``text`` until the vocabulary has ``vocab_size`` tokens.

    Training stops early, with fewer merges, if every chunk of the text has already
    become a single token (no adjacent pair is left to merge). Ties between equally
    frequent pairs go to the pair with the smaller ids, so training is deterministic.

    Args:
        text: Training text, or an iterable of documents (chunks never span two documents).
        vocab_size: Total number of ids wanted, including the 7 special tokens and
            256 bytes; an int >= 263.
        verbose: Print the first merges and then every 100th.

    Returns:
        The merges in the order learned, ``[(left_id, right_id), ...]``; merge ``k``
        creates id ``263 + k``. ``BPETokenizer(merges)`` turns them into a tokenizer.
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise TypeError(f"vocab_size must be an int >= {N_BASE}, got {type(vocab_size).__name__} ({vocab_size!r})")
    if vocab_size < N_BASE:
        raise ValueError(f"vocab_size must be >= {N_BASE} (7 special tokens + 256 bytes), got {vocab_size}")
    docs = [text] if isinstance(text, str) else list(text)
    for pos, d in enumerate(docs):
        if not isinstance(d, str):
            where = "text" if isinstance(text, str) else f"text[{pos}]"
            raise TypeError(f"{where} must be a str, got {type(d).__name__}")
    if not any(docs):
        raise ValueError("text must be a non-empty str (or documents with some text), got no text")

    # 1. Cut the text into chunks and count each distinct chunk once: English has far
    #    fewer distinct words than words, so the work below is per distinct chunk.
    chunk_counts: Counter[str] = Counter()
    for d in docs:
        chunk_counts.update(_SPLIT_RE.findall(d))
    words: list[list[int]] = [[BYTE_OFFSET + b for b in c.encode("utf-8")] for c in chunk_counts]  # byte ids
    freqs: list[int] = list(chunk_counts.values())  # how often each chunk occurs

    # 2. Count adjacent pairs, each chunk's pairs weighted by how often the chunk occurs,
    #    and remember which chunks hold each pair (so a merge only revisits those).
    pair_counts: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)
    for w_idx, (w, f) in enumerate(zip(words, freqs, strict=True)):
        for p in pairwise(w):
            pair_counts[p] += f
            where[p].add(w_idx)
    # A max-heap of (count, pair) via negated counts. Counts change as pairs are merged;
    # rather than update entries in place we push the new count and skip stale entries.
    heap = [(-c, p) for p, c in pair_counts.items()]
    heapq.heapify(heap)

    vocab = {BYTE_OFFSET + b: bytes([b]) for b in range(256)}  # id -> bytes, for printing only
    merges: list[tuple[int, int]] = []
    n_merges = vocab_size - N_BASE
    while len(merges) < n_merges:
        # 3. Pop the most frequent pair; an entry whose count is no longer current is stale.
        best = None
        while heap:
            neg_c, p = heapq.heappop(heap)
            if pair_counts.get(p, 0) == -neg_c:
                best, count = p, -neg_c
                break
        if best is None:
            if verbose:
                print(f"no pairs left to merge: stopping at vocab_size {N_BASE + len(merges)}")
            break

        # 4. The pair becomes a new token with the next id.
        new_id = N_BASE + len(merges)
        merges.append(best)
        vocab[new_id] = vocab[best[0]] + vocab[best[1]]
        if verbose and (len(merges) <= 10 or len(merges) % 100 == 0):
            print(f"merge {len(merges)}/{n_merges}: {best} -> {new_id} {vocab[new_id]!r} (count {count})")

        # 5. Re-tokenise only the chunks that hold the pair. The pair counts change by the
        #    difference between each chunk's pairs after and before, times its frequency.
        delta: dict[tuple[int, int], int] = defaultdict(int)
        for w_idx in where.pop(best):
            w = words[w_idx]
            new_w = merge(w, best, new_id)
            if len(new_w) == len(w):  # stale index: the pair left this chunk earlier
                continue
            f = freqs[w_idx]
            for p in pairwise(w):
                delta[p] -= f
            for p in pairwise(new_w):
                delta[p] += f
                where[p].add(w_idx)
            words[w_idx] = new_w

        # 6. Apply the changes: the merged pair is gone; every changed count is pushed anew.
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
    return merges


# --------------------------------------------------------------------------- encoding one chunk


def _merge_short(ids: list[int], merge_id: dict[tuple[int, int], int]) -> list[int]:
    """Apply the earliest-learned merge that applies, again and again (the algorithm as taught)."""
    while len(ids) >= 2:
        # Among the adjacent pairs, the one learned first (smallest merged id); get_stats(ids)
        # lists the same pairs, but counting them is not needed here.
        pair = min(pairwise(ids), key=lambda p: merge_id.get(p, float("inf")))
        if pair not in merge_id:
            break  # no learned merge applies any more
        ids = merge(ids, pair, merge_id[pair])
    return ids


def _merge_long(ids: list[int], merge_id: dict[tuple[int, int], int]) -> list[int]:
    """The same ids as :func:`_merge_short`, in O(n log n) for a chunk of n byte tokens.

    ``_merge_short`` rescans the whole chunk once per merge, which is quadratic on a long
    run of letters without spaces. Here the tokens form a linked list and a heap holds
    (new id, position) for every adjacent pair that some merge joins. Popping the heap
    gives the earliest-learned merge first and, within one merge, the leftmost position
    first: exactly the order of ``_merge_short``. A merge can only create pairs whose
    merges were learned later, so nothing is popped out of order; entries whose tokens
    have since changed are skipped.
    """
    n = len(ids)
    # Compact int arrays rather than lists of int objects: long chunks stay in the CPU cache.
    tok = array("q", ids)  # token at each position; -1 once merged into its left neighbour
    nxt = array("q", range(1, n + 1))  # next live position (n: none)
    prv = array("q", range(-1, n - 1))  # previous live position (-1: none)
    # Each heap entry is the one int new_id * n + position: it sorts like the pair (new_id,
    # position) but, unlike a tuple, costs the garbage collector nothing on long inputs.
    heap = [merge_id[p] * n + i for i, p in enumerate(pairwise(ids)) if p in merge_id]
    heapq.heapify(heap)
    while heap:
        new_id, i = divmod(heapq.heappop(heap), n)
        j = nxt[i]
        if tok[i] < 0 or j >= n or merge_id.get((tok[i], tok[j])) != new_id:
            continue  # stale: one of the two tokens has changed since this entry was pushed
        tok[i], tok[j] = new_id, -1  # merge position j into i, unlink j
        k = nxt[i] = nxt[j]
        if k < n:
            prv[k] = i
        h = prv[i]
        if h >= 0 and (tok[h], new_id) in merge_id:
            heapq.heappush(heap, merge_id[tok[h], new_id] * n + h)
        if k < n and (new_id, tok[k]) in merge_id:
            heapq.heappush(heap, merge_id[new_id, tok[k]] * n + i)
    return [t for t in tok if t >= 0]


# --------------------------------------------------------------------------- the tokenizer


class BPETokenizer(Tokenizer):
    """Byte-level byte-pair-encoding tokenizer.

    Ids 0..6 are the special tokens, 7..262 the 256 bytes, and id ``263 + k`` the
    token made by the ``k``-th merge. Build one with :meth:`train` or :meth:`load`.

    Args:
        merges: The learned merges in order, each a pair ``(left_id, right_id)``;
            merge ``k`` creates id ``263 + k`` and may only use ids below that.

    Attributes:
        merges: The ordered list of merges, ``[(left_id, right_id), ...]``.
        vocab: ``id -> bytes`` for every id (special tokens map to their UTF-8 text).
    """

    format_name = "lmbook-bpe"
    json_separators = (",", ":")

    def __init__(self, merges: Sequence[tuple[int, int]] = ()):
        vocab: dict[int, bytes] = {i: s.encode("utf-8") for i, s in enumerate(SPECIAL_TOKENS)}
        for b in range(256):
            vocab[BYTE_OFFSET + b] = bytes([b])
        clean: list[tuple[int, int]] = []
        seen: set[tuple[int, int]] = set()
        for k, pair in enumerate(merges):
            new_id = N_BASE + k
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
        self._merge_id: dict[tuple[int, int], int] = {p: N_BASE + k for k, p in enumerate(clean)}
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def train(cls, text: str | Iterable[str], vocab_size: int, *, verbose: bool = False) -> BPETokenizer:
        """The tokenizer whose merges :func:`train_bpe` learns from ``text`` (same arguments)."""
        return cls(train_bpe(text, vocab_size, verbose=verbose))

    @property
    def vocab_size(self) -> int:
        """Number of ids: 7 special tokens + 256 bytes + one per merge."""
        return N_BASE + len(self.merges)

    def _encode_chunk(self, chunk: str) -> list[int]:
        """Bytes of one chunk, then the learned merges in order (remembered per chunk)."""
        cached = self._cache.get(chunk)
        if cached is not None:
            return cached
        ids = [BYTE_OFFSET + b for b in chunk.encode("utf-8")]
        ids = (_merge_short if len(ids) <= _LONG_CHUNK else _merge_long)(ids, self._merge_id)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[chunk] = ids
        return ids

    def _encode_text(self, text: str) -> list[int]:
        ids: list[int] = []
        for chunk in _SPLIT_RE.findall(text):
            ids.extend(self._encode_chunk(chunk))
        return ids

    def _decode_ids(self, ids: list[int]) -> str:
        # Byte sequences that are not valid UTF-8 (possible for an arbitrary id list) become "�".
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
        """The readable pieces ``text`` is cut into, for teaching.

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

        ``lmbook/widgets/js/bpe_explorer.js`` applies the merges to text from this dict.
        """
        return {
            "format": self.format_name,
            "version": FORMAT_VERSION,
            "special_tokens": list(SPECIAL_TOKENS),
            "byte_offset": BYTE_OFFSET,
            "pattern": SPLIT_PATTERN,
            "merges": [[a, b] for a, b in self.merges],
            "vocab": [list(self.vocab[i]) for i in range(self.vocab_size)],
        }

    @classmethod
    def from_json_dict(cls, data: dict, path: str | Path = "<dict>") -> BPETokenizer:
        """Rebuild the tokenizer from :meth:`to_json_dict`'s output, checking the byte offset,
        the split pattern, each merge, and that ``vocab`` (if present) agrees with the merges."""
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
