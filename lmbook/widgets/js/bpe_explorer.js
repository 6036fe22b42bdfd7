// BPE explorer (Chapter 1). Type a word, see how byte-level BPE cuts it into known
// pieces while a word-level vocabulary can only say [UNK]. The tokenizer is the one
// trained in Python: its merges are sent once, and bpeEncode() below applies them
// exactly as lmbook.tokenizers.BPETokenizer.encode does (tests/widgets/test_bpe.py
// runs both and compares).

// lmbook.tokenizers.SPLIT_PATTERN, translated: Python's Unicode \w, \d and \b become
// explicit property classes (JavaScript's \w and \b are ASCII-only).
const W = "\\p{L}\\p{N}_"; // Python \w: letters, numbers, underscore
const SPLIT_RE = new RegExp(
  "'(?:s|t|re|ve|m|ll|d)(?![" + W + "])" + // contractions
  "| ?[\\p{L}\\p{Nl}\\p{No}]+" + // letters (Python [^\W\d_])
  "| ?\\p{Nd}+" + // digits
  "| ?(?:[^\\s" + W + "]|_)+" + // punctuation and symbols
  "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+|[\\s\\S]",
  "gu",
);

/** The word-like chunks BPE merges within (lmbook.tokenizers.split_into_chunks). */
export function splitChunks(text) {
  return text.match(SPLIT_RE) || [];
}

/** Ids of one chunk: its UTF-8 bytes, then repeatedly the earliest-learned merge that applies. */
function encodeChunk(chunk, merges, rank, byteOffset) {
  let ids = [...new TextEncoder().encode(chunk)].map((b) => b + byteOffset);
  for (;;) {
    let bestRank = Infinity;
    for (let i = 0; i + 1 < ids.length; i++) {
      const r = rank.get(ids[i] * 1e6 + ids[i + 1]);
      if (r !== undefined && r < bestRank) bestRank = r;
    }
    if (bestRank === Infinity) return ids;
    const [a, b] = merges[bestRank], id = byteOffset + 256 + bestRank, out = [];
    for (let i = 0; i < ids.length; i++) {
      if (i + 1 < ids.length && ids[i] === a && ids[i + 1] === b) { out.push(id); i++; } else out.push(ids[i]);
    }
    ids = out;
  }
}

/** BPE token ids of text using the first nMerges merges (all by default). */
export function bpeEncode(text, merges, { byteOffset = 7, nMerges = merges.length } = {}) {
  const used = merges.slice(0, nMerges);
  const rank = new Map(used.map(([a, b], k) => [a * 1e6 + b, k]));
  return splitChunks(text).flatMap((c) => encodeChunk(c, used, rank, byteOffset));
}

/** Bytes of every id: special tokens' text, then the 256 bytes, then one entry per merge. */
export function tokenBytes(merges, { byteOffset = 7, specialTokens = [] } = {}) {
  const vocab = specialTokens.map((s) => [...new TextEncoder().encode(s)]);
  while (vocab.length < byteOffset) vocab.push([]);
  for (let b = 0; b < 256; b++) vocab.push([b]);
  for (const [a, b] of merges) vocab.push([...vocab[a], ...vocab[b]]);
  return vocab;
}

