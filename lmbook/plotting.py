"""Chinese text in matplotlib figures, offline, with no system CJK font.

matplotlib's default font, DejaVu Sans, has no Chinese glyphs: a label such as
"自注意力" draws as empty boxes and warns "Glyph ... missing from font(s) DejaVu Sans".
``use_cjk_font`` registers Noto Sans SC (SIL Open Font License 1.1), shipped by the
pinned PyPI package ``pylopdf-fonts-zh-cn``, and adds it to matplotlib's font list
*after* DejaVu Sans: Latin text keeps its usual look, and every character DejaVu Sans
lacks falls back, glyph by glyph, to Noto Sans SC. The built web pages use the same
family (``book/assets/lmbook.css``), so figures and pages match.

A notebook calls it once, before drawing::

    from lmbook.plotting import use_cjk_font
    use_cjk_font()
"""

from __future__ import annotations

import importlib
import importlib.resources
from pathlib import Path

__all__ = ["CJK_FONT_FAMILY", "CJK_FONT_PACKAGE", "COLUMN_PX", "check_figure_fonts", "cjk_font_path",
           "rendered_font_sizes", "use_cjk_font"]

CJK_FONT_FAMILY = "Noto Sans SC"
"""Family name of the CJK font, as matplotlib and the web pages know it."""

CJK_FONT_PACKAGE = "pylopdf-fonts-zh-cn==0.1.1"
"""The pinned PyPI package (see requirements.txt) that ships the font file."""

_MODULE = "pylopdf_fonts_zh_cn"
_FILE = "NotoSansSC-Regular.otf"


def cjk_font_path() -> Path:
    """Path of the installed Noto Sans SC Regular font file (OpenType/CFF, ~8 MB).

    Raises:
        ModuleNotFoundError: the font package is not installed; the message names the pip command.
        FileNotFoundError: the package is installed but lacks the font file.
    """
    try:
        importlib.import_module(_MODULE)
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            f"Chinese text in figures needs the font package {CJK_FONT_PACKAGE!r}; "
            f"install it with: pip install {CJK_FONT_PACKAGE}  (or: pip install -r requirements.txt)",
            name=_MODULE,
        ) from err
    path = Path(str(importlib.resources.files(_MODULE) / _FILE))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall with: pip install --force-reinstall {CJK_FONT_PACKAGE}")
    return path


def use_cjk_font() -> str:
    """Let matplotlib draw Chinese: register Noto Sans SC and fall back to it after DejaVu Sans.

    Changes the global ``matplotlib.rcParams`` (wrap the call in ``matplotlib.rc_context()``
    to keep the change local):

    - ``font.family`` gains ``"Noto Sans SC"`` at its end (matplotlib falls back glyph by
      glyph along this list, so Latin stays in the first family, DejaVu Sans by default);
    - ``font.sans-serif`` gains it right after ``"DejaVu Sans"``.

    Calling it again changes nothing more. Text drawn with an explicit single family
    (``fontfamily="monospace"``, say) does not fall back; give such text
    ``fontfamily=["monospace", "Noto Sans SC"]``.

    Returns:
        The family name, ``"Noto Sans SC"``.
    """
    import matplotlib
    from matplotlib import font_manager

    path = cjk_font_path()
    known = {Path(entry.fname).resolve() for entry in font_manager.fontManager.ttflist}
    if path.resolve() not in known:
        font_manager.fontManager.addfont(str(path))

    rc = matplotlib.rcParams
    family = list(rc["font.family"])
    if CJK_FONT_FAMILY not in family:
        rc["font.family"] = [*family, CJK_FONT_FAMILY]
    sans = [name for name in rc["font.sans-serif"] if name != CJK_FONT_FAMILY]
    at = sans.index("DejaVu Sans") + 1 if "DejaVu Sans" in sans else len(sans)
    rc["font.sans-serif"] = [*sans[:at], CJK_FONT_FAMILY, *sans[at:]]
    return CJK_FONT_FAMILY


# ----------------------------------------------------------------------------- readable figures
COLUMN_PX = 688
"""Width in CSS pixels of a cell output in the built book at a 1280 px window (measured in Chromium):
a wider figure image is scaled down to it, and its fonts with it."""


def rendered_font_sizes(fig, column_px: int = COLUMN_PX) -> list[tuple[float, str]]:
    """Every visible, non-empty text of ``fig`` as ``(size, text)``, smallest first, with ``size`` the
    font size in CSS points as a reader of the built book sees it.

    The book saves a figure at ``fig.dpi`` with a tight bounding box and shows the image at its own
    width, or scaled down to ``column_px`` when it is wider. A font of ``s`` points is then
    ``s * dpi / 72 * scale`` CSS pixels tall, that is ``s * dpi / 96 * scale`` CSS points.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    # a figure the notebook already showed and closed has a bare canvas: draw it with Agg
    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    canvas.draw()
    width_px = fig.get_tightbbox(canvas.get_renderer()).width * fig.dpi
    scale = min(1.0, column_px / width_px)
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()
             and (t.axes is None or t.axes.get_visible())]
    return sorted((t.get_fontsize() * fig.dpi / 96 * scale, t.get_text()) for t in texts)


def check_figure_fonts(fig, min_pt: float = 9.0, column_px: int = COLUMN_PX) -> float:
    """Raise ``AssertionError`` if a text of ``fig`` shows smaller than ``min_pt`` points in the book
    (see :func:`rendered_font_sizes`), naming the text and saying what to change; return the smallest size."""
    sizes = rendered_font_sizes(fig, column_px)
    if not sizes:
        raise ValueError("fig has no visible text to check")
    size, text = sizes[0]
    if size < min_pt:
        width = fig.get_size_inches()[0]
        raise AssertionError(f"the text {text[:40]!r} shows at {size:.1f} pt in the book, below {min_pt} pt: "
                             f"enlarge its font, or narrow the figure ({width:.1f} in wide; at dpi {fig.dpi:.0f} "
                             f"the column holds {column_px / fig.dpi:.2f} in without scaling)")
    return size
