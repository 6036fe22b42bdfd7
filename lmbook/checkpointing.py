"""Checkpoints: writing a trained model to disk and rebuilding it (Chapters 4-6).

A checkpoint is two plain files: ``model.safetensors`` holds the weights (named
tensors only, so loading one never runs code, unlike a pickle) and ``config.json``
holds the model's class name, its config dataclass and its metrics, enough to
rebuild it with ``Model(config)``.

Saving is all-or-nothing: ``save_checkpoint`` writes both files into a hidden sibling
folder and swaps it into place only when both are complete (the old folder is renamed
aside, the new one renamed in, the old one deleted), so a save that fails or is killed
half-way leaves the previous checkpoint loadable. Loading refuses NaN or infinite weights.

A checkpoint finds its class through one registry: every model class the book ships
is decorated with ``register_model`` (``lmbook.models``, ``lmbook.finetuning``), and
``load_checkpoint`` looks the saved class name up there. The shipped checkpoints live
in ``lmbook/checkpoints/<name>/`` (``checkpoint_dir``); ``load_pretrained`` reads one.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import typing
import uuid
from collections.abc import Callable
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path

import torch
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


def _non_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an infinity."""
    return [name for name, t in tensors.items()
            if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all())]  # fmt: skip


def _asides(folder: Path, kind: str) -> list[Path]:
    """Hidden siblings of ``folder`` left by a save: ``kind`` "new" (being written) or "old" (moved aside)."""
    return sorted(folder.parent.glob(f".{folder.name}.{kind}-*")) if folder.parent.is_dir() else []


def _pid_alive(sibling: Path) -> bool:
    try:
        pid = int(sibling.name.rsplit("-", 2)[-2])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:  # somebody else's live process
        return True
    return pid != os.getpid()


def _finish_interrupted_save(folder: Path) -> None:
    """Repair what a save killed between its two renames left: the old folder aside and no folder in place.

    Also deletes the hidden folders of saves whose process is gone. Never raises: a read-only
    install simply keeps what is there.
    """
    try:
        if not folder.exists() and (old := [p for p in _asides(folder, "old") if not _pid_alive(p)]):
            os.rename(old[-1], folder)
        for stale in _asides(folder, "new") + (_asides(folder, "old") if folder.exists() else []):
            if not _pid_alive(stale):
                shutil.rmtree(stale, ignore_errors=True)
    except OSError:
        pass


def _carry_other_files(old: Path, new: Path, keep: set[str]) -> None:
    """Hard-link (or copy) into ``new`` every entry of ``old`` that the save does not rewrite (vocabularies, ...)."""
    for entry in old.iterdir():
        if entry.name in keep or (new / entry.name).exists():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, new / entry.name, symlinks=True)
            continue
        try:
            os.link(entry, new / entry.name, follow_symlinks=False)
        except OSError:
            shutil.copy2(entry, new / entry.name, follow_symlinks=False)


