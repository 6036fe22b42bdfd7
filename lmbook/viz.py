"""bertviz's attention views, drawn with no network: in JupyterLab and in the built book.

bertviz's ``head_view``/``model_view`` load require.js, d3 and jQuery from public CDNs, so
offline the view stays blank. The two functions here call bertviz with
``html_action="return"`` and rewrite its HTML so that it needs nothing from outside:

- the CDN ``<script src=…require.js>`` tag and the ``require.config`` naming CDN copies of
  d3 and jQuery are removed;
- bertviz's script gets a tiny local ``require``/``requirejs`` that hands it the page's
  ``window.d3`` and ``window.jQuery`` instead of fetching them;
- the book's own copies of d3 and jQuery (``book/assets/vendor/``, copied from
  ``node_modules/`` by ``scripts/vendor_frontend.sh``) are inlined before it, each in a
  ``<script data-lmbook-vendor=…>`` that runs only when the page lacks that library.

In JupyterLab the inlined copies define the two globals. The built book loads d3 and jQuery
on every page already, so its Sphinx extension (``book/_ext/lmbook_offline.py``) drops the
``data-lmbook-vendor`` scripts from page bodies (see ``strip_vendor_scripts``).

Chapters call ``lmbook.viz.head_view(...)`` where they would call ``bertviz.head_view(...)``;
the arguments are bertviz's.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from IPython.display import HTML

__all__ = ["VENDOR_DIR", "head_view", "model_view", "offline_html", "strip_vendor_scripts"]

VENDOR_DIR = Path(__file__).resolve().parents[1] / "book" / "assets" / "vendor"
"""Where ``make install`` puts the pinned front-end files (d3 5.7.0 and jQuery 2.2.4 among them)."""

_LIBS = {"d3": ("d3.min.js", "window.d3"), "jquery": ("jquery.min.js", "window.jQuery")}
_CDN_REQUIRE = re.compile(r'<script src="https://[^"]*/require(\.min)?\.js[^"]*"></script>')
_CDN_CONFIG = re.compile(r"require\.config\(\{.*?\}\);\n", re.S)  # bertviz's CDN paths for d3 and jQuery
_SCRIPT = re.compile(r'<script type="text/javascript">\n(?P<js>.*)\n</script>', re.S)
_VENDOR_SCRIPT = re.compile(r'<script data-lmbook-vendor="[^"]*">.*?</script>\n?', re.S)

# Stands in for require.js inside bertviz's script: `requirejs(["jquery", "d3"], f)` calls f
# with the page's globals (and a `require.config` call, should one remain, does nothing).
_LOCAL_REQUIRE = """(function () {
  var libs = {jquery: window.jQuery, d3: window.d3};
  var requirejs = function (names, callback) {
    callback.apply(null, names.map(function (name) { return libs[name]; }));
  };
  requirejs.config = function () {};
  var require = requirejs;
%s
})();"""


@cache
def _vendor_script(name: str) -> str:
    filename, global_name = _LIBS[name]
    path = VENDOR_DIR / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"bertviz needs {name} from {path}, which is missing: run `make install` "
            "(npm ci + scripts/vendor_frontend.sh) to copy the pinned front-end files there")
    source = path.read_text(encoding="utf-8")
    if "</script" in source.lower():
        raise ValueError(f"{path} contains '</script', so it cannot be inlined in a <script> tag")
    # Run as a plain script even where an AMD loader or CommonJS globals exist: shadow them.
    return (f'<script data-lmbook-vendor="{name}">if (!{global_name}) (function (define, module, exports) {{\n'
            f"{source}\n}}).call(window);</script>\n")


def offline_html(html: str) -> str:
    """Rewrite the HTML of ``bertviz.head_view/model_view(..., html_action="return")`` so it
    loads nothing from the network (see the module docstring)."""
    if not isinstance(html, str):
        raise TypeError(f"offline_html: html must be bertviz's HTML as a str, got {type(html).__name__}")
    body, n_cdn = _CDN_REQUIRE.subn("", html)
    script = _SCRIPT.search(body)
    js, n_config = _CDN_CONFIG.subn("", script["js"], count=1) if script else ("", 0)
    if n_cdn != 1 or n_config != 1 or "requirejs(" not in js:
        raise ValueError("offline_html: html is not what bertviz 1.4 returns (one CDN require.js tag, then the "
                         f"view's <div> and one script that configures and calls requirejs); got {html[:200]!r}…")
    local = '<script type="text/javascript">\n' + _LOCAL_REQUIRE % js + "\n</script>"
    vendor = "".join(_vendor_script(name) for name in _LIBS)
    return body[:script.start()] + vendor + local + body[script.end():]


def strip_vendor_scripts(html: str) -> str:
    """Drop the inlined d3/jQuery copies from ``html``: for pages that load them already (the book)."""
    return _VENDOR_SCRIPT.sub("", html)


def head_view(*args, **kwargs) -> HTML:
    """``bertviz.head_view`` that draws offline; returns the view (the cell's last line shows it)."""
    from bertviz import head_view as bertviz_head_view

    return HTML(offline_html(bertviz_head_view(*args, **_returning(kwargs)).data))


def model_view(*args, **kwargs) -> HTML:
    """``bertviz.model_view`` that draws offline; returns the view (the cell's last line shows it)."""
    from bertviz import model_view as bertviz_model_view

    return HTML(offline_html(bertviz_model_view(*args, **_returning(kwargs)).data))


def _returning(kwargs: dict) -> dict:
    if kwargs.get("html_action", "return") != "return":
        raise ValueError(f"html_action: lmbook.viz always returns the view's HTML, so only 'return' is accepted; "
                         f"got {kwargs['html_action']!r}")
    return {**kwargs, "html_action": "return"}
