"""Browser tests: the built book, opened offline in headless Chromium.

Every request that would leave the machine is blocked and recorded; the tests
assert that there were none, that no script threw, and that the explorers react
to their controls with no kernel behind them. They need Debian's chromium and a
built book (``make book``); without them they skip, except under ``CI=true``.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").lower() == "true"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


def _need(condition: bool, reason: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(f"{reason} (required under CI=true)")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def server():
    _need((HTML / "index.html").exists(), f"no built book at {HTML}; run `make book`")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    _need(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM}; `apt-get install chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


class OfflinePage:
    """A page whose outside requests are blocked and recorded, with its script errors."""

    def __init__(self, browser, base: str, path: str):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.external: list[str] = []
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route("**/*", self._route)
        self.page.goto(f"{base}/{path}", wait_until="load")

    def _route(self, route):
        url = route.request.url
        host = urlparse(url).hostname
        if url.startswith("data:") or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def close(self):
        self.context.close()


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
    assert chapter3.external == [], f"requests left the machine: {chapter3.external}"
    assert chapter3.errors == [], f"page errors: {chapter3.errors}"


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
    assert chapter3.external == [] and chapter3.errors == []


def test_preface_is_offline_and_error_free(browser, server):
    p = OfflinePage(browser, server, "book/preface.html")
    try:
        p.page.wait_for_timeout(500)
        assert p.external == [] and p.errors == []
    finally:
        p.close()
