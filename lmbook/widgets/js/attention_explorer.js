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

/** What softmax sees for one query row: q·k × s / T (s = 1/√d_k, or 1 when useScale is off),
 *  -Infinity where the causal mask hides the key. attentionWeights() is softmax of this. */
export function softmaxInputs(row, { dK, temperature = 1, useScale = true, causal = false, query = 0, nQueries = 1 }) {
  const s = (useScale ? 1 / Math.sqrt(dK) : 1) / temperature;
  const offset = row.length - nQueries;
  return row.map((v, j) => (causal && j > query + offset ? -Infinity : v * s));
}

/** A weight as printed in a heatmap cell: ".42", "1.00" for a weight that rounds to 1, "" below 0.005. */
export function formatWeight(v) {
  if (!(v >= 0.005)) return "";
  const text = v.toFixed(2);
  return text.startsWith("0") ? text.slice(1) : text;
}

/** The temperature slider's range, in log2(T): at least 1/4 .. 4, and always reaching
 *  T = 1/√d_k (ticked ÷√d_k at that T = unticked at T = 1) and T = √d_k (the reverse);
 *  the step (about 0.05) divides max - min, so both ends are slider positions. */
export function temperatureRange(dK) {
  const half = Math.log2(Math.sqrt(dK));
  const min = Math.min(-2, -half), max = Math.max(2, half);
  return { min, max, step: (max - min) / Math.round((max - min) / 0.05) };
}

/** The line under the explorer that ties the √d_k box to the temperature slider. */
export function temperatureNote(dK) {
  const r = Math.sqrt(dK);
  return `The weights are softmax(q·k ÷ √d<sub>k</sub> ÷ T). So unticking ÷√d<sub>k</sub> is the same as keeping ` +
    `it ticked and setting T = 1/√d<sub>k</sub> = ${(1 / r).toFixed(2)} (the slider's left end), and ticked at ` +
    `T = 1 is the same as unticked at T = √d<sub>k</sub> = ${r.toFixed(2)} (its right end).`;
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
.lmb-attn .summary, .lmb-attn .note { margin-top: 6px; color: #444; }
.lmb-attn table.raw { margin-top: 8px; }
.lmb-attn table.raw td { width: auto; min-width: 34px; padding: 0 3px; font-variant-numeric: tabular-nums; }
.lmb-attn table.raw th { text-align: right; padding-right: 6px; white-space: nowrap; }
`;

const fmt = (v) => (v === -Infinity || v === null ? "−∞" : v.toFixed(2)); // null: -Infinity after JSON

/** The three rows under the heatmap for one query: raw q·k, what softmax sees, the weights. */
export function rawScoresHtml(tokens, row, inputs, weights, { dK, useScale, temperature }) {
  const scaled = `${useScale ? `÷ √d<sub>k</sub> (${Math.sqrt(dK).toFixed(2)}) ` : ""}÷ T (${temperature.toFixed(2)})`;
  const line = (cls, label, values) => `<tr class="${cls}"><th>${label}</th>` +
    values.map((v) => `<td>${v}</td>`).join("") + "</tr>";
  return "<tr><th></th>" + tokens.map((t) => `<th class="col">${t}</th>`).join("") + "</tr>" +
    line("raw", "raw score q·k", row.map(fmt)) +
    line("scaled", scaled, inputs.map(fmt)) +
    line("weight", "softmax = weight", weights.map((v) => v.toFixed(3)));
}

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

  const range = temperatureRange(dK);
  const controls = document.createElement("div");
  controls.className = "controls";
  controls.innerHTML = `
    <label>temperature <input class="temperature" type="range" min="${range.min}" max="${range.max}" step="${range.step}"></label>
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
  const raw = document.createElement("table");
  raw.className = "raw";
  root.appendChild(raw);
  const note = document.createElement("div");
  note.className = "note";
  note.innerHTML = temperatureNote(dK);
  root.appendChild(note);
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
             title="${tokens[i]} → ${tokens[j]}: ${v.toFixed(3)}">${formatWeight(v)}</td>`).join("");
      return `<tr class="${i === state.query ? "selected" : ""}"><th class="row" data-q="${i}">${tokens[i]}</th>${cells}</tr>`;
    });
    table.innerHTML = header + rows.join("");
    const row = w[state.query];
    const top = row.map((v, j) => [v, j]).sort((a, b) => b[0] - a[0]).slice(0, 3)
      .map(([v, j]) => `${tokens[j]} ${(100 * v).toFixed(1)}%`).join(", ");
    summary.textContent = `"${tokens[state.query]}" attends most to: ${top}; entropy ${entropyBits(row).toFixed(2)} bits ` +
      `(uniform would be ${Math.log2(row.filter((v) => v > 0).length || 1).toFixed(2)}). Below: its scores before the softmax.`;
    const scores = allScores[state.head];
    const inputs = softmaxInputs(scores[state.query], { dK, ...state, nQueries: scores.length });
    raw.innerHTML = rawScoresHtml(tokens, scores[state.query], inputs, row, { dK, ...state });
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
