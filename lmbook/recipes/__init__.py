"""Recipes: the longer training runs whose results ship in ``lmbook/checkpoints/``.

A notebook gets about a minute of CPU; anything longer is a *recipe*, one plain
function that anyone can rerun with ``python -m lmbook.recipes <name>`` and that
writes ``lmbook/checkpoints/<name>/`` (weights, config and the metrics it measured).

``RECIPES`` maps each name to ``"module:function"``. A recipe function takes one
keyword argument, ``out_dir`` (a ``pathlib.Path``, by default ``checkpoint_dir(name)``),
writes its files there and returns its metrics as a dict. Adding a recipe is one line
here. Modules are imported only when a recipe runs, so importing this package is cheap.

Example:
    >>> from lmbook.recipes import load_pretrained
    >>> tok = load_pretrained("tokenizer-wiki")           # doctest: +SKIP
    >>> encoder = load_pretrained("encoder")               # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

__all__ = ["CHECKPOINTS", "RECIPES", "checkpoint_dir", "load_pretrained", "recipe_function", "run_recipe"]

RECIPES: dict[str, str] = {
    # Chapter 4, pretraining (lmbook/recipes/pretrain.py)
    "tokenizer-wiki": "lmbook.recipes.pretrain:tokenizer_wiki",
    "encoder": "lmbook.recipes.pretrain:encoder",
    "decoder": "lmbook.recipes.pretrain:decoder",
    "encoder-mlm-only": "lmbook.recipes.pretrain:encoder_mlm_only",
    # Chapter 5, fine-tuning (lmbook/recipes/finetune.py)
    "classifier": "lmbook.recipes.finetune:classifier",
    "translator": "lmbook.recipes.finetune:translator",
    "qa": "lmbook.recipes.finetune:qa",
}
"""Recipe name -> ``"module:function"``; the name is also the checkpoint folder's name."""

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
"""The folder that holds the shipped checkpoints, ``lmbook/checkpoints``."""


def _check_name(name: str) -> None:
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; available: {', '.join(RECIPES)}")


def checkpoint_dir(name: str) -> Path:
    """Folder of the shipped checkpoint ``name``: ``lmbook/checkpoints/<name>`` (it may not exist yet)."""
    _check_name(name)
    return CHECKPOINTS / name


def recipe_function(name: str) -> Callable:
    """Import and return the function behind recipe ``name``."""
    _check_name(name)
    module, _, function = RECIPES[name].partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:
            raise
        raise ModuleNotFoundError(f"recipe {name!r} lives in {module}, which does not exist (yet)") from err
    if not hasattr(mod, function):
        raise AttributeError(f"recipe {name!r}: {module} has no function {function!r}")
    return getattr(mod, function)


def run_recipe(name: str, out_dir: str | Path | None = None) -> dict:
    """Run recipe ``name``, writing into ``out_dir`` (default ``checkpoint_dir(name)``); returns its metrics."""
    fn = recipe_function(name)
    return fn(out_dir=Path(out_dir) if out_dir is not None else checkpoint_dir(name))


def load_pretrained(name: str, path: str | Path | None = None):
    """Load a shipped checkpoint: ``"tokenizer-wiki"`` gives a ``BPETokenizer``, the others a model in eval mode.

    Args:
        name: a recipe name, e.g. ``"encoder"``, ``"decoder"`` or ``"tokenizer-wiki"``.
        path: read from this folder instead of ``checkpoint_dir(name)`` (e.g. a fresh run's ``out_dir``).

    Raises:
        FileNotFoundError: the checkpoint is missing; the message gives the command that makes it.
        ValueError: a file is truncated or corrupted (from ``lmbook.training.load_checkpoint``).
    """
    folder = Path(path) if path is not None else checkpoint_dir(name)
    is_tokenizer = name.startswith("tokenizer")
    needed = folder / ("tokenizer.json" if is_tokenizer else "model.safetensors")
    if not needed.is_file():
        raise FileNotFoundError(f"checkpoint {name!r} not found at {needed}; make it with: "
                                f"python -m lmbook.recipes {name}")  # fmt: skip
    if is_tokenizer:
        from lmbook.tokenizers import BPETokenizer

        return BPETokenizer.load(needed)
    from lmbook.training import load_checkpoint

    return load_checkpoint(folder)
