"""The chapters in a real JupyterLab, as a reader runs them: offline, in headless Chromium.

A ``jupyter lab`` server is started on 127.0.0.1 (no token, a free port, its own temporary
root holding copies of the chapters, so nothing in the repository is saved over). Chromium
opens a chapter with every request not to 127.0.0.1 blocked and recorded, runs all cells from
the Run menu, waits until every code cell has run, then the tests assert what a reader sees:
no cell raised, the explorers draw and answer the mouse, the keyboard and the kernel, bertviz
drew its SVG, MyST markup is rendered, and no request left the machine.

Chapter 3 and Chapter 6c are run in full (each takes well under a minute of kernel time on
one core). The Run All time of each is printed (``pytest -s``). Like the other browser tests,
these skip without Debian's chromium, except under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
from browser import CHROMIUM, ROOT, need

pytestmark = pytest.mark.browser

JUPYTER_LAB = Path(sys.executable).with_name("jupyter-lab")
RUN_ALL_TIMEOUT_S = int(os.environ.get("LMBOOK_LAB_RUN_ALL_TIMEOUT", 300))
CHAPTERS = ["03_attention.ipynb", "06c_feedback.ipynb"]
# Settings of the throw-away Lab: every cell in the DOM (no virtual scrolling), so the test
# can look at all outputs; no news or update checks.
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url: str, method: str = "GET"):
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as r:
        body = r.read()
    return json.loads(body) if body else None


def serve_lab(root: Path):
    """Start ``jupyter lab`` over a copy of the chapters in ``root``; yield its URL; stop it and its kernels."""
    (root / "notebooks").mkdir()
    for name in CHAPTERS:
        shutil.copy(ROOT / "notebooks" / name, root / "notebooks" / name)
    shutil.copytree(ROOT / "book" / "figures", root / "book" / "figures")  # the chapters' ../book/figures/…
    for name, values in SETTINGS.items():
        path = root / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port = _free_port()
    cmd = [str(JUPYTER_LAB), "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
           "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
           f"--LabApp.user_settings_dir={root / 'settings'}", f"--LabApp.workspaces_dir={root / 'workspaces'}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--ServerApp.disable_check_xsrf=True"]  # lets the finalizer stop kernels through the REST API
    if os.geteuid() == 0:
        cmd.append("--allow-root")  # as `make lab` does
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(root / "runtime"), "HF_HUB_OFFLINE": "1"}
    log = (root / "lab.log").open("w")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                _call(f"{base}/api/status")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not start: {(root / 'lab.log').read_text()[-2000:]}") from None
                time.sleep(0.5)
        yield base
    finally:
        try:  # kernels run in their own sessions: ask the server to shut them down, then itself
            for kernel in _call(f"{base}/api/kernels") or []:
                _call(f"{base}/api/kernels/{kernel['id']}", method="DELETE")
            _call(f"{base}/api/shutdown", method="POST")
            proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Base URL of a JupyterLab server over a temporary copy of the chapters; stopped afterwards."""
    need(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM}; `apt-get install chromium`")
    need(JUPYTER_LAB.exists(), f"{JUPYTER_LAB} not found; run `make install`")
    yield from serve_lab(tmp_path_factory.mktemp("lab"))


