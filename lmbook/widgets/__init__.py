"""Explorers that compute in the browser (anywidget), so they work in the built book.

Each widget is a thin Python wrapper over one JavaScript file in ``lmbook/js/``.
Python sends the data once (tokens, raw scores, logits); the JavaScript does the
small math when a control moves, so no kernel is needed. The same math is also
written in Python (a "twin" method on the widget) and ``tests/test_widgets_*.py``
run the JavaScript in node to check that both agree.
"""

from lmbook.widgets.attention import JS_DIR, AttentionExplorer

__all__ = ["JS_DIR", "AttentionExplorer"]
