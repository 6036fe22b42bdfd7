"""The training loop shared by Chapters 4-6 (pretraining, fine-tuning, adaptation).

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

Saving and loading what ``train`` produced is ``lmbook.checkpointing``'s job. Training on a GPU
(``device="cuda"``, in bfloat16 autocast) or in several processes under ``torchrun`` (DDP, each rank
on its slice of every batch) goes through ``lmbook.distributed``; on one CPU process nothing changes.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from lmbook import distributed as D
from lmbook.checkpointing import load_checkpoint, read_metrics, register_model, save_checkpoint
from lmbook.validation import check_int, check_number

__all__ = ["History", "adamw", "count_parameters", "load_checkpoint", "lr_schedule", "read_metrics", "register_model",
           "save_checkpoint", "train"]  # fmt: skip
# load_checkpoint, read_metrics, register_model and save_checkpoint live in lmbook.checkpointing;
# they are re-exported here because Chapters 4-6 import them with the training loop.


def lr_schedule(step: int, *, lr: float, steps: int, warmup_steps: int, min_lr_ratio: float = 0.1) -> float:
    """Learning rate of update ``step`` (0-based) out of ``steps``: linear warmup, then cosine decay.

    ``train`` checks ``lr > 0``, ``0 <= warmup_steps <= steps`` and ``0 <= min_lr_ratio <= 1``
    before calling it, so the rate is never negative.

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


def adamw(params: list[nn.Parameter], *, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """The optimiser of :func:`train`: AdamW with weight decay on matrices only (``dim >= 2``).

    It uses PyTorch's fused AdamW kernel, one call that updates every tensor, where all the parameters
    live on a device that has it (CPU and CUDA): on the book's CPU that step is ~3x faster than the
    default per-tensor loop, ~6 % of a whole training step (``benchmarks/train_speed.py``). The update
    is AdamW's; only the rounding of the last bits differs from the loop.
    """
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]  # fmt: skip
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, fused=fused or None)


