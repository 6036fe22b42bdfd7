"""lmbook.viz: bertviz views that load nothing from the network.

The HTML is checked as text (no remote script, the CDN tag gone, the vendored libraries
inlined) and then drawn in headless Chromium with every outside request blocked: once on a
bare page (as in JupyterLab, where only the inlined copies exist) and once with the inlined
copies stripped from a page that loads d3 and jQuery itself (as in the built book).
"""

import re

import pytest
import torch

from lmbook import viz

TOKENS = ["[CLS]", "the", "cat", "sat", "[SEP]"]


def _attention(layers=2, heads=3):
    n = len(TOKENS)
    g = torch.Generator().manual_seed(0)
    return tuple(torch.softmax(torch.randn(1, heads, n, n, generator=g), -1) for _ in range(layers))


def test_head_view_html_loads_nothing_from_outside():
    html = viz.head_view(_attention(), TOKENS).data
    assert "cdnjs" not in html and not re.search(r"<script[^>]+src=", html)
    assert html.count("data-lmbook-vendor") == 2
    assert "requirejs.config = function () {};" in html
    stripped = viz.strip_vendor_scripts(html)
    assert "data-lmbook-vendor" not in stripped and len(stripped) < len(html) - 300_000  # d3 + jQuery are gone
    assert 'id="bertviz-' in stripped and "requirejs([" in stripped


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="html_action"):
        viz.head_view(_attention(), TOKENS, html_action="view")
    with pytest.raises(ValueError, match="bertviz 1.4"):
        viz.offline_html("<div>not bertviz</div>")
    with pytest.raises(TypeError, match="html must be"):
        viz.offline_html(None)


@pytest.fixture
def page(browser):
    """A blank Chromium page (the shared ``browser`` fixture); every request is blocked and listed."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.outside, pg.errors = [], []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)[:300]))
    pg.route("**/*", lambda route: (pg.outside.append(route.request.url), route.abort()))
    yield pg
    context.close()


def _drawn(page, html: str, head: str = "") -> int:
    page.set_content(f"<html><head>{head}</head><body>{html}</body></html>")
    svg = page.locator("[id^=bertviz-] svg")
    svg.first.wait_for(timeout=10_000)
    return svg.first.locator("line, rect, path, text").count()


@pytest.mark.browser
@pytest.mark.parametrize("view", ["head_view", "model_view"])
def test_views_draw_on_a_bare_page_offline(page, view):
    """JupyterLab: no require.js, no d3, no jQuery on the page; the inlined copies do it."""
    html = getattr(viz, view)(_attention(), TOKENS).data
    assert _drawn(page, html) > 10
    assert page.evaluate("typeof window.require") == "undefined", "no global require.js was needed"
    assert page.outside == [] and page.errors == []


@pytest.mark.browser
def test_view_draws_from_the_page_libraries_when_stripped(page):
    """The built book: d3 and jQuery come from the page's own <script>s, not from the output."""
    libs = "".join(f"<script>{(viz.VENDOR_DIR / f).read_text()}</script>" for f in ("d3.min.js", "jquery.min.js"))
    html = viz.strip_vendor_scripts(viz.head_view(_attention(), TOKENS).data)
    assert _drawn(page, html, head=libs) > 10
    assert page.outside == [] and page.errors == []
