"""What every explorer shares: the folder of its JavaScript and the wiring to it.

Each explorer is a thin Python wrapper over one JavaScript file in ``lmbook/widgets/js/``
(anywidget). Python sends the data once (tokens, raw scores, logits) as synced traits; the
JavaScript does the small math when a control moves, so no kernel is needed and the explorer
works in the static book. The same math is also written in Python (a "twin" method on the
widget) and ``tests/widgets/`` runs the JavaScript in node to check that both agree.

A new explorer is ``class MyExplorer(Explorer, js="my_explorer.js")`` plus its synced traits.

Keyboard in JupyterLab: in command mode the notebook turns keys (arrows, Enter, letters) into
cell commands, so a focused slider would never see its arrow keys. The module sent to the
browser is therefore the JavaScript file with one thing added, in one place (``KEYBOARD_JS``):
its ``render`` first marks the widget's element with ``data-lm-suppress-shortcuts``, which
JupyterLab's command registry (Lumino) honours by leaving keydown events from inside it alone,
and stops keydown events there from bubbling further: measured in JupyterLab 4.6, the attribute
alone is not enough, as the notebook still takes ArrowRight on a focused slider and moves to the
next cell. In the static book neither changes anything.
"""

from __future__ import annotations

import re
from pathlib import Path

import anywidget

__all__ = ["JS_DIR", "KEYBOARD_JS", "Explorer", "browser_module", "with_keyboard"]

JS_DIR = Path(__file__).resolve().parent / "js"
"""``lmbook/widgets/js``: one ``<name>.js`` per explorer; its pure math functions are exported for the tests."""


KEYBOARD_JS = """
// Added by lmbook/widgets/base.py: keys pressed inside the explorer stay with the explorer
// (JupyterLab would otherwise run notebook commands on them in command mode).
export default {
  ...explorerModule,
  render(context) {
    context.el.setAttribute("data-lm-suppress-shortcuts", "true");
    context.el.addEventListener("keydown", (event) => event.stopPropagation());
    return explorerModule.render(context);
  },
};
"""


def with_keyboard(source: str, name: str) -> str:
    """The ES module ``source`` (called ``name`` in errors) with ``KEYBOARD_JS`` around its ``render``."""
    module, found = re.subn(r"^export default ", "const explorerModule = ", source, flags=re.M)
    if found != 1:
        raise ValueError(f"{name}: expected exactly one line starting with 'export default ' "
                         f"(the widget's {{ render }}), found {found}")
    return module + KEYBOARD_JS


def browser_module(path: Path) -> str:
    """The ES module an explorer sends to the browser: the file at ``path``, ``with_keyboard``."""
    return with_keyboard(Path(path).read_text(encoding="utf-8"), f"path={str(path)!r}")


class Explorer(anywidget.AnyWidget):
    """Base of the book's explorers: ``class X(Explorer, js="x.js")`` loads ``JS_DIR / "x.js"`` as the widget's ESM
    (or a subclass sets ``_esm`` to a module's text); either way it goes through ``with_keyboard``."""

    def __init_subclass__(cls, js: str | None = None, **kwargs) -> None:
        if js is not None:
            if not (JS_DIR / js).is_file():
                raise FileNotFoundError(f"{cls.__name__}: js={js!r} is not a file in {JS_DIR}")
            cls._esm = browser_module(JS_DIR / js)
        elif isinstance(cls.__dict__.get("_esm"), str):  # a module put together in Python
            cls._esm = with_keyboard(cls._esm, f"{cls.__name__}._esm")
        super().__init_subclass__(**kwargs)
