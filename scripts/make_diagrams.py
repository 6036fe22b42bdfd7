"""Draw the book's diagrams as plain SVG files, laid out by hand in this script.

    .venv/bin/python scripts/make_diagrams.py            # writes book/figures/*.svg
    .venv/bin/python scripts/make_diagrams.py OUT_DIR    # writes them somewhere else

The SVGs are generated, never edited by hand: ``tests/test_diagrams.py`` regenerates
them and fails if the committed files differ. The output is deterministic (no dates,
no random numbers), uses a generic font stack and no external resources, and every
drawing is at most 760 px wide so that it fits the text column of the book.

Palette (the same meaning in every diagram):
attention blue, feed-forward orange, normalisation grey, residual green,
embeddings purple, output heads yellow, masks red.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from xml.sax.saxutils import escape

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
INK = "#1f2937"  # text and arrows
MUTED = "#4b5563"  # secondary text

# (fill, stroke) pairs
ATTN = ("#dbeafe", "#2563eb")
FFN = ("#ffedd5", "#ea580c")
NORM = ("#e5e7eb", "#6b7280")
RESID = ("#dcfce7", "#16a34a")
EMBED = ("#ede9fe", "#7c3aed")
HEAD = ("#fef9c3", "#ca8a04")
MASK = ("#fee2e2", "#dc2626")
PLAIN = ("#ffffff", "#374151")
HEAD_HUES = ["#2563eb", "#0d9488", "#7c3aed", "#db2777"]  # one colour per attention head
HEAD_TINTS = ["#dbeafe", "#ccfbf1", "#ede9fe", "#fce7f3"]


def fmt(v: float) -> str:
    """A coordinate as short, stable text."""
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else s


class Svg:
    """A tiny SVG writer: shapes are appended as strings, in drawing order."""

    def __init__(self, name: str, width: int, height: int, title: str, desc: str):
        assert width <= 760, width
        self.name, self.w, self.h = name, width, height
        self.title, self.desc = title, desc
        self.parts: list[str] = []
        self.arrow_colours: set[str] = set()

    # -- primitives -------------------------------------------------------------------
    def add(self, s: str) -> None:
        self.parts.append(s)

    def rect(self, x, y, w, h, colours=PLAIN, rx=6, dash=False, sw=1.5):
        fill, stroke = colours
        d = ' stroke-dasharray="5 4"' if dash else ""
        self.add(
            f'<rect x="{fmt(x)}" y="{fmt(y)}" width="{fmt(w)}" height="{fmt(h)}" rx="{rx}" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="{sw}"{d}/>'
        )

    def text(self, x, y, s, size=14, anchor="middle", weight="normal", colour=INK, italic=False):
        """Text with a small markup: ``W_{Q}`` is a subscript, ``K^{T}`` a superscript."""
        style = ' font-style="italic"' if italic else ""
        bold = f' font-weight="{weight}"' if weight != "normal" else ""
        body = rich(s, size)
        self.add(
            f'<text x="{fmt(x)}" y="{fmt(y)}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{colour}"{bold}{style}>{body}</text>'
        )

    def lines(self, x, y, rows, size=14, gap=None, **kw):
        """Several lines of text, the first baseline at y."""
        gap = gap or round(size * 1.3)
        for i, r in enumerate(rows):
            self.text(x, y + i * gap, r, size=size, **kw)

    def box(self, x, y, w, h, label, colours=PLAIN, size=14, sub=None, weight="normal", rx=6):
        """A rounded box with one centred label (and an optional smaller second line)."""
        self.rect(x, y, w, h, colours, rx=rx)
        cx = x + w / 2
        if sub is None:
            self.text(cx, y + h / 2 + size * 0.36, label, size=size, weight=weight)
        else:
            self.text(cx, y + h / 2 - 3, label, size=size, weight=weight)
            self.text(cx, y + h / 2 + 13, sub, size=12, colour=MUTED)

    def arrow(self, *pts, colour=INK, sw=1.6, dash=False, head=True):
        """A polyline through the points, with an arrowhead at the last one."""
        p = " ".join(f"{fmt(a)},{fmt(b)}" for a, b in pts)
        if head:
            self.arrow_colours.add(colour)
        marker = f' marker-end="url(#{self.name}-arrow-{colour[1:]})"' if head else ""
        d = ' stroke-dasharray="5 4"' if dash else ""
        self.add(
            f'<polyline points="{p}" fill="none" stroke="{colour}" stroke-width="{sw}" '
            f'stroke-linejoin="round"{d}{marker}/>'
        )

    def plus(self, cx, cy, r=12):
        """The residual addition: a green circle with a plus."""
        f, s = RESID
        self.add(f'<circle cx="{fmt(cx)}" cy="{fmt(cy)}" r="{r}" fill="{f}" stroke="{s}" stroke-width="1.8"/>')
        k = r * 0.55
        self.add(
            f'<path d="M{fmt(cx - k)},{fmt(cy)} H{fmt(cx + k)} M{fmt(cx)},{fmt(cy - k)} V{fmt(cy + k)}" '
            f'stroke="{s}" stroke-width="2"/>'
        )

    def grid(self, x, y, values, cell=12, hue="#2563eb", masked=None, stroke="#9ca3af"):
        """A small heatmap: values in [0, 1] shade from white to ``hue``; masked cells are hatched red."""
        n = len(values)
        for i in range(n):
            for j in range(len(values[i])):
                cx, cy = x + j * cell, y + i * cell
                if masked is not None and masked[i][j]:
                    self.add(
                        f'<rect x="{fmt(cx)}" y="{fmt(cy)}" width="{cell}" height="{cell}" '
                        f'fill="url(#{self.name}-hatch)" stroke="{stroke}" stroke-width="0.6"/>'
                    )
                else:
                    v = values[i][j]
                    self.add(
                        f'<rect x="{fmt(cx)}" y="{fmt(cy)}" width="{cell}" height="{cell}" fill="{hue}" '
                        f'fill-opacity="{v:.2f}" stroke="{stroke}" stroke-width="0.6"/>'
                    )

    # -- output -------------------------------------------------------------------------
    def render(self) -> str:
        colours = sorted(self.arrow_colours)
        markers = "".join(
            f'<marker id="{self.name}-arrow-{c[1:]}" viewBox="0 0 10 10" refX="9" refY="5" '
            f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>'
            for c in colours
        )
        hatch = (
            f'<pattern id="{self.name}-hatch" width="5" height="5" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate(45)"><rect width="5" height="5" fill="{MASK[0]}"/>'
            f'<line x1="0" y1="0" x2="0" y2="5" stroke="{MASK[1]}" stroke-width="1.5"/></pattern>'
        )
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.w}" height="{self.h}" '
            f'viewBox="0 0 {self.w} {self.h}" role="img" '
            f'aria-labelledby="{self.name}-title {self.name}-desc" '
            f'font-family="{FONT}">\n'
            f'<title id="{self.name}-title">{escape(self.title)}</title>\n'
            f'<desc id="{self.name}-desc">{escape(self.desc)}</desc>\n'
            f"<defs>{markers}{hatch}</defs>\n"
            f'<rect width="{self.w}" height="{self.h}" fill="#ffffff"/>\n'
        )
        return head + "\n".join(self.parts) + "\n</svg>\n"


_MARK = re.compile(r"([_^])\{([^}]*)\}")


def rich(s: str, size: int) -> str:
    """Escape text and turn ``_{x}`` / ``^{x}`` into shifted, smaller tspans (never below 12 px)."""
    small = max(12, round(size * 0.78))
    out, pos, shift = [], 0, 0
    for m in _MARK.finditer(s):
        if m.start() > pos:
            out.append(_plain(s[pos : m.start()], shift))
            shift = 0
        d = round(size * 0.3) if m.group(1) == "_" else -round(size * 0.4)
        out.append(f'<tspan dy="{d}" font-size="{small}">{escape(m.group(2))}</tspan>')
        shift = -d
        pos = m.end()
    if pos < len(s):
        out.append(_plain(s[pos:], shift))
        shift = 0
    if shift:  # restore the baseline for whatever follows the text element
        out.append(f'<tspan dy="{shift}"></tspan>')
    return "".join(out)


def _plain(s: str, shift: int) -> str:
    return f'<tspan dy="{shift}">{escape(s)}</tspan>' if shift else escape(s)


# ---------------------------------------------------------------------------------------
# 1. One Transformer block
# ---------------------------------------------------------------------------------------


def transformer_block() -> Svg:
    W, H = 760, 648
    g = Svg(
        "transformer_block",
        W,
        H,
        "One Transformer block (pre-LN), with the post-LN variant",
        "Read from the bottom up. The input x, a matrix of L token vectors of size d_model, goes through "
        "LayerNorm and multi-head self-attention; the result is added back to x by a residual connection. "
        "Then LayerNorm and a feed-forward network (Linear from d_model to d_ff, GELU, Linear back to "
        "d_model), added back by a second residual connection, give the output, of the same shape as the "
        "input. A stack repeats the block N times. A panel on the right shows the post-LN variant of the "
        "2017 paper and BERT, where LayerNorm comes after each residual addition.",
    )
    cx, bw = 250, 230  # main column centre and box width
    bx = cx - bw / 2
    g.text(cx, 26, "Pre-LN block (GPT-2 and most models since)", size=15, weight="bold")

    # y positions, top (output) to bottom (input)
    y_out, y_add2 = 62, 108
    ffn_top, ffn_bot = 136, 330
    y_ln2 = 352
    y_add1 = 432
    y_attn, y_ln1 = 462, 538
    y_in = 612

    g.text(cx, y_out - 10, "output  (L × d_{model})", size=14, weight="bold")
    g.arrow((cx, y_add2 - 12), (cx, y_out))

    # residual 2
    g.plus(cx, y_add2)
    g.arrow((cx, ffn_top), (cx, y_add2 + 14))

    # feed-forward container
    g.rect(bx - 10, ffn_top, bw + 20, ffn_bot - ffn_top, FFN, rx=10, dash=True)
    g.text(cx, ffn_top + 22, "Feed-forward network", size=14, weight="bold")
    ib = bw - 30
    g.box(cx - ib / 2, ffn_top + 36, ib, 36, "Linear  d_{ff} → d_{model}", FFN)
    g.box(cx - ib / 2, ffn_top + 92, ib, 36, "GELU  (ReLU in 2017)", FFN)
    g.box(cx - ib / 2, ffn_top + 148, ib, 36, "Linear  d_{model} → d_{ff}", FFN, size=14)
    g.arrow((cx, ffn_top + 92), (cx, ffn_top + 74))
    g.arrow((cx, ffn_top + 148), (cx, ffn_top + 130))
    g.arrow((cx, y_ln2), (cx, ffn_top + 186))

    # LayerNorm 2
    g.box(bx, y_ln2, bw, 34, "LayerNorm", NORM)
    g.arrow((cx, y_add1 - 12), (cx, y_ln2 + 36))

    # residual 1 and attention
    g.plus(cx, y_add1)
    g.arrow((cx, y_attn), (cx, y_add1 + 14))
    g.box(bx, y_attn, bw, 52, "Multi-head self-attention", ATTN, sub="Q, K, V all from the same tokens")
    g.arrow((cx, y_ln1), (cx, y_attn + 54))
    g.box(bx, y_ln1, bw, 34, "LayerNorm", NORM)

    # input and the two residual paths (green, on the right of the column)
    g.text(cx, y_in + 20, "input x  (L × d_{model})", size=14, weight="bold")
    split1 = y_in - 14
    g.arrow((cx, y_in + 4), (cx, y_ln1 + 36))
    rx_ = bx + bw + 34
    g.add(f'<circle cx="{fmt(cx)}" cy="{fmt(split1)}" r="3.5" fill="{RESID[1]}"/>')
    g.arrow((cx, split1), (rx_, split1), (rx_, y_add1), (cx + 14, y_add1), colour=RESID[1], sw=2.2)
    split2 = y_add1 - 26
    g.add(f'<circle cx="{fmt(cx)}" cy="{fmt(split2)}" r="3.5" fill="{RESID[1]}"/>')
    g.arrow((cx, split2), (rx_, split2), (rx_, y_add2), (cx + 14, y_add2), colour=RESID[1], sw=2.2)
    g.text(rx_ + 8, (split1 + y_add1) / 2 + 5, "residual", size=13, anchor="start", colour=RESID[1])
    g.text(rx_ + 8, (split2 + y_add2) / 2 + 5, "residual", size=13, anchor="start", colour=RESID[1])

    # "× N" bracket on the left
    lx = bx - 40
    top, bot = y_add2 - 16, split1 + 6
    g.add(
        f'<path d="M{fmt(lx + 10)},{fmt(top)} H{fmt(lx)} V{fmt(bot)} H{fmt(lx + 10)}" fill="none" '
        f'stroke="{MUTED}" stroke-width="1.6"/>'
    )
    g.text(lx - 10, (top + bot) / 2 - 4, "× N", size=16, anchor="end", weight="bold", colour=MUTED)
    g.text(lx - 10, (top + bot) / 2 + 14, "layers", size=13, anchor="end", colour=MUTED)

    # formulas under the title, on the right-hand side of the main column
    # post-LN panel
    px, pw = 470, 282
    g.rect(px, 44, pw, 594, ("#f9fafb", "#d1d5db"), rx=10)
    pcx = px + pw / 2
    g.text(pcx, 26, "Variant: post-LN", size=15, weight="bold")
    g.lines(pcx, 66, ["(2017 paper, BERT; lmbook's", "EncoderConfig default)"], size=13, colour=MUTED)
    sb = 150
    sx = pcx - sb / 2 - 14
    scx = sx + sb / 2
    ys = {"out": 118, "ln2": 130, "add2": 198, "ffn": 234, "ln1": 290, "add1": 372, "attn": 408, "in": 484}
    g.text(scx, ys["out"] - 8, "output", size=13, weight="bold")
    g.box(sx, ys["ln2"], sb, 30, "LayerNorm", NORM, size=13)
    g.arrow((scx, ys["ln2"]), (scx, ys["out"] - 4))
    g.plus(scx, ys["add2"], r=10)
    g.arrow((scx, ys["add2"] - 10), (scx, ys["ln2"] + 32))
    g.box(sx, ys["ffn"], sb, 30, "Feed-forward", FFN, size=13)
    g.arrow((scx, ys["ffn"]), (scx, ys["add2"] + 12))
    g.box(sx, ys["ln1"], sb, 30, "LayerNorm", NORM, size=13)
    g.arrow((scx, ys["ln1"]), (scx, ys["ffn"] + 32))
    g.plus(scx, ys["add1"], r=10)
    g.arrow((scx, ys["add1"] - 10), (scx, ys["ln1"] + 32))
    g.box(sx, ys["attn"], sb, 34, "Self-attention", ATTN, size=13)
    g.arrow((scx, ys["attn"]), (scx, ys["add1"] + 12))
    g.text(scx, ys["in"] + 14, "input x", size=13, weight="bold")
    g.arrow((scx, ys["in"]), (scx, ys["attn"] + 36))
    rr = sx + sb + 18
    s1, s2 = ys["in"] - 20, ys["ln1"] + 58
    for s, a in ((s1, ys["add1"]), (s2, ys["add2"])):
        g.add(f'<circle cx="{fmt(scx)}" cy="{fmt(s)}" r="3" fill="{RESID[1]}"/>')
        g.arrow((scx, s), (rr, s), (rr, a), (scx + 12, a), colour=RESID[1], sw=2)
    g.lines(
        px + 14,
        536,
        [
            "Post-LN:  x ← LN(x + f(x))",
            "Pre-LN:   x ← x + f(LN(x))",
            "Pre-LN keeps a clean residual path",
            "from input to output, so deep",
            "stacks train more stably.",
        ],
        size=13,
        anchor="start",
        gap=20,
    )
    return g


# ---------------------------------------------------------------------------------------
# 2. Three model families from the same blocks
# ---------------------------------------------------------------------------------------

BIDIR = [[0.55, 0.25, 0.7, 0.35, 0.2], [0.3, 0.6, 0.25, 0.5, 0.35], [0.45, 0.3, 0.55, 0.25, 0.6],
         [0.2, 0.5, 0.35, 0.65, 0.3], [0.35, 0.25, 0.5, 0.3, 0.7]]  # fmt: skip
CAUSAL_MASK = [[j > i for j in range(5)] for i in range(5)]


def _stack(g: Svg, x, y, w, rows, n_label="× N"):
    """A block stack: a frame with coloured sublayer rows (label, colours), top to bottom."""
    rh, pad = 28, 8
    h = pad + len(rows) * (rh + 6) - 6 + pad
    g.rect(x, y, w, h, ("#f9fafb", "#6b7280"), rx=8)
    for i, (label, col) in enumerate(rows):
        g.box(x + pad, y + pad + i * (rh + 6), w - 2 * pad, rh, label, col, size=13, rx=5)
    g.text(x + w + 6, y + h / 2 + 5, n_label, size=13, anchor="start", weight="bold", colour=MUTED)
    return h


def model_families() -> Svg:
    W, H = 760, 600
    g = Svg(
        "model_families",
        W,
        H,
        "Three model families built from the same blocks",
        "Three columns, each read from the bottom up. Encoder-only (BERT): tokens with a masked word go "
        "through embeddings and N encoder blocks with bidirectional self-attention, every token sees every "
        "other; an MLM head predicts the masked word. Decoder-only (GPT): the same block with a causal mask, "
        "each token sees only itself and earlier tokens; a next-token head predicts the following word. "
        "Encoder-decoder (the original Transformer, T5): an encoder reads the source sentence; a decoder with "
        "masked self-attention, cross-attention to the encoder output and a feed-forward network writes the "
        "target one token at a time.",
    )
    g.text(W / 2, 24, "The same parts, three wirings", size=16, weight="bold")
    y_head, y_stack, y_emb, y_tok = 104, 184, 334, 400

    def column(x, w, title, sub, examples):
        g.rect(x, 40, w, 548, ("#ffffff", "#d1d5db"), rx=10)
        g.text(x + w / 2, 64, title, size=15, weight="bold")
        g.text(x + w / 2, 83, sub, size=13, colour=MUTED)
        g.text(x + w / 2, 574, examples, size=13, colour=MUTED, italic=True)

    def single_stack(x, w, head, head_sub, attn_label, tokens, pattern_title, pattern_sub, values, masked):
        """One column of the encoder-only / decoder-only kind; returns nothing."""
        sw_ = 150
        sx = x + (w - sw_) / 2 - 14  # leave room for the "× N" on the right
        sc = sx + sw_ / 2
        g.box(sx, y_head, sw_, 40, head, HEAD, sub=head_sub)
        sh = _stack(g, sx, y_stack, sw_, [("Feed-forward", FFN), (attn_label, ATTN)])
        g.arrow((sc, y_stack), (sc, y_head + 42))
        g.box(sx, y_emb, sw_, 36, "Embed + positions", EMBED, size=13)
        g.arrow((sc, y_emb), (sc, y_stack + sh + 2))
        g.text(sc, y_tok, tokens, size=13)
        g.arrow((sc, y_tok - 16), (sc, y_emb + 38))
        cc = x + w / 2
        g.text(cc, 448, pattern_title, size=13, weight="bold")
        g.text(cc, 466, pattern_sub, size=13, colour=MUTED)
        g.grid(cc - 44, 480, values, cell=12, hue=ATTN[1], masked=masked)
        g.text(cc + 24, 492, "row: query", size=12, anchor="start", colour=MUTED)
        g.text(cc + 24, 508, "column: key", size=12, anchor="start", colour=MUTED)

    x0, w0 = 8, 216
    column(x0, w0, "Encoder-only", "e.g. BERT", "reads; does not generate text")
    single_stack(
        x0,
        w0,
        "MLM head",
        "[MASK] → sat",
        "Self-attention",
        "the cat [MASK] on the mat",
        "bidirectional attention:",
        "each token sees all tokens",
        BIDIR,
        None,
    )

    x1, w1 = 232, 216
    column(x1, w1, "Decoder-only", "e.g. GPT, Llama", "generates, left to right")
    causal = [[0.0 if j > i else round(1 / (i + 1) + 0.1 * (j == i), 2) for j in range(5)] for i in range(5)]
    single_stack(
        x1,
        w1,
        "Next-token head",
        "… sat on → the",
        "Masked self-attn",
        "the cat sat on",
        "causal mask:",
        "each token sees only the past",
        causal,
        CAUSAL_MASK,
    )

    # --- encoder-decoder ---------------------------------------------------------------
    x2, w2 = 456, 296
    column(x2, w2, "Encoder-decoder", "the 2017 Transformer, T5", "reads one sequence, writes another")
    ew, dw = 108, 140
    ex, dx = x2 + 12, x2 + w2 - dw - 12
    ec, dc = ex + ew / 2, dx + dw / 2
    # decoder (right)
    g.box(dx, y_head, dw, 40, "Next-token head", HEAD, size=13, sub="el gato → se")
    d_top = y_stack - 20
    dh = _stack(g, dx, d_top, dw, [("Feed-forward", FFN), ("Cross-attention", ATTN), ("Masked self-attn", ATTN)], "")
    g.arrow((dc, d_top), (dc, y_head + 42))
    g.text(dc + 8, d_top - 6, "decoder", size=13, anchor="start", weight="bold", colour=MUTED)
    g.box(dx, y_emb, dw, 36, "Embed + positions", EMBED, size=13)
    g.arrow((dc, y_emb), (dc, d_top + dh + 2))
    g.text(dc, y_tok, "<s> el gato", size=13)
    g.text(dc, y_tok + 17, "(target so far)", size=12, colour=MUTED)
    g.arrow((dc, y_tok - 16), (dc, y_emb + 38))
    # encoder (left)
    e_top = y_stack + 48
    eh = _stack(g, ex, e_top, ew, [("FFN", FFN), ("Self-attn", ATTN)], "")
    g.text(ex + 2, e_top - 6, "encoder", size=13, anchor="start", weight="bold", colour=MUTED)
    g.box(ex, y_emb, ew, 36, "Embed + pos.", EMBED, size=13)
    g.arrow((ec, y_emb), (ec, e_top + eh + 2))
    g.text(ec, y_tok, "the cat sat", size=13)
    g.text(ec, y_tok + 17, "(source)", size=12, colour=MUTED)
    g.arrow((ec, y_tok - 16), (ec, y_emb + 38))
    # encoder output -> cross-attention (keys and values)
    cross_y = d_top + 8 + 34 + 14
    ox = ex + ew - 18
    g.arrow((ox, e_top), (ox, cross_y), (dx + 6, cross_y), colour=ATTN[1], sw=2.2)
    g.text((ox + dx) / 2 + 2, cross_y - 6, "K, V", size=12, colour=ATTN[1], weight="bold")
    g.text(x2 + w2 / 2, 448, "× N on both sides", size=13, weight="bold", colour=MUTED)
    g.lines(
        x2 + w2 / 2,
        472,
        [
            "cross-attention: every target position",
            "looks at all source positions (queries",
            "from the decoder; keys and values",
            "from the encoder's output)",
        ],
        size=13,
        colour=MUTED,
        gap=18,
    )
    return g


# ---------------------------------------------------------------------------------------
# 3. Scaled dot-product attention, step by step
# ---------------------------------------------------------------------------------------


def attention_computation() -> Svg:
    W, H = 760, 628
    g = Svg(
        "attention_computation",
        W,
        H,
        "Scaled dot-product attention, step by step, with the shape of every tensor",
        "The input X, L tokens by d_model, is multiplied by three learned matrices W_Q, W_K and W_V to give "
        "queries Q, keys K and values V, each L by d_k. The scores Q times K transposed, divided by the square "
        "root of d_k, form an L by L matrix. A mask sets forbidden positions to minus infinity. A softmax over "
        "each row turns the scores into weights that sum to one. The weights times V give the output, L by "
        "d_k: each token's output is a weighted average of the value vectors.",
    )
    g.text(W / 2, 24, "softmax(QK^{T} / √d_{k} + mask) V", size=17, weight="bold")
    cx = 300  # main column centre; small example matrices live on the right
    # X
    g.box(cx - 90, 44, 180, 44, "X", EMBED, sub="L × d_{model}  (token vectors)", size=16)
    # Q K V
    qx = {"Q": cx - 210, "K": cx - 60, "V": cx + 90}
    qw, qy = 120, 140
    for name, x in qx.items():
        g.arrow((cx, 90), (cx, 108), (x + qw / 2, 108), (x + qw / 2, qy))
        g.text(
            x + qw / 2 + (-8 if name == "Q" else 8),
            128,
            f"× W_{{{name}}}",
            size=14,
            anchor="end" if name == "Q" else "start",
            colour=ATTN[1],
            weight="bold",
        )
        g.box(x, qy, qw, 44, name, ATTN, sub="L × d_{k}", size=16, weight="bold")
    g.lines(
        cx + 228,
        150,
        ["W_{Q}, W_{K}, W_{V}:", "d_{model} × d_{k} each,", "learned in training"],
        size=13,
        anchor="start",
        colour=MUTED,
        gap=18,
    )
    g.text(qx["Q"] + qw / 2, qy + 62, "what am I looking for?", size=12, colour=MUTED)
    g.text(qx["K"] + qw / 2, qy + 62, "what do I offer?", size=12, colour=MUTED)
    g.text(qx["V"] + qw / 2, qy + 62, "what do I pass on?", size=12, colour=MUTED)

    # scores
    sx, sw_ = cx - 180, 250
    sy = 232
    g.arrow((qx["Q"] + qw / 2, qy + 68), (qx["Q"] + qw / 2, sy))
    g.arrow((qx["K"] + qw / 2, qy + 68), (qx["K"] + qw / 2, sy))
    g.box(sx, sy, sw_, 48, "scores = QK^{T} / √d_{k}", ATTN, sub="L × L: query i against key j", size=15)
    # mask
    my = 312
    g.arrow((sx + sw_ / 2, sy + 48), (sx + sw_ / 2, my))
    g.box(sx, my, sw_, 48, "+ mask", MASK, sub="−∞ where i may not look at j", size=15)
    # softmax
    smy = 392
    g.arrow((sx + sw_ / 2, my + 48), (sx + sw_ / 2, smy))
    g.box(sx, smy, sw_, 48, "softmax over each row", ATTN, sub="L × L weights, each row sums to 1", size=15)
    # weights x V
    wy = 480
    vx = qx["V"] + qw / 2
    g.arrow((sx + sw_ / 2, smy + 48), (sx + sw_ / 2, wy))
    g.arrow((vx, qy + 68), (vx, wy + 24), (sx + sw_ + 2, wy + 24))
    g.box(sx, wy, sw_, 48, "weights × V", ATTN, sub="(L × L)(L × d_{k})", size=15)
    # output
    oy = 566
    g.arrow((sx + sw_ / 2, wy + 48), (sx + sw_ / 2, oy))
    g.box(sx, oy, sw_, 48, "output", EMBED, sub="L × d_{k}: a weighted average of values", size=15, weight="bold")

    # worked example on the right: a 4-token causal mask
    ex = 540
    g.text(ex + 80, 222, "example, L = 4", size=13, weight="bold", colour=MUTED)
    scores = [[0.6, 0.2, 0.9, 0.4], [0.3, 0.8, 0.1, 0.5], [0.7, 0.4, 0.5, 0.2], [0.2, 0.6, 0.3, 0.9]]
    cell = 16
    gx = ex + 80 - 2 * cell
    g.grid(gx, sy, scores, cell=cell, hue="#64748b")
    g.lines(gx + 4 * cell + 10, sy + 28, ["raw", "scores"], size=12, anchor="start", colour=MUTED, gap=15)
    causal = [[j > i for j in range(4)] for i in range(4)]
    g.grid(gx, my, scores, cell=cell, hue="#64748b", masked=causal)
    g.lines(
        gx + 4 * cell + 10, my + 28, ["causal mask:", "hatched = −∞"], size=12, anchor="start", colour=MUTED, gap=15
    )

    weights = []
    for i, row in enumerate(scores):
        e = [math.exp(3 * v) if j <= i else 0.0 for j, v in enumerate(row)]
        s = sum(e)
        weights.append([round(v / s, 2) for v in e])
    g.grid(gx, smy, weights, cell=cell, hue=ATTN[1], masked=causal)
    g.lines(gx + 4 * cell + 10, smy + 28, ["weights:", "masked = 0"], size=12, anchor="start", colour=MUTED, gap=15)
    g.lines(
        gx,
        492,
        ["row i: the token that asks", "column j: the token it", "looks at"],
        size=12,
        anchor="start",
        colour=MUTED,
        gap=16,
    )
    return g


# ---------------------------------------------------------------------------------------
# 4. Multi-head attention: split, attend, concatenate, project
# ---------------------------------------------------------------------------------------

HEAD_PATTERNS = [
    [[1 if j == max(i - 1, 0) else 0.08 for j in range(4)] for i in range(4)],  # previous token
    [[1 if j == i else 0.1 for j in range(4)] for i in range(4)],  # itself
    [[0.9 if j == 0 else 0.15 for j in range(4)] for i in range(4)],  # first token
    [[0.45 for _ in range(4)] for _ in range(4)],  # broad average
]


def multi_head() -> Svg:
    W, H = 760, 592
    g = Svg(
        "multi_head",
        W,
        H,
        "Multi-head attention: split into h heads, attend in parallel, concatenate, project with W_O",
        "The input X, L by d_model, is projected to Q, K and V, each L by d_model. Their d_model columns are "
        "split into h groups of d_k = d_model / h columns, one group per head; four heads are drawn. Each head "
        "runs scaled dot-product attention on its own slice and learns its own pattern, for example looking at "
        "the previous token, at itself, at the first token, or broadly. The h outputs, each L by d_k, are "
        "concatenated back to L by d_model and multiplied by the output matrix W_O, d_model by d_model.",
    )
    g.text(W / 2, 24, "Multi-head attention (drawn with h = 4)", size=16, weight="bold")
    h = 4
    seg = 64
    barw = seg * h
    bx = W / 2 - barw / 2

    def bar(y, label, note, tinted=True):
        for i in range(h):
            col = (HEAD_TINTS[i], HEAD_HUES[i]) if tinted else EMBED
            g.rect(bx + i * seg, y, seg, 30, col, rx=0, sw=1.2)
        g.text(bx - 12, y + 20, label, size=15, anchor="end", weight="bold")
        g.text(bx + barw + 12, y + 20, note, size=13, anchor="start", colour=MUTED)

    bar(44, "X", "L × d_{model}", tinted=False)
    g.arrow((W / 2, 76), (W / 2, 98))
    g.box(W / 2 - 150, 100, 300, 34, "Q = XW_{Q},  K = XW_{K},  V = XW_{V}", ATTN, size=14)
    g.text(W / 2 + 162, 122, "each L × d_{model}", size=13, anchor="start", colour=MUTED)
    g.arrow((W / 2, 136), (W / 2, 156))
    bar(158, "Q, K, V", "split the columns:")
    for i in range(h):
        g.text(bx + i * seg + seg / 2, 178, "d_{k}", size=13, colour=HEAD_HUES[i], weight="bold")
    g.text(bx + barw + 12, 178 + 17, "d_{k} = d_{model} / h each", size=13, anchor="start", colour=MUTED)

    # heads
    hw, gap = 164, 18
    hx0 = (W - (h * hw + (h - 1) * gap)) / 2
    hy, hh = 230, 172
    names = ["previous token", "itself", "first token", "broad"]
    for i in range(h):
        x = hx0 + i * (hw + gap)
        g.arrow(
            (bx + i * seg + seg / 2, 190),
            (bx + i * seg + seg / 2, 208),
            (x + hw / 2, 208),
            (x + hw / 2, hy),
            colour=HEAD_HUES[i],
        )
        g.rect(x, hy, hw, hh, (HEAD_TINTS[i], HEAD_HUES[i]), rx=8)
        g.text(x + hw / 2, hy + 22, f"head {i + 1}", size=15, weight="bold", colour=HEAD_HUES[i])
        g.text(x + hw / 2, hy + 44, f"softmax(Q_{{{i + 1}}}K_{{{i + 1}}}^{{T}}/√d_{{k}})V_{{{i + 1}}}", size=13)
        g.grid(x + hw / 2 - 32, hy + 58, HEAD_PATTERNS[i], cell=16, hue=HEAD_HUES[i])
        g.text(x + hw / 2, hy + 140, names[i], size=12, colour=MUTED, italic=True)
        g.text(x + hw / 2, hy + 160, "out: L × d_{k}", size=13)
        g.arrow(
            (x + hw / 2, hy + hh),
            (x + hw / 2, 418),
            (bx + i * seg + seg / 2, 418),
            (bx + i * seg + seg / 2, 434),
            colour=HEAD_HUES[i],
        )
    bar(436, "concat", "L × (h·d_{k}) = L × d_{model}")
    g.arrow((W / 2, 468), (W / 2, 484))
    g.box(W / 2 - 100, 486, 200, 34, "× W_{O}", ATTN, size=15, weight="bold")
    g.text(W / 2 + 112, 508, "d_{model} × d_{model}, mixes the heads", size=13, anchor="start", colour=MUTED)
    g.arrow((W / 2, 522), (W / 2, 536))
    g.text(W / 2, 554, "output  L × d_{model}", size=14, weight="bold")
    g.text(W / 2, 580, "BERT-base: d_{model} = 768, h = 12 heads, d_{k} = 64", size=13, colour=MUTED)
    return g


# ---------------------------------------------------------------------------------------
# 5. The source's pipeline: pretrain -> fine-tune -> interact
# ---------------------------------------------------------------------------------------


def pipeline() -> Svg:
    W, H = 760, 456
    g = Svg(
        "pipeline",
        W,
        H,
        "From pretraining to fine-tuning to dynamic interaction, and the chapters that run each stage",
        "Three stages from left to right. Pretraining (Chapter 4): a Transformer learns from unlabelled text "
        "with masked language modelling and next sentence prediction (BERT) or next-token prediction (GPT). "
        "Fine-tuning (Chapter 5): the pretrained model plus a small head learns from labelled examples: text "
        "classification, translation, question answering. Dynamic interaction (Chapter 6): the deployed model "
        "changes through prompts, through further training on new vocabulary, and through reinforcement "
        "learning from user feedback, which loops back into the model. Underneath all three lies the "
        "Transformer of Chapters 2 and 3.",
    )
    bw, gap = 230, 30
    x0 = (W - 3 * bw - 2 * gap) / 2
    top, bh, hh = 8, 340, 52
    # each body item: (text, kind) with kind "b" bold, "e" example (muted italic), "t" plain
    stages = [
        (
            "Pretraining",
            "Chapter 4",
            EMBED,
            "source §2.2, §3.2",
            ["unlabelled text", "(millions to trillions of tokens)"],
            [
                ("masked language model", "b"),
                ("the cat [MASK] on → sat", "e"),
                ("next sentence prediction", "b"),
                ("does sentence B follow A?", "e"),
                ("next-token prediction", "b"),
                ("the cat sat → on", "e"),
            ],
            "learns the language",
        ),
        (
            "Fine-tuning",
            "Chapters 5, 5b, 5c",
            FFN,
            "source §2.2, §3.3",
            ["labelled examples", "(hundreds to thousands)"],
            [
                ("pretrained model + a small head", "t"),
                ("text classification", "b"),
                ("topic of a news article (5)", "e"),
                ("machine translation", "b"),
                ("sentence in, sentence out (5b)", "e"),
                ("question answering", "b"),
                ("find the answer span (5c)", "e"),
            ],
            "learns one task",
        ),
        (
            "Dynamic interaction",
            "Chapters 6a, 6b, 6c",
            ATTN,
            "source §1.3, §2.3",
            ["people using the model", "(prompts, new words, ratings)"],
            [
                ("prompting", "b"),
                ("in-context learning (6a)", "e"),
                ("adapting to new vocabulary", "b"),
                ("full fine-tuning vs. LoRA (6b)", "e"),
                ("learning from user feedback", "b"),
                ("reward, KL penalty, RLHF (6c)", "e"),
            ],
            "keeps changing",
        ),
    ]
    for k, (title, chapters, col, src, data, body, result) in enumerate(stages):
        x = x0 + k * (bw + gap)
        cx = x + bw / 2
        g.rect(x, top, bw, bh, ("#ffffff", col[1]), rx=12, sw=2)
        g.add(
            f'<path d="M{fmt(x)},{fmt(top + hh)} V{fmt(top + 12)} Q{fmt(x)},{fmt(top)} {fmt(x + 12)},{fmt(top)} '
            f'H{fmt(x + bw - 12)} Q{fmt(x + bw)},{fmt(top)} {fmt(x + bw)},{fmt(top + 12)} V{fmt(top + hh)} Z" '
            f'fill="{col[0]}" stroke="{col[1]}" stroke-width="2"/>'
        )
        g.text(cx, top + 23, title, size=16, weight="bold")
        g.text(cx, top + 42, chapters, size=13, colour=col[1], weight="bold")
        g.text(cx, top + 74, "data", size=12, colour=MUTED, weight="bold")
        g.lines(cx, top + 93, data, size=13, gap=17)
        g.add(f'<line x1="{fmt(x + 20)}" y1="{top + 124}" x2="{fmt(x + bw - 20)}" y2="{top + 124}" stroke="#e5e7eb"/>')
        y = top + 146
        for text, kind in body:
            if kind == "b" and y > top + 150:
                y += 6
            if kind == "e":
                g.text(cx, y, text, size=13, colour=MUTED, italic=True)
            else:
                g.text(cx, y, text, size=13, weight="bold" if kind == "b" else "normal")
            y += 18
        g.text(cx, top + bh - 34, "→ " + result, size=14, weight="bold", colour=col[1])
        g.text(cx, top + bh - 12, src, size=12, colour=MUTED)
        if k < 2:
            ax = x + bw + 2
            g.arrow((ax, top + bh / 2), (ax + gap - 4, top + bh / 2), sw=2.4)
    # feedback loop under the last stage
    x = x0 + 2 * (bw + gap)
    ly = top + bh + 16
    g.arrow((x + bw - 24, top + bh + 2), (x + bw - 24, ly), (x + 24, ly), (x + 24, top + bh + 4), colour=ATTN[1], sw=2)
    g.text(x + bw / 2, ly + 17, "feedback changes the model", size=12, colour=ATTN[1], italic=True)
    # foundation bar
    fy = top + bh + 46
    g.rect(x0, fy, 3 * bw + 2 * gap, 52, NORM, rx=8)
    g.text(W / 2, fy + 21, "Underneath all three: the Transformer", size=14, weight="bold")
    g.text(W / 2, fy + 41, "Chapter 1 (background), Chapter 2 (architecture), Chapter 3 (attention)", size=13)
    return g


DIAGRAMS = {
    "transformer_block.svg": transformer_block,
    "model_families.svg": model_families,
    "attention_computation.svg": attention_computation,
    "multi_head.svg": multi_head,
    "pipeline.svg": pipeline,
}


def write_all(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in DIAGRAMS.items():
        path = out_dir / name
        path.write_text(make().render(), encoding="utf-8", newline="\n")
        written.append(path)
    return written


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "book" / "figures"
    for p in write_all(out):
        print(p)
