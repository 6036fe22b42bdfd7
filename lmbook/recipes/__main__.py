"""Command line: ``python -m lmbook.recipes <name> [--out DIR] [--device cpu|cuda]`` or ``... --list``.

Several processes: ``torchrun --nproc_per_node N -m lmbook.recipes <name> [--device cuda]`` (book: sec-training-bigger).
"""

from __future__ import annotations

import argparse
import json
import sys

from lmbook.distributed import DEVICES, check_device, is_main_process
from lmbook.recipes import RECIPES, checkpoint_dir, prepare_out_dir, run_recipe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmbook.recipes",
                                     description="Train one of the book's shipped checkpoints.")  # fmt: skip
    parser.add_argument("name", nargs="?", help="recipe to run; --list shows them")
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    parser.add_argument("--out", help="write here instead of lmbook/checkpoints/<name>")
    parser.add_argument("--device", choices=DEVICES, default="cpu",
                        help="train on this device (default cpu); cuda trains in bfloat16 autocast")  # fmt: skip
    args = parser.parse_args(argv)
    listing = "\n".join(f"{name:18s} {target:45s} -> {checkpoint_dir(name)}" for name, target in RECIPES.items())
    if args.list:
        print(listing)
        return 0
    if args.name is None:
        print(f"{parser.format_usage().rstrip()}\nerror: name a recipe; the recipes are:\n{listing}", file=sys.stderr)
        return 2
    if args.name not in RECIPES:
        print(f"unknown recipe {args.name!r}; available: {', '.join(RECIPES)}", file=sys.stderr)
        return 2
    try:
        check_device(args.device)
    except (RuntimeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        prepare_out_dir(args.out if args.out is not None else checkpoint_dir(args.name))
    except OSError as err:
        print(f"error: --out: {err}", file=sys.stderr)
        return 2
    metrics = run_recipe(args.name, args.out, device=args.device)
    if is_main_process():
        print(json.dumps(metrics, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