/** Readable text of one token (lmbook's BPETokenizer.token_str): UTF-8, or <0xAB> hex for partial characters. */
export function pieceText(bytes) {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(bytes));
  } catch (e) {
    return bytes.map((b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`).join("");
  }
}

/** What a word-level tokenizer keeps (lmbook.baselines.word_level_tokens): the word, or [UNK]. */
export function wordLevel(text, vocabulary) {
  if (!(vocabulary instanceof Set)) vocabulary = new Set(vocabulary);
  const words = text.toLowerCase().match(/[\p{L}\p{Nl}\p{No}]+(?:'[\p{L}\p{Nl}\p{No}]+)?/gu) || [];
  return words.map((w) => (vocabulary.has(w) ? w : "[UNK]"));
}

const CSS = `
.lmb-bpe { font-family: var(--pst-font-family-base, system-ui, sans-serif); font-size: 14px; }
.lmb-bpe .controls { display: flex; flex-wrap: wrap; gap: 14px; align-items: center; margin-bottom: 10px; }
.lmb-bpe input.text { font-size: 15px; padding: 3px 6px; min-width: 22em; }
.lmb-bpe .row { margin: 6px 0; display: flex; align-items: baseline; gap: 6px; }
.lmb-bpe .row > b { flex: none; width: 9.5em; }
.lmb-bpe .pieces, .lmb-bpe .words { flex: 1 1 0; min-width: 0; display: flex; flex-wrap: wrap; gap: 5px 3px;
  line-height: 1.6; }
.lmb-bpe .piece { border: 1px solid #94a3b8; border-radius: 4px; padding: 1px 4px;
  font-family: var(--pst-font-family-monospace, monospace); white-space: pre; }
.lmb-bpe .unk { background: #fee2e2; border-color: #dc2626; }
.lmb-bpe .stats { color: #444; margin-top: 4px; }
`;
/** The widget's stylesheet (exported for the tests). */
export function cssText() {
  return CSS;
}

const COLORS = ["#dbeafe", "#dcfce7", "#fef3c7", "#fae8ff", "#e0e7ff", "#ffedd5"];
const escapeHtml = (s) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

function render({ model, el }) {
  const merges = model.get("merges");
  const byteOffset = model.get("byte_offset");
  const vocabBytes = tokenBytes(merges, { byteOffset, specialTokens: model.get("special_tokens") });
  const words = new Set(model.get("word_vocab"));
  const state = { text: model.get("text"), nMerges: model.get("n_merges") };
  const sync = (name, value) => {
    try { model.set(name, value); model.save_changes(); } catch (e) { /* no kernel: state stays local */ }
  };

  const root = document.createElement("div");
  root.className = "lmb-bpe";
  root.innerHTML = `<style>${CSS}</style>
    <div class="controls">
      <label>text <input class="text" type="text"></label>
      <label>merges used <input class="n-merges" type="range" min="0" max="${merges.length}" step="1"></label>
      <span class="n-merges-value"></span>
    </div>
    <div class="row bpe-row"><b>byte-level BPE</b> <span class="pieces"></span></div>
    <div class="row word-row"><b>word vocabulary</b> <span class="words"></span></div>
    <div class="stats"></div>`;
  el.appendChild(root);
  const input = root.querySelector("input.text");
  const slider = root.querySelector("input.n-merges");
  input.value = state.text;
  slider.value = state.nMerges;

  function draw() {
    const ids = bpeEncode(state.text, merges, { byteOffset, nMerges: state.nMerges });
    root.querySelector(".n-merges-value").textContent = `${state.nMerges} / ${merges.length}`;
    root.querySelector(".pieces").innerHTML = ids.map((id, i) =>
      `<span class="piece" data-id="${id}" title="id ${id}" style="background:${COLORS[i % COLORS.length]}">` +
      `${escapeHtml(pieceText(vocabBytes[id]).replace(/ /g, "␣"))}</span>`).join("");
    const wl = wordLevel(state.text, words);
    root.querySelector(".words").innerHTML = wl.map((w) =>
      `<span class="piece${w === "[UNK]" ? " unk" : ""}">${escapeHtml(w)}</span>`).join("");
    const unk = wl.filter((w) => w === "[UNK]").length;
    const chars = [...state.text].length;
    root.querySelector(".stats").textContent =
      `${chars} characters → ${ids.length} BPE tokens (${(chars / Math.max(1, ids.length)).toFixed(2)} characters per token); ` +
      `word level: ${wl.length} word${wl.length === 1 ? "" : "s"}, ${unk} unknown. Decoding the BPE ids gives the text back exactly.`;
  }

  input.addEventListener("input", () => { state.text = input.value; sync("text", state.text); draw(); });
  slider.addEventListener("input", () => { state.nMerges = Number(slider.value); sync("n_merges", state.nMerges); draw(); });
  draw();
}

export default { render };
