// Live generator (Chapter 6a). The book's own pretrained decoder runs here, in the page: the
// reader types a prompt, it is tokenised with the book's BPE (`bpe`, from bpe_explorer.js),
// forward() runs the decoder with a KV cache, and each new token is picked greedily or sampled
// with temperature, top-k and top-p (`sampling.samplingDistribution`, from sampling_explorer.js,
// the function Chapter 6a's sampling explorer uses). forward() is a plain re-telling of
// lmbook.models.Decoder.forward and generate() of lmbook.generation.generate;
// tests/widgets/test_live_decoder.py runs both in node and compares them with PyTorch.
//
// decodeWeights, linear, layerNorm, activation, add, attend, params and escapeHtml come from
// live_transformer.js, which lmbook.widgets.live puts before this file.

// ------------------------------------------------------------------ the decoder

/** An empty KV cache: for every block, room for max_len keys and values (each (max_len, d)). */
export function newCache(W) {
  const { n_layers: L, max_len: maxLen, d_model: d } = W.config;
  const layers = Array.from({ length: L }, () => ({ k: new Float64Array(maxLen * d), v: new Float64Array(maxLen * d) }));
  return { layers, length: 0 };
}

/** lmbook.models.Decoder.forward for one sequence, in eval mode.
 *
 *  ids are the new tokens; with a cache they continue the cached ones (positions start from
 *  cache.length) and their keys and values are appended to it, so each block's attention reads
 *  all earlier keys from the cache instead of recomputing them. lastOnly: logits of the last
 *  token only (what generation needs). useScale and residual (true) exist for the tests, to show
 *  that a missing 1/√hs or skip connection is caught. Returns logits: one Float64Array(V) per
 *  token asked for. */
export function forward(W, ids, { cache = null, lastOnly = false, useScale = true, residual = true } = {}) {
  const c = W.config, d = c.d_model, T = ids.length, eps = c.layer_norm_eps, nh = c.n_heads;
  const start = cache ? cache.length : 0;
  if (T < 1 || start + T > c.max_len) {
    throw new Error(`ids must hold 1..${c.max_len - start} tokens after the ${start} cached, got ${T}`);
  }
  ids.forEach((id, t) => {
    if (!(Number.isInteger(id) && id >= 0 && id < c.vocab_size)) throw new Error(`ids[${t}] = ${id} is not in 0..${c.vocab_size - 1}`);
  });
  const act = activation(c.activation), scale = useScale ? 1 / Math.sqrt(d / nh) : 1;
  const skip = (a, b) => (residual ? add(a, b) : b);

  // token embedding + the learned embedding of each position (dropout is off in eval mode)
  let x = new Float64Array(T * d);
  const tok = W["tok_emb.embedding.weight"], pos = W["pos_emb.embedding.weight"];
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < d; i++) x[t * d + i] = tok[ids[t] * d + i] + pos[(start + t) * d + i];
  }
  for (let layer = 0; layer < c.n_layers; layer++) { // pre-LN blocks: x + f(LN(x))
    const lin = params(W, `blocks.${layer}.`);
    const ln = (y, n) => layerNorm(y, T, d, n.weight, n.bias, eps);
    const proj = (h, name, nOut = d) => linear(h, T, h.length / T, lin(name).weight, lin(name).bias, nOut);

    const h = ln(x, lin("norm1"));
    const q = proj(h, "self_attn.q_proj"), kNew = proj(h, "self_attn.k_proj"), vNew = proj(h, "self_attn.v_proj");
    let k = kNew, v = vNew;
    if (cache) { // append this step's keys and values, then read every key so far
      cache.layers[layer].k.set(kNew, start * d);
      cache.layers[layer].v.set(vNew, start * d);
      k = cache.layers[layer].k.subarray(0, (start + T) * d);
      v = cache.layers[layer].v.subarray(0, (start + T) * d);
    }
    const { y } = attend(q, k, v, T, start + T, d, nh, { scale, causal: true, start });
    x = skip(x, proj(y, "self_attn.out_proj"));
    const u = proj(ln(x, lin("norm3")), "ff.linear1", c.d_ff).map(act); // (T, d_ff)
    x = skip(x, proj(u, "ff.linear2"));
  }
  if (cache) cache.length = start + T;

  // final LayerNorm, then the LM head: the token embedding again (tied weights), no bias
  const rows = lastOnly ? [T - 1] : [...Array(T).keys()];
  const last = new Float64Array(rows.length * d);
  rows.forEach((t, r) => last.set(x.subarray(t * d, (t + 1) * d), r * d));
  const out = linear(layerNorm(last, rows.length, d, W["ln_f.weight"], W["ln_f.bias"], eps), rows.length, d, tok, null,
    c.vocab_size); // (rows, V)
  return { logits: rows.map((_, r) => out.slice(r * c.vocab_size, (r + 1) * c.vocab_size)) };
}

