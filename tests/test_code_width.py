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
