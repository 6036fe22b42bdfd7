"""Browser tests of Chapters 1 and 2: the BPE and positional-encoding explorers in the built book,
opened offline in headless Chromium (see ``tests/browser.py``). They need Debian's chromium and a
built book (``make book``); without them they skip, except under ``CI=true``.
"""

import pytest
from browser import OfflinePage

pytestmark = pytest.mark.browser


@pytest.fixture
def chapter1(browser, server):
    p = OfflinePage(browser, server, "notebooks/01_background.html")
    yield p
    p.close()


@pytest.fixture
def chapter2(browser, server):
    p = OfflinePage(browser, server, "notebooks/02_architecture.html")
    yield p
    p.close()


def _pieces(page) -> list[str]:
    return page.locator(".lmb-bpe .pieces .piece").evaluate_all("els => els.map(e => e.textContent)")


def test_bpe_explorer_tokenizes_what_the_reader_types(chapter1):
    page = chapter1.page
    page.wait_for_selector(".lmb-bpe .pieces .piece", timeout=20_000)
    before = _pieces(page)
    assert before and "".join(before) == "Qantas", f"the explorer should cut its initial word into pieces, got {before}"
    assert page.locator(".lmb-bpe .words .piece.unk").count() == 1, "Qantas is not in the word vocabulary: [UNK]"

    box = page.locator(".lmb-bpe input.text")
    box.fill(" the first city")
    after = _pieces(page)
    assert after != before and "".join(after).replace("␣", " ") == " the first city"
    assert page.locator(".lmb-bpe .words .piece.unk").count() == 0, "the, first and city are common words"
    assert "15 characters" in page.locator(".lmb-bpe .stats").inner_text()
    chapter1.assert_clean()


def test_bpe_merge_slider_goes_down_to_bytes(chapter1):
    page = chapter1.page
    page.wait_for_selector(".lmb-bpe .pieces .piece", timeout=20_000)
    page.locator(".lmb-bpe input.text").fill("tokenization")
    merged = len(_pieces(page))
    slider = page.locator(".lmb-bpe input.n-merges")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    page.mouse.click(box["x"] + 2, box["y"] + box["height"] / 2)  # all the way left: 0 merges
    assert page.locator(".lmb-bpe .n-merges-value").inner_text().startswith("0 /")
    assert len(_pieces(page)) == len("tokenization") > merged, "with 0 merges every byte is its own token"
    chapter1.assert_clean()


def _similarities(page) -> list[float]:
    return page.locator(".lmb-pos .cells div").evaluate_all("els => els.map(e => Number(e.dataset.sim))")


def test_position_slider_moves_the_similarity_curve(chapter2):
    page = chapter2.page
    page.wait_for_selector(".lmb-pos .cells div", timeout=20_000)
    before = _similarities(page)
    assert len(before) == 100 and before.index(max(before)) == 20, "the initial position is 20"
    path_before = page.locator(".lmb-pos path.similarity").get_attribute("d")

    slider = page.locator(".lmb-pos input.position")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
    after = _similarities(page)
    p = int(page.locator(".lmb-pos .position-value").inner_text().removeprefix("p = "))
    assert p > 40 and after.index(max(after)) == p, "the peak follows the slider"
    assert page.locator(".lmb-pos path.similarity").get_attribute("d") != path_before
    # Only the offset matters: the similarity to the token 5 places later is the same at both positions.
    assert after[p + 5] == pytest.approx(before[25], abs=1e-3)
    chapter2.assert_clean()


def test_position_explorer_d_model_menu_changes_the_curve(chapter2):
    page = chapter2.page
    page.wait_for_selector(".lmb-pos .cells div", timeout=20_000)
    before = _similarities(page)
    page.locator(".lmb-pos select.d-model").select_option("16")
    after = _similarities(page)
    assert after != before and after[20] == pytest.approx(1.0, abs=1e-3)
    chapter2.assert_clean()


def test_chapter2_bertviz_model_view_draws_offline(chapter2):
    page = chapter2.page
    svg = page.locator("[id^=bertviz-] svg")
    svg.first.wait_for(timeout=20_000)
    assert svg.first.locator("rect, line, path").count() > 10, "bertviz drew an empty SVG"
    chapter2.assert_clean()
