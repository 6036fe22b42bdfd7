"""Sphinx extension: keep every built page free of scripts from a CDN.

The chapters draw bertviz views through ``lmbook.viz``, whose output carries its own
copies of d3 and jQuery (in ``<script data-lmbook-vendor=…>``) so that it draws in
JupyterLab with no network. Every book page loads d3 and jQuery already (see
``_config.yml``), so those copies are removed from page bodies here (≈ 320 kB per view).
A bare bertviz call would write ``<script src="https://…/require.js">``; that tag is
removed too. Any other remote script left in a page body is reported as a warning,
which the ``-W`` build turns into an error.

It also removes duplicate inline scripts. Sphinx 7.4 registers an inline script
added after the builder starts (sphinx-thebe's ``const THEBE_JS_URL = …``) twice:
once with filename ``None`` and once with ``''``, which do not compare equal; the
second ``const`` then throws "Identifier 'THEBE_JS_URL' has already been declared"
in every reader's console.

Every chapter page also gets a note at its top saying how to run it: the downloaded
``.ipynb`` imports ``lmbook``, so it runs in the book's environment (``make lab``).
"""

from __future__ import annotations

import re

from docutils import nodes
from sphinx.util import logging

from lmbook.viz import strip_vendor_scripts

logger = logging.getLogger(__name__)

_BERTVIZ_REQUIRE = re.compile(r'<script src="https://[^"]*/require\.js/[^"]*"></script>')
_REMOTE_SCRIPT = re.compile(r'<script[^>]+src="(https?:)?//[^"]+"')


def strip_remote_scripts(app, pagename, templatename, context, doctree) -> None:
    body = context.get("body")
    if not body:
        return
    body = _BERTVIZ_REQUIRE.sub("", strip_vendor_scripts(body))
    for match in _REMOTE_SCRIPT.finditer(body):
        logger.warning("page %s loads a remote script: %s", pagename, match.group(0), location=pagename)
    context["body"] = body


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, unique = set(), []
    for js in context.get("script_files", []):
        attrs = getattr(js, "attributes", {}) or {}
        name = js if isinstance(js, str) else getattr(js, "filename", None)
        key = (name or "", tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


RUN_NOTE = (
    "Run this page yourself: the download button (top right, .ipynb) gives this chapter as a notebook "
    "without outputs: the text and code of this page, to be run. It imports lmbook, the book's own package, "
    "so it runs only in the book's environment: clone the repository and run make lab, which installs "
    "everything (offline data and weights included) and starts JupyterLab on the notebooks folder; then "
    "Run → Run All Cells. There the explorers and attention views work as on this page, with no network; "
    "a number this page fills in from the code shows as its name instead (for example loss:.2f)."
)


def add_run_note(app, doctree) -> None:
    """Put ``RUN_NOTE`` under the title of every chapter page (the notebooks)."""
    if not app.env.docname.startswith("notebooks/"):
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    note = nodes.note("", nodes.paragraph(text=RUN_NOTE), classes=["lmbook-run-note"])
    title = next(iter(section.findall(nodes.title)), None)
    section.insert(section.index(title) + 1 if title is not None else 0, note)


def setup(app):
    app.connect("doctree-read", add_run_note)
    app.connect("html-page-context", strip_remote_scripts)
    app.connect("html-page-context", dedupe_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
