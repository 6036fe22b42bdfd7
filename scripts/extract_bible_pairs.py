"""Regenerate lmbook/corpora/bible_en_es.jsonl.xz from the Debian SWORD packages (Chapter 5, "Machine translation").

Needs (Debian): apt-get install -y diatheke sword-text-web sword-text-sparv
Run from the repository root:   .venv/bin/python scripts/extract_bible_pairs.py

For each of the 66 canonical books it asks diatheke for the book in OSIS with Strong's numbers
(``diatheke -b MODULE -f OSIS -o n -k BOOK``) from the World English Bible (``engWEB2015eb``) and the
Reina-Valera 1909 (``spaRV1909eb``), keeps verses present and non-empty in both, and writes one JSON
record per verse: book, chapter, verse, en, es, en_tags, es_tags. A tags string has one entry per token of
``tokenize(en)`` (or ``es``): the token's Strong's ids joined by ``+``, or ``-`` for none. The gold alignments
(pairs of words sharing an id) follow from the tags, so :mod:`lmbook.corpora.bible` computes them at load
time instead of storing them (they would take the file past 5 MB).

Cleaning: every tag except ``<w lemma=...>`` is dropped (the OSIS filter already removes notes, headings
and cross-references; line milestones become spaces); adjacent ``<w>`` elements glued without a space
(WEB: ``God</w><w ...>created``) get one; whitespace is collapsed; psalm titles open verse 1 on both
sides (see :func:`read_book`); in the Spanish text the all-capitals first word of each chapter (a
typographical drop-cap: ``EN el principio``) gets the casing that word
has elsewhere in the corpus; the WEB glossary appended to Revelation 22:21 is cut.
Words are :func:`lmbook.corpora.bible.tokenize` tokens; a token carries the Strong's ids of the ``<w>``
element it lies in (punctuation carries none). The output is byte-for-byte reproducible.
"""

from __future__ import annotations

import html
import json
import lzma
import re
import subprocess
import sys
from collections import Counter

from lmbook.corpora.bible import BOOKS, DATA_FILE

MODULES = {"en": "engWEB2015eb", "es": "spaRV1909eb"}
_TOKEN = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")  # must equal lmbook.corpora.bible.tokenize
_PIECE = re.compile(r'<w lemma="([^"]*)">(.*?)</w>|<milestone[^>]*/>|<[^>]*>', re.S)
_STRONG = re.compile(r"^([HG])0*(\d+)$")
_GLOSSARY = "The following words used in the World English Bible"
_CAPS = re.compile(r"^[^\W\d_]{2,}$")

glued = Counter()  # how many spaces were inserted between glued <w> elements, per language


def strong_ids(lemma: str) -> tuple[str, ...]:
    """``'strong:G2424 G5547'`` -> ``('G2424', 'G5547')``; leading zeros dropped (H0430 -> H430)."""
    ids = []
    for part in lemma.split():
        part = part.removeprefix("strong:")
        m = _STRONG.match(part)
        if not m:
            raise ValueError(f"unexpected lemma attribute {lemma!r}")
        sid = f"{m[1]}{int(m[2])}"
        if sid not in ids:
            ids.append(sid)
    return tuple(ids)


def parse_verse(body: str, lang: str) -> tuple[str, list[tuple[str, tuple[str, ...]]]]:
    """OSIS verse body -> (plain text, [(token, Strong's ids)])."""
    raw, spans, pos = "", [], 0
    for m in _PIECE.finditer(body):
        raw += html.unescape(body[pos : m.start()])
        pos = m.end()
        if m.group(0).startswith("<w "):
            inner = html.unescape(re.sub(r"<[^>]*>", "", m[2]))
            if raw and inner and raw[-1].isalnum() and inner[0].isalnum():
                raw += " "
                glued[lang] += 1
            spans.append((len(raw), len(raw) + len(inner), strong_ids(m[1])))
            raw += inner
        elif m.group(0).startswith("<milestone"):
            raw += " "
        elif not re.match(r"</?(transChange|q|seg|hi|foreign|divineName)\b", m.group(0)):
            raise ValueError(f"unexpected markup {m.group(0)!r} in {body!r}")
    raw += html.unescape(body[pos:])
    tokens = []
    for t in _TOKEN.finditer(raw):
        ids: list[str] = []
        if t[0][0].isalnum() or t[0][0] == "_":
            while spans and spans[0][1] <= t.start():  # spans and tokens both run left to right
                spans.pop(0)
            for a, _, sids in spans:
                if a >= t.end():
                    break
                ids += [s for s in sids if s not in ids]
        tokens.append((t[0], tuple(ids)))
    text = " ".join(raw.split())
    assert [w for w, _ in tokens] == _TOKEN.findall(text), text
    return text, tokens


def diatheke(module: str, key: str) -> str:
    return subprocess.run(
        ["diatheke", "-b", module, "-f", "OSIS", "-o", "n", "-k", key],
        check=True, capture_output=True, text=True, encoding="utf-8",
    ).stdout


