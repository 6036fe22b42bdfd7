// Live attention explorer (Chapter 3). The book's own pretrained encoder runs here, in the
// page: the reader types a sentence, it is tokenised with the book's BPE (bpe_explorer.js,
// which lmbook.widgets.live_encoder prepends to this file as `bpe`), forward() runs the
// Transformer, and the chosen layer's and head's attention is drawn. forward() is a plain
// re-telling of lmbook.models.Encoder.forward; tests/widgets/test_live_encoder.py runs it in
// node and compares every hidden state, attention weight and MLM logit with PyTorch.
//
// Shapes in the comments: T tokens, d = d_model, nh heads, hs = d / nh head size, V vocab.
// A (T, n) matrix is a Float64Array of T * n numbers, row after row.

// decodeWeights, linear, layerNorm, activation, add, attend, params, topK and escapeHtml come from
// live_transformer.js, which lmbook.widgets.live puts before this file.

// ------------------------------------------------------------------ the encoder

/** Multi-head self-attention on h (T, d): returns the (T, d) output and the [head][query][key] weights.
 *  weights = softmax(q·k × scale / temperature), scale = 1/√hs (or 1 with useScale off), future keys
 *  blocked when causal: lmbook.attention.scaled_dot_product_attention. */
function selfAttention(h, T, d, nh, p, { temperature, useScale, causal }) {
  const scale = (useScale ? 1 / Math.sqrt(d / nh) : 1) / temperature;
  const q = linear(h, T, d, p.q_proj.weight, p.q_proj.bias, d); // (T, d) = (T, nh * hs)
  const k = linear(h, T, d, p.k_proj.weight, p.k_proj.bias, d);
  const v = linear(h, T, d, p.v_proj.weight, p.v_proj.bias, d);
  const { y, weights } = attend(q, k, v, T, T, d, nh, { scale, causal });
  return { out: linear(y, T, d, p.out_proj.weight, p.out_proj.bias, d), weights };
}

/** The parameters of block i, grouped like the PyTorch module (layers.{i}.self_attn.q_proj.weight, ...). */
function blockParams(W, i) {
  const lin = params(W, `layers.${i}.`);
  return {
    q_proj: lin("self_attn.q_proj"), k_proj: lin("self_attn.k_proj"), v_proj: lin("self_attn.v_proj"),
    out_proj: lin("self_attn.out_proj"), linear1: lin("ff.linear1"), linear2: lin("ff.linear2"),
    norm1: lin("norm1"), norm2: lin("norm2"),
  };
}

/** lmbook.models.Encoder.forward for one sequence of ids (segment 0, no padding), in eval mode.
 *
 *  opts: temperature (1), useScale (true: divide scores by √hs), causal (false), logitsAt (positions
 *  whose MLM logits to compute; default all), and residual (true; false drops both skip connections
 *  of every block — only tests/widgets/test_live_encoder.py uses it, to show the test catches it).
 *  Returns hidden: n_layers + 1 (T, d) arrays like EncoderOutput.all_hidden_states (embeddings,
 *  each block, the last one after the final LayerNorm); attentions: [layer][head][query][key];
 *  logits: T entries, a Float64Array(V) for each position asked for, null for the others. */
export function forward(W, ids, { temperature = 1, useScale = true, causal = false, logitsAt = null,
  residual = true } = {}) {
  const c = W.config, d = c.d_model, T = ids.length, eps = c.layer_norm_eps;
  if (!(temperature > 0)) throw new Error(`temperature must be > 0, got ${temperature}`);
  if (T < 1 || T > c.max_len) throw new Error(`ids must hold 1..${c.max_len} tokens, got ${T}`);
  ids.forEach((id, t) => {
    if (!(Number.isInteger(id) && id >= 0 && id < c.vocab_size)) throw new Error(`ids[${t}] = ${id} is not in 0..${c.vocab_size - 1}`);
  });
  const act = activation(c.activation);

  // token + segment 0 + position, then LayerNorm (dropout is off in eval mode)
  let x = new Float64Array(T * d);
  const tok = W["tok_emb.embedding.weight"], pos = W["pos_emb.embedding.weight"], seg = W["seg_emb.weight"];
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < d; i++) x[t * d + i] = tok[ids[t] * d + i] + seg[i] + pos[t * d + i];
  }
  x = layerNorm(x, T, d, W["emb_norm.weight"], W["emb_norm.bias"], eps);
  const hidden = [x], attentions = [];
  const skip = (a, b) => (residual ? add(a, b) : b);

  for (let layer = 0; layer < c.n_layers; layer++) {
    const p = blockParams(W, layer);
    const ln = (y, n) => layerNorm(y, T, d, n.weight, n.bias, eps);
    const attend = (h) => selfAttention(h, T, d, c.n_heads, p, { temperature, useScale, causal });
    const ffn = (h) => {
      const u = linear(h, T, d, p.linear1.weight, p.linear1.bias, c.d_ff).map(act); // (T, d_ff)
      return linear(u, T, c.d_ff, p.linear2.weight, p.linear2.bias, d); // (T, d)
    };
    let a;
    if (c.norm_first) { // pre-LN: x + f(LN(x))
      a = attend(ln(x, p.norm1));
      x = skip(x, a.out);
      x = skip(x, ffn(ln(x, p.norm2)));
    } else { // post-LN: LN(x + f(x))
      a = attend(x);
      x = ln(skip(x, a.out), p.norm1);
      x = ln(skip(x, ffn(x)), p.norm2);
    }
    attentions.push(a.weights);
    hidden.push(x);
  }
  if (c.norm_first) x = layerNorm(x, T, d, W["final_norm.weight"], W["final_norm.bias"], eps);
  hidden[hidden.length - 1] = x;

  // MLM head: dense, activation, LayerNorm, then the tied token embedding plus a bias
  const at = logitsAt === null ? [...Array(T).keys()] : logitsAt;
  const logits = new Array(T).fill(null);
  if (at.length) {
    const rows = new Float64Array(at.length * d);
    at.forEach((t, r) => rows.set(x.subarray(t * d, t * d + d), r * d));
    const h = layerNorm(linear(rows, at.length, d, W["mlm_dense.weight"], W["mlm_dense.bias"], d).map(act),
      at.length, d, W["mlm_norm.weight"], W["mlm_norm.bias"], eps);
    const out = linear(h, at.length, d, tok, W.mlm_bias, c.vocab_size); // (|at|, V)
    at.forEach((t, r) => { logits[t] = out.slice(r * c.vocab_size, (r + 1) * c.vocab_size); });
  }
  return { hidden, attentions, logits };
}