def _swap_in(new: Path, folder: Path) -> None:
    """Put the complete folder ``new`` at ``folder``: old aside, new in, old deleted (undone on failure)."""
    if not folder.exists():
        os.rename(new, folder)
        return
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.rename(folder, old)
    try:
        os.rename(new, folder)
    except BaseException:
        os.rename(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _write_atomically(folder: Path, files: dict[str, Callable[[Path], None]]) -> None:
    """Write ``files`` (name -> writer of that path) into a hidden sibling of ``folder``, then swap it in."""
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"cannot save a checkpoint to {folder}: it exists and is not a folder")
    if folder.is_dir() and not os.access(folder, os.W_OK):
        raise PermissionError(f"cannot save a checkpoint to {folder}: the folder is read-only; "
                              f"the checkpoint already there is left as it was")  # fmt: skip
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        _finish_interrupted_save(folder)
        new = folder.with_name(f".{folder.name}.new-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        new.mkdir()
    except OSError as err:
        raise type(err)(f"cannot save a checkpoint to {folder}: cannot write in {folder.parent} ({err})") from err
    try:
        for name, write in files.items():
            write(new / name)
        if folder.is_dir():
            _carry_other_files(folder, new, set(files))
        _swap_in(new, folder)
    except BaseException as err:
        shutil.rmtree(new, ignore_errors=True)
        if isinstance(err, OSError):
            raise type(err)(f"saving the checkpoint {folder} failed ({err}); "
                            f"the checkpoint that was there is left as it was") from err  # fmt: skip
        raise


def _replace_file(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through a temporary sibling and ``os.replace``, so the file is old or new, never half."""
    tmp = path.with_name(f".{path.name}.new-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class _WholeTensors:
    """What ``safetensors.torch.save_model`` reads of ``model``: its state dict, with every tensor that is a
    slice of a larger one copied out (attention keeps q, k and v as rows of one parameter; save_model
    refuses to store part of a tensor). Tied tensors stay shared, so save_model still stores them once."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def state_dict(self) -> dict[str, torch.Tensor]:
        def whole(t: torch.Tensor) -> bool:
            return t.data_ptr() == t.untyped_storage().data_ptr() and t.nbytes == t.untyped_storage().nbytes()

        return {k: v if whole(v) else v.clone() for k, v in self.model.state_dict().items()}


def save_checkpoint(model: nn.Module, path: str | Path, *, metrics: dict | None = None,
                    extra: dict | None = None) -> Path:  # fmt: skip
    """Write ``model`` as ``model.safetensors`` + ``config.json`` (no pickle anywhere); tied weights are stored once.

    A directory ``path`` is replaced all-or-nothing: both files are written into a hidden sibling
    folder (``.<name>.new-*``), which then takes the old folder's place; other files of the old folder
    (vocabularies, ...) are carried over. A save that fails or is killed leaves the previous
    checkpoint loadable. With ``stem.safetensors`` each of the two files is replaced atomically.

    Args:
        model: the model; its ``model.config`` dataclass, if any, is saved with it.
        path: a directory (created if needed), or ``stem.safetensors`` for ``stem.safetensors`` + ``stem.json``.
        metrics: JSON-able numbers worth keeping (tensors and numpy scalars are converted), e.g. ``{"val_loss": 2.3}``.
        extra: any other JSON-able information (recipe, data, ...).

    Returns:
        The path of the weights file.

    Under ``torchrun`` only rank 0 writes: the other ranks return the same path without writing
    (``lmbook.distributed.is_main_process``).

    Raises:
        ValueError: a weight is NaN or infinite (named), so a broken model never replaces a good checkpoint.
        PermissionError, OSError: the target cannot be written; the old checkpoint is left as it was.
    """
    from lmbook import __version__
    from lmbook.distributed import is_main_process

    weights, config_path = _paths(path)
    if not is_main_process():  # one writer: the other ranks hold the same weights (DDP keeps them equal)
        return weights
    config = getattr(model, "config", None)
    text = json.dumps({  # fails before any file is written if something is not JSON-able
        "model_class": type(model).__name__,
        "config_class": type(config).__name__ if config is not None else None,
        "config": _config_dict(config),
        "metrics": {k: v.item() if hasattr(v, "item") else v for k, v in (metrics or {}).items()},
        "extra": extra or {},
        "lmbook_version": __version__,
    }, indent=2)  # fmt: skip
    if bad := _non_finite(model.state_dict()):
        raise ValueError(f"model has NaN or infinite values in {', '.join(bad[:5])}"
                         f"{' ...' if len(bad) > 5 else ''}; refusing to save it over {Path(path)}")  # fmt: skip

    def write_weights(target: Path) -> None:
        save_model(_WholeTensors(model), str(target), metadata={"format": "pt"}, force_contiguous=True)

    def write_config(target: Path) -> None:
        target.write_text(text + "\n")

    if Path(path).suffix == ".safetensors":
        weights.parent.mkdir(parents=True, exist_ok=True)
        _replace_file(weights, write_weights)
        _replace_file(config_path, write_config)
    else:
        _write_atomically(Path(path), {weights.name: write_weights, config_path.name: write_config})
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
    if bad := _non_finite(tensors):
        raise ValueError(f"{weights} holds NaN or infinite values in tensor {', '.join(map(repr, bad))}; "
                         f"this checkpoint is broken: retrain or restore it")  # fmt: skip
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
    if Path(path).suffix != ".safetensors":
        _finish_interrupted_save(Path(path))
    meta = _read_config(config_path)
    if not isinstance(meta, dict):
        raise ValueError(f"{config_path} must hold a JSON object, got {type(meta).__name__}")
    saved = meta.get("config")
    if saved is not None and not isinstance(saved, dict):
        raise ValueError(f"{config_path}: field 'config' must be an object or null, got {type(saved).__name__}")
    if model is None:
        if model_cls is None and not isinstance(meta.get("model_class"), str):
            raise ValueError(f"{config_path}: field 'model_class' must be a class name, got "
                             f"{meta.get('model_class', '<absent>')!r}")  # fmt: skip
        model_cls = model_cls or _model_class(meta["model_class"])
        if saved is None:
            model = model_cls()
        else:
            config_cls = config_cls or _config_class(model_cls, meta.get("config_class"))
            model = model_cls(_build_config(config_cls, saved, config_path))
    elif saved is not None and (mine := _config_dict(getattr(model, "config", None))) is not None:
        pairs = {k: (saved.get(k, "<absent>"), mine.get(k, "<absent>")) for k in sorted(set(saved) | set(mine))}
        diffs = [f"{k}: checkpoint has {a!r}, model has {b!r}" for k, (a, b) in pairs.items() if a != b]
        if diffs:
            raise ValueError(f"config in {config_path} does not match the model: " + "; ".join(diffs))
    _load_weights(model, weights)
    return model.eval()


def _build_config(config_cls: type, saved: dict, config_path: Path):
    """``config_cls(**saved)``, checked field by field (``lmbook.validation.check_config``); errors name the file."""
    from lmbook.validation import check_config

    known = {f.name: f for f in fields(config_cls)}
    if unknown := sorted(set(saved) - set(known)):
        raise ValueError(f"{config_path}: {unknown} are not fields of {config_cls.__name__}")
    if missing := sorted(set(known) - set(saved)):
        raise ValueError(f"{config_path}: field(s) {missing} of {config_cls.__name__} are missing")
    try:
        config = config_cls(**{k: tuple(v) if "tuple" in str(known[k].type) and isinstance(v, list) else v
                               for k, v in saved.items()})  # fmt: skip
    except (TypeError, ValueError) as err:
        raise type(err)(f"{config_path}: {err}") from err
    check_config(config, source=str(config_path))
    return config


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
    _finish_interrupted_save(folder)
    is_tokenizer = name.startswith("tokenizer")
    needed = folder / ("tokenizer.json" if is_tokenizer else "model.safetensors")
    if not needed.is_file():
        raise FileNotFoundError(f"checkpoint {name!r} not found at {needed}; make it with: "
                                f"python -m lmbook.recipes {name}")  # fmt: skip
    if is_tokenizer:
        from lmbook.tokenizers import BPETokenizer

        return BPETokenizer.load(needed)
    return load_checkpoint(folder)