def read_book(module: str, key: str, lang: str) -> dict[tuple[int, int], tuple[str, list]]:
    """Verses of one book. WEB prints Psalm titles as a prefix before the verse label; over a whole
    book diatheke repeats a title on every later line (even into an untitled next psalm), so prefixes
    are dropped and each psalm's true title is read from a one-verse query and put at the start of
    verse 1, where the Reina-Valera has it. Psalm 119's stanza letters (ALEPH, BETH, ...) are headings
    in WEB and verse text in RV1909; they are dropped on both sides."""
    line_re = re.compile(rf"^(?:(.*?)\s+)?{re.escape(key)} (\d+):(\d+): ?(.*)$")
    verses, titled = {}, False
    for line in diatheke(module, key).splitlines():
        m = line_re.match(line)
        if m:
            c, v, body = int(m[2]), int(m[3]), m[4]
            body = body.split(_GLOSSARY)[0]  # WEB appends its glossary to Revelation 22:21
            titled |= bool(m[1])
            if key == "Psalms" and c == 119 and lang == "es":
                body = re.sub(r"^[A-Z]{2,}\.?\s*", "", body) if v % 8 == 1 else body
            verses[c, v] = body
        elif line.strip() and line.strip() != f"({module})":
            raise ValueError(f"{module} {key}: unparsed line {line[:80]!r}")
    if not verses:
        raise RuntimeError(f"{module} {key}: no verses; is the Debian package installed?")
    if titled:
        for c in sorted({c for c, _ in verses}):
            if (c, 1) in verses and not (key == "Psalms" and c == 119):
                m = line_re.match(diatheke(module, f"{key} {c}:1").splitlines()[0])
                if m and m[1]:
                    verses[c, 1] = m[1] + " " + verses[c, 1]
    return {ref: parse_verse(body, lang) for ref, body in verses.items()}


def fix_dropcaps(verses: list[dict], lang: str) -> int:
    """RV1909 prints the first word of each chapter in capitals (``EN el principio``, ``Y FUERON``,
    after a psalm title ``... su hijo. ¡OH Jehová``). In verse 1, the first all-capitals word of two or
    more letters gets the casing it has most often elsewhere in the corpus, capitalised when it starts
    a sentence."""
    forms = Counter(w for v in verses for w, _ in v[lang + "_tokens"] if not (_CAPS.match(w) and w.isupper()))
    fixed = 0
    for v in verses:
        if v["verse"] != 1:
            continue
        toks = v[lang + "_tokens"]
        for k, (w, ids) in enumerate(toks):
            if _CAPS.match(w) and w.isupper() and w not in ("II", "III"):
                lower, title = w.lower(), w[0] + w[1:].lower()
                new = title if forms[title] > forms[lower] else lower
                before = [t for t, _ in toks[:k] if t not in "¡¿“‘("]
                if not before or before[-1] in ".!?":
                    new = new[0].upper() + new[1:]
                toks[k] = (new, ids)
                fixed += 1
                break
        text, out, pos = v[lang], "", 0
        for old, new in zip(_TOKEN.finditer(text), (w for w, _ in toks), strict=True):
            out += text[pos : old.start()] + new
            pos = old.end()
        v[lang] = out + text[pos:]
    return fixed


def main() -> None:
    verses, skipped = [], Counter()
    for name, key in BOOKS:
        en = read_book(MODULES["en"], key, "en")
        es = read_book(MODULES["es"], key, "es")
        for ref in sorted(en.keys() | es.keys()):
            if ref not in en or ref not in es:
                skipped["missing in " + ("es" if ref in en else "en")] += 1
                continue
            (en_text, en_tok), (es_text, es_tok) = en[ref], es[ref]
            if not en_tok or not es_tok:
                skipped["empty"] += 1
                continue
            verses.append({"book": name, "chapter": ref[0], "verse": ref[1], "en": en_text, "es": es_text,
                           "en_tokens": en_tok, "es_tokens": es_tok})
    dropcaps = fix_dropcaps(verses, "es")

    lines = []
    for v in verses:
        rec = {"book": v["book"], "chapter": v["chapter"], "verse": v["verse"], "en": v["en"], "es": v["es"],
               "en_tags": " ".join("+".join(ids) or "-" for _, ids in v["en_tokens"]),
               "es_tags": " ".join("+".join(ids) or "-" for _, ids in v["es_tokens"])}
        lines.append(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    DATA_FILE.write_bytes(lzma.compress(data, format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME))
    print(f"{len(verses)} verses -> {DATA_FILE} ({DATA_FILE.stat().st_size:,} bytes)")
    print(f"skipped: {dict(skipped)}; spaces inserted between glued <w>: {dict(glued)}; drop caps re-cased: {dropcaps}")


if __name__ == "__main__":
    sys.exit(main())
