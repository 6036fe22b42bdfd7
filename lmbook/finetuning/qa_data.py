"""The extractive QA set the project builds itself (book: sec-question-answering).

No pip package ships a SQuAD-style extractive QA set that installs offline on a reader's
machine, so the chapter uses one built here from the real text of :mod:`lmbook.data`. It is
deterministic: the same code gives the same examples.

**Extractive QA** (:func:`load_qa`): regular-expression templates find sentences whose
grammar fixes the answer, e.g. ``"<Name> (26 July 1894 – 1963) was an English writer"`` gives
*When was <Name> born?* -> ``26 July 1894``. The passage is the sentence with its neighbours;
the gold answer is a character span, checked by :meth:`QAExample.validate`.

"""

from __future__ import annotations

import functools
import re
import zlib
from dataclasses import dataclass

from lmbook.data import CLASSIFICATION_SETS, load_documents, package_file, split_sentences

__all__ = ["QAExample", "load_qa", "qa_split_of"]


@dataclass(frozen=True)
class QAExample:
    """One extractive QA example; the answer is ``context[answer_start:answer_start + len(answer)]``."""

    id: str
    question: str
    context: str
    answer: str
    answer_start: int
    template: str = ""
    source: str = ""

    @property
    def answer_end(self) -> int:
        """Exclusive end offset of the answer in ``context``."""
        return self.answer_start + len(self.answer)

    def validate(self) -> QAExample:
        """Raise ``ValueError`` unless the span slices the context to exactly ``answer``."""
        if not self.question.strip() or not self.answer.strip():
            raise ValueError(f"QA example {self.id}: question and answer must be non-empty")
        if not 0 <= self.answer_start <= len(self.context) - len(self.answer):
            raise ValueError(f"QA example {self.id}: answer_start={self.answer_start} with answer length "
                             f"{len(self.answer)} falls outside the context of {len(self.context)} chars")
        found = self.context[self.answer_start:self.answer_end]
        if found != self.answer:
            raise ValueError(f"QA example {self.id}: context[{self.answer_start}:{self.answer_end}] is "
                             f"{found!r} but the answer is {self.answer!r}")
        return self


_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_DATE = rf"(?:\d{{1,2}} {_MONTH} \d{{3,4}}|{_MONTH} \d{{1,2}}, \d{{3,4}}|{_MONTH} \d{{4}}|\d{{4}})"
_NAME = r"[A-Z][\w'.-]+(?: (?:[A-Z][\w'.-]+|of|the|de|von|van|and))*"
_PRONOUNS = {"He", "She", "It", "They", "This", "These", "That", "Those", "There", "We", "I", "You", "His", "Her",
             "Its", "Their", "In", "On", "At", "By", "After", "Before", "When", "While", "Since", "During", "But",
             "And", "Although", "However", "Yet", "So", "Meanwhile", "Overall", "Last", "Also", "Both", "Some"}
_JOBS = ("philosopher", "writer", "author", "poet", "novelist", "politician", "president", "king", "queen",
         "emperor", "actor", "actress", "singer", "composer", "painter", "artist", "scientist", "physicist",
         "chemist", "mathematician", "biologist", "economist", "historian", "journalist", "lawyer", "general",
         "architect", "engineer", "inventor", "explorer", "playwright", "director", "musician", "activist",
         "anarchist", "theologian", "statesman", "businessman", "critic", "essayist", "astronomer", "physician",
         "sculptor", "photographer", "comedian", "footballer", "player", "philologist", "linguist", "scholar",
         "psychologist", "sociologist", "anthropologist", "naturalist", "botanist", "zoologist", "geologist",
         "monarch", "pharaoh", "ruler", "saint", "priest", "bishop", "pope", "prince", "princess", "chancellor",
         "minister", "diplomat", "reformer", "revolutionary", "feminist", "educator", "teacher", "filmmaker")
_VERBS = ("founded", "established", "built", "published", "released", "discovered", "invented", "introduced",
          "created", "formed", "signed", "completed", "opened", "assassinated", "appointed", "written",
          "launched", "elected", "crowned", "adopted", "abolished", "ratified", "patented", "first described")
_CHANGE = {"rose": "rise", "fell": "fall", "grew": "grow", "increased": "increase", "dropped": "drop",
           "declined": "decline", "jumped": "jump", "climbed": "climb", "slipped": "slip", "gained": "gain"}



def _lower_article(phrase: str) -> str:
    return phrase[0].lower() + phrase[1:] if phrase.startswith(("The ", "A ", "An ")) else phrase


