"""The live generator's JavaScript (forward with a KV cache, sampling, greedy generation) equals lmbook's.

Node runs the widget's own ES module (``live_decoder_esm()``) on the shipped decoder's payload.

Tolerances, measured: on the *same* float16-rounded weights the JS logits agree with PyTorch's
``Decoder`` to ~3e-6 (float64 in JS, float32 in torch), so SAME_TOL = 1e-4; against the float32
model the float16 rounding moves the logits by ~4e-3 (F32_TOL = 2e-2). The cached and the full
re-run JS paths do the same float64 arithmetic in the same order: CACHE_TOL = 1e-9. A missing
1/√d_k or residual moves the logits by several units.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import torch

from lmbook.checkpointing import load_pretrained
from lmbook.generation import apply_temperature, generate, top_k_filter, top_p_filter
from lmbook.tokenizers.base import EOS_ID
from lmbook.widgets.live import model_from_payload, payload_bytes
from lmbook.widgets.live_decoder import LiveGenerator, decoder_payload, live_decoder_esm

NODE = shutil.which("node")
PROMPTS = ["The history of the city", "In 1905, Einstein published", "The river flows through the",
           "She was born in"]  # fmt: skip
SAME_TOL, F32_TOL, CACHE_TOL = 1e-4, 2e-2, 1e-9
PROMPT_32 = ("The history of the city began when the river was first crossed by a bridge, and trade grew very fast "
             "along it.")  # 32 tokens with <bos>


def node(body: str, data: dict):
    """Run ``body`` in node after importing the widget's module as ``mod`` and reading ``data`` from stdin."""
    if NODE is None:
        pytest.skip("node is not installed")
    script = f"""
const src = {json.dumps(live_decoder_esm())};
const mod = await import("data:text/javascript;charset=utf-8," + encodeURIComponent(src));
let input = "";
for await (const chunk of process.stdin) input += chunk;
const data = JSON.parse(input);
const W = data.payload ? mod.decodeWeights(data.payload) : null;
const list = (a) => Array.from(a);
try {{
{body}
}} catch (e) {{ process.stderr.write("JSERROR " + e.message); process.exit(1); }}
"""
    done = subprocess.run([NODE, "--input-type=module", "-e", script], input=json.dumps(data),
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"node failed: {done.stderr.split('JSERROR ', 1)[-1][-2000:]}")
    return json.loads(done.stdout)