// ------------------------------------------------------------------ picking the next token

/** A seeded random number generator (mulberry32): the same seed gives the same numbers, so a
 *  sampled continuation can be reproduced. Returns () => a number in [0, 1). */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function argmax(xs) {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i; // the first of equal maxima, as torch
  return best;
}

/** One step's choice from logits (V): greedy (temperature 0 or greedy) takes the most likely token;
 *  otherwise samplingDistribution (temperature, then top-k, then top-p) and one draw u from rng.
 *  Returns { id, probs (at the temperature; at 1 when greedy), kept: [bool] }. */
export function pickToken(logits, { temperature = 1, topK = 0, topP = 1, greedy = false }, rng) {
  const z = Array.from(logits);
  if (greedy || temperature === 0) {
    const { probs } = sampling.samplingDistribution(z, { temperature: 1 });
    const id = argmax(z);
    return { id, probs, kept: probs.map((_, i) => i === id) };
  }
  const { probs, kept, final } = sampling.samplingDistribution(z, {
    temperature, topK: topK > 0 ? topK : null, topP: topP < 1 ? topP : null });
  const u = rng();
  let total = 0, id = -1;
  for (let i = 0; i < final.length; i++) {
    if (final[i] === 0) continue;
    id = i;
    total += final[i];
    if (u < total) break;
  }
  return { id, probs, kept };
}

/** lmbook.generation.generate for one prompt: up to n new tokens, stopping after eosId.
 *  With useCache the prompt is read once and each step feeds one token; without it every step
 *  re-runs the whole context (the tests compare the two). When the context outgrows max_len only
 *  the last max_len tokens are fed, the cache being refilled, as lmbook does.
 *  Returns { ids: the new tokens, steps: [{ id, top: [[id, p, kept]] }] (the `top` likeliest at
 *  each step), ms: [time to each token] }. */
export function generate(W, promptIds, n, { temperature = 1, topK = 0, topP = 1, greedy = false, seed = 0,
  eosId = null, useCache = true, top = 10 } = {}) {
  if (!promptIds.length) throw new Error("the prompt must hold at least one token");
  const maxLen = W.config.max_len, rng = seededRandom(seed), t0 = performance.now();
  const ids = [...promptIds], steps = [], ms = [];
  let cache = null, stepInput = ids.slice(-maxLen);
  for (let s = 0; s < n; s++) {
    let logits;
    if (useCache) {
      if (cache === null || cache.length + stepInput.length > maxLen) { cache = newCache(W); stepInput = ids.slice(-maxLen); }
      logits = forward(W, stepInput, { cache, lastOnly: true }).logits[0];
    } else {
      logits = forward(W, ids.slice(-maxLen), { lastOnly: true }).logits[0];
    }
    const pick = pickToken(logits, { temperature, topK, topP, greedy }, rng);
    const order = [...pick.probs.keys()].sort((a, b) => pick.probs[b] - pick.probs[a]).slice(0, top);
    steps.push({ id: pick.id, top: order.map((i) => [i, pick.probs[i], pick.kept[i]]),
      nKept: pick.kept.filter(Boolean).length });
    ids.push(pick.id);
    ms.push(performance.now() - t0);
    stepInput = [pick.id];
    if (pick.id === eosId) break;
  }
  return { ids: ids.slice(promptIds.length), steps, ms };
}

/** The bytes of a run of tokens as text (UTF-8; a character split across tokens comes out whole). */
export function decodeText(ids, vocabBytes) {
  return new TextDecoder().decode(new Uint8Array(ids.flatMap((id) => [...vocabBytes[id]])));
}

// ------------------------------------------------------------------ the widget