/** The ids the encoder sees for text: [CLS] text [SEP], with each "[MASK]" the reader typed as the
 *  [MASK] id and the space before it given to it (lmbook.pretraining.fill_in_the_blank). */
export function liveIds(text, encode, { cls = 2, sep = 3, mask = 4 } = {}) {
  const pieces = text.split("[MASK]"), ids = [cls];
  pieces.forEach((piece, i) => {
    const last = i === pieces.length - 1;
    ids.push(...encode(last ? piece : piece.replace(/ +$/, "")));
    if (!last) ids.push(mask);
  });
  ids.push(sep);
  return ids;
}

// ------------------------------------------------------------------ the widget

const CSS = `
.lmb-live { font-family: var(--pst-font-family-base, system-ui, sans-serif); font-size: 13px; }
.lmb-live .controls { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; margin-bottom: 8px; }
.lmb-live label { display: inline-flex; gap: 6px; align-items: center; }
.lmb-live input.text { font-size: 15px; padding: 3px 6px; min-width: 26em; flex: 1 1 26em; }
.lmb-live .scroll { overflow-x: auto; max-width: 100%; }
.lmb-live table { border-collapse: collapse; }
.lmb-live td, .lmb-live th { min-width: 24px; height: 22px; text-align: center; font-size: 10px; padding: 0; }
.lmb-live th.col { writing-mode: vertical-rl; transform: rotate(180deg); height: 64px; text-align: left;
  padding: 2px 0; font-weight: 600; white-space: pre; }
.lmb-live th.row { text-align: right; padding-right: 6px; font-weight: 600; white-space: pre; }
.lmb-live .predictions { margin-top: 8px; }
.lmb-live .predictions .bar { display: inline-block; height: 10px; background: #1e69d2; vertical-align: middle; }
.lmb-live .status { color: #444; margin-top: 6px; }
`;
/** The widget's stylesheet (exported for the tests). */
export function cssText() {
  return CSS;
}

const cellColor = (w) => {
  const t = Math.max(0, Math.min(1, w));
  return `rgb(${Math.round(255 - 225 * t)},${Math.round(255 - 150 * t)},${Math.round(255 - 40 * t)})`;
};
const formatWeight = (v) => (v >= 0.005 ? (v.toFixed(2).startsWith("0") ? v.toFixed(2).slice(1) : v.toFixed(2)) : "");

/** Everything one redraw needs, without the page: ids, readable tokens, the forward pass and the
 *  top-k guesses at each [MASK]. render() draws it; the node test times it. */
export function analyse(W, vocabText, text, encode, { temperature = 1, useScale = true, causal = false, k = 5 } = {}) {
  const ids = liveIds(text, encode);
  if (ids.length > W.config.max_len) {
    return { ids, tokens: [], error: `${ids.length} tokens: the encoder reads at most ${W.config.max_len}` };
  }
  const masks = ids.flatMap((id, t) => (id === 4 ? [t] : []));
  const out = forward(W, ids, { temperature, useScale, causal, logitsAt: masks });
  const predictions = masks.map((t) => ({ position: t, top: topK(out.logits[t], k).map(([id, p]) => [vocabText[id], p]) }));
  return { ids, tokens: ids.map((id) => vocabText[id]), attentions: out.attentions, predictions };
}

