"""Browser tests of Chapters 4 and 5: the built pages, opened offline in headless Chromium.

Chapter 4's masking explorer must redraw BERT's 80/10/10 masks in the browser, with no kernel,
when its rate slider moves or its re-mask button is clicked; its bertviz views must draw.
Every page must load nothing from outside and throw no script error. The tests need Debian's
chromium and a built book (``make book``); without them they skip, except under ``CI=true``.
"""

import re

import pytest
from browser import OfflinePage

pytestmark = pytest.mark.browser

CHAPTER5_PAGES = ["notebooks/05_finetuning.html", "notebooks/05b_translation.html",
                  "notebooks/05c_question_answering.html"]


@pytest.fixture
def chapter4(browser, server):
    p = OfflinePage(browser, server, "notebooks/04_pretraining.html")
    p.page.wait_for_selector(".lmb-mask .tokens .tok", timeout=20_000)
    yield p
    p.close()


def _kinds(page) -> list[str]:
    return page.locator(".lmb-mask .tokens .tok").evaluate_all("els => els.map(e => e.dataset.kind)")


def _count(page, cls: str) -> int:
    return int(page.locator(f".lmb-mask .counts .{cls}").inner_text())


def _set_rate(page, fraction: float) -> None:
    slider = page.locator(".lmb-mask input.rate")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    page.mouse.click(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)


def test_chapter4_loads_nothing_from_outside_and_throws_nothing(chapter4):
    chapter4.page.wait_for_timeout(500)
    chapter4.assert_clean()


def test_masking_explorer_starts_at_bert_rate(chapter4):
    page = chapter4.page
    kinds = _kinds(page)
    assert len(kinds) > 50, "the explorer drew too few tokens"
    assert page.locator(".lmb-mask .rate-value").inner_text() == "15 %"
    assert kinds[0] == "keep" and kinds[-1] == "keep", "[CLS] and [SEP] must never be masked"
    chosen = sum(k != "keep" for k in kinds)
    assert chosen == _count(page, "n-selected") and 0 < chosen < len(kinds) / 3
    assert page.locator(".lmb-mask .tokens .tok.mask").count() == _count(page, "n-mask")


def test_rate_slider_remasks_in_the_browser(chapter4):
    page = chapter4.page
    before = _kinds(page)
    _set_rate(page, 0.6)
    after = _kinds(page)
    rate = int(re.match(r"(\d+) %", page.locator(".lmb-mask .rate-value").inner_text()).group(1))
    assert 45 <= rate <= 75, f"the slider reads {rate} %"
    chosen_before = sum(k != "keep" for k in before)
    chosen_after = sum(k != "keep" for k in after)
    assert chosen_after > 2 * chosen_before, "raising the rate did not mask more tokens"
    # a token chosen at 15 % stays chosen, with the same kind, at the higher rate
    assert all(a == b for a, b in zip(before, after, strict=True) if a != "keep")
    assert page.locator(".lmb-mask .tokens .tok.mask .orig").count() == _count(page, "n-mask")


def test_remask_button_draws_a_new_sample(chapter4):
    page = chapter4.page
    before = _kinds(page)
    page.locator(".lmb-mask button.remask").click()
    assert page.locator(".lmb-mask .seed-value").inner_text() == "seed 1"
    assert _kinds(page) != before
    chapter4.assert_clean()


def test_chapter4_bertviz_views_draw_offline(chapter4):
    svg = chapter4.page.locator("[id^=bertviz-] svg")
    svg.first.wait_for(timeout=20_000)
    assert svg.count() >= 2, "both the head view and the model view should draw"
    assert svg.first.locator("line, rect, path").count() > 10, "bertviz drew an empty SVG"
    chapter4.assert_clean()


@pytest.mark.parametrize("path", CHAPTER5_PAGES)
def test_chapter5_pages_are_offline_and_error_free(browser, server, path):
    p = OfflinePage(browser, server, path)
    try:
        p.page.wait_for_selector("img", timeout=20_000)  # the executed figures are there
        p.page.wait_for_timeout(500)
        p.assert_clean()
    finally:
        p.close()


def test_chapter5_shows_cls_attention_on_misclassified_articles(browser, server):
    p = OfflinePage(browser, server, CHAPTER5_PAGES[0])
    try:
        spans = p.page.locator(".lmb-cls-attention span")
        spans.first.wait_for(timeout=20_000)
        assert spans.count() > 20
        shades = spans.evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
        assert len(set(shades)) > 5, "the [CLS] attention shading is flat"
    finally:
        p.close()


def test_chapter4_live_blanks_match_python(chapter4):
    """Typing the sentence of the prose into Chapter 4's live explorer gives the guesses Python glued there."""
    page = chapter4.page
    page.wait_for_selector(".lmb-live .predictions .guess", timeout=30_000)
    prose = page.locator("p", has_text="a sentence the encoder never saw").inner_text()
    sentence = prose.split("Typed as ", 1)[1].split(", a sentence", 1)[0].strip()
    assert "[MASK]" in sentence
    page.locator(".lmb-live input.text").evaluate(
        "(el, text) => { el.value = text; el.dispatchEvent(new Event('input', { bubbles: true })); }", sentence)
    guesses = page.locator(".lmb-live .predictions .guess").evaluate_all(
        "gs => gs.map((g) => [g.textContent.split(' ')[0].replace(/␣/g, ' ').trim(), Number(g.dataset.p)])")
    assert len(guesses) == 5
    glued = re.findall(r"“([^”]*)” ([0-9.]+)%", prose.split("should list", 1)[1])  # Python's top 5, one decimal
    assert [t for t, _ in guesses] == [t for t, _ in glued], (guesses, prose)
    assert all(abs(100 * p - float(q)) <= 0.06 for (_, p), (_, q) in zip(guesses, glued, strict=True)), (guesses, glued)
    chapter4.assert_clean()
