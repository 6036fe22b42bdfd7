"""Corpora the project extracts itself and ships compressed inside the package.

* ``lmbook.corpora.bible`` (book: sec-translation-data): verse-aligned English-Spanish
  Bible text (World English Bible / Reina-Valera 1909, both public domain) with gold word alignments
  from shared Strong's numbers. See ``README.md`` in this folder for licence and provenance.

Everything is re-exported here: ``from lmbook.corpora import load_bible_pairs``.
"""

from lmbook.corpora import bible
from lmbook.corpora.bible import *  # noqa: F403  (the package re-exports exactly the module's names)

__all__ = bible.__all__
