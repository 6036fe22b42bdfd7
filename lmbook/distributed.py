"""Training on a GPU, or on several processes at once (book: sec-training-bigger).

``lmbook.training.train`` asks this module two things before its first step:

* **which device** to train on: ``train(device=...)``, else the one chosen with ``use_device``
  (``python -m lmbook.recipes NAME --device cuda`` sets it for a whole recipe), else
  the environment variable ``LMBOOK_DEVICE``, else ``"cpu"``;
* **whether it runs under ``torchrun``** (``WORLD_SIZE`` > 1). Then every process (a *rank*)
  joins one process group (gloo on CPU, NCCL on CUDA), the model is wrapped in
  ``torch.nn.parallel.DistributedDataParallel`` (DDP), and each rank trains on its own slice
  of every batch (``shard``): the global batch is the one the recipe asked for, split along
  dim 0, so N processes compute the same update as one process, up to the order in which
  floating-point numbers are added.

Only rank 0 writes files (``is_main_process``; ``save_checkpoint`` checks it) and shows progress.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["DEVICES", "check_device", "current_device", "init_distributed", "is_distributed", "is_main_process",
           "rank", "reduce_mean", "shard", "to_device", "use_device", "world_size", "wrap_model"]  # fmt: skip

DEVICES = ("cpu", "cuda")
"""The device kinds ``--device`` accepts."""

_device: str | None = None  # set by use_device; None: LMBOOK_DEVICE or "cpu"


def world_size() -> int:
    """Number of training processes: ``torch.distributed``'s world size, else ``$WORLD_SIZE`` (torchrun), else 1."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank (0 ... world_size - 1): ``torch.distributed``'s, else ``$RANK``, else 0."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_distributed() -> bool:
    """True under ``torchrun --nproc_per_node N`` with N > 1."""
    return world_size() > 1


def is_main_process() -> bool:
    """True on rank 0, the one process that writes checkpoints and shows progress (always True without torchrun)."""
    return rank() == 0


def check_device(device: str) -> str:
    """Return ``device`` if this machine can train on it, else a ``ValueError``/``RuntimeError`` naming ``--device``."""
    kind = str(device).split(":")[0]
    if kind not in DEVICES:
        raise ValueError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"--device {device}: CUDA is not available on this machine (torch {torch.__version__}, "
                           f"built with CUDA {torch.version.cuda}); nothing was trained. Use --device cpu")  # fmt: skip
    return str(device)


@contextlib.contextmanager
def use_device(device: str) -> Iterator[str]:
    """Within this block ``train`` (and a recipe's ``environment``) use ``device``, ``"cpu"`` or ``"cuda"``."""
    global _device
    previous, _device = _device, check_device(device)
    try:
        yield _device
    finally:
        _device = previous


def current_device(device: str | torch.device | None = None) -> torch.device:
    """The device to train on: ``device``, else ``use_device``'s, else ``$LMBOOK_DEVICE``, else cpu.

    Under torchrun, ``"cuda"`` means this rank's GPU, ``cuda:$LOCAL_RANK``.
    """
    chosen = str(device if device is not None else _device or os.environ.get("LMBOOK_DEVICE", "cpu"))
    check_device(chosen)
    if chosen == "cuda" and is_distributed():
        chosen = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return torch.device(chosen)


def init_distributed(device: torch.device) -> None:
    """Join torchrun's process group once per process (gloo on CPU, NCCL on CUDA); a no-op without torchrun."""
    import torch.distributed as dist

    if not is_distributed() or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())


class _DDP(nn.parallel.DistributedDataParallel):
    """DDP that also answers attribute look-ups (``model.config``, ``model.mlm_head``) from the wrapped model,
    so a ``loss_fn`` written for the bare model works unchanged."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in DDP when distributed (gradients averaged across ranks in ``backward``), else ``model`` itself.

    A loss may use parameters outside ``forward`` (the encoder's MLM head), but every trainable parameter
    must get a gradient at every step; DDP stops with an error otherwise. (``static_graph=True`` would
    allow unused ones, but in torch 2.13 it left the first step's gradients unsynchronised with this book's
    dataclass model outputs, so it is not used; ``train`` checks that the ranks' gradients agree.)
    """
    if not is_distributed():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return _DDP(model, device_ids=ids)


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` (a tensor, or a tuple/list/dict of them, nested) with every tensor moved to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def shard(batch: Any, index: int | None = None, count: int | None = None) -> Any:
    """Slice ``index`` (default: this rank) of ``count`` (default: world size) of ``batch``, along dim 0.

    Every tensor with at least one dimension is cut with ``torch.tensor_split``; other values
    (0-d tensors, numbers, strings) are kept whole. With a batch divisible by ``count`` each rank
    gets the same number of examples, and averaging the ranks' mean losses gives the mean loss
    of the whole batch.

    Raises:
        ValueError: a tensor has fewer rows than there are ranks (some rank would get nothing).
    """
    index = rank() if index is None else index
    count = world_size() if count is None else count
    if count == 1:
        return batch
    if isinstance(batch, Tensor):
        if batch.dim() == 0:
            return batch
        if batch.shape[0] < count:
            raise ValueError(f"a batch of {batch.shape[0]} rows cannot be shared by {count} processes; "
                             f"use a batch of at least {count} (ideally a multiple of {count})")  # fmt: skip
        return torch.tensor_split(batch, count)[index]
    if isinstance(batch, dict):
        return {k: shard(v, index, count) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard(v, index, count) for v in batch)
    return batch


def reduce_mean(values: list[float], device: torch.device) -> list[float]:
    """The mean over ranks of each of ``values`` (one all-reduce); ``values`` unchanged without torchrun."""
    if not is_distributed() or not values:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64 if device.type == "cpu" else torch.float32, device=device)
    dist.all_reduce(t)
    return (t / world_size()).tolist()