function render({ model, el }) {
  const W = decodeWeights(model.get("weights"));
  const byteOffset = model.get("byte_offset"), merges = model.get("merges");
  const vocabText = bpe.tokenBytes(merges, { byteOffset, specialTokens: model.get("special_tokens") }).map(bpe.pieceText);
  const encode = (s) => bpe.bpeEncode(s, merges, { byteOffset });
  const c = W.config, hs = c.d_model / c.n_heads;
  const state = { text: model.get("text"), layer: model.get("layer"), head: model.get("head"),
    temperature: model.get("temperature"), useScale: model.get("use_scale"), causal: model.get("causal") };
  const sync = (name, value) => {
    try { model.set(name, value); model.save_changes(); } catch (e) { /* no kernel: state stays local */ }
  };

  const root = document.createElement("div");
  root.className = "lmb-live";
  const option = (n) => [...Array(n).keys()].map((i) => `<option value="${i}">${i}</option>`).join("");
  root.innerHTML = `<style>${CSS}</style>
    <div class="controls"><input class="text" type="text" aria-label="sentence"></div>
    <div class="controls">
      <label>layer <select class="layer">${option(c.n_layers)}</select></label>
      <label>head <select class="head">${option(c.n_heads)}</select></label>
      <label>temperature <input class="temperature" type="range" min="-2" max="2" step="0.05"></label>
      <span class="temperature-value"></span>
      <label><input class="use-scale" type="checkbox"> divide by √d<sub>k</sub> (d<sub>k</sub>=${hs})</label>
      <label><input class="causal" type="checkbox"> causal mask</label>
    </div>
    <div class="scroll"><table class="heatmap"></table></div>
    <div class="predictions"></div>
    <div class="status"></div>`;
  el.appendChild(root);
  const $ = (s) => root.querySelector(s);
  const input = $("input.text"), layer = $("select.layer"), head = $("select.head"), temp = $("input.temperature");
  const useScale = $("input.use-scale"), causal = $("input.causal");
  input.value = state.text; layer.value = state.layer; head.value = state.head;
  temp.value = Math.log2(state.temperature); useScale.checked = state.useScale; causal.checked = state.causal;

  let result = null;
  function compute() {
    const t0 = performance.now();
    result = analyse(W, vocabText, state.text, encode, state);
    result.ms = performance.now() - t0;
  }
  function draw() {
    $(".temperature-value").textContent = `T = ${state.temperature.toFixed(2)}`;
    if (result.error) { $("table.heatmap").innerHTML = ""; $(".predictions").innerHTML = ""; $(".status").textContent = result.error; return; }
    const labels = result.tokens.map((s) => escapeHtml(s.replace(/ /g, "␣")));
    const w = result.attentions[state.layer][state.head];
    const showNumbers = labels.length <= 16;
    $("table.heatmap").innerHTML = "<tr><th></th>" + labels.map((s) => `<th class="col">${s}</th>`).join("") + "</tr>" +
      w.map((row, i) => `<tr><th class="row">${labels[i]}</th>` + [...row].map((v, j) =>
        `<td data-q="${i}" data-k="${j}" data-w="${v.toFixed(4)}" style="background:${cellColor(v)}" ` +
        `title="${labels[i]} → ${labels[j]}: ${v.toFixed(3)}">${showNumbers ? formatWeight(v) : ""}</td>`).join("") + "</tr>").join("");
    $(".predictions").innerHTML = result.predictions.length
      ? result.predictions.map(({ position, top }) => `<div class="mask" data-position="${position}"><b>[MASK] at ${position}:</b> ` +
        top.map(([s, p]) => `<span class="guess" data-p="${p.toFixed(4)}">${escapeHtml(s.replace(/ /g, "␣"))} ` +
          `<span class="bar" style="width:${Math.round(60 * p)}px"></span> ${(100 * p).toFixed(1)}%</span>`).join(" · ") + "</div>").join("")
      : "Type [MASK] in the sentence to see the encoder's guesses for it.";
    $(".status").textContent = `${result.tokens.length} tokens ([CLS] and [SEP] added); layer ${state.layer}, head ${state.head}: ` +
      `row = query, column = key. Computed in this page in ${result.ms.toFixed(0)} ms.`;
  }
  const update = () => { compute(); draw(); };

  input.addEventListener("input", () => { state.text = input.value; sync("text", state.text); update(); });
  layer.addEventListener("change", () => { state.layer = Number(layer.value); sync("layer", state.layer); draw(); });
  head.addEventListener("change", () => { state.head = Number(head.value); sync("head", state.head); draw(); });
  temp.addEventListener("input", () => { state.temperature = 2 ** Number(temp.value); sync("temperature", state.temperature); update(); });
  useScale.addEventListener("change", () => { state.useScale = useScale.checked; sync("use_scale", state.useScale); update(); });
  causal.addEventListener("change", () => { state.causal = causal.checked; sync("causal", state.causal); update(); });
  update();
}

export default { render };
