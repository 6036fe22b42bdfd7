"""Every cross-reference points at a label that exists (issue 14): renumbering a section never breaks a link.

Labels are MyST targets, ``(sec-attention-scaling)=`` on the line before a heading, and the
``:name:`` of a figure, in the notebooks and in ``book/*.md``. They are cited as ``{ref}`sec-…```
/ ``{numref}`…``` in markdown, and as ``(book: sec-…)`` in the docstrings and comments of ``lmbook``
(several labels: ``(book: sec-a, sec-b)``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFINED = re.compile(r"^\(([\w-]+)\)=\s*$|^:name:\s*([\w-]+)\s*$", re.MULTILINE)  # targets and figure names
ROLE = re.compile(r"\{(?:ref|numref)\}`(?:[^`<]*<)?([\w-]+)>?`")  # {ref}`label` or {ref}`text <label>`
BOOK = re.compile(r"\(book: ([a-z]+-[\w-]+(?:,\s+[a-z]+-[\w-]+)*)\)")  # lmbook docstrings and comments


def _markdown_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf-8"))
        return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return path.read_text(encoding="utf-8")


def _pages() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.md"))


def defined_labels() -> set[str]:
    return {a or b for page in _pages() for a, b in DEFINED.findall(_markdown_of(page))}


def cited_labels() -> dict[str, set[str]]:
    """label -> the files that cite it."""
    cited: dict[str, set[str]] = {}
    for page in _pages():
        for label in ROLE.findall(_markdown_of(page)):
            cited.setdefault(label, set()).add(str(page.relative_to(ROOT)))
    for module in sorted((ROOT / "lmbook").rglob("*.py")) + sorted((ROOT / "lmbook").rglob("*.js")):
        text = module.read_text(encoding="utf-8")
        for labels in BOOK.findall(text):
            for label in re.split(r"[,\s]+", labels.strip()):
                cited.setdefault(label, set()).add(str(module.relative_to(ROOT)))
    return cited


def test_the_patterns_read_what_they_should():
    text = "x\n(sec-attention-scaling)=\n## 3.2 Why\n:name: fig-x\n"
    assert DEFINED.findall(text) == [("sec-attention-scaling", ""), ("", "fig-x")]
    assert ROLE.findall("see {ref}`sec-a` and {numref}`Figure %s <fig-b>`") == ["sec-a", "fig-b"]
    assert BOOK.findall('"""Masks (book: sec-attention-masks, sec-x).') == ["sec-attention-masks, sec-x"]
    assert BOOK.findall("def book_split(book: str) -> str:") == []


def test_lmbook_cites_book_sections_by_label():
    assert len([label for label, files in cited_labels().items() if any(f.startswith("lmbook") for f in files)]) > 20


def test_every_cited_label_exists():
    defined = defined_labels()
    missing = {label: sorted(files) for label, files in sorted(cited_labels().items()) if label not in defined}
    assert not missing, "cited labels that no page defines:\n" + "\n".join(
        f"  {label}: cited in {', '.join(files)}" for label, files in missing.items()
    )


TERM = re.compile(r"\{term\}`(?:[^`<]*<)?([^`<>]+?)>?`")  # {term}`softmax` or {term}`text <softmax>`


def glossary_terms() -> set[str]:
    """The terms of ``book/glossary.md``'s glossary directive: its unindented lines, lower-cased as Sphinx does."""
    text = (ROOT / "book" / "glossary.md").read_text(encoding="utf-8")
    body = text.split("```{glossary}", 1)[1].split("\n```", 1)[0]
    return {line.strip().lower() for line in body.splitlines() if line.strip() and not line.startswith((" ", "\t"))}


def test_every_term_link_is_in_the_glossary():
    assert TERM.findall("{term}`softmax` and {term}`the scores <logits>`") == ["softmax", "logits"]
    terms = glossary_terms()
    assert {"softmax", "logits", "policy", "teacher forcing"} <= terms
    missing = {}
    for page in _pages():
        for term in TERM.findall(_markdown_of(page)):
            if term.lower() not in terms:
                missing.setdefault(term, []).append(str(page.relative_to(ROOT)))
    assert not missing, "{term} links to terms book/glossary.md lacks:\n" + "\n".join(
        f"  {term}: in {', '.join(files)}" for term, files in sorted(missing.items())
    )
