// Sampling explorer (Chapter 6): temperature, top-k and top-p on a real model's stored
// next-token logits. The math lives in samplingDistribution(), a pure function that
// tests/widgets/test_sampling.py checks against lmbook.generation in Python.

/** The sampling distribution of lmbook.generation: logits / T, then top-k (ties at the
 *  k-th value kept), then top-p on what is left (a token is kept while the tokens ranked
 *  above it hold less than p). topK <= 0 or null: off; topP >= 1 or null: off.
 *  Returns {probs: softmax(logits / T), kept: [bool], final: probs renormalised over kept}. */
export function samplingDistribution(logits, { temperature = 1, topK = null, topP = null }) {
  if (!(temperature > 0)) throw new Error(`temperature must be > 0, got ${temperature}`);
  if (topP !== null && !(topP > 0 && topP <= 1)) throw new Error(`top_p must be in (0, 1], got ${topP}`);
  const z = logits.map((v) => v / temperature);
  const softmax = (xs) => {
    const m = Math.max(...xs.filter((v) => v !== -Infinity));
    const e = xs.map((v) => (v === -Infinity ? 0 : Math.exp(v - m)));
    const total = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / total);
  };
  const probs = softmax(z);
  let kept = z.map(() => true);
  if (topK !== null && topK > 0 && topK < z.length) {
    const kth = [...z].sort((a, b) => b - a)[topK - 1];
    kept = z.map((v) => v >= kth);
  }
  if (topP !== null && topP < 1) {
    const pk = softmax(z.map((v, i) => (kept[i] ? v : -Infinity)));
    const order = pk.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    let before = 0;
    const keepP = z.map(() => false);
    for (const [p, i] of order) {
      if (before < topP && kept[i]) keepP[i] = true;
      before += p;
    }
    kept = keepP;
  }
  const mass = probs.reduce((a, p, i) => (kept[i] ? a + p : a), 0);
  const final = probs.map((p, i) => (kept[i] ? p / mass : 0));
  return { probs, kept, final };
}

/** Entropy in bits of a probability vector. */
export function entropyBits(p) {
  return -p.reduce((acc, v) => (v > 0 ? acc + v * Math.log2(v) : acc), 0);
}

const CSS = `
.lmb-samp { font-family: var(--pst-font-family-base, system-ui, sans-serif); font-size: 13px; }
.lmb-samp .controls { display: flex; flex-wrap: wrap; gap: 14px; align-items: center; margin-bottom: 8px; }
.lmb-samp label { display: inline-flex; gap: 6px; align-items: center; }
.lmb-samp .prompt-text { font-family: monospace; font-size: 12px; line-height: 1.4; background: #f3f4f6;
  padding: 4px 6px; border-radius: 4px; margin-bottom: 6px; max-height: calc(6 * 1.4em); overflow: auto;
  display: flex; flex-direction: column-reverse; }
.lmb-samp .prompt-text > div { white-space: pre-wrap; }
.lmb-samp .coverage { margin-bottom: 6px; color: #333; }
.lmb-samp .bars { display: grid; grid-template-columns: 9em 1fr 4.5em; gap: 2px 8px; align-items: center; }
.lmb-samp .tok { font-family: monospace; text-align: right; white-space: pre; overflow: hidden; }
.lmb-samp .bar { height: 14px; background: #e5e7eb; position: relative; }
.lmb-samp .bar .fill { position: absolute; left: 0; top: 0; bottom: 0; background: #2563eb; }
.lmb-samp .bar .ghost { position: absolute; left: 0; top: 0; bottom: 0; background: #9ca3af; opacity: 0.5; }
.lmb-samp .tok.row-dropped { color: #9ca3af; text-decoration: line-through; }
.lmb-samp .summary { margin-top: 6px; color: #333; }
`;

/** The widget's stylesheet (exported for the tests). */
export function cssText() {
  return CSS;
}

function esc(s) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** The line above the bars: how many tokens the explorer holds, out of how many, and how
 *  much of the probability (at T = 1) they hold; everything below is over these tokens only. */
export function coverageText({ logits, vocab_size: vocabSize, covered }) {
  const n = logits.length, all = vocabSize ?? n;
  if (n >= all) return `showing all ${all.toLocaleString("en-US")} tokens of the vocabulary.`;
  return `showing the ${n.toLocaleString("en-US")} most likely of ${all.toLocaleString("en-US")} tokens; ` +
    `they hold ${(100 * covered).toFixed(1)} % of the probability (at T = 1). Temperature, top-k and top-p ` +
    `below act on these ${n} alone, renormalised, so top-p keeps fewer tokens here than over the full vocabulary.`;
}

/** The bars: one row (token, bar, percentage) per stored token, the first `shown` of them;
 *  a token the filters drop gets class "row-dropped" on its token cell and its bar. */
