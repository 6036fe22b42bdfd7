"""Code the reader sees fits the text column (issue 14): every line of a code cell that the book
shows (no ``remove-input`` / ``remove-cell`` tag; ``hide-input`` cells open on a click) is at most
88 characters, the width the code-input font in ``book/assets/lmbook.css`` fits at 1280 px
(``tests/test_browser_layout.py`` checks that on the built pages). ``ruff format --line-length 88``
does most of it; comments and long strings are split by hand.
"""

import json

import pytest
from browser import ROOT

MAX_COLUMNS = 88
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def long_lines(notebook: dict, limit: int = MAX_COLUMNS) -> list[str]:
    found = []
    for cell in notebook["cells"]:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell["cell_type"] != "code" or tags & {"remove-input", "remove-cell"}:
            continue
        for number, line in enumerate("".join(cell["source"]).splitlines(), 1):
            if len(line) > limit:
                found.append(f"cell {cell.get('id')} line {number} ({len(line)} chars): {line[:60]}")
    return found


def test_long_lines_are_found_and_hidden_cells_ignored():
    line = "x = " + "1 + " * 30 + "1"
    cell = {"cell_type": "code", "id": "a", "metadata": {}, "source": [line]}
    hidden = {**cell, "id": "b", "metadata": {"tags": ["remove-input"]}}
    assert long_lines({"cells": [cell, hidden]}) == [f"cell a line 1 ({len(line)} chars): {line[:60]}"]
    assert long_lines({"cells": [{**cell, "source": ["x = 1"]}]}) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_visible_code_fits_88_columns(path):
    found = long_lines(json.loads(path.read_text(encoding="utf-8")))
    assert found == [], f"{path.name}: {len(found)} code lines longer than {MAX_COLUMNS}: {found[:5]}"


# A plot cell that ends in ``fig.colorbar(...)`` or ``ax.legend(...)`` prints the call's return value
# under the figure ("<matplotlib.colorbar.Colorbar at 0x7f...>", "Text(0.5, 0.98, ...)"): noise on the
# page. Such a cell ends with ``;`` (or assigns the value).
RETURNS_AN_OBJECT = {
    "annotate", "axhline", "axvline", "bar", "barh", "colorbar", "errorbar", "fill_between", "hist", "imshow",
    "legend", "matshow", "plot", "scatter", "set", "set_title", "set_xlabel", "set_xlim", "set_xticks",
    "set_ylabel", "set_ylim", "set_yticks", "suptitle", "text",
}  # fmt: skip
# plain functions whose value would be printed the same way (check_figure_fonts returns the smallest size)
RETURNS_A_VALUE = {"check_figure_fonts"}


def prints_a_plot_object(source: str) -> bool:
    """True when the cell's last statement is a bare plotting call whose value IPython would print."""
    import ast

    source = source.rstrip()
    if not source or source.endswith(";") or source.lstrip().startswith("%"):
        return False
    body = ast.parse(source).body
    last = body[-1].value if body and isinstance(body[-1], ast.Expr) else None
    return isinstance(last, ast.Call) and (
        (isinstance(last.func, ast.Attribute) and last.func.attr in RETURNS_AN_OBJECT)
        or (isinstance(last.func, ast.Name) and last.func.id in RETURNS_A_VALUE)
    )


def test_plot_object_detector():
    assert prints_a_plot_object('fig.colorbar(im, ax=ax, label="weight")')
    assert prints_a_plot_object("fig, ax = plt.subplots()\nax.legend(\n    loc='upper right'\n)")
    assert not prints_a_plot_object('fig.colorbar(im, ax=ax, label="weight");')
    assert not prints_a_plot_object("cb = fig.colorbar(im)\nfig.tight_layout()")
    assert prints_a_plot_object("check_figure_fonts(fig)  # every label at least 9 pt")
    assert not prints_a_plot_object("_ = check_figure_fonts(fig)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_plot_object_printed(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    noisy = [c.get("id") for c in cells if c["cell_type"] == "code" and prints_a_plot_object("".join(c["source"]))]
    assert noisy == [], f"{path.name}: cells {noisy} print a matplotlib object under their figure; end them with ';'"
