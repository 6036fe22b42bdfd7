// Positional-encoding explorer (Chapter 2). The sinusoidal table is small, so the
// browser computes it itself; sinusoidalEncoding() and positionSimilarity() are
// checked against lmbook.layers.sinusoidal_encoding by tests/widgets/test_positions.py.

/** PE[pos][2i] = sin(pos / 10000^(2i/d)), PE[pos][2i+1] = cos(same): an nPositions x dModel array. */
export function sinusoidalEncoding(nPositions, dModel) {
  if (!(nPositions >= 1) || !(dModel >= 2) || dModel % 2) {
    throw new Error(`need nPositions >= 1 and an even dModel >= 2, got ${nPositions}, ${dModel}`);
  }
  const pe = [];
  for (let pos = 0; pos < nPositions; pos++) {
    const row = new Array(dModel);
    for (let i = 0; i < dModel; i += 2) {
      const angle = pos * Math.exp(i * (-Math.log(10000) / dModel));
      row[i] = Math.sin(angle);
      row[i + 1] = Math.cos(angle);
    }
    pe.push(row);
  }
  return pe;
}

/** Dot products PE[position] . PE[q] for every q; divided by d/2 (= |PE|^2, so a cosine) when normalize. */
export function positionSimilarity(pe, position, { normalize = true } = {}) {
  if (!(position >= 0 && position < pe.length)) throw new Error(`position must be in 0..${pe.length - 1}, got ${position}`);
  const p = pe[position], scale = normalize ? 2 / p.length : 1;
  return pe.map((row) => row.reduce((acc, v, j) => acc + v * p[j], 0) * scale);
}

/** The position at least minOffset away from `position` that looks most like it:
 *  {offset, value} with value = sim[position + offset]. With few dimensions far positions
 *  can look almost like neighbours (the curve ripples); more dimensions smooth this out. */
export function farthestLookalike(sim, position, minOffset = 10) {
  let best = { offset: null, value: -Infinity };
  sim.forEach((v, q) => {
    if (Math.abs(q - position) >= minOffset && v > best.value) best = { offset: q - position, value: v };
  });
  return best;
}

const CSS = `
.lmb-pos { font-family: var(--pst-font-family-base, system-ui, sans-serif); font-size: 13px; }
.lmb-pos .controls { display: flex; flex-wrap: wrap; gap: 14px; align-items: center; margin-bottom: 6px; }
.lmb-pos label { display: inline-flex; gap: 6px; align-items: center; }
.lmb-pos input.position { width: 280px; }
.lmb-pos .cells { display: flex; margin: 4px 0 0 40px; }
.lmb-pos .cells div { flex: 1; height: 16px; }
.lmb-pos .summary { margin-top: 6px; color: #444; }
`;

function cellColor(v) { // -1 red, 0 white, +1 blue
  const t = Math.max(-1, Math.min(1, v));
  return t >= 0 ? `rgb(${Math.round(255 - 215 * t)},${Math.round(255 - 150 * t)},255)`
    : `rgb(255,${Math.round(255 + 150 * t)},${Math.round(255 + 215 * t)})`;
}

function render({ model, el }) {
  const n = model.get("n_positions");
  const state = { position: model.get("position"), dModel: model.get("d_model"), normalize: model.get("normalize") };
  const choices = model.get("d_model_choices");
  const sync = (name, value) => {
    try { model.set(name, value); model.save_changes(); } catch (e) { /* no kernel: state stays local */ }
  };
  const root = document.createElement("div");
  root.className = "lmb-pos";
  root.innerHTML = `<style>${CSS}</style>
    <div class="controls">
      <label>position <input class="position" type="range" min="0" max="${n - 1}" step="1"></label>
      <span class="position-value"></span>
      <label>d<sub>model</sub> <select class="d-model">${choices.map((d) => `<option value="${d}">${d}</option>`).join("")}</select></label>
      <label><input class="normalize" type="checkbox"> divide by d/2 (cosine)</label>
    </div>
    <svg class="plot" width="640" height="190" viewBox="0 0 640 190"></svg>
    <div class="cells"></div>
    <div class="summary"></div>`;
  el.appendChild(root);
  const slider = root.querySelector("input.position");
  const dSelect = root.querySelector("select.d-model");
  const normalize = root.querySelector("input.normalize");
  slider.value = state.position;
  dSelect.value = state.dModel;
  normalize.checked = state.normalize;
  let pe = sinusoidalEncoding(n, state.dModel);

  function draw() {
    const sim = positionSimilarity(pe, state.position, state);
    const top = state.normalize ? 1 : state.dModel / 2;
    const X = (q) => 40 + (590 * q) / Math.max(1, n - 1), Y = (v) => 10 + (160 * (top - v)) / (2 * top);
    const path = sim.map((v, q) => `${q ? "L" : "M"}${X(q).toFixed(1)},${Y(v).toFixed(1)}`).join("");
    root.querySelector(".position-value").textContent = `p = ${state.position}`;
    root.querySelector("svg.plot").innerHTML = `
      <line x1="40" x2="630" y1="${Y(0)}" y2="${Y(0)}" stroke="#bbb"/>
      <line x1="${X(state.position)}" x2="${X(state.position)}" y1="10" y2="170" stroke="#c2410c" stroke-dasharray="4 3"/>
      <path class="similarity" d="${path}" fill="none" stroke="#1d4ed8" stroke-width="1.6"/>
      <text x="36" y="${Y(top) + 4}" text-anchor="end" font-size="10">${top}</text>
      <text x="36" y="${Y(-top) + 4}" text-anchor="end" font-size="10">${-top}</text>
      <text x="40" y="186" font-size="10">position q = 0</text>
      <text x="630" y="186" text-anchor="end" font-size="10">q = ${n - 1}</text>`;
    root.querySelector(".cells").innerHTML = sim.map((v, q) =>
      `<div data-q="${q}" data-sim="${v.toFixed(4)}" title="PE[${state.position}]·PE[${q}] = ${v.toFixed(3)}" style="background:${cellColor(v / top)}"></div>`).join("");
    const far = farthestLookalike(sim, state.position, 10);
    const at = (k) => (state.position + k < n ? sim[state.position + k].toFixed(3) : "–");
    root.querySelector(".summary").textContent =
      `similarity of p = ${state.position} with p+1: ${at(1)}, p+2: ${at(2)}, p+5: ${at(5)}, p+20: ${at(20)} ` +
      `(move the slider: these numbers depend only on the offset, not on p). ` +
      (far.offset === null ? "" : `Most similar position 10 or more away: p${far.offset > 0 ? "+" : ""}${far.offset}, ` +
        `${far.value.toFixed(3)}. Fewer dimensions: far positions can look like neighbours; more: the curve is ` +
        `smoother and falls more steadily with distance, and the peak gets wider, not sharper.`);
  }

  slider.addEventListener("input", () => { state.position = Number(slider.value); sync("position", state.position); draw(); });
  dSelect.addEventListener("change", () => {
    state.dModel = Number(dSelect.value); pe = sinusoidalEncoding(n, state.dModel); sync("d_model", state.dModel); draw();
  });
  normalize.addEventListener("change", () => { state.normalize = normalize.checked; sync("normalize", state.normalize); draw(); });
  draw();
}

export default { render };