export function barsHtml(tokens, { probs, kept, final }, shown) {
  const maxP = Math.max(...final, ...probs);
  return tokens.slice(0, shown).map((t, i) => {
    const vis = JSON.stringify(t).slice(1, -1).replace(/ /g, "·");
    const cls = kept[i] ? "row-kept" : "row-dropped";
    return `<div class="tok ${cls}" title="${esc(vis)}">${esc(vis)}</div>` +
      `<div class="bar ${cls}" data-i="${i}" data-kept="${kept[i] ? 1 : 0}" ` +
      `data-p="${final[i].toFixed(6)}"><div class="ghost" style="width:${(100 * probs[i]) / maxP}%"></div>` +
      `<div class="fill" style="width:${(100 * final[i]) / maxP}%"></div></div>` +
      `<div class="val">${(100 * final[i]).toFixed(1)}%</div>`;
  }).join("");
}

function render({ model, el }) {
  const prompts = model.get("prompts"); // [{name, text, tokens: [str], logits: [float], covered}]
  const shown = model.get("rows");
  const state = {
    prompt: model.get("prompt_index"),
    temperature: model.get("temperature"),
    topK: model.get("top_k"),
    topP: model.get("top_p"),
  };
  const sync = (name, value) => {
    try { model.set(name, value); model.save_changes(); } catch (e) { /* no kernel: state stays local */ }
  };
  const root = document.createElement("div");
  root.className = "lmb-samp";
  const style = document.createElement("style");
  style.textContent = CSS;
  root.appendChild(style);
  const controls = document.createElement("div");
  controls.className = "controls";
  const n = prompts[0].logits.length;
  controls.innerHTML = `
    <label>prompt <select class="prompt"></select></label>
    <label>temperature <input class="temperature" type="range" min="-3.3" max="2.3" step="0.05"></label>
    <span class="temperature-value"></span>
    <label>top-k <input class="top-k" type="range" min="1" max="${n}" step="1"></label>
    <span class="top-k-value"></span>
    <label>top-p <input class="top-p" type="range" min="0.05" max="1" step="0.01"></label>
    <span class="top-p-value"></span>`;
  root.appendChild(controls);
  // column-reverse: the box opens scrolled to the end of the prompt, where the next token goes.
  const promptBox = document.createElement("div");
  promptBox.className = "prompt-text";
  const promptText = document.createElement("div");
  promptBox.appendChild(promptText);
  root.appendChild(promptBox);
  const coverage = document.createElement("div");
  coverage.className = "coverage";
  root.appendChild(coverage);
  const bars = document.createElement("div");
  bars.className = "bars";
  root.appendChild(bars);
  const summary = document.createElement("div");
  summary.className = "summary";
  root.appendChild(summary);
  el.appendChild(root);

  const q = (c) => controls.querySelector(c);
  const promptSel = q(".prompt"), temp = q(".temperature"), topK = q(".top-k"), topP = q(".top-p");
  prompts.forEach((p, i) => promptSel.add(new Option(p.name, i)));
  promptSel.value = state.prompt;
  temp.value = Math.log2(state.temperature);
  topK.value = state.topK > 0 ? state.topK : n;
  topP.value = state.topP;

  function draw() {
    const p = prompts[state.prompt];
    const { probs, kept, final } = samplingDistribution(p.logits, {
      temperature: state.temperature, topK: state.topK > 0 ? state.topK : null, topP: state.topP,
    });
    q(".temperature-value").textContent = `T = ${state.temperature.toFixed(2)}`;
    q(".top-k-value").textContent = state.topK > 0 && state.topK < n ? `k = ${state.topK}` : "k = off";
    q(".top-p-value").textContent = state.topP < 1 ? `p = ${state.topP.toFixed(2)}` : "p = off";
    if (promptText.textContent !== p.text) promptText.textContent = p.text;
    coverage.textContent = coverageText(p);
    bars.innerHTML = barsHtml(p.tokens, { probs, kept, final }, shown);
    const nKept = kept.filter(Boolean).length;
    summary.innerHTML = `<span class="n-kept">${nKept}</span> of these ${n} tokens can be sampled ` +
      `(they held ${(100 * probs.reduce((a, v, i) => (kept[i] ? a + v : a), 0)).toFixed(1)}% of these ${n}'s ` +
      `probability before renormalising); most likely: <b>${esc(JSON.stringify(p.tokens[0]))}</b> ` +
      `${(100 * final[0]).toFixed(1)}%; entropy <span class="entropy">${entropyBits(final).toFixed(2)}</span> bits. ` +
      `Grey: the probability after temperature only; blue: what sampling uses.`;
  }

  promptSel.addEventListener("change", () => { state.prompt = Number(promptSel.value); sync("prompt_index", state.prompt); draw(); });
  temp.addEventListener("input", () => { state.temperature = 2 ** Number(temp.value); sync("temperature", state.temperature); draw(); });
  topK.addEventListener("input", () => {
    const k = Number(topK.value);
    state.topK = k >= n ? 0 : k; sync("top_k", state.topK); draw();
  });
  topP.addEventListener("input", () => { state.topP = Number(topP.value); sync("top_p", state.topP); draw(); });
  draw();
}

export default { render };
