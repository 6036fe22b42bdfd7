"""Checkpoints: writing a trained model to disk and rebuilding it (Chapters 4-6).

A checkpoint is two plain files: ``model.safetensors`` holds the weights (named
tensors only, so loading one never runs code, unlike a pickle) and ``config.json``
holds the model's class name, its config dataclass and its metrics, enough to
rebuild it with ``Model(config)``.

A checkpoint finds its class through one registry: every model class the book ships
is decorated with ``register_model`` (``lmbook.models``, ``lmbook.finetuning``), and
``load_checkpoint`` looks the saved class name up there. The shipped checkpoints live
in ``lmbook/checkpoints/<name>/`` (``checkpoint_dir``); ``load_pretrained`` reads one.
"""

from __future__ import annotations

import importlib
import json
import sys
import typing
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path

from safetensors.torch import load_file, save_model
from torch import nn

__all__ = ["CHECKPOINTS", "MODEL_MODULES", "checkpoint_dir", "load_checkpoint", "load_pretrained", "read_metrics",
           "register_model", "save_checkpoint"]  # fmt: skip

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
"""The folder that holds the shipped checkpoints, ``lmbook/checkpoints``."""

MODEL_MODULES = ("lmbook.models", "lmbook.finetuning")
"""Modules whose model classes register themselves (imported before a saved class name is looked up)."""

_MODEL_REGISTRY: dict[str, type[nn.Module]] = {}


def register_model(cls: type[nn.Module]) -> type[nn.Module]:
    """Let ``load_checkpoint`` find ``cls`` by its class name; use it as a decorator on every model class."""
    _MODEL_REGISTRY[cls.__name__] = cls
    return cls


def _model_class(name: str) -> type[nn.Module]:
    """The registered class called ``name`` (importing ``MODEL_MODULES`` first registers the book's models)."""
    if name not in _MODEL_REGISTRY:
        for module in MODEL_MODULES:
            importlib.import_module(module)
    if name not in _MODEL_REGISTRY:
        raise ValueError(f"unknown model class {name!r}: pass model_cls=..., or register it with register_model")
    return _MODEL_REGISTRY[name]


def _config_class(model_cls: type, name: str | None) -> type:
    """The config dataclass: ``model_cls.config_class``, the ``config`` annotation, or ``name`` in its module."""
    try:
        hint = typing.get_type_hints(model_cls.__init__).get("config")
    except Exception:  # annotations that do not resolve: fall back to the saved name
        hint = None
    module = sys.modules.get(model_cls.__module__)
    for cls in (getattr(model_cls, "config_class", None), hint, getattr(module, name or "", None)):
        if isinstance(cls, type) and is_dataclass(cls):
            return cls
    raise ValueError(f"cannot find the config class {name!r} of {model_cls.__name__}; pass config_cls=...")


