"""Explorers that compute in the browser (anywidget), so they work in the built book.

Each widget is a thin Python wrapper over one JavaScript file in ``lmbook/js/``.
Python sends the data once (tokens, raw scores, logits); the JavaScript does the
small math when a control moves, so no kernel is needed. The same math is also
written in Python (a "twin" method on the widget) and ``tests/test_widgets_*.py``
run the JavaScript in node to check that both agree.
"""

from lmbook.widgets.attention import JS_DIR, AttentionExplorer
from lmbook.widgets.bpe import BPEExplorer
from lmbook.widgets.feedback import FeedbackReplay, live_feedback
from lmbook.widgets.masking import MaskingExplorer
from lmbook.widgets.positions import PositionExplorer
from lmbook.widgets.sampling import SamplingExplorer

__all__ = [
    "JS_DIR",
    "AttentionExplorer",  # Chapter 3
    "BPEExplorer",  # Chapter 1
    "FeedbackReplay",  # Chapter 6
    "MaskingExplorer",  # Chapter 4
    "PositionExplorer",  # Chapter 2
    "SamplingExplorer",  # Chapter 6
    "live_feedback",  # Chapter 6 (needs a kernel)
]