# (template, pattern applied to one sentence, question builder, answer group)
_TEMPLATES = [
    ("born", re.compile(rf"^(?P<name>{_NAME}) \((?:born )?(?P<born>{_DATE})\s*[–-]\s*(?P<died>{_DATE})\) "
                        rf"(?:was|is) (?:an?|the) [^.]{{0,60}}?\b(?:{'|'.join(_JOBS)})\b"),
     lambda m: f"When was {m['name']} born?", "born"),
    ("died", re.compile(rf"^(?P<name>{_NAME}) \((?:born )?(?P<born>{_DATE})\s*[–-]\s*(?P<died>{_DATE})\) "
                        rf"(?:was|is) (?:an?|the) [^.]{{0,60}}?\b(?:{'|'.join(_JOBS)})\b"),
     lambda m: f"When did {m['name']} die?", "died"),
    ("when_passive", re.compile(rf"^(?P<subj>(?:The |An? )?{_NAME}) (?P<aux>was|were) (?P<verb>{'|'.join(_VERBS)}) "
                                rf"(?:in|on) (?P<when>{_DATE})\b"),
     lambda m: f"When {m['aux']} {_lower_article(m['subj'])} {m['verb']}?", "when"),
    ("born_in_place", re.compile(rf"^(?P<name>{_NAME}) was born (?:on [^,.]+? )?in (?P<place>[A-Z][\w'-]+"
                                 rf"(?:,? [A-Z][\w'-]+){{0,3}})(?=[,.; ]|$)"),
     lambda m: f"Where was {m['name']} born?", "place"),
    ("capital", re.compile(rf"^(?P<city>{_NAME}) is the capital(?: city)? (?:and largest city )?of (?P<of>{_NAME})"),
     lambda m: f"What is the capital of {m['of']}?", "city"),
    ("population", re.compile(rf"^(?P<place>{_NAME}) (?:has|had) a population of (?P<n>(?:about |approximately |around"
                              rf" |over |more than |nearly )?[\d][\d,.]*(?: million| billion)?)"),
     lambda m: f"What is the population of {m['place']}?", "n"),
    ("in_year", re.compile(r"^In (?P<year>\d{4}), (?P<clause>[a-zA-Z][^;:\"]{25,160}?)\.$"),
     lambda m: f"In which year did the following happen: {m['clause']}?", "year"),
    ("change", re.compile(rf"^(?P<subj>(?:The |An? )?[A-Z][\w'-]*(?: [\w'-]+){{0,4}}?) (?P<verb>{'|'.join(_CHANGE)})"
                          r" (?:by )?(?P<n>\d[\d.]*(?:%| per ?cent))"),
     lambda m: f"By how much did {_lower_article(m['subj'])} {_CHANGE[m['verb']]}?", "n"),
    ("said_quote", re.compile(r"^\"(?P<quote>[^\"]{20,200}?),\" (?:said|says) (?P<who>(?:[A-Z][\w'.-]+ ){0,4}"
                              r"[A-Z][\w'.-]+)(?=[.,])"),
     lambda m: f"Who said \"{m['quote']}\"?", "who"),
    ("quote_said", re.compile(r"^\"(?P<quote>[^\"]{20,200}?),\" (?P<who>(?:[A-Z][\w'.-]+ ){0,4}[A-Z][\w'.-]+) "
                              r"(?:said|says)\.$"),
     lambda m: f"Who said \"{m['quote']}\"?", "who"),
    ("who_said", re.compile(r"^(?P<who>(?:[A-Z][\w'.-]+ ){0,4}[A-Z][a-z][\w'.-]+) (?:has )?(?:said|says) (?:that )?"
                            r"(?P<what>[a-z][^\"]{20,200})\.$"),
     lambda m: f"Who said that {m['what']}?", "who"),
]


def _bbc_documents() -> list[str]:
    package, pip, folder, _ = CLASSIFICATION_SETS["bbc_news"]
    root = package_file(package, folder, pip)
    return [" \n".join(x.strip() for x in f.read_text(encoding="utf-8", errors="replace").splitlines()[1:]
                       if x.strip()) for f in sorted(root.glob("*/*.txt"))]


def _qa_from_document(source: str, d: int, doc: str, window: int) -> list[QAExample]:
    out = []
    for p, para in enumerate(doc.split("\n")):
        sents = split_sentences(para)
        for i, sent in enumerate(sents):
            for name, pattern, ask, group in _TEMPLATES:
                m = pattern.search(sent)
                if m is None or any(m.groupdict().get(g, "x").split()[0] in _PRONOUNS
                                    for g in ("name", "subj", "place", "city", "who")):
                    continue
                before, after = sents[max(0, i - window):i], sents[i + 1:i + 1 + window]
                prefix = " ".join(before) + (" " if before else "")
                context = prefix + sent + ("" if not after else " " + " ".join(after))
                out.append(QAExample(f"{source}-{d}-{p}-{i}-{name}", ask(m).replace("  ", " "), context,
                                     m[group], len(prefix) + m.start(group), name, source).validate())
    return out


def qa_split_of(example: QAExample) -> str:
    """'train', 'val' or 'test', fixed by a hash of the source document, so no document is in two splits."""
    bucket = zlib.crc32("-".join(example.id.split("-")[:2]).encode()) % 10
    return "test" if bucket == 0 else "val" if bucket == 1 else "train"


@functools.cache
def _all_qa(window: int) -> tuple[QAExample, ...]:
    sources = {"wikipedia": load_documents("wikipedia"), "news": load_documents("news"), "bbc": _bbc_documents()}
    seen, out = set(), []
    for source, docs in sources.items():
        for d, doc in enumerate(docs):
            for ex in _qa_from_document(source, d, doc, window):
                if (ex.question, ex.context) not in seen:
                    seen.add((ex.question, ex.context))
                    out.append(ex)
    return tuple(out)


def load_qa(split: str | None = None, *, window: int = 1) -> list[QAExample]:
    """The book's extractive QA set, built from Wikipedia, Lee news and BBC News sentences.

    Args:
        split: 'train', 'val', 'test' (about 80/10/10, by source document) or None for all.
        window: sentences of context kept on each side of the answer sentence.

    Returns:
        Validated :class:`QAExample` objects in a fixed order.
    """
    if split not in (None, "train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val', 'test' or None, got {split!r}")
    examples = _all_qa(window)
    return [ex for ex in examples if split is None or qa_split_of(ex) == split]