FULL_AND_CACHED = """
const out = data.cases.map(({ ids, opts }) => {
  const full = mod.forward(W, ids, opts).logits.map(list);           // every position at once
  const cache = mod.newCache(W), cached = [];
  cached.push(...mod.forward(W, ids.slice(0, 3), { ...opts, cache }).logits.map(list));  // 3 tokens, then 1 by 1
  for (let t = 3; t < ids.length; t++) {
    cached.push(list(mod.forward(W, [ids[t]], { ...opts, cache, lastOnly: true }).logits[0]));
  }
  return { full, cached, cacheLength: cache.length };
});
process.stdout.write(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def decoder():
    return load_pretrained("decoder")


@pytest.fixture(scope="module")
def tokenizer():
    return load_pretrained("tokenizer-wiki")


@pytest.fixture(scope="module")
def widget(decoder, tokenizer):
    return LiveGenerator(decoder, tokenizer, PROMPTS[0], greedy=True)


@pytest.fixture(scope="module")
def prompt_ids(tokenizer):
    return [tokenizer.encode(p + " and then the war ended in the same year") for p in PROMPTS]


@pytest.fixture(scope="module")
def js_logits(widget, prompt_ids):
    return node(FULL_AND_CACHED, {"payload": widget.weights, "cases": [{"ids": ids, "opts": {}} for ids in prompt_ids]})


def torch_logits(model, ids) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].double()  # (T, V)


def test_payload_sends_the_tied_lm_head_once_and_decodes_to_the_rounded_weights(decoder, widget):
    payload = widget.weights
    assert "lm_head.weight" not in payload["tensors"] and "tok_emb.embedding.weight" in payload["tensors"]
    n_params = sum(p.numel() for p in decoder.parameters())  # tied: counted once
    assert n_params > 1_100_000
    assert payload_bytes(payload) < 2 * n_params * 4 / 3 * 1.01  # float16: 2 bytes a number, base64 is 4/3
    rounded = widget._model
    assert rounded.lm_head.weight.data_ptr() == rounded.tok_emb.embedding.weight.data_ptr()
    for name, p in decoder.state_dict().items():
        torch.testing.assert_close(rounded.state_dict()[name], p.half().float() if p.dim() >= 2 else p, atol=0, rtol=0)


def test_int8_payload_is_half_the_size_and_js_decodes_it_like_python(decoder):
    f16, i8 = decoder_payload(decoder, "float16"), decoder_payload(decoder, "int8")
    assert payload_bytes(i8) < 0.55 * payload_bytes(f16)
    name = "blocks.0.ff.linear1.weight"
    small = {"format": i8["format"], "model": i8["model"], "config": i8["config"],
             "tensors": {name: i8["tensors"][name]}}  # fmt: skip
    got = node(f"process.stdout.write(JSON.stringify(list(W[{json.dumps(name)}])));", {"payload": small})
    want = model_from_payload(i8, decoder).state_dict()[name].flatten()
    torch.testing.assert_close(torch.tensor(got), want, atol=1e-7, rtol=0)
    error = (want - decoder.state_dict()[name].flatten()).abs().max().item()
    assert 0 < error <= decoder.state_dict()[name].abs().max().item() / 254 + 1e-7  # half a step of the row's scale


@pytest.mark.parametrize("k", range(len(PROMPTS)))
def test_js_forward_matches_pytorch_decoder(decoder, widget, prompt_ids, js_logits, k):
    ids, js = prompt_ids[k], js_logits[k]
    same = (torch.tensor(js["full"]) - torch_logits(widget._model, ids)).abs().max().item()
    f32 = (torch.tensor(js["full"]) - torch_logits(decoder, ids)).abs().max().item()
    print(f"{len(ids)} tokens: JS vs PyTorch on the same float16 weights {same:.1e}, vs the float32 model {f32:.1e}")
    assert same < SAME_TOL
    assert f32 < F32_TOL


@pytest.mark.parametrize("k", range(len(PROMPTS)))
def test_kv_cache_gives_the_logits_of_a_full_rerun_at_every_step(widget, prompt_ids, js_logits, k):
    ids, js = prompt_ids[k], js_logits[k]
    assert js["cacheLength"] == len(ids) and len(js["cached"]) == len(ids)
    cached, full = torch.tensor(js["cached"]), torch.tensor(js["full"])
    assert (cached - full).abs().max().item() < CACHE_TOL
    assert (cached - torch_logits(widget._model, ids)).abs().max().item() < SAME_TOL


@pytest.mark.parametrize(("mutation", "opts"), [("no √d_k", {"useScale": False}), ("no residual", {"residual": False})])
def test_the_comparison_catches_a_broken_forward(widget, prompt_ids, mutation, opts):
    js = node(FULL_AND_CACHED, {"payload": widget.weights, "cases": [{"ids": prompt_ids[0], "opts": opts}]})[0]
    diff = (torch.tensor(js["full"]) - torch_logits(widget._model, prompt_ids[0])).abs().max().item()
    print(f"{mutation}: max logit difference {diff:.2f}")
    assert diff > 100 * F32_TOL


SETTINGS = [dict(temperature=1.0, top_k=0, top_p=1.0), dict(temperature=0.7, top_k=40, top_p=1.0),
            dict(temperature=1.3, top_k=0, top_p=0.9), dict(temperature=0.5, top_k=20, top_p=0.8),
            dict(temperature=2.0, top_k=1, top_p=1.0)]  # fmt: skip


def test_js_sampling_filters_equal_lmbook_generation(widget):
    logits = widget.next_logits(widget.ids())  # (V,) real next-token logits
    body = """process.stdout.write(JSON.stringify(data.settings.map((s) => {
  const r = mod.pickToken(data.logits, { temperature: s.temperature, topK: s.top_k, topP: s.top_p }, () => 0.5);
  return { probs: r.probs, kept: r.kept, id: r.id };
})));"""
    results = node(body, {"logits": logits.tolist(), "settings": SETTINGS})
    for s, r in zip(SETTINGS, results, strict=True):
        z = apply_temperature(logits, s["temperature"])
        probs = torch.tensor(r["probs"], dtype=torch.float64)
        torch.testing.assert_close(probs, z.double().softmax(-1), atol=1e-6, rtol=0)
        z = top_k_filter(z, s["top_k"]) if s["top_k"] else z
        z = top_p_filter(z, s["top_p"]) if s["top_p"] < 1 else z
        kept = torch.isfinite(z)
        assert r["kept"] == kept.tolist(), s
        assert kept[r["id"]], s  # the drawn token is one of the kept
    assert sum(results[-1]["kept"]) == 1 and results[-1]["id"] == int(logits.argmax())  # top-k 1 is greedy


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_generation_in_js_equals_lmbook_token_for_token(decoder, tokenizer, widget, prompt):
    n = 30
    body = """const g = (useCache) => mod.generate(W, data.ids, data.n, { greedy: true, eosId: data.eos, useCache });
