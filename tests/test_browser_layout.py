"""Every chapter page fits a 1280 px window (issue 14): no code cell, output, figure or bertviz
view is wider than the box it sits in, so nothing scrolls sideways, and the page itself does not.

Code cells are written to at most 88 characters a line, and the code-input font is sized so that
88 characters fit every code box (also a collapsed hide-input cell, opened) without wrapping.

Measured in headless Chromium on the built book, with the network blocked, after the widgets and
bertviz views have drawn. Needs Debian's chromium and ``make book``; skips without them, except
under ``CI=true``.
"""

import pytest
from browser import ROOT, OfflinePage

pytestmark = pytest.mark.browser

PAGES = sorted(f"notebooks/{p.stem}.html" for p in (ROOT / "notebooks").glob("*.ipynb"))
BOXES = ", ".join([
    "div.cell_input pre", "div.cell_output", "div.cell_output pre", "div.cell_output .output",
    "div.cell_output table", "figure", 'div[id^="bertviz-"]', "div.cell_output img",
])
WIDER_THAN_THEIR_BOX = """selector => [...document.querySelectorAll(selector)]
  .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).display !== "inline")
  .map(e => `${e.tagName.toLowerCase()}.${String(e.className).split(" ")[0]}#${e.id}: ` +
            `${e.scrollWidth} px of content in ${e.clientWidth} px ("${(e.innerText || "").slice(0, 40)}")`)"""


CODE_COLUMNS = 88
# Each line of every code input (hide-input cells opened), and a line of 88 "x", set in the
# cell's own font on one line: wider than the room inside the box means it wraps on the page.
LINES_THAT_WRAP = """columns => {
  document.querySelectorAll("details").forEach(d => { d.open = true; });
  return [...document.querySelectorAll("div.cell_input pre")].flatMap(pre => {
    const style = getComputedStyle(pre);
    const room = pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const probe = document.createElement("span");
    probe.style.whiteSpace = "pre";
    pre.appendChild(probe);
    const wide = ["x".repeat(columns), ...pre.textContent.split("\\n")].flatMap(line => {
      probe.textContent = line;
      const width = probe.getBoundingClientRect().width;
      return width > room + 0.5 ? [`${width.toFixed(0)} px in ${room} px: "${line.slice(0, 60)}"`] : [];
    });
    probe.remove();
    return wide;
  });
}"""


# Display equations (MathJax) whose typeset width runs past the text column: clipped on the page.
EQUATIONS_PAST_THE_COLUMN = """() => {
  const shown = [...document.querySelectorAll('mjx-container[display="true"]')];
  const wide = shown.flatMap(e => {
    const eq = e.querySelector("mjx-math").getBoundingClientRect();
    const column = (e.closest(".math") || e.parentElement).getBoundingClientRect();
    const what = `${Math.round(eq.width)} px equation in a ${Math.round(column.width)} px column`;
    return eq.right > column.right + 2 ? [`${what}: "${e.textContent.slice(0, 40)}"`] : [];
  });
  return [shown.length, wide];
}"""


def test_every_chapter_page_is_checked():
    assert len(PAGES) >= 12 and "notebooks/06c_feedback.html" in PAGES


@pytest.mark.parametrize("path", PAGES)
def test_nothing_scrolls_sideways_at_1280_px(browser, server, path):
    page = OfflinePage(browser, server, path)
    try:
        page.page.wait_for_timeout(2500)  # widgets and bertviz draw after load
        too_wide = page.page.evaluate(WIDER_THAN_THEIR_BOX, BOXES)
        assert too_wide == [], f"{path}: {len(too_wide)} boxes scroll sideways at 1280 px: {too_wide[:5]}"
        doc = page.page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert doc[0] <= doc[1], f"{path}: the page is {doc[0]} px wide in a {doc[1]} px window"
        wrapped = page.page.evaluate(LINES_THAT_WRAP, CODE_COLUMNS)
        assert wrapped == [], f"{path}: {len(wrapped)} code cells wrap a line at 1280 px: {wrapped[:5]}"
        n_equations, clipped = page.page.evaluate(EQUATIONS_PAST_THE_COLUMN)
        assert clipped == [], f"{path}: {len(clipped)} display equations are cut off at 1280 px: {clipped[:3]}"
        if path == "notebooks/03_attention.html":  # MathJax ran: the chapter's display equations are there
            assert n_equations >= 2, f"{path}: only {n_equations} typeset display equations"
    finally:
        page.close()