const CSS = `
.lmb-gen { font-family: var(--pst-font-family-base, system-ui, sans-serif); font-size: 13px; }
.lmb-gen .controls { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; margin-bottom: 8px; }
.lmb-gen label { display: inline-flex; gap: 6px; align-items: center; }
.lmb-gen input.prompt { font-size: 15px; padding: 3px 6px; min-width: 20em; flex: 1 1 20em; }
.lmb-gen input.seed, .lmb-gen input.n-tokens { width: 4.5em; }
.lmb-gen .text { font-size: 15px; line-height: 1.7; background: #f6f7f9; padding: 6px 8px; border-radius: 4px;
  white-space: pre-wrap; overflow-wrap: anywhere; }
.lmb-gen .text .prompt-part { color: #555; }
.lmb-gen .text .token { cursor: pointer; border-bottom: 2px solid #9bb9e8; }
.lmb-gen .text .token.selected { background: #ffe38a; }
.lmb-gen .dist { display: grid; grid-template-columns: 9em 1fr 4.5em 6.5em; gap: 2px 8px; align-items: center;
  margin-top: 8px; max-width: 44em; white-space: nowrap; }
.lmb-gen .dist .tok { font-family: monospace; text-align: right; white-space: pre; overflow: hidden; }
.lmb-gen .dist .bar { height: 12px; background: #e5e7eb; position: relative; }
.lmb-gen .dist .bar .fill { position: absolute; left: 0; top: 0; bottom: 0; background: #2563eb; }
.lmb-gen .dist .dropped { color: #9ca3af; }
.lmb-gen .dist .dropped .fill { background: #c7cdd6; }
.lmb-gen .dist .chosen { font-weight: 700; }
.lmb-gen .status, .lmb-gen .step-title { color: #444; margin-top: 6px; }
`;
/** The widget's stylesheet (exported for the tests). */
export function cssText() {
  return CSS;
}

const shown = (s) => escapeHtml(s.replace(/ /g, "␣").replace(/\n/g, "⏎"));

