"""Recipes: the longer training runs whose results ship in ``lmbook/checkpoints/``.

A notebook gets about a minute of CPU; anything longer is a *recipe*, one plain
function that anyone can rerun with ``python -m lmbook.recipes <name>`` and that
writes ``lmbook/checkpoints/<name>/`` (weights, config and the metrics it measured).

``RECIPES`` maps each name to ``"module:function"``. A recipe function takes one
keyword argument, ``out_dir`` (a ``pathlib.Path``, by default ``checkpoint_dir(name)``),
writes its files there and returns its metrics as a dict. Adding a recipe is one line
here. Modules are imported only when a recipe runs, so importing this package is cheap.
``checkpoint_dir`` and ``load_pretrained`` live in ``lmbook.checkpointing`` and are re-exported here.
Recipes only train and write checkpoints: the data splits, evaluation sets and baselines they use
live in the library (``lmbook.pretraining``, ``lmbook.finetuning``) and ``_setup`` is their one
shared seed-and-threads call.

``run_recipe(name, device="cuda")`` (``--device cuda`` on the command line) trains on a GPU: the device is
set for the whole run with ``lmbook.distributed.use_device``, which ``lmbook.training.train`` reads, so the
recipe functions take no device argument. Under ``torchrun --nproc_per_node N`` every process runs the
recipe and ``train`` shares each batch between them; only rank 0 writes into ``out_dir`` (the other ranks
write into a temporary folder that is deleted afterwards).

The shipped checkpoints were trained with PyTorch's per-tensor AdamW loop; since then ``train`` uses the
fused AdamW kernel (``lmbook.training.adamw``), whose rounding differs in the last bits, so a rerun
does not reproduce their files bit for bit.

Example:
    >>> from lmbook.recipes import load_pretrained
    >>> tok = load_pretrained("tokenizer-wiki")           # doctest: +SKIP
    >>> encoder = load_pretrained("encoder")               # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import importlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from lmbook.checkpointing import CHECKPOINTS, checkpoint_dir, load_pretrained

__all__ = ["CHECKPOINTS", "RECIPES", "checkpoint_dir", "load_pretrained", "prepare_out_dir", "recipe_function",
           "run_recipe"]  # fmt: skip

RECIPES: dict[str, str] = {
    # Chapter 4, pretraining (lmbook/recipes/pretrain.py)
    "tokenizer-wiki": "lmbook.recipes.pretrain:tokenizer_wiki",
    "encoder": "lmbook.recipes.pretrain:encoder",
    "decoder": "lmbook.recipes.pretrain:decoder",
    "encoder-mlm-only": "lmbook.recipes.pretrain:encoder_mlm_only",
    # Chapter 5, fine-tuning (lmbook/recipes/finetune.py; translator: lmbook/recipes/translate.py)
    "classifier": "lmbook.recipes.finetune:classifier",
    "translator": "lmbook.recipes.translate:translator",
    "qa": "lmbook.recipes.finetune:qa",
    # Chapter 5, sentiment in Chinese (lmbook/recipes/chinese.py)
    "encoder-zh": "lmbook.recipes.chinese:encoder_zh",
    "sentiment-zh": "lmbook.recipes.chinese:sentiment_zh",
}
"""Recipe name -> ``"module:function"``; the name is also the checkpoint folder's name."""


def _check_name(name: str) -> None:
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; available: {', '.join(RECIPES)}")


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


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create ``out_dir`` and check that a file can be written there, before any training starts.

    Raises:
        OSError: ``out_dir`` cannot be created or written; the message names it (``--out`` on the command line).
    """
    out = Path(out_dir)
    probe = out / f".write-test-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise type(err)(f"out_dir (--out) {str(out)!r} is not a folder this process can write: {err.strerror or err}; "
                        f"nothing was trained, pass a writable folder") from err  # fmt: skip
    return out


def run_recipe(name: str, out_dir: str | Path | None = None, device: str | None = None) -> dict:
    """Run recipe ``name``, writing into ``out_dir`` (default ``checkpoint_dir(name)``); returns its metrics.

    ``out_dir`` is created and checked for writing first, so a bad folder fails before any training.
    ``device`` (``"cpu"`` or ``"cuda"``; None keeps ``lmbook.distributed.current_device()``, cpu unless
    ``$LMBOOK_DEVICE`` says otherwise) is where ``train`` runs; a device this machine lacks fails at once.
    Under ``torchrun`` only rank 0 writes into ``out_dir``.
    """
    from lmbook import distributed

    fn = recipe_function(name)
    out = prepare_out_dir(out_dir if out_dir is not None else checkpoint_dir(name))
    with contextlib.ExitStack() as stack:
        if device is not None:
            stack.enter_context(distributed.use_device(device))
        if not distributed.is_main_process():  # one writer: the other ranks' files go to a throwaway folder
            out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"lmbook-rank{distributed.rank()}-")))
        return fn(out_dir=out)


def _setup(seed: int = 0) -> None:
    """What every recipe does first: one torch thread and fixed seeds (torch, and Python's ``random``)."""
    import random

    import torch

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    random.seed(seed)