def _paths(path: str | Path) -> tuple[Path, Path]:
    """``dir`` -> dir/model.safetensors, dir/config.json; ``stem.safetensors`` -> itself and ``stem.json``."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return path, path.with_suffix(".json")
    return path / "model.safetensors", path / "config.json"


def _config_dict(config) -> dict | None:
    if config is not None and not is_dataclass(config):
        raise TypeError(f"model.config must be a dataclass instance, got {type(config).__name__}")
    return None if config is None else json.loads(json.dumps(asdict(config)))  # tuples -> lists, as on disk


def save_checkpoint(model: nn.Module, path: str | Path, *, metrics: dict | None = None,
                    extra: dict | None = None) -> Path:  # fmt: skip
    """Write ``model`` as ``model.safetensors`` + ``config.json`` (no pickle anywhere); tied weights are stored once.

    Args:
        model: the model; its ``model.config`` dataclass, if any, is saved with it.
        path: a directory (created if needed), or ``stem.safetensors`` for ``stem.safetensors`` + ``stem.json``.
        metrics: JSON-able numbers worth keeping (tensors and numpy scalars are converted), e.g. ``{"val_loss": 2.3}``.
        extra: any other JSON-able information (recipe, data, ...).

    Returns:
        The path of the weights file.
    """
    from lmbook import __version__

    weights, config_path = _paths(path)
    config = getattr(model, "config", None)
    text = json.dumps({  # fails before any file is written if something is not JSON-able
        "model_class": type(model).__name__,
        "config_class": type(config).__name__ if config is not None else None,
        "config": _config_dict(config),
        "metrics": {k: v.item() if hasattr(v, "item") else v for k, v in (metrics or {}).items()},
        "extra": extra or {},
        "lmbook_version": __version__,
    }, indent=2)  # fmt: skip
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, str(weights), metadata={"format": "pt"}, force_contiguous=True)
    config_path.write_text(text + "\n")
    return weights


def _read_config(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint config not found: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from err


def read_metrics(path: str | Path) -> dict:
    """The ``metrics`` saved with a checkpoint (its directory or ``.safetensors`` path)."""
    return _read_config(_paths(path)[1]).get("metrics", {})


def _load_weights(model: nn.Module, weights: Path) -> None:
    """Copy the tensors of ``weights`` into ``model``, naming every missing, unexpected or misshapen one."""
    if not weights.is_file():
        raise FileNotFoundError(f"checkpoint weights not found: {weights}")
    try:
        tensors = load_file(str(weights))
    except Exception as err:  # safetensors raises its own error type for a bad header or short data
        raise ValueError(f"{weights} is not a readable safetensors file (truncated or corrupted?): {err}") from err
    expected = model.state_dict()
    tied: dict[tuple, list[str]] = {}  # names that share one tensor need only one of them in the file
    for name, t in expected.items():
        tied.setdefault((t.data_ptr(), tuple(t.shape)) if t.numel() else (name,), []).append(name)
    problems = [f"missing tensor {' = '.join(names)!r}" for names in tied.values() if not set(names) & set(tensors)]
    problems += [f"unexpected tensor {name!r}" for name in tensors if name not in expected]
    for name, t in tensors.items():
        if name in expected and t.shape != expected[name].shape:
            shapes = f"{tuple(t.shape)} in the file but {tuple(expected[name].shape)} in the model"
            problems.append(f"tensor {name!r} has shape {shapes}")
    if problems:
        raise ValueError(f"{weights} does not fit {type(model).__name__}: " + "; ".join(problems))
    model.load_state_dict(tensors, strict=False)


def load_checkpoint(path: str | Path, model_cls: type | None = None, config_cls: type | None = None, *,
                    model: nn.Module | None = None) -> nn.Module:  # fmt: skip
    """Rebuild a model saved by ``save_checkpoint``, or load its weights into ``model``.

    Without ``model``, the class is ``model_cls`` or the saved class name, looked up among
    ``register_model`` classes; it is built as ``model_cls(config_cls(**config))``.

    Args:
        path: the directory or ``.safetensors`` path given to ``save_checkpoint``.
        model_cls: the model class, when its name is not registered.
        config_cls: its config dataclass, when the model class does not name it.
        model: an existing model to load into; its config must equal the saved one.

    Returns:
        The model, in eval mode.

    Raises:
        FileNotFoundError: a checkpoint file is missing.
        ValueError: a corrupted file; a saved config that differs from ``model.config`` (each field
            named with both values); tensors missing, unexpected or of the wrong shape.
    """
    weights, config_path = _paths(path)
    meta = _read_config(config_path)
    saved = meta.get("config")
    if model is None:
        model_cls = model_cls or _model_class(meta["model_class"])
        if saved is None:
            model = model_cls()
        else:
            config_cls = config_cls or _config_class(model_cls, meta.get("config_class"))
            known = {f.name: f for f in fields(config_cls)}
            if unknown := sorted(set(saved) - set(known)):
                raise ValueError(f"{config_path}: {unknown} are not fields of {config_cls.__name__}")
            model = model_cls(config_cls(**{k: tuple(v) if "tuple" in str(known[k].type) else v
                                            for k, v in saved.items()}))  # fmt: skip
    elif saved is not None and (mine := _config_dict(getattr(model, "config", None))) is not None:
        pairs = {k: (saved.get(k, "<absent>"), mine.get(k, "<absent>")) for k in sorted(set(saved) | set(mine))}
        diffs = [f"{k}: checkpoint has {a!r}, model has {b!r}" for k, (a, b) in pairs.items() if a != b]
        if diffs:
            raise ValueError(f"config in {config_path} does not match the model: " + "; ".join(diffs))
    _load_weights(model, weights)
    return model.eval()


def checkpoint_dir(name: str) -> Path:
    """Folder of the shipped checkpoint ``name``: ``lmbook/checkpoints/<name>`` (it may not exist yet).

    Raises:
        KeyError: ``name`` is not a recipe (``lmbook.recipes.RECIPES`` names every shipped checkpoint).
    """
    from lmbook.recipes import RECIPES  # the table of names only; no recipe module is imported

    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; available: {', '.join(RECIPES)}")
    return CHECKPOINTS / name


def load_pretrained(name: str, path: str | Path | None = None):
    """Load a shipped checkpoint: ``"tokenizer-wiki"`` gives a ``BPETokenizer``, the others a model in eval mode.

    Args:
        name: a recipe name, e.g. ``"encoder"``, ``"decoder"`` or ``"tokenizer-wiki"``.
        path: read from this folder instead of ``checkpoint_dir(name)`` (e.g. a fresh run's ``out_dir``).

    Raises:
        FileNotFoundError: the checkpoint is missing; the message gives the command that makes it.
        ValueError: a file is truncated or corrupted (from ``load_checkpoint``).
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
    return load_checkpoint(folder)