function render({ model, el }) {
  const W = decodeWeights(model.get("weights"));
  const byteOffset = model.get("byte_offset"), merges = model.get("merges"), eosId = model.get("eos_id"), bosId = model.get("bos_id");
  const vocabBytes = bpe.tokenBytes(merges, { byteOffset, specialTokens: model.get("special_tokens") });
  const vocabText = vocabBytes.map(bpe.pieceText);
  const encode = (s) => bpe.bpeEncode(s, merges, { byteOffset });
  const state = { prompt: model.get("prompt"), n: model.get("max_new_tokens"), temperature: model.get("temperature"),
    topK: model.get("top_k"), topP: model.get("top_p"), seed: model.get("seed"), greedy: model.get("greedy"), step: 0 };
  const sync = (name, value) => {
    try { model.set(name, value); model.save_changes(); } catch (e) { /* no kernel: state stays local */ }
  };

  const root = document.createElement("div");
  root.className = "lmb-gen";
  root.innerHTML = `<style>${CSS}</style>
    <div class="controls"><input class="prompt" type="text" aria-label="prompt">
      <label>new tokens <input class="n-tokens" type="number" min="1" max="${W.config.max_len}"></label></div>
    <div class="controls">
      <label>temperature <input class="temperature" type="range" min="0" max="2" step="0.05"></label>
      <span class="temperature-value"></span>
      <label><input class="greedy" type="checkbox"> greedy</label>
      <label>top-k <input class="top-k" type="range" min="0" max="100" step="1"></label><span class="top-k-value"></span>
      <label>top-p <input class="top-p" type="range" min="0.05" max="1" step="0.05"></label><span class="top-p-value"></span>
      <label>seed <input class="seed" type="number" min="0" step="1"></label>
    </div>
    <div class="text"></div>
    <div class="step-title"></div>
    <div class="dist"></div>
    <div class="status"></div>`;
  el.appendChild(root);
  const $ = (s) => root.querySelector(s);
  const input = $("input.prompt"), nTokens = $("input.n-tokens"), temp = $("input.temperature");
  const greedy = $("input.greedy"), topK = $("input.top-k"), topP = $("input.top-p"), seed = $("input.seed");
  input.value = state.prompt; nTokens.value = state.n; temp.value = state.temperature; greedy.checked = state.greedy;
  topK.value = state.topK; topP.value = state.topP; seed.value = state.seed;

  let result = null;
  function compute() {
    const typed = encode(state.prompt), promptIds = bosId >= 0 ? [bosId, ...typed] : typed;
    if (!typed.length) { result = { error: "Type a prompt: the decoder continues it." }; return; }
    result = generate(W, promptIds, state.n, { ...state, eosId });
    result.promptIds = promptIds;
    state.step = Math.min(state.step, result.ids.length - 1);
  }
  function draw() {
    const isGreedy = state.greedy || state.temperature === 0;
    $(".temperature-value").textContent = isGreedy ? "greedy" : `T = ${state.temperature.toFixed(2)}`;
    $(".top-k-value").textContent = state.topK > 0 ? `k = ${state.topK}` : "off";
    $(".top-p-value").textContent = state.topP < 1 ? `p = ${state.topP.toFixed(2)}` : "off";
    if (result.error) { $(".text").textContent = result.error; $(".dist").innerHTML = ""; $(".step-title").textContent = ""; return; }
    const continuation = decodeText(result.ids.filter((id) => id !== eosId), vocabBytes);
    $(".text").dataset.continuation = continuation;
    $(".text").innerHTML = `<span class="prompt-part">${escapeHtml(state.prompt)}</span>` + result.ids.map((id, i) =>
      `<span class="token${i === state.step ? " selected" : ""}" data-step="${i}" title="step ${i + 1}: click for its distribution">` +
      `${escapeHtml(id === eosId ? "⟨end of text⟩" : vocabText[id])}</span>`).join("");
    const step = result.steps[state.step];
    $(".step-title").textContent = `Step ${state.step + 1}: the ${step.top.length} likeliest next tokens ` +
      (isGreedy ? "(probabilities at T = 1; greedy takes the first)" :
        `at T = ${state.temperature.toFixed(2)}; ${step.nKept} token${step.nKept === 1 ? "" : "s"} of ${W.config.vocab_size} ` +
        "survive top-k and top-p (grey: dropped)") + ". Click a generated token to see its step.";
    $(".dist").innerHTML = step.top.map(([id, p, kept]) => {
      const cls = `${kept ? "kept" : "dropped"}${id === step.id ? " chosen" : ""}`;
      return `<span class="tok ${cls}">${shown(vocabText[id])}</span><span class="bar ${cls}" data-id="${id}" data-p="${p.toFixed(5)}">` +
        `<span class="fill" style="width:${(100 * p).toFixed(1)}%"></span></span><span class="${cls}">${(100 * p).toFixed(1)} %</span>` +
        `<span class="${cls}">${id === step.id ? "← chosen" : kept ? "" : "dropped"}</span>`;
    }).join("");
    const ms = result.ms;
    $(".status").textContent = `${result.promptIds.length} prompt tokens${bosId >= 0 ? " (with <bos>)" : ""} → ${result.ids.length} new, computed in this page ` +
      `with a KV cache: first token after ${ms[0].toFixed(0)} ms, all after ${ms[ms.length - 1].toFixed(0)} ms.`;
  }
  const update = () => { compute(); draw(); };

  input.addEventListener("input", () => { state.prompt = input.value; sync("prompt", state.prompt); update(); });
  nTokens.addEventListener("change", () => {
    state.n = Math.max(1, Math.min(W.config.max_len, Math.round(Number(nTokens.value)) || 1));
    nTokens.value = state.n; sync("max_new_tokens", state.n); update();
  });
  temp.addEventListener("input", () => { state.temperature = Number(temp.value); sync("temperature", state.temperature); update(); });
  greedy.addEventListener("change", () => { state.greedy = greedy.checked; sync("greedy", state.greedy); update(); });
  topK.addEventListener("input", () => { state.topK = Number(topK.value); sync("top_k", state.topK); update(); });
  topP.addEventListener("input", () => { state.topP = Number(topP.value); sync("top_p", state.topP); update(); });
  seed.addEventListener("change", () => { state.seed = Math.max(0, Math.round(Number(seed.value)) || 0); sync("seed", state.seed); update(); });
  $(".text").addEventListener("click", (e) => {
    const span = e.target.closest(".token");
    if (span) { state.step = Number(span.dataset.step); draw(); }
  });
  update();
}

export default { render };
