// Masking explorer (Chapter 4): BERT's 80/10/10 rule, re-drawn in the browser when the
// masking-rate slider moves. The math lives in maskSequence(), a pure function with a
// seeded PRNG (mulberry32); lmbook/widgets/masking.py has a Python twin of both, and
// tests/widgets/test_masking.py runs this file in node to check that they agree.

/** mulberry32: a tiny seeded PRNG giving floats in [0, 1). Same stream as masking.py. */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The first n numbers of mulberry32(seed) (for the tests). */
export function randomStream(seed, n) {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => r());
}

/** BERT's masking of one sequence. Every position draws three numbers, in order, whatever
 *  the rate: u (selected if u < rate and not special), v (v < 0.8: [MASK]; v < 0.9: a random
 *  token; else unchanged) and w (which random token: floor(w * poolSize)). Drawing all three
 *  always means a higher rate only adds selections: a token masked at 15 % stays masked at 30 %.
 *  Returns one [kind, poolIndex] per position; kind is "keep" (not selected), "mask",
 *  "random" or "same" (selected but left unchanged); poolIndex is -1 unless kind is "random". */
export function maskSequence(special, { rate, seed, poolSize, maskProb = 0.8, randomProb = 0.1 }) {
  if (!(rate >= 0 && rate <= 1)) throw new Error(`rate must be in [0, 1], got ${rate}`);
  if (!(poolSize >= 1)) throw new Error(`poolSize must be >= 1, got ${poolSize}`);
  const r = mulberry32(seed);
  return special.map((isSpecial) => {
    const u = r(), v = r(), w = r();
    if (isSpecial || !(u < rate)) return ["keep", -1];
    if (v < maskProb) return ["mask", -1];
    if (v < maskProb + randomProb) return ["random", Math.floor(w * poolSize)];
    return ["same", -1];
  });
}

/** How many positions fell in each branch. */
export function countKinds(result) {
  const c = { keep: 0, mask: 0, random: 0, same: 0 };
  result.forEach(([kind]) => { c[kind] += 1; });
  return c;
}

const CSS = `
.lmb-mask { font-family: var(--pst-font-family-base, system-ui, sans-serif); font-size: 13px; }
.lmb-mask .controls { display: flex; flex-wrap: wrap; gap: 14px; align-items: center; margin-bottom: 8px; }
.lmb-mask label { display: inline-flex; gap: 6px; align-items: center; }
.lmb-mask .tokens { line-height: 2.9; }
.lmb-mask .tok { display: inline-block; padding: 0 3px; margin: 1px 1px; border-radius: 3px; white-space: pre;
  border: 1px solid transparent; position: relative; }
.lmb-mask .tok.special { color: #6b7280; font-weight: 600; }
.lmb-mask .tok.mask { background: #1d4ed8; color: white; }
.lmb-mask .tok.random { background: #f97316; color: white; }
.lmb-mask .tok.same { border-color: #16a34a; background: #dcfce7; }
.lmb-mask .tok .orig { position: absolute; left: 1px; top: 100%; font-size: 9px; color: #374151; line-height: 1.1;
  white-space: nowrap; font-weight: normal; }
.lmb-mask .legend span { margin-right: 12px; }
.lmb-mask .counts { margin-top: 8px; color: #333; }
.lmb-mask button { font-size: 12px; }
`;

function esc(s) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function render({ model, el }) {
  const tokens = model.get("tokens");
  const special = model.get("special");
  const pool = model.get("pool");
  const state = { rate: model.get("rate"), seed: model.get("seed") };
  const sync = (name, value) => {
    try { model.set(name, value); model.save_changes(); } catch (e) { /* no kernel: state stays local */ }
  };
  const root = document.createElement("div");
  root.className = "lmb-mask";
  const style = document.createElement("style");
  style.textContent = CSS;
  root.appendChild(style);
  const controls = document.createElement("div");
  controls.className = "controls";
  controls.innerHTML = `
    <label>masking rate <input class="rate" type="range" min="0" max="1" step="0.01"></label>
    <span class="rate-value"></span>
    <button class="remask" type="button">re-mask (new seed)</button>
    <span class="seed-value"></span>`;
  root.appendChild(controls);
  const legend = document.createElement("div");
  legend.className = "legend";
  legend.innerHTML = `<span class="tok mask">[MASK]</span> replaced by [MASK] (80 %)
    <span class="tok random">word</span> replaced by a random token (10 %)
    <span class="tok same">word</span> selected but unchanged (10 %)`;
  root.appendChild(legend);
  const box = document.createElement("div");
  box.className = "tokens";
  root.appendChild(box);
  const counts = document.createElement("div");
  counts.className = "counts";
  root.appendChild(counts);
  el.appendChild(root);

  const rate = controls.querySelector(".rate");
  const rateValue = controls.querySelector(".rate-value");
  const seedValue = controls.querySelector(".seed-value");
  rate.value = state.rate;

  function draw() {
    const result = maskSequence(special, { rate: state.rate, seed: state.seed, poolSize: pool.length });
    box.innerHTML = result.map(([kind, j], i) => {
      const t = tokens[i];
      if (kind === "keep") return `<span class="tok${special[i] ? " special" : ""}" data-i="${i}" data-kind="keep">${esc(t)}</span>`;
      const shown = kind === "mask" ? "[MASK]" : kind === "random" ? pool[j] : t;
      const title = kind === "mask" ? `${t} → [MASK]` : kind === "random" ? `${t} → random token ${pool[j]}` : `${t} kept, still predicted`;
      return `<span class="tok ${kind}" data-i="${i}" data-kind="${kind}" title="${esc(title)}">${esc(shown)}` +
        (kind === "same" ? "" : `<span class="orig">${esc(t.trim())}</span>`) + "</span>";
    }).join("");
    const c = countKinds(result);
    const eligible = special.filter((s) => !s).length;
    const sel = c.mask + c.random + c.same;
    const pct = (x) => (sel ? ((100 * x) / sel).toFixed(0) : "0");
    rateValue.textContent = `${(100 * state.rate).toFixed(0)} %`;
    seedValue.textContent = `seed ${state.seed}`;
    counts.innerHTML = `<b class="n-selected">${sel}</b> of ${eligible} tokens selected ` +
      `(expected ${(state.rate * eligible).toFixed(1)}): ` +
      `<span class="n-mask">${c.mask}</span> [MASK] (${pct(c.mask)} %), ` +
      `<span class="n-random">${c.random}</span> random (${pct(c.random)} %), ` +
      `<span class="n-same">${c.same}</span> unchanged (${pct(c.same)} %). ` +
      `The model is scored on the ${sel} selected positions only.`;
  }

  rate.addEventListener("input", () => { state.rate = Number(rate.value); sync("rate", state.rate); draw(); });
  controls.querySelector(".remask").addEventListener("click", () => {
    state.seed += 1; sync("seed", state.seed); draw();
  });
  draw();
}

export default { render };
