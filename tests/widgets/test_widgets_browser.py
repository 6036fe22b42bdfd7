"""The explorers' display, in headless Chromium: each widget's JavaScript renders a real
widget's state (a stub model, no kernel, no built book) into a 700 px column, and the
tests look at what a reader would see. They skip without Debian's chromium (not under CI)."""

import json

import pytest
import torch

from lmbook.tokenizers import BPETokenizer
from lmbook.widgets import JS_DIR, AttentionExplorer, BPEExplorer, SamplingExplorer
from lmbook.widgets.base import browser_module

pytestmark = pytest.mark.browser

RENDER = """async ([src, state]) => {
  const el = document.createElement("div");
  el.style.width = "700px";
  document.body.appendChild(el);
  const model = { get: (k) => state[k], set() {}, save_changes() {}, on() {} };
  const mod = await import(URL.createObjectURL(new Blob([src], { type: "text/javascript" })));
  mod.default.render({ model, el });
  return el.getAttribute("data-lm-suppress-shortcuts");
}"""


@pytest.fixture
def render(browser):
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/*", lambda route: route.abort())  # nothing may load from anywhere
    page.set_content("<!doctype html><html><body></body></html>")

    def _render(widget, js):
        state = {k: v for k, v in widget.get_state().items() if not k.startswith("_")}
        # The module the widget really sends (its file plus lmbook.widgets.base.KEYBOARD_JS).
        suppressed = page.evaluate(RENDER, [browser_module(JS_DIR / js), json.loads(json.dumps(state))])
        assert not errors, errors
        assert suppressed == "true", "the widget must keep its keys from JupyterLab's shortcuts"
        return page

    yield _render
    context.close()


def test_attention_cell_of_weight_one_reads_1_00(render):
    q = torch.eye(4) * 30  # every token attends only to itself: weights of 1.00 on the diagonal
    page = render(AttentionExplorer(list("abcd"), q, q.clone()), "attention_explorer.js")
    assert page.locator(".lmb-attn td[data-q='0'][data-k='0']").inner_text() == "1.00"
    assert page.locator(".lmb-attn table.raw tr.raw td").count() == 4, "raw scores of the selected query"
    slider = page.locator(".lmb-attn input.temperature")
    assert 2 ** float(slider.get_attribute("min")) <= 0.5  # d_k = 4: T = 1/√d_k = 0.5 is reachable
    assert "T = 1/√dk = 0.50" in page.locator(".lmb-attn .note").inner_text()


def test_sampling_dropped_tokens_are_struck_and_prompt_end_is_visible(render):
    logits = torch.linspace(5, -5, 300)
    prompt = "\n".join(f"line {i} of a long chat template" for i in range(20)) + "\n<|im_start|>assistant\n"
    w = SamplingExplorer({"chat": (prompt, logits, [f"t{i}" for i in range(300)])}, n=200, top_k=3)
    page = render(w, "sampling_explorer.js")
    deco = page.locator(".lmb-samp .bars .tok").evaluate_all(
        "els => els.map(e => getComputedStyle(e).textDecorationLine)")
    assert deco[:3] == ["none"] * 3 and set(deco[3:]) == {"line-through"}
    visible = page.locator(".lmb-samp .prompt-text").evaluate("""box => {
      const text = box.firstChild.firstChild, end = text.data.trimEnd().length;
      const range = document.createRange(); range.setStart(text, end - 1); range.setEnd(text, end);
      const r = range.getBoundingClientRect(), b = box.getBoundingClientRect();
      return r.top >= b.top && r.bottom <= b.bottom + 0.5;
    }""")
    assert visible, "the end of the prompt (<|im_start|>assistant) is hidden"
    assert "showing the 200 most likely of 300 tokens" in page.locator(".lmb-samp .coverage").inner_text()


def test_bpe_pieces_wrap_inside_the_column(render):
    tok = BPETokenizer.train("the tokenizer learns merges " * 20, vocab_size=300)
    text = "supercalifragilistic expialidocious antidisestablishmentarianism " * 3
    page = render(BPEExplorer(tok, text=text, n_merges=0), "bpe_explorer.js")  # one piece per byte
    boxes = page.locator(".lmb-bpe .pieces .piece").evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.right, r.top]; })")
    right = page.locator(".lmb-bpe").evaluate("e => e.parentElement.getBoundingClientRect().right")
    assert len(boxes) > 100 and max(r for r, _ in boxes) <= right + 0.5, "pieces run past the column"
    assert len({round(t) for _, t in boxes}) > 1, "the pieces did not wrap onto a second line"