def train(model: nn.Module, batches, loss_fn: Callable, *, steps: int, lr: float = 3e-4, weight_decay: float = 0.01,
          warmup_steps: int | None = None, min_lr_ratio: float = 0.1, grad_clip: float | None = 1.0,
          eval_fn: Callable | None = None, eval_every: int | None = None, progress: bool = True,
          seed: int | None = None, log_every: int = 1,
          device: str | torch.device | None = None) -> History:  # fmt: skip
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
        grad_clip: maximum global gradient norm (> 0); None does not clip.
        eval_fn: ``eval_fn(model)`` returns a float (logged as ``"eval"``) or a dict of floats.
        eval_every: evaluate every this many updates (and after the last).
        progress: show a tqdm progress bar with the running loss.
        seed: seed ``torch`` and ``random`` first, so that two runs give the same numbers.
        log_every: log means over this many updates.
        device: train on this device (``"cpu"``, ``"cuda"``); None: ``lmbook.distributed.current_device()``,
            which is what ``python -m lmbook.recipes NAME --device ...`` chose (cpu by default). The model
            and each batch are moved there (on CUDA the loss runs under bfloat16 autocast); ``eval_fn`` sees
            the model on its original device, and the model goes back there at the end.

    Under ``torchrun --nproc_per_node N`` (N > 1) every process joins a process group (gloo on CPU,
    NCCL on CUDA), trains ``model`` wrapped in ``DistributedDataParallel`` on its slice of every batch
    (``lmbook.distributed.shard``: the global batch is the one ``batches`` gives) and logs the mean of
    the ranks' losses; only rank 0 shows progress.

    Returns:
        The ``History`` of the run.

    Raises:
        TypeError, ValueError: an argument is out of range (named), before the first step.
        FloatingPointError: the loss, the gradient norm or the updated parameters became NaN or
            infinite; names the step. The model is left with the weights of the last good step:
            a bad loss or gradient stops before the optimiser step, and a step that made a
            parameter non-finite is undone.
    """
    from tqdm.auto import tqdm

    _check_train_args(model, loss_fn, steps=steps, lr=lr, weight_decay=weight_decay, warmup_steps=warmup_steps,
                      min_lr_ratio=min_lr_ratio, grad_clip=grad_clip, eval_fn=eval_fn, eval_every=eval_every,
                      log_every=log_every)  # fmt: skip
    if seed is not None:
        torch.manual_seed(seed)
        random.seed(seed)
    warmup_steps = steps // 10 if warmup_steps is None else warmup_steps
    dev, distributed = D.current_device(device), D.is_distributed()
    home = next(model.parameters()).device
    moved = dev != home  # False on one CPU: then the loop below is exactly the single-process one
    D.init_distributed(dev)
    if moved:
        model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = adamw(params, lr=lr, weight_decay=weight_decay)
    last_good = [p.detach().clone() for p in params]  # the weights before the current step, to undo a bad one
    next_batch, history, window = _batch_stream(batches), History(), {}
    was_training, start, eval_s = model.training, time.perf_counter(), 0.0
    bar = tqdm(range(1, steps + 1), disable=not progress or not D.is_main_process(), desc="train")
    model.train()
    net = D.wrap_model(model, dev)  # DDP when distributed (it copies rank 0's weights to every rank), else model
    try:
        for step in bar:  # ``step`` counts updates from 1; the schedule counts from 0
            step_lr = lr_schedule(step - 1, lr=lr, steps=steps, warmup_steps=warmup_steps, min_lr_ratio=min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = step_lr
            batch = next_batch(step - 1)
            if distributed:
                batch = D.shard(batch)
            if dev.type != "cpu":
                batch = D.to_device(batch, dev)
            with torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else contextlib.nullcontext():
                losses = _as_losses(loss_fn(net, batch), step)
            if distributed:  # every rank logs (and checks) the mean over ranks, i.e. the loss of the global batch
                values = [float(v.detach()) if isinstance(v, Tensor) else float(v) for v in losses.values()]
                logged = dict(zip(losses, D.reduce_mean(values, dev), strict=True))
            kept = f"stopped before the optimiser step: the model keeps the weights after step {step - 1}"
            if not math.isfinite(loss := logged["loss"] if distributed else losses["loss"].item()):
                raise FloatingPointError(f"loss became {loss} at step {step} of {steps} (lr={step_lr:.3g}); {kept}")
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip or math.inf).item()
            if not math.isfinite(grad_norm):
                raise FloatingPointError(f"gradient norm became {grad_norm} at step {step} of {steps} "
                                         f"(lr={step_lr:.3g}); {kept}")  # fmt: skip
            if distributed and step == 1 and abs(D.reduce_mean([grad_norm], dev)[0] - grad_norm) > 1e-5 * grad_norm:
                raise RuntimeError(f"rank {D.rank()}: the gradients of the {D.world_size()} processes differ after "
                                   f"DDP's all-reduce (norm {grad_norm:.6g} here); training would diverge")  # fmt: skip
            torch._foreach_copy_(last_good, [p.detach() for p in params])
            try:
                optimizer.step()
            except BaseException:  # an overflow inside AdamW (after its weight decay): undo the half step
                with torch.no_grad():
                    torch._foreach_copy_([p.detach() for p in params], last_good)
                raise
            if not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
                with torch.no_grad():
                    torch._foreach_copy_([p.detach() for p in params], last_good)
                raise FloatingPointError(f"the optimiser step made parameters NaN or infinite at step {step} of "
                                         f"{steps} (lr={step_lr:.3g}); undone: the model keeps the weights "
                                         f"after step {step - 1}. Try a smaller lr")  # fmt: skip
            if not distributed:
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
                if moved:  # eval_fn's data lives on the model's original device
                    model.to(home)
                with torch.no_grad():
                    metrics = eval_fn(model)
                if moved:
                    model.to(dev)
                model.train()
                eval_s += time.perf_counter() - eval_start
                history.eval_steps.append(step)
                for name, value in (metrics if isinstance(metrics, dict) else {"eval": metrics}).items():
                    history.eval_metrics.setdefault(name, []).append(float(value))
    finally:
        bar.close()
        model.train(was_training)
        if moved:
            model.to(home)
    history.elapsed_s = time.perf_counter() - start
    history.ms_per_step = 1000 * (history.elapsed_s - eval_s) / steps
    return history


def _check_train_args(model, loss_fn, *, steps, lr, weight_decay, warmup_steps, min_lr_ratio, grad_clip, eval_fn,
                      eval_every, log_every) -> None:  # fmt: skip
    """``train``'s argument checks, all before the first step; each error names the argument."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(model, batch), got {type(loss_fn).__name__}")
    check_int("steps", steps, low=1)
    check_int("log_every", log_every, low=1)
    check_number("lr", lr, low=0, low_open=True)
    check_number("weight_decay", weight_decay, low=0)
    check_number("min_lr_ratio", min_lr_ratio, low=0, high=1)
    if warmup_steps is not None:
        check_int("warmup_steps", warmup_steps, low=0, high=steps)
    if grad_clip is not None:
        check_number("grad_clip", grad_clip, low=0, low_open=True)
    if eval_fn is not None and not callable(eval_fn):
        raise TypeError(f"eval_fn must be callable as eval_fn(model), got {type(eval_fn).__name__}")
    if eval_every is not None:
        if eval_fn is None:
            raise ValueError(f"eval_every={eval_every} was given without an eval_fn to call")
        check_int("eval_every", eval_every, low=1)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"model ({type(model).__name__}) has no trainable parameter (requires_grad=True)")


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters in ``model``, tied weights counted once (book: sec-architecture-families)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
