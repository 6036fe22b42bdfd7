"""The training loop and checkpoints shared by Chapters 4-6 (pretraining, fine-tuning, adaptation).

Every model in the book learns with the same few lines, repeated ``steps`` times:

    batch = next(batches)                 # token ids, labels, ...
    loss  = loss_fn(model, batch)         # one number: how wrong the model is
    loss.backward()                       # d loss / d parameter, for every parameter
    clip the gradient norm to grad_clip   # one bad batch cannot throw the model away
    lr    = lr_schedule(step, ...)        # linear warmup, then cosine decay
    AdamW step with that lr               # move every parameter a little downhill

``train`` writes down what happened (losses, learning rates, gradient norms and an
evaluation every ``eval_every`` steps) in a ``History`` that can plot itself. A
``loss_fn`` may return a dict instead of a tensor: its ``"loss"`` entry is optimised,
the others (say the MLM and NSP parts of BERT's loss) are only logged.

A checkpoint is two plain files: ``model.safetensors`` holds the weights (named
tensors only, so loading one never runs code, unlike a pickle) and ``config.json``
holds the model's class name, its config dataclass and its metrics, enough to
rebuild it with ``Model(config)``.
"""

from __future__ import annotations

import importlib
import itertools
import json
import math
import random
import sys
import time
import typing
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_model
from torch import Tensor, nn

__all__ = ["History", "count_parameters", "load_checkpoint", "lr_schedule", "read_metrics", "register_model",
           "save_checkpoint", "train"]  # fmt: skip


def lr_schedule(step: int, *, lr: float, steps: int, warmup_steps: int, min_lr_ratio: float = 0.1) -> float:
    """Learning rate of update ``step`` (0-based) out of ``steps``: linear warmup, then cosine decay.

    The rate climbs linearly to ``lr``, reached at ``step == warmup_steps``, then follows
    half a cosine down to ``min_lr_ratio * lr``, reached at the last update
    ``step == steps - 1`` and kept after it. Warmup keeps the first, noisy Adam updates small.
    """
    if step < warmup_steps:
        return lr * (step + 1) / (warmup_steps + 1)
    progress = min(1.0, (step - warmup_steps) / max(1, steps - 1 - warmup_steps))
    min_lr = min_lr_ratio * lr
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)