class LabPage:
    """A notebook opened in JupyterLab; requests not to 127.0.0.1 are blocked and listed in ``external``."""

    def __init__(self, browser, base: str, notebook: str):
        cells = _call(f"{base}/api/contents/notebooks/{notebook}")["content"]["cells"]  # the served copy
        kinds = [c["cell_type"] for c in cells]
        self.n_code, self.n_markdown = kinds.count("code"), kinds.count("markdown")
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.external: list[str] = []
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)[:300]))
        self.page.route("**/*", self._route)
        # A workspace of its own (and reset), so no other chapter's tab is restored beside this one.
        workspace = Path(notebook).stem
        self.page.goto(f"{base}/lab/workspaces/{workspace}/tree/notebooks/{notebook}?reset", wait_until="load")
        self.page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
        self.idle()

    def _route(self, route):
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def idle(self, timeout_s: float = 60):
        """Wait until the kernel is connected and idle (the status bar says "… | Idle")."""
        self.page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first.wait_for(timeout=timeout_s * 1000)
        self.page.locator(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(
            timeout=timeout_s * 1000)

    def run_all(self) -> float:
        """Run → Run All Cells; wait until every code cell has an execution count. Returns the seconds it took."""
        prompts = self.page.locator(".jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt")
        self.page.wait_for_function("n => document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell').length === n",
                                    arg=self.n_code, timeout=60_000)
        start = time.monotonic()
        self.page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        self.page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()
        try:
            self.page.wait_for_function(
                """() => [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt')]
                         .every(e => /\\[\\d+\\]/.test(e.textContent))""",
                timeout=RUN_ALL_TIMEOUT_S * 1000, polling=500)
        except Exception as e:
            raise AssertionError(f"Run All did not finish in {RUN_ALL_TIMEOUT_S} s; "
                                 f"prompts: {prompts.all_inner_texts()}") from e
        self.idle()
        return time.monotonic() - start

    def outputs(self, mime: str):
        return self.page.locator(f".jp-NotebookPanel .jp-OutputArea-output[data-mime-type='{mime}']")

    def assert_clean(self):
        assert self.external == [], f"requests left the machine: {self.external}"
        assert self.errors == [], f"page errors: {self.errors}"

    def close(self):
        self.context.close()


RUN_TIMES: dict[str, float] = {}


def _opened_and_run(browser, lab, notebook):
    page = LabPage(browser, lab, notebook)
    RUN_TIMES[notebook] = page.run_all()
    print(f"\nJupyterLab, {notebook}: Run All Cells took {RUN_TIMES[notebook]:.1f} s")
    return page


@pytest.fixture(scope="module")
def chapter3(browser, lab):
    page = _opened_and_run(browser, lab, "03_attention.ipynb")
    yield page
    page.close()


@pytest.fixture(scope="module")
def chapter6c(browser, lab):
    page = _opened_and_run(browser, lab, "06c_feedback.ipynb")
    yield page
    page.close()


def _no_errors(lab_page):
    # A raised exception renders as an error output (stderr mime type, with a traceback).
    stderr = lab_page.outputs("application/vnd.jupyter.stderr").all_inner_texts()
    assert stderr == [], f"cells wrote to stderr or raised: {[t[:500] for t in stderr]}"


def _heatmap(page) -> list[str]:
    return page.locator(".lmb-attn table.heatmap td").evaluate_all("cells => cells.map(c => c.dataset.w)")


def test_chapter3_runs_without_errors(chapter3):
    _no_errors(chapter3)
    assert chapter3.page.locator(".jp-NotebookPanel .jp-CodeCell").count() >= 10
    chapter3.assert_clean()


def test_chapter3_explorer_answers_keyboard_and_value(chapter3):
    page = chapter3.page
    page.locator(".lmb-attn table.heatmap td").first.wait_for(timeout=20_000)
    before = _heatmap(page)
    assert len(before) > 100 and all(before), "the explorer drew no weights"
    slider = page.locator(".lmb-attn input.temperature")
    label = page.locator(".lmb-attn .temperature-value")
    # Keyboard: in JupyterLab's command mode arrows would move between cells instead.
    slider.focus()
    start_value, start_label = slider.input_value(), label.inner_text()
    for _ in range(3):
        slider.press("ArrowRight")
    assert slider.input_value() != start_value, "ArrowRight on the focused slider did not move it"
    assert label.inner_text() != start_label
    after_keys = _heatmap(page)
    assert after_keys != before, "the heatmap did not redraw after the arrow keys"
    # Value: set the slider as a drag would, and see the weights flatten at high temperature.
    slider.evaluate("e => { e.value = e.max; e.dispatchEvent(new Event('input', {bubbles: true})); }")
    hot = _heatmap(page)
    assert hot != after_keys
    assert max(map(float, hot)) < max(map(float, before)), "a higher temperature must flatten the weights"
    chapter3.assert_clean()


def test_chapter3_bertviz_draws_offline(chapter3):
    svg = chapter3.page.locator("[id^=bertviz-] svg")
    svg.first.wait_for(timeout=20_000)
    assert svg.first.locator("line, rect, path").count() > 10, "bertviz drew an empty SVG"
    chapter3.assert_clean()


def _rendered_markdown(lab_page) -> str:
    md = lab_page.page.locator(".jp-NotebookPanel .jp-MarkdownCell .myst")  # what jupyterlab-myst renders into
    assert md.count() == lab_page.n_markdown, "not every markdown cell is rendered by jupyterlab-myst"
    text = "\n".join(md.all_inner_texts())
    for raw in ("{cite}", "{ref}", "{figure}", "{term}", "{glue", "{dropdown}", ":::", "```{", "(sec-"):
        assert raw not in text, f"MyST markup shown as raw text in JupyterLab: {raw}"
    return text


def test_chapter3_myst_is_rendered(chapter3):
    """jupyterlab-myst: headings, roles, math and figures become HTML, not raw MyST."""
    text = _rendered_markdown(chapter3)
    assert "3.1 Four tokens, step by step" in text
    page = chapter3.page
    assert page.locator(".jp-MarkdownCell .myst .katex").count() > 10, "math is not typeset"
    figure = page.locator(".jp-NotebookPanel .jp-MarkdownCell img[src*='attention_computation']")
    assert figure.count() >= 1 and figure.first.evaluate("img => img.naturalWidth") > 0, "a figure did not load"
    # What does not carry over (no book build behind Lab): a {cite} shows its key, marked "Citation Not
    # Found"; a {glue:text} number shows its name and format, e.g. "live3_payload_mb:.1f".
    assert page.locator(".jp-MarkdownCell .myst [title='Citation Not Found']").count() >= 1
    assert "live3_payload_mb:.1f" in text


def test_chapter6c_myst_dropdowns_render(chapter6c):
    _rendered_markdown(chapter6c)
    dropdown = chapter6c.page.locator(".jp-MarkdownCell details.myst-dropdown")
    assert dropdown.count() >= 1 and "reference answer" in dropdown.first.locator("summary").inner_text()


def test_chapter6c_runs_replay_and_live_feedback(chapter6c):
    page = chapter6c.page
    _no_errors(chapter6c)
    # The recorded session (anywidget): its buttons and, by keyboard, its slider change the round shown.
    step = page.locator(".lmb-fb .step-value")
    step.wait_for(timeout=20_000)
    page.locator(".lmb-fb button.first").click()
    assert step.inner_text().startswith("round 1 of")
    page.locator(".lmb-fb button.next").click()
    assert step.inner_text().startswith("round 2 of")
    page.locator(".lmb-fb input.step").focus()
    page.locator(".lmb-fb input.step").press("ArrowRight")
    assert step.inner_text().startswith("round 3 of"), "ArrowRight on the focused replay slider did not move it"
    # The live panel (ipywidgets, needs the kernel that only JupyterLab has): a 👍 takes a training step.
    thumbs_up = page.locator(".jupyter-widgets.widget-button", has_text="👍")
    thumbs_up.first.click()
    page.get_by_text("round 1: KL to the original model").wait_for(timeout=60_000)
    chapter6c.assert_clean()


def test_screenshot_of_chapter3_in_lab(chapter3, tmp_path_factory):
    """A 1280 px picture of the explorer and the bertviz view in Lab (path printed; for the eye)."""
    page = chapter3.page
    page.locator(".lmb-attn").scroll_into_view_if_needed()
    out = Path(os.environ.get("LMBOOK_LAB_SCREENSHOTS", tmp_path_factory.mktemp("shots")))
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=out / "ch3_explorer.png")
    page.locator("[id^=bertviz-]").first.scroll_into_view_if_needed()
    page.screenshot(path=out / "ch3_bertviz.png")
    print(f"\nscreenshots in {out}")
    assert (out / "ch3_bertviz.png").stat().st_size > 10_000
