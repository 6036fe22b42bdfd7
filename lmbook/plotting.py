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

__all__ = ["CJK_FONT_FAMILY", "CJK_FONT_PACKAGE", "cjk_font_path", "use_cjk_font"]

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
