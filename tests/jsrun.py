"""Run a function exported by one of the widgets' JavaScript files in node.

    run_js("attention_explorer.js", "attentionWeights", scores, {"dK": 8})

The file is imported as an ES module (from a data: URL, so no package.json is
needed); the arguments and the result travel as JSON.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from lmbook.widgets import JS_DIR

NODE = shutil.which("node")


def run_js(filename: str, function: str, *args):
    if NODE is None:
        pytest.skip("node is not installed")
    source = (JS_DIR / filename).read_text()
    script = f"""
const src = {json.dumps(source)};
const mod = await import("data:text/javascript;charset=utf-8," + encodeURIComponent(src));
const args = JSON.parse(process.argv[1]);
try {{
  process.stdout.write(JSON.stringify(mod[{json.dumps(function)}](...args)));
}} catch (e) {{
  process.stderr.write("JSERROR " + e.message);
  process.exit(1);
}}
"""
    done = subprocess.run([NODE, "--input-type=module", "-e", script, json.dumps(args)],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        message = done.stderr.split("JSERROR ", 1)[-1][-2000:]
        raise RuntimeError(f"node failed running {filename}:{function}: {message}")
    return json.loads(done.stdout)