const a = g(true), b = g(false);
const vocabBytes = mod.bpe.tokenBytes(data.merges, { byteOffset: 7, specialTokens: data.special });
const text = mod.decodeText(a.ids.filter((i) => i !== data.eos), vocabBytes);
process.stdout.write(JSON.stringify({ cached: a.ids, full: b.ids, text }));"""
    js = node(body, {"payload": widget.weights, "ids": widget.ids(prompt), "n": n, "eos": EOS_ID,
                     "merges": widget.merges, "special": widget.special_tokens})  # fmt: skip
    want = widget.continuation_ids(prompt, n)
    assert js["cached"] == want == js["full"]
    assert js["text"] == widget.continuation(prompt, n)
    ids = torch.tensor(widget.ids(prompt))
    f32 = generate(decoder, ids, n, greedy=True, eos_id=EOS_ID)[len(ids):].tolist()
    agree = next((i for i, (a, b) in enumerate(zip(want, f32, strict=False)) if a != b), min(len(want), len(f32)))
    print(f"{prompt!r}: JS greedy == lmbook on the page's weights for {n} tokens; agrees with the float32 model "
          f"for the first {agree}")


def test_greedy_generation_slides_past_max_len_like_lmbook(widget):
    """A prompt near max_len (128): the cache is refilled from the last 128 tokens, as lmbook.generation does."""
    ids = widget.ids(" ".join(["The history of the city of Paris began"] * 16))[:120]
    body = "process.stdout.write(JSON.stringify(mod.generate(W, data.ids, 16, { greedy: true }).ids));"
    got = node(body, {"payload": widget.weights, "ids": ids})
    want = generate(widget._model, torch.tensor(ids), 16, greedy=True)[len(ids):].tolist()
    assert got == want


def test_sampling_is_reproducible_from_the_seed(widget):
    body = """const run = (seed, opts) => mod.generate(W, data.ids, 20, { temperature: 1, seed, ...opts }).ids;
process.stdout.write(JSON.stringify({ a: run(1), b: run(1), c: run(2), k1: run(3, { topK: 1 }),
  greedy: run(0, { greedy: true }) }));"""
    js = node(body, {"payload": widget.weights, "ids": widget.ids()})
    assert js["a"] == js["b"] and js["a"] != js["c"]
    assert js["k1"] == js["greedy"] == widget.continuation_ids(n=20)


def test_32_token_prompt_first_token_time_in_node(widget):
    """Prints the time from a 32-token prompt to the first generated token (no timed assert)."""
    ids = widget.ids(PROMPT_32)
    assert len(ids) == 32
    body = """mod.generate(W, data.ids, 20, { greedy: true });  // warm up the JIT
