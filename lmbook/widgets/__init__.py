"""Explorers that compute in the browser (anywidget), so they work in the built book.

Each widget is a thin Python wrapper over one JavaScript file in ``lmbook/widgets/js/``;
``lmbook.widgets.base`` holds what they share (``JS_DIR``, the ``Explorer`` base class).
"""

from lmbook.widgets.attention import AttentionExplorer
from lmbook.widgets.base import JS_DIR, Explorer
from lmbook.widgets.bpe import BPEExplorer
from lmbook.widgets.feedback import FeedbackReplay, live_feedback
from lmbook.widgets.live_decoder import LiveGenerator
from lmbook.widgets.live_encoder import LiveAttentionExplorer
from lmbook.widgets.masking import MaskingExplorer
from lmbook.widgets.positions import PositionExplorer
from lmbook.widgets.sampling import SamplingExplorer

__all__ = [
    "JS_DIR",
    "Explorer",
    "AttentionExplorer",  # Chapter 3
    "BPEExplorer",  # Chapter 1
    "FeedbackReplay",  # Chapter 6
    "LiveAttentionExplorer",  # Chapters 3 and 4 (the pretrained encoder, live in the page)
    "LiveGenerator",  # Chapter 6 (the pretrained decoder generating in the page)
    "MaskingExplorer",  # Chapter 4
    "PositionExplorer",  # Chapter 2
    "SamplingExplorer",  # Chapter 6
    "live_feedback",  # Chapter 6 (needs a kernel)
]
