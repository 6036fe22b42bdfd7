// Feedback replay (Chapter 6c): steps through a recorded session of the live feedback loop
// (generate -> thumbs up/down -> one policy-gradient step). No kernel is needed: the session
// is stored in the page. runningMean() is the pure function the tests compare with Python.

/** Trailing mean of the last `window` values at each position (fewer at the start). */
export function runningMean(values, window) {
  if (!(Number.isInteger(window) && window >= 1)) throw new Error(`window must be an integer >= 1, got ${window}`);
  let sum = 0;
  return values.map((v, i) => {
    sum += v;
    if (i >= window) sum -= values[i - window];
    return sum / Math.min(i + 1, window);
  });
}

const CSS = `
.lmb-fb { font-family: var(--pst-font-family-base, system-ui, sans-serif); font-size: 13px; }
.lmb-fb .controls { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; margin: 6px 0; }
.lmb-fb button { font-size: 13px; padding: 1px 8px; }
.lmb-fb .who { color: #444; }
.lmb-fb .turn { border: 1px solid #d1d5db; border-radius: 6px; padding: 6px 8px; margin: 6px 0; min-height: 3em; }
.lmb-fb .prompt { color: #6b7280; }
.lmb-fb .reply { font-weight: 600; white-space: pre-wrap; }
.lmb-fb .verdict { font-size: 18px; margin-right: 6px; }
.lmb-fb svg { background: #fafafa; border: 1px solid #e5e7eb; }
.lmb-fb .stats { color: #333; margin-top: 4px; }
`;

function esc(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function render({ model, el }) {
  const rec = model.get("recording");
  const steps = rec.steps;
  const n = steps.length;
  const window = model.get("window");
  const smooth = runningMean(steps.map((s) => s.reward), window);
  let current = Math.min(Math.max(model.get("step"), 1), n);
  let timer = null;

  const root = document.createElement("div");
  root.className = "lmb-fb";
  const style = document.createElement("style");
  style.textContent = CSS;
  root.appendChild(style);
  root.insertAdjacentHTML("beforeend", `
    <div class="who">Recorded session: a simulated user who ${esc(rec.user)} rated ${n} replies; each rating
      took one policy-gradient step (lr ${rec.lr}, KL weight β = ${rec.beta}).</div>
    <div class="controls">
      <button class="first" type="button" title="first round">⏮</button>
      <button class="prev" type="button" title="previous round">◀</button>
      <button class="play" type="button">▶ play</button>
      <button class="next" type="button" title="next round">▶|</button>
      <input class="step" type="range" min="1" max="${n}" step="1">
      <span class="step-value"></span>
    </div>
    <div class="turn"><span class="verdict"></span><span class="prompt"></span><span class="reply"></span></div>
    <svg class="plot" width="520" height="150" viewBox="0 0 520 150"></svg>
    <div class="stats"></div>`);
  el.appendChild(root);
  const q = (c) => root.querySelector(c);
  const slider = q(".step");

  const W = 520, H = 150, L = 36, R = 10, T = 10, B = 24;
  const xs = (i) => L + ((W - L - R) * i) / Math.max(1, n - 1);
  const ys = (v) => T + (H - T - B) * (1 - v);

  function draw() {
    const s = steps[current - 1];
    slider.value = current;
    q(".step-value").textContent = `round ${current} of ${n}`;
    q(".verdict").textContent = s.liked ? "👍" : "👎";
    q(".verdict").dataset.liked = s.liked ? "1" : "0";
    q(".prompt").textContent = rec.prompt;
    q(".reply").textContent = s.reply;
    const pts = (k) => smooth.slice(0, k).map((v, i) => `${xs(i).toFixed(1)},${ys(v).toFixed(1)}`).join(" ");
    const dots = steps.slice(0, current).map((st, i) =>
      `<circle cx="${xs(i).toFixed(1)}" cy="${ys(st.reward).toFixed(1)}" r="2.5" fill="${st.liked ? "#16a34a" : "#dc2626"}"/>`).join("");
    q(".plot").innerHTML = `
      <line x1="${L}" y1="${ys(0)}" x2="${W - R}" y2="${ys(0)}" stroke="#9ca3af"/>
      <line x1="${L}" y1="${ys(1)}" x2="${W - R}" y2="${ys(1)}" stroke="#e5e7eb"/>
      <text x="4" y="${ys(1) + 4}" font-size="10">1</text><text x="4" y="${ys(0) + 4}" font-size="10">0</text>
      <text x="${L}" y="${H - 6}" font-size="10">round →   dots: 👍 (green) / 👎 (red); line: mean reward of the last ${window}</text>
      <polyline points="${pts(n)}" fill="none" stroke="#d1d5db" stroke-width="1.5"/>
      <polyline class="shown" points="${pts(current)}" fill="none" stroke="#2563eb" stroke-width="2"/>
      ${dots}`;
    const liked = steps.slice(0, current).filter((st) => st.liked).length;
    q(".stats").innerHTML = `👍 so far: <b class="likes">${liked}</b> of ${current}; ` +
      `mean reward of the last ${window}: <b class="running">${smooth[current - 1].toFixed(2)}</b>; ` +
      `KL to the original model at this step: ${s.kl.toFixed(4)} nats/token.`;
  }

  const go = (k) => { current = Math.min(Math.max(k, 1), n); draw(); };
  q(".first").addEventListener("click", () => go(1));
  q(".prev").addEventListener("click", () => go(current - 1));
  q(".next").addEventListener("click", () => go(current + 1));
  slider.addEventListener("input", () => go(Number(slider.value)));
  q(".play").addEventListener("click", () => {
    if (timer) { clearInterval(timer); timer = null; q(".play").textContent = "▶ play"; return; }
    if (current >= n) go(1);
    q(".play").textContent = "⏸ pause";
    timer = setInterval(() => {
      if (current >= n) { clearInterval(timer); timer = null; q(".play").textContent = "▶ play"; return; }
      go(current + 1);
    }, 400);
  });
  draw();
}

export default { render };
