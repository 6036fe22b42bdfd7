"""Generation with and without a KV cache: lmbook in PyTorch and the live generator's JavaScript (Chapter 6a).

The book's decoder continues a 6-token prompt by 120 tokens greedily (the context stays under
max_len = 128), once reading every earlier key and value from the cache, once re-running the
whole context at every step. Both ways give the same tokens (asserted). Timed round-robin,
medians reported; JavaScript runs in node on the page's float16 weights, first token and all.

    python benchmarks/kv_cache.py [--repeats R] [--new N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import time

import torch

from lmbook.checkpointing import load_pretrained
from lmbook.generation import generate
from lmbook.widgets.live_decoder import LiveGenerator, live_decoder_esm

JS = """
const mod = await import("data:text/javascript;charset=utf-8," + encodeURIComponent(SRC));
let input = "";
for await (const chunk of process.stdin) input += chunk;
const { payload, ids, n, repeats } = JSON.parse(input);
const W = mod.decodeWeights(payload);
const times = { true: [], false: [] }, out = {};
for (let r = 0; r < repeats; r++) {
  for (const useCache of [true, false]) {
    const g = mod.generate(W, ids, n, { greedy: true, useCache });
    times[useCache].push([g.ms[0], g.ms[g.ms.length - 1]]);
    out[useCache] = g.ids;
  }
}
process.stdout.write(JSON.stringify({ times, same: JSON.stringify(out.true) === JSON.stringify(out.false) }));
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--new", type=int, default=120)
    args = parser.parse_args()
    torch.set_num_threads(1)
    decoder, tokenizer = load_pretrained("decoder"), load_pretrained("tokenizer-wiki")
    live = LiveGenerator(decoder, tokenizer, "The history of the city")
    ids = live.ids()

    times = {True: [], False: []}
    outs = {}
    for _ in range(args.repeats):
        for use_cache in (True, False):
            t0 = time.perf_counter()
            outs[use_cache] = generate(decoder, torch.tensor(ids), args.new, greedy=True, use_cache=use_cache)
            times[use_cache].append(time.perf_counter() - t0)
    assert torch.equal(outs[True], outs[False])
    py = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"PyTorch, {len(ids)}-token prompt + {args.new} tokens: cache {py[True]:.0f} ms, "
          f"no cache {py[False]:.0f} ms -> {py[False] / py[True]:.1f}x")

    node = shutil.which("node")
    if node is None:
        print("node not found: JavaScript not measured")
        return
    script = JS.replace("SRC", json.dumps(live_decoder_esm()))
    done = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, check=True,
                          input=json.dumps({"payload": live.weights, "ids": ids, "n": args.new,
                                            "repeats": args.repeats}))  # fmt: skip
    result = json.loads(done.stdout)
    assert result["same"]
    js = {k: [statistics.median(t[i] for t in v) for i in (0, 1)] for k, v in result["times"].items()}
    print(f"JavaScript (node), same: cache {js['true'][1]:.0f} ms (first token {js['true'][0]:.0f} ms), "
          f"no cache {js['false'][1]:.0f} ms -> {js['false'][1] / js['true'][1]:.1f}x")


if __name__ == "__main__":
    main()
