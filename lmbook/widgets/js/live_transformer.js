// What the live widgets share (Chapter 3's encoder, Chapter 6's decoder): reading the weights the
// page carries and the pieces every Transformer is built from. lmbook.widgets.live bundles this
// file into each live widget's ES module, before the widget's own file (live_encoder.js,
// live_decoder.js), so both run exactly the same linear, LayerNorm, GELU and attention.
//
// Shapes in the comments: T tokens, d = d_model, nh heads, hs = d / nh head size, V vocab.
// A (T, n) matrix is a Float64Array of T * n numbers, row after row.

// ------------------------------------------------------------------ weights

/** One IEEE half-precision number (16 bits) as a JavaScript number. */
function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1, exponent = (h >> 10) & 0x1f, fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // subnormal
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function base64Bytes(b64) {
  const s = atob(b64), bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes;
}

const BYTES = { float32: 4, float16: 2, int8: 1 };

/** The payload of lmbook.widgets.live.weights_payload -> { config, tensor name: Float32Array }.
 *  Little-endian, base64-encoded: float32, float16, or int8 with one float32 scale per row
 *  (the number is q * scale[row]). */
export function decodeWeights(payload) {
  const weights = { config: payload.config };
  for (const [name, { dtype, shape, data, scale }] of Object.entries(payload.tensors)) {
    if (!(dtype in BYTES)) throw new Error(`tensor ${name}: dtype must be float32, float16 or int8, got ${dtype}`);
    const bytes = base64Bytes(data), view = new DataView(bytes.buffer);
    const n = shape.reduce((a, b) => a * b, 1), out = new Float32Array(n);
    if (bytes.length !== n * BYTES[dtype]) throw new Error(`tensor ${name}: ${bytes.length} bytes for shape ${shape}`);
    if (dtype === "float16") for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
    else if (dtype === "float32") for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
    else {
      const s = new DataView(base64Bytes(scale).buffer), rowLength = n / shape[0];
      for (let i = 0; i < n; i++) out[i] = view.getInt8(i) * s.getFloat32(4 * Math.floor(i / rowLength), true);
    }
    weights[name] = out;
  }
  return weights;
}

// ------------------------------------------------------------------ the pieces of a Transformer

/** x W^T + b for each of the T rows of x (T, nIn); W is (nOut, nIn) like torch.nn.Linear. */
function linear(x, T, nIn, W, b, nOut) {
  const y = new Float64Array(T * nOut);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < nOut; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0, w = o * nIn, r = t * nIn; i < nIn; i++) s += x[r + i] * W[w + i];
      y[t * nOut + o] = s;
    }
  }
  return y;
}

/** Each row of x (T, d) to mean 0, variance 1, then times gain g plus bias b (torch.nn.LayerNorm). */
function layerNorm(x, T, d, g, b, eps) {
  const y = new Float64Array(T * d);
  for (let t = 0; t < T; t++) {
    let mean = 0, variance = 0;
    for (let i = 0; i < d; i++) mean += x[t * d + i];
    mean /= d;
    for (let i = 0; i < d; i++) variance += (x[t * d + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(variance / d + eps); // biased variance, as torch
    for (let i = 0; i < d; i++) y[t * d + i] = (x[t * d + i] - mean) * inv * g[i] + b[i];
  }
  return y;
}

/** erf(x), Abramowitz & Stegun 7.1.26: absolute error below 1.5e-7. */
function erf(x) {
  const s = Math.sign(x), a = Math.abs(x), t = 1 / (1 + 0.3275911 * a);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return s * (1 - poly * Math.exp(-a * a));
}

const ACTIVATIONS = {
  gelu: (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)), // exact (erf) GELU, torch's F.gelu
  gelu_tanh: (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
  relu: (v) => Math.max(0, v),
};

function activation(name) {
  const act = ACTIVATIONS[name];
  if (!act) throw new Error(`activation ${name} is not one of ${Object.keys(ACTIVATIONS)}`);
  return act;
}

function add(x, y) {
  const z = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) z[i] = x[i] + y[i];
  return z;
}

/** Attention of Tq queries over Tk keys, head by head: q (Tq, d), k and v (Tk, d), d = nh * hs.
 *  Row i of a head's weights = softmax(q_i · k_j × scale) over the keys j; with causal, query i sits
 *  at position start + i (start = Tk - Tq: the queries are the last tokens, as with a KV cache) and
 *  keys after it get weight 0. Returns y (Tq, d), the heads' outputs side by side, and the weights
 *  as [head][query] Float64Array(Tk). */
function attend(q, k, v, Tq, Tk, d, nh, { scale, causal = false, start = Tk - Tq }) {
  const hs = d / nh, y = new Float64Array(Tq * d), weights = [];
  for (let head = 0; head < nh; head++) {
    const off = head * hs, rows = [];
    for (let i = 0; i < Tq; i++) {
      const z = new Float64Array(Tk);
      let max = -Infinity;
      for (let j = 0; j < Tk; j++) {
        if (causal && j > start + i) { z[j] = -Infinity; continue; }
        let s = 0;
        for (let c = 0; c < hs; c++) s += q[i * d + off + c] * k[j * d + off + c];
        z[j] = s * scale;
        if (z[j] > max) max = z[j];
      }
      let total = 0;
      for (let j = 0; j < Tk; j++) { z[j] = z[j] === -Infinity ? 0 : Math.exp(z[j] - max); total += z[j]; }
      for (let j = 0; j < Tk; j++) z[j] /= total;
      for (let j = 0; j < Tk; j++) {
        if (z[j] === 0) continue;
        for (let c = 0; c < hs; c++) y[i * d + off + c] += z[j] * v[j * d + off + c];
      }
      rows.push(z);
    }
    weights.push(rows);
  }
  return { y, weights };
}

/** The parameters under prefix (e.g. "blocks.0."), grouped like the PyTorch module:
 *  lin("self_attn.q_proj") -> { weight, bias }. */
function params(W, prefix) {
  return (name) => ({ weight: W[`${prefix}${name}.weight`], bias: W[`${prefix}${name}.bias`] });
}

/** Probabilities of the k likeliest tokens from one row of logits: [[id, p], ...], best first. */
export function topK(logits, k = 5) {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let total = 0;
  for (const v of logits) total += Math.exp(v - max);
  return [...logits.keys()].sort((a, b) => logits[b] - logits[a]).slice(0, k)
    .map((id) => [id, Math.exp(logits[id] - max) / total]);
}

const escapeHtml = (s) => s.replace(/[&<>"]/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[ch]);
