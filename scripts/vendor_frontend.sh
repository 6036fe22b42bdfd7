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
echo "front end copied to $dst ($(du -sh "$dst" | cut -f1))"