const r = mod.generate(W, data.ids, 20, { greedy: true });
process.stdout.write(JSON.stringify({ first: r.ms[0], all: r.ms[r.ms.length - 1] }));"""
    ms = node(body, {"payload": widget.weights, "ids": ids})
    print(f"node: 32-token prompt -> first token {ms['first']:.1f} ms, 20 tokens {ms['all']:.1f} ms")
    assert ms["first"] > 0


def test_widget_validates_its_input(decoder, tokenizer):
    with pytest.raises(TypeError, match="model must be an lmbook Decoder"):
        LiveGenerator("decoder", tokenizer)
    with pytest.raises(TypeError, match="tokenizer must be an lmbook BPETokenizer"):
        LiveGenerator(decoder, "tokenizer")
    with pytest.raises(ValueError, match="prompt must be a non-empty string"):
        LiveGenerator(decoder, tokenizer, "")
    with pytest.raises(ValueError, match="max_new_tokens must be"):
        LiveGenerator(decoder, tokenizer, max_new_tokens=0)
    with pytest.raises(ValueError, match="temperature must be"):
        LiveGenerator(decoder, tokenizer, temperature=-1)
    with pytest.raises(ValueError, match="top_p must be"):
        LiveGenerator(decoder, tokenizer, top_p=0)
    with pytest.raises(ValueError, match="precision must be one of"):
        LiveGenerator(decoder, tokenizer, precision="int4")
    with pytest.raises(TypeError, match="greedy must be True or False"):
        LiveGenerator(decoder, tokenizer, greedy=1)


def test_js_forward_rejects_bad_ids(widget):
    with pytest.raises(RuntimeError, match=r"ids\[1\] = 5000 is not in 0..2999"):
        node("mod.forward(W, [5, 5000]);", {"payload": widget.weights})
    with pytest.raises(RuntimeError, match="ids must hold 1..128 tokens"):
        node("mod.forward(W, Array(129).fill(5));", {"payload": widget.weights})
    with pytest.raises(RuntimeError, match="the prompt must hold at least one token"):
        node("mod.generate(W, [], 3);", {"payload": widget.weights})


RENDER = """async ([src, state]) => {
  const el = document.createElement("div");
  document.body.appendChild(el);
  const model = { get: (k) => state[k], set() {}, save_changes() {}, on() {} };
  const mod = await import(URL.createObjectURL(new Blob([src], { type: "text/javascript" })));
  mod.default.render({ model, el });
}"""


@pytest.mark.browser
def test_typing_generates_in_chromium(browser, widget):
    """Headless Chromium, network cut: typing a prompt regenerates greedily, equal to the Python twin;
    the temperature slider changes the distribution; clicking a token shows its step."""
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/*", lambda route: route.abort())
    page.set_content("<!doctype html><html><body></body></html>")
    state = {k: v for k, v in widget.get_state().items() if not k.startswith("_")}
    page.evaluate(RENDER, [live_decoder_esm(), state])
    assert not errors, errors
    assert page.locator(".lmb-gen .text").get_attribute("data-continuation") == widget.continuation()

    prompt = PROMPT_32
    ms = page.evaluate("""(text) => { const input = document.querySelector("input.prompt");
        const t0 = performance.now(); input.value = text; input.dispatchEvent(new Event("input"));
        return performance.now() - t0; }""", prompt)
    print(f"Chromium: {len(widget.ids(prompt))}-token prompt, keystroke to 20 tokens drawn {ms:.0f} ms")
    assert page.locator(".lmb-gen .text").get_attribute("data-continuation") == widget.continuation(prompt)

    bars = page.locator(".lmb-gen .dist .bar")
    greedy_p = bars.evaluate_all("bs => bs.map((b) => b.dataset.p)")
    page.locator(".lmb-gen input.greedy").uncheck()
    page.evaluate("""() => { const t = document.querySelector(".lmb-gen input.temperature");
        t.value = "1.8"; t.dispatchEvent(new Event("input")); }""")
    assert bars.evaluate_all("bs => bs.map((b) => b.dataset.p)") != greedy_p
    page.locator(".lmb-gen .text .token").nth(3).click()
    assert page.locator(".lmb-gen .text .token.selected").get_attribute("data-step") == "3"
    assert page.locator(".lmb-gen .step-title").inner_text().startswith("Step 4")
    assert not errors, errors
    page.close()