@dataclass
class History:
    """What ``train`` saw; ``steps[i]`` is the number of updates done when entry ``i`` was logged.

    ``train_loss``, ``extra_losses``, ``lrs`` and ``grad_norms`` (before clipping) are means
    over the ``log_every`` updates ending there; ``eval_metrics[name][j]`` was measured after
    ``eval_steps[j]`` updates. ``ms_per_step`` leaves evaluation time out.
    """

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    extra_losses: dict[str, list[float]] = field(default_factory=dict)
    eval_steps: list[int] = field(default_factory=list)
    eval_metrics: dict[str, list[float]] = field(default_factory=dict)
    lrs: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    ms_per_step: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the history as plain lists, dicts and floats, ready for ``json.dump``."""
        return asdict(self)

    def plot(self, ax=None, logy: bool = False):
        """Plot the training losses against steps, and the eval metrics as marked lines.

        Metrics named like a loss (or the plain ``"eval"``) share the loss axis; the others
        (accuracy, ...) get a second y axis on the right.

        Args:
            ax: matplotlib Axes to draw on; a new figure when None.
            logy: use a log scale for the loss axis.

        Returns:
            The Axes holding the loss curves.
        """
        import matplotlib.pyplot as plt

        ax = plt.subplots(figsize=(6, 3.5))[1] if ax is None else ax
        ax.plot(self.steps, self.train_loss, label="train loss")
        for name, values in self.extra_losses.items():
            ax.plot(self.steps, values, "--", label=f"train {name}")
        right = None
        for i, (name, values) in enumerate(self.eval_metrics.items()):
            if "loss" in name or name == "eval":
                target = ax
            else:
                target = right = ax.twinx() if right is None else right
            target.plot(self.eval_steps, values, "o-", color=f"C{i + 1 + len(self.extra_losses)}", label=name)
        ax.set(xlabel="step", ylabel="loss", yscale="log" if logy else "linear")
        handles, labels = ax.get_legend_handles_labels()
        more_handles, more_labels = right.get_legend_handles_labels() if right is not None else ([], [])
        ax.legend(handles + more_handles, labels + more_labels)
        return ax


def _batch_stream(batches) -> Callable[[int], Any]:
    """Turn a callable ``step -> batch``, a list/DataLoader or a one-shot iterator into ``step -> batch``."""
    if callable(batches) and not isinstance(batches, Iterable):
        return batches
    it = itertools.cycle(batches) if iter(batches) is batches else iter(batches)

    def next_batch(step: int):
        nonlocal it
        for _ in range(2):  # a list or DataLoader that runs out starts a new epoch; out again means empty
            try:
                return next(it)
            except StopIteration:
                it = iter(batches)
        raise ValueError(f"batches is empty (asked for the batch of step {step})")

    return next_batch


def _as_losses(out, step: int) -> dict[str, Tensor]:
    losses = out if isinstance(out, dict) else {"loss": out}
    if "loss" not in losses:
        raise ValueError(f"loss_fn returned a dict with keys {sorted(losses)}; it needs a 'loss' entry to optimise")
    if not isinstance(losses["loss"], Tensor) or losses["loss"].dim() != 0:
        got = f"shape {tuple(losses['loss'].shape)}" if isinstance(losses["loss"], Tensor) else type(losses["loss"])
        raise ValueError(f"loss_fn must return a scalar tensor as the loss, got {got} at step {step}")
    return losses


def train(model: nn.Module, batches, loss_fn: Callable, *, steps: int, lr: float = 3e-4, weight_decay: float = 0.01,
          warmup_steps: int | None = None, min_lr_ratio: float = 0.1, grad_clip: float | None = 1.0,
          eval_fn: Callable | None = None, eval_every: int | None = None, progress: bool = True,
          seed: int | None = None, log_every: int = 1) -> History:  # fmt: skip
    """Train ``model`` in place with AdamW, warmup + cosine learning rate and gradient clipping.

    Weight decay applies only to matrices (``dim >= 2``), never to biases or LayerNorm
    gains. ``eval_fn`` runs in eval mode under ``no_grad`` after every ``eval_every``
    updates and after the last one; the model's own train/eval mode is restored at the end.

    Args:
        model: the module to train.
        batches: a list, DataLoader or iterator of batches (cycled as needed), or a callable ``step -> batch``.
        loss_fn: ``loss_fn(model, batch)`` returns a scalar loss tensor, or a dict whose ``"loss"`` is
            optimised and whose other entries (tensors or floats) are logged.
        steps: number of optimizer updates.
        lr: peak learning rate.
        weight_decay: AdamW's decoupled weight decay on matrices.
        warmup_steps: linear warmup length; ``steps // 10`` when None.
        min_lr_ratio: the cosine ends at ``min_lr_ratio * lr``.
        grad_clip: maximum global gradient norm; None or 0 does not clip.
        eval_fn: ``eval_fn(model)`` returns a float (logged as ``"eval"``) or a dict of floats.
        eval_every: evaluate every this many updates (and after the last).
        progress: show a tqdm progress bar with the running loss.
        seed: seed ``torch`` and ``random`` first, so that two runs give the same numbers.
        log_every: log means over this many updates.

    Returns:
        The ``History`` of the run.

    Raises:
        FloatingPointError: the loss or the gradient norm became NaN or infinite; names the step.
    """
    from tqdm.auto import tqdm

    if steps < 1 or log_every < 1:
        raise ValueError(f"steps and log_every must be >= 1, got steps={steps}, log_every={log_every}")
    if eval_every is not None and eval_fn is None:
        raise ValueError(f"eval_every={eval_every} was given without an eval_fn to call")
    if seed is not None:
        torch.manual_seed(seed)
        random.seed(seed)
    warmup_steps = steps // 10 if warmup_steps is None else warmup_steps
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]  # fmt: skip
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)
    next_batch, history, window = _batch_stream(batches), History(), {}
    was_training, start, eval_s = model.training, time.perf_counter(), 0.0
    bar = tqdm(range(1, steps + 1), disable=not progress, desc="train")
    model.train()
    try:
        for step in bar:  # ``step`` counts updates from 1; the schedule counts from 0
            step_lr = lr_schedule(step - 1, lr=lr, steps=steps, warmup_steps=warmup_steps, min_lr_ratio=min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = step_lr
            losses = _as_losses(loss_fn(model, next_batch(step - 1)), step)
            if not math.isfinite(loss := losses["loss"].item()):
                raise FloatingPointError(f"loss became {loss} at step {step} of {steps} (lr={step_lr:.3g})")
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip or math.inf).item()
            if not math.isfinite(grad_norm):
                raise FloatingPointError(f"gradient norm became {grad_norm} at step {step} of {steps}")
            optimizer.step()
            logged = {k: float(v.detach()) if isinstance(v, Tensor) else float(v) for k, v in losses.items()}
            for name, value in {**logged, "lr": step_lr, "grad_norm": grad_norm}.items():
                window.setdefault(name, []).append(value)
            if step % log_every == 0 or step == steps:
                means = {name: sum(values) / len(values) for name, values in window.items()}
                history.steps.append(step)
                history.train_loss.append(means.pop("loss"))
                history.lrs.append(means.pop("lr"))
                history.grad_norms.append(means.pop("grad_norm"))
                for name, value in means.items():
                    history.extra_losses.setdefault(name, []).append(value)
                window = {}
                bar.set_postfix(loss=f"{history.train_loss[-1]:.4f}")
            if eval_fn is not None and ((eval_every and step % eval_every == 0) or step == steps):
                eval_start = time.perf_counter()
                model.eval()
                with torch.no_grad():
                    metrics = eval_fn(model)
                model.train()
                eval_s += time.perf_counter() - eval_start
                history.eval_steps.append(step)
                for name, value in (metrics if isinstance(metrics, dict) else {"eval": metrics}).items():
                    history.eval_metrics.setdefault(name, []).append(float(value))
    finally:
        bar.close()
        model.train(was_training)
    history.elapsed_s = time.perf_counter() - start
    history.ms_per_step = 1000 * (history.elapsed_s - eval_s) / steps
    return history


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters in ``model``, tied weights counted once (Chapter 2's parameter counts)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# ---------------------------------------------------------------- checkpoints

_MODEL_REGISTRY: dict[str, type[nn.Module]] = {}


def register_model(cls: type[nn.Module]) -> type[nn.Module]:
    """Let ``load_checkpoint`` find ``cls`` by its class name (``lmbook.models`` needs no registering)."""
    _MODEL_REGISTRY[cls.__name__] = cls
    return cls


def _model_class(name: str) -> type[nn.Module]:
    if name not in _MODEL_REGISTRY:
        cls = None
        for module in ("lmbook.models", "lmbook.finetuning"):  # where the book's model classes live
            try:
                cls = getattr(importlib.import_module(module), name, None)
            except ModuleNotFoundError as err:
                if err.name != module:
                    raise
            if cls is not None:
                break
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise ValueError(f"unknown model class {name!r}: pass model_cls=..., or register it with register_model")
        _MODEL_REGISTRY[name] = cls
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
    ``register_model`` classes and in ``lmbook.models``; it is built as ``model_cls(config_cls(**config))``.

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
