"""lmbook.widgets.base: every explorer's browser module keeps its keys from JupyterLab's shortcuts."""

import pytest

from lmbook.widgets import JS_DIR
from lmbook.widgets.base import KEYBOARD_JS, Explorer, browser_module


def _explorers(cls=Explorer):
    """The explorer classes (not the per-instance subclasses traitlets makes when a widget is created)."""
    for sub in cls.__subclasses__():
        if isinstance(sub.__dict__.get("_esm"), str):
            yield sub
        yield from _explorers(sub)


def test_every_explorer_sends_its_file_with_the_keyboard_wrapper():
    explorers = list(_explorers())
    assert len(explorers) >= 7
    for cls in explorers:
        esm = cls.__dict__["_esm"]
        assert esm.endswith(KEYBOARD_JS) and esm.count("export default") == 1, cls.__name__
        assert "const explorerModule = { render" in esm, cls.__name__
    assert {f.name for f in JS_DIR.glob("*.js")} >= {"attention_explorer.js", "sampling_explorer.js"}


def test_a_module_without_one_default_export_is_refused(tmp_path):
    bad = tmp_path / "bad.js"
    bad.write_text("export function render() {}\n")
    with pytest.raises(ValueError, match="path=.*bad.js.*found 0"):
        browser_module(bad)
    with pytest.raises(FileNotFoundError, match="js='missing.js' is not a file"):
        type("Missing", (Explorer,), {}, js="missing.js")
