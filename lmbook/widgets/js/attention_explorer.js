// Attention explorer (Chapter 3). The math lives in attentionWeights(), a pure
// function that tests/widgets/test_attention.py checks against lmbook.attention in Python.

/** softmax(scores * s / temperature) per row, with s = 1/sqrt(d_k) or 1, and an
 *  optional causal mask (query i sees keys 0..i). scores: L_q x L_k array. */
export function attentionWeights(scores, { dK, temperature = 1, useScale = true, causal = false }) {
  if (!(temperature > 0)) throw new Error(`temperature must be > 0, got ${temperature}`);
  const s = (useScale ? 1 / Math.sqrt(dK) : 1) / temperature;
  const offset = scores.length ? scores[0].length - scores.length : 0;
  return scores.map((row, i) => {
    const z = row.map((v, j) => (causal && j > i + offset ? -Infinity : v * s));
    const m = Math.max(...z);
    const e = z.map((v) => (v === -Infinity ? 0 : Math.exp(v - m)));
    const total = e.reduce((a, b) => a + b, 0);
    return e.map((v) => (total > 0 ? v / total : 0));
  });
}

/** Entropy of one row of weights, in bits. */
export function entropyBits(p) {
  return -p.reduce((acc, v) => (v > 0 ? acc + v * Math.log2(v) : acc), 0);
}

const CSS = `
.lmb-attn { font-family: var(--pst-font-family-base, system-ui, sans-serif); font-size: 13px; }
.lmb-attn .controls { display: flex; flex-wrap: wrap; gap: 14px; align-items: center; margin-bottom: 8px; }
.lmb-attn label { display: inline-flex; gap: 6px; align-items: center; }
.lmb-attn table { border-collapse: collapse; }
.lmb-attn td, .lmb-attn th { width: 34px; height: 26px; text-align: center; font-size: 11px; padding: 0; }
.lmb-attn th { font-weight: 600; }
.lmb-attn th.col { writing-mode: vertical-rl; transform: rotate(180deg); height: 64px; text-align: left; padding: 2px 0; }
.lmb-attn th.row { text-align: right; padding-right: 6px; width: auto; cursor: pointer; }
.lmb-attn tr.selected th.row { color: #c2410c; }
.lmb-attn tr.selected td { outline: 2px solid #c2410c; outline-offset: -2px; }
.lmb-attn .summary { margin-top: 6px; color: #444; }
`;

function cellColor(w) {
  const t = Math.max(0, Math.min(1, w));
  const r = Math.round(255 - 225 * t), g = Math.round(255 - 150 * t), b = Math.round(255 - 40 * t);
  return `rgb(${r},${g},${b})`;
}

function render({ model, el }) {
  const tokens = model.get("tokens");
  const allScores = model.get("scores"); // [head][L_q][L_k]
  const dK = model.get("d_k");
  const state = {
    temperature: model.get("temperature"),
    useScale: model.get("use_scale"),
    causal: model.get("causal"),
    query: model.get("query"),
    head: model.get("head"),
  };
  const sync = (name, value) => {
    try { model.set(name, value); model.save_changes(); } catch (e) { /* no kernel: state stays local */ }
  };

  const root = document.createElement("div");
  root.className = "lmb-attn";
  const style = document.createElement("style");
  style.textContent = CSS;
  root.appendChild(style);

  const controls = document.createElement("div");
  controls.className = "controls";
  controls.innerHTML = `
    <label>temperature <input class="temperature" type="range" min="-2" max="2" step="0.05"></label>
    <span class="temperature-value"></span>
    <label><input class="use-scale" type="checkbox"> divide by √d<sub>k</sub> (d<sub>k</sub>=${dK})</label>
    <label><input class="causal" type="checkbox"> causal mask</label>
    <label>query <select class="query"></select></label>
    ${allScores.length > 1 ? '<label>head <select class="head"></select></label>' : ""}`;
  root.appendChild(controls);
  const table = document.createElement("table");
  table.className = "heatmap";
  root.appendChild(table);
  const summary = document.createElement("div");
  summary.className = "summary";
  root.appendChild(summary);
  el.appendChild(root);

  const temp = controls.querySelector(".temperature");
  const tempValue = controls.querySelector(".temperature-value");
  const useScale = controls.querySelector(".use-scale");
  const causal = controls.querySelector(".causal");
  const query = controls.querySelector(".query");
  const head = controls.querySelector(".head");
  temp.value = Math.log2(state.temperature); // the slider moves in powers of two
  useScale.checked = state.useScale;
  causal.checked = state.causal;
  tokens.forEach((t, i) => query.add(new Option(`${i}: ${t}`, i)));
  query.value = state.query;
  if (head) { allScores.forEach((_, h) => head.add(new Option(`${h}`, h))); head.value = state.head; }

  function draw() {
    const w = attentionWeights(allScores[state.head], { dK, ...state });
    tempValue.textContent = `T = ${state.temperature.toFixed(2)}`;
    const header = "<tr><th></th>" + tokens.map((t) => `<th class="col">${t}</th>`).join("") + "</tr>";
    const rows = w.map((row, i) => {
      const cells = row.map((v, j) =>
        `<td data-q="${i}" data-k="${j}" data-w="${v.toFixed(4)}" style="background:${cellColor(v)}"
             title="${tokens[i]} → ${tokens[j]}: ${v.toFixed(3)}">${v >= 0.005 ? v.toFixed(2).slice(1) : ""}</td>`).join("");
      return `<tr class="${i === state.query ? "selected" : ""}"><th class="row" data-q="${i}">${tokens[i]}</th>${cells}</tr>`;
    });
    table.innerHTML = header + rows.join("");
    const row = w[state.query];
    const top = row.map((v, j) => [v, j]).sort((a, b) => b[0] - a[0]).slice(0, 3)
      .map(([v, j]) => `${tokens[j]} ${(100 * v).toFixed(1)}%`).join(", ");
    summary.textContent = `"${tokens[state.query]}" attends most to: ${top}; entropy ${entropyBits(row).toFixed(2)} bits ` +
      `(uniform would be ${Math.log2(row.filter((v) => v > 0).length || 1).toFixed(2)}).`;
  }

  temp.addEventListener("input", () => { state.temperature = 2 ** Number(temp.value); sync("temperature", state.temperature); draw(); });
  useScale.addEventListener("change", () => { state.useScale = useScale.checked; sync("use_scale", state.useScale); draw(); });
  causal.addEventListener("change", () => { state.causal = causal.checked; sync("causal", state.causal); draw(); });
  query.addEventListener("change", () => { state.query = Number(query.value); sync("query", state.query); draw(); });
  if (head) head.addEventListener("change", () => { state.head = Number(head.value); sync("head", state.head); draw(); });
  table.addEventListener("click", (ev) => {
    const q = ev.target.dataset && ev.target.dataset.q;
    if (q !== undefined) { state.query = Number(q); query.value = q; sync("query", state.query); draw(); }
  });
  draw();
}

export default { render };
