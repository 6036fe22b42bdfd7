"""lmbook.plotting.use_cjk_font: Chinese draws in Noto Sans SC, Latin stays in DejaVu Sans, no tofu."""

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.backends.backend_agg import get_font  # noqa: E402

from lmbook.plotting import CJK_FONT_FAMILY, cjk_font_path, use_cjk_font  # noqa: E402

LABEL = "自注意力 attention"


def _draw(text: str, **kwargs):
    """Draw ``text`` into an Agg figure; return (figure, text artist, RGB pixels, glyph warnings)."""
    fig = plt.figure(figsize=(3, 1), dpi=100)
    artist = fig.text(0.05, 0.4, text, fontsize=20, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    glyph = [str(w.message) for w in caught if "Glyph" in str(w.message) and "missing" in str(w.message)]
    return fig, artist, pixels, glyph


def test_font_file_is_the_shipped_noto_sans_sc():
    path = cjk_font_path()
    assert path.name == "NotoSansSC-Regular.otf" and path.stat().st_size > 1_000_000
    assert ord("自") in get_font([str(path)]).get_charmap()


def test_without_the_helper_chinese_is_tofu():
    """The check below can fail: DejaVu Sans alone warns about the missing glyphs."""
    with matplotlib.rc_context({"font.family": ["sans-serif"], "font.sans-serif": ["DejaVu Sans"]}):
        *_, glyph = _draw(LABEL)
    assert glyph, "expected matplotlib to warn that DejaVu Sans lacks Chinese glyphs"


def test_chinese_draws_in_noto_sans_sc_and_latin_in_dejavu():
    with matplotlib.rc_context():
        assert use_cjk_font() == CJK_FONT_FAMILY
        assert use_cjk_font() == CJK_FONT_FAMILY  # idempotent
        sans = matplotlib.rcParams["font.sans-serif"]
        assert sans.index(CJK_FONT_FAMILY) == sans.index("DejaVu Sans") + 1
        assert matplotlib.rcParams["font.family"].count(CJK_FONT_FAMILY) == 1

        _, artist, _, glyph = _draw(LABEL)
        assert glyph == []

        # The fallback chain of the label: DejaVu Sans first (Latin), then Noto Sans SC.
        chain = [Path(p) for p in font_manager.fontManager._find_fonts_by_props(artist.get_fontproperties())]
        assert chain[0].name == "DejaVuSans.ttf"
        assert chain[-1].resolve() == cjk_font_path().resolve()
        assert ord("自") not in get_font([str(chain[0])]).get_charmap()

        # The pixels of the Chinese word are exactly those of Noto Sans SC alone, and Latin
        # text is exactly DejaVu Sans.
        *_, zh_stack, _ = _draw("自注意力")
        *_, zh_noto, _ = _draw("自注意力", fontfamily=CJK_FONT_FAMILY)
        assert (zh_stack < 128).any() and np.array_equal(zh_stack, zh_noto)
        *_, en_stack, _ = _draw("attention")
        *_, en_dejavu, _ = _draw("attention", fontfamily="DejaVu Sans")
        assert np.array_equal(en_stack, en_dejavu)


def test_missing_package_names_the_pip_command(monkeypatch):
    import lmbook.plotting as plotting

    monkeypatch.setattr(plotting, "_MODULE", "no_such_font_package_xyz")
    with pytest.raises(ModuleNotFoundError, match="pip install pylopdf-fonts-zh-cn==0.1.1"):
        plotting.use_cjk_font()


def test_rendered_font_sizes_scale_a_wide_figure_down_to_the_column():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lmbook.plotting import COLUMN_PX, check_figure_fonts, rendered_font_sizes

    narrow, ax = plt.subplots(figsize=(6, 3), dpi=100)
    ax.set_title("title", fontsize=12)
    ax.set_xlabel("label", fontsize=10)
    sizes = dict((text, size) for size, text in rendered_font_sizes(narrow))
    assert sizes["label"] == pytest.approx(10 * 100 / 96)  # narrower than the column: not scaled
    assert check_figure_fonts(narrow) == pytest.approx(min(sizes.values()))

    wide, ax = plt.subplots(figsize=(14, 3), dpi=100)
    ax.tick_params(labelsize=30)
    ax.set_xlabel("tiny label", fontsize=10)
    width_px = wide.get_tightbbox(wide.canvas.get_renderer()).width * 100
    size = dict((text, s) for s, text in rendered_font_sizes(wide))["tiny label"]
    assert size == pytest.approx(10 * 100 / 96 * COLUMN_PX / width_px, rel=1e-3)
    with pytest.raises(AssertionError, match="'tiny label'.*below 9.0 pt.*narrow the figure"):
        check_figure_fonts(wide)
    ax.set_xlabel("hidden", visible=False)
    assert check_figure_fonts(wide) > 9  # invisible and empty texts do not count
    plt.close(wide)  # as the notebook's inline backend does after showing it
    assert check_figure_fonts(wide) > 9
    plt.close("all")
