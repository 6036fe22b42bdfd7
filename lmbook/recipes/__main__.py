"""Command line: ``python -m lmbook.recipes <name> [--out DIR]`` or ``python -m lmbook.recipes --list``."""

from __future__ import annotations

import argparse
import json
import sys

from lmbook.recipes import RECIPES, checkpoint_dir, run_recipe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmbook.recipes",
                                     description="Train one of the book's shipped checkpoints.")  # fmt: skip
    parser.add_argument("name", nargs="?", help="recipe to run; --list shows them")
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    parser.add_argument("--out", help="write here instead of lmbook/checkpoints/<name>")
    args = parser.parse_args(argv)
    if args.list or args.name is None:
        for name, target in RECIPES.items():
            print(f"{name:18s} {target:45s} -> {checkpoint_dir(name)}")
        return 0 if args.list else 2
    if args.name not in RECIPES:
        print(f"unknown recipe {args.name!r}; available: {', '.join(RECIPES)}", file=sys.stderr)
        return 2
    metrics = run_recipe(args.name, args.out)
    print(json.dumps(metrics, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
