"""Shared helpers for the browser tests: the built book served on 127.0.0.1, Debian's
Chromium driven by Playwright, and a page whose outside requests are blocked and
recorded. The ``server`` and ``browser`` fixtures in ``conftest.py`` use these; a
chapter's test file opens ``OfflinePage(browser, server, "notebooks/NN_name.html")``.

Without chromium or a built book the tests skip, except under ``CI=true``.
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


def need(condition: bool, reason: str) -> None:
    """Skip with ``reason`` unless under CI, where a missing prerequisite is a failure."""
    if not condition:
        if IN_CI:
            pytest.fail(f"{reason} (required under CI=true)")
        pytest.skip(reason)


def serve_book():
    need((HTML / "index.html").exists(), f"no built book at {HTML}; run `make book`")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()


def launch_browser():
    need(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM}; `apt-get install chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


class OfflinePage:
    """A page of the built book with outside requests blocked (and listed in ``external``)
    and uncaught script errors listed in ``errors``."""

    def __init__(self, browser, base: str, path: str):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.external: list[str] = []
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)[:300]))
        self.page.route("**/*", self._route)
        self.page.goto(f"{base}/{path}", wait_until="load")

    def _route(self, route):
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def assert_clean(self):
        assert self.external == [], f"requests left the machine: {self.external}"
        assert self.errors == [], f"page errors: {self.errors}"

    def close(self):
        self.context.close()
