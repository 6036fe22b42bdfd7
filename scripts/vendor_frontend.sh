#!/usr/bin/env bash
# Copy the pinned front-end files from node_modules/ to book/assets/vendor/,
# where the Sphinx build serves them as _static/vendor/.
set -euo pipefail
src=node_modules
dst=book/assets/vendor
rm -rf "$dst"
mkdir -p "$dst/html-manager" "$dst/anywidget" "$dst/mathjax"
cp "$src/d3/dist/d3.min.js" "$dst/d3.min.js"
cp "$src/jquery/dist/jquery.min.js" "$dst/jquery.min.js"
cp "$src/requirejs/require.js" "$dst/require.js"
cp "$src"/@jupyter-widgets/html-manager/dist/{embed-amd.js,libembed-amd.js} "$dst/html-manager/"
find "$src/@jupyter-widgets/html-manager/dist" -maxdepth 1 -type f \
  \( -name '*.woff' -o -name '*.woff2' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) \
  -exec cp {} "$dst/html-manager/" \;
cp "$src/anywidget/dist/index.js" "$dst/anywidget/index.js"
cp "$src/mathjax/es5/tex-chtml.js" "$dst/mathjax/"
cp -r "$src/mathjax/es5/output" "$dst/mathjax/"
cp -r "$src/mathjax/es5/input" "$dst/mathjax/" 2>/dev/null || true
# Noto Sans SC (SIL OFL 1.1), weight 400 only, for Chinese text. The CSS splits the
# font into ~100 woff2 chunks by unicode-range, so a page downloads only the chunks its
# characters need. Each chunk's range is cut down to the CJK blocks (chunks left empty
# are dropped): "Noto Sans SC" can then stand first in the page's font stacks
# (book/assets/lmbook.css) and still never draw Latin text. It must stand first:
# Chromium with no system CJK font keeps tofu in text it laid out before a web font
# that it reached only as a fallback had loaded. woff fallbacks are dropped (every
# supported browser reads woff2); url(./files/...) stays relative.
font=@fontsource/noto-sans-sc
mkdir -p "$dst/noto-sans-sc/files"
cp "$src/$font/LICENSE" "$dst/noto-sans-sc/LICENSE"
python3 - "$src/$font/400.css" "$dst/noto-sans-sc/400.css" <<'PY'
import re, sys
CJK = [(0x2E80, 0x2FDF), (0x3000, 0x9FFF), (0xF900, 0xFAFF), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF), (0x20000, 0x3FFFF)]
def cut(ranges):
    out = []
    for part in ranges.split(","):
        lo, _, hi = part.strip()[2:].partition("-")
        lo, hi = int(lo, 16), int(hi or lo, 16)
        for a, b in CJK:
            x, y = max(lo, a), min(hi, b)
            if x <= y:
                out.append(f"U+{x:x}" + (f"-{y:x}" if y > x else ""))
    return ",".join(out)
css, faces = open(sys.argv[1]).read(), []
for face in re.findall(r"@font-face \{.*?\}", css, re.S):
    face = re.sub(r", url\(\./files/[^)]*\.woff\) format\('woff'\)", "", face)
    ranges = cut(re.search(r"unicode-range: ([^;]+);", face).group(1))
    if ranges:
        faces.append(re.sub(r"unicode-range: [^;]+;", f"unicode-range: {ranges};", face))
open(sys.argv[2], "w").write("/* @fontsource/noto-sans-sc 400.css, ranges cut to CJK by scripts/vendor_frontend.sh */\n"
                             + "\n".join(faces) + "\n")
PY
grep -o 'url(\./files/[^)]*)' "$dst/noto-sans-sc/400.css" | sed -E 's#^url\(\./(.*)\)$#\1#' \
  | while read -r f; do cp "$src/$font/$f" "$dst/noto-sans-sc/$f"; done
echo "front end copied to $dst ($(du -sh "$dst" | cut -f1))"
