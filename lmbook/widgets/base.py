"""What every explorer shares: the folder of its JavaScript and the wiring to it.

Each explorer is a thin Python wrapper over one JavaScript file in ``lmbook/widgets/js/``
(anywidget). Python sends the data once (tokens, raw scores, logits) as synced traits; the
JavaScript does the small math when a control moves, so no kernel is needed and the explorer
works in the static book. The same math is also written in Python (a "twin" method on the
widget) and ``tests/widgets/`` runs the JavaScript in node to check that both agree.

A new explorer is ``class MyExplorer(Explorer, js="my_explorer.js")`` plus its synced traits.
"""

from __future__ import annotations

from pathlib import Path

import anywidget

__all__ = ["JS_DIR", "Explorer"]

JS_DIR = Path(__file__).resolve().parent / "js"
"""``lmbook/widgets/js``: one ``<name>.js`` per explorer; its pure math functions are exported for the tests."""


class Explorer(anywidget.AnyWidget):
    """Base of the book's explorers: ``class X(Explorer, js="x.js")`` loads ``JS_DIR / "x.js"`` as the widget's ESM."""

    def __init_subclass__(cls, js: str | None = None, **kwargs) -> None:
        if js is not None:
            if not (JS_DIR / js).is_file():
                raise FileNotFoundError(f"{cls.__name__}: js={js!r} is not a file in {JS_DIR}")
            cls._esm = JS_DIR / js  # set before anywidget's hook, which turns the path into its file contents
        super().__init_subclass__(**kwargs)
