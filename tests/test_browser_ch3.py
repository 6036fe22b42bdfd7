"""Browser tests of Chapter 3 and the front matter: the built book, opened offline in headless Chromium.

Every request that would leave the machine is blocked and recorded; the tests
assert that there were none, that no script threw, and that the explorers react
to their controls with no kernel behind them. They need Debian's chromium and a
built book (``make book``); without them they skip, except under ``CI=true``.
"""

import pytest
from browser import OfflinePage

pytestmark = pytest.mark.browser


@pytest.fixture
def chapter3(browser, server):
    p = OfflinePage(browser, server, "notebooks/03_attention.html")
    yield p
    p.close()


def _heatmap(page) -> list[str]:
    return page.locator(".lmb-attn table.heatmap td").evaluate_all("cells => cells.map(c => c.dataset.w)")


def test_chapter3_loads_nothing_from_outside_and_throws_nothing(chapter3):
    chapter3.page.wait_for_selector(".lmb-attn table.heatmap td", timeout=20_000)
    chapter3.page.wait_for_timeout(500)
    chapter3.assert_clean()


def test_temperature_slider_changes_the_heatmap(chapter3):
    page = chapter3.page
    page.wait_for_selector(".lmb-attn table.heatmap td", timeout=20_000)
    before = _heatmap(page)
    assert len(before) > 100 and all(before), "the explorer drew no weights"
    slider = page.locator(".lmb-attn input.temperature")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.95, box["y"] + box["height"] / 2)  # drag towards T = 4
    after = _heatmap(page)
    assert after != before, "moving the temperature slider did not change the heatmap"
    # Flatter at high temperature: the largest weight in the selected row goes down.
    row = page.locator(".lmb-attn tr.selected td")
    top_after = max(float(w) for w in row.evaluate_all("cells => cells.map(c => c.dataset.w)"))
    assert top_after < max(float(w) for w in before)
    label = page.locator(".lmb-attn .temperature-value").inner_text()
    assert label != "T = 1.00"


def test_causal_toggle_zeroes_the_upper_triangle(chapter3):
    page = chapter3.page
    page.wait_for_selector(".lmb-attn table.heatmap td", timeout=20_000)
    page.locator(".lmb-attn input.causal").check()
    upper = page.locator(".lmb-attn table.heatmap td").evaluate_all(
        "cells => cells.filter(c => Number(c.dataset.k) > Number(c.dataset.q)).map(c => Number(c.dataset.w))"
    )
    assert upper and max(upper) == 0.0


def test_bertviz_head_view_draws_offline(chapter3):
    page = chapter3.page
    svg = page.locator("[id^=bertviz-] svg")
    svg.first.wait_for(timeout=20_000)
    assert svg.first.locator("line, rect, path").count() > 10, "bertviz drew an empty SVG"
    chapter3.assert_clean()


def test_preface_is_offline_and_error_free(browser, server):
    p = OfflinePage(browser, server, "book/preface.html")
    try:
        p.page.wait_for_timeout(500)
        p.assert_clean()
    finally:
        p.close()


def test_every_chapter_page_says_how_to_run_it(browser, server):
    for name in ("03_attention", "06c_feedback"):
        p = OfflinePage(browser, server, f"notebooks/{name}.html")
        note = p.page.locator(".lmbook-run-note")
        assert note.count() == 1, f"{name}: no 'run this page' note"
        text = note.inner_text()
        assert "make lab" in text and ".ipynb" in text and "lmbook" in text and "without outputs" in text
        source = p.page.locator("a.btn-download-source-button").get_attribute("href")
        assert source.endswith(f"{name}.ipynb"), f"{name}: the download button gives {source}, not the notebook"
        p.close()


def test_live_explorer_recomputes_the_encoder_for_a_typed_sentence(chapter3):
    """Issue 16: typing a new sentence redraws the book's own encoder, with no kernel and no network."""
    page = chapter3.page
    page.wait_for_selector(".lmb-live table.heatmap td", timeout=30_000)
    def heat():
        return page.locator(".lmb-live table.heatmap td").evaluate_all("cs => cs.map(c => c.dataset.w || c.title)")

    before_cells, before_guesses = heat(), page.locator(".lmb-live .predictions").inner_text()
    box = page.locator(".lmb-live input.text")
    box.fill("The river flows into the [MASK] Ocean near the old harbour.")
    box.dispatch_event("input")
    page.wait_for_timeout(1500)
    after_cells, after_guesses = heat(), page.locator(".lmb-live .predictions").inner_text()
    assert len(after_cells) != len(before_cells) or after_cells != before_cells, "the heatmap did not change"
    assert "[MASK]" in after_guesses and after_guesses != before_guesses, "the masked-word guesses did not change"
    chapter3.assert_clean()
