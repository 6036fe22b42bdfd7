"""Low-rank adapters (LoRA) for adapting a pretrained model cheaply (book: sec-adaptation-lora).

Full fine-tuning updates every weight of a pretrained model. LoRA (Hu et al., 2021)
freezes them all and learns, beside each chosen linear layer ``W`` (shape d_out x d_in),
a low-rank correction::

    h = W x + (alpha / r) * B A x        A: (r, d_in), B: (d_out, r), r << min(d_in, d_out)

``A`` starts random and ``B`` starts at zero, so at step 0 the adapted model computes
exactly what the pretrained one did; training moves only ``A`` and ``B``. That is
``r * (d_in + d_out)`` numbers per layer instead of ``d_in * d_out``. After training the
correction can be folded back into the weight, ``W <- W + (alpha / r) B A``
(:func:`merge_lora`), so the adapted model costs nothing extra at inference time.

The low rank also limits how far the model can move from what it knew, which is why
the chapter measures *forgetting* (perplexity on the original text) next to the gain on
the new text.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lmbook.attention import QKVRows
from lmbook.validation import check_number

__all__ = ["LoRALinear", "apply_lora", "check_lora", "lora_parameters", "merge_lora"]

DEFAULT_TARGETS = ("q_proj", "v_proj")


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank correction ``(alpha / r) B A`` (book: sec-adaptation-lora).

    Args:
        base: the pretrained linear layer (its weight and bias are frozen, not copied).
        r: the rank of the correction (>= 1).
        alpha: scale; the correction is multiplied by ``alpha / r`` so that changing ``r``
            does not change the size of the initial updates.
    """

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be an nn.Linear, got {type(base).__name__}")
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ValueError(f"r (the rank) must be an integer >= 1, got {r!r}")
        check_number("alpha", alpha)
        self.base, self.r, self.alpha = base, r, float(alpha)
        self.scaling = self.alpha / r
        for p in base.parameters():
            p.requires_grad_(False)
        d_out, d_in = base.weight.shape
        self.lora_A = nn.Parameter(torch.empty(r, d_in, dtype=base.weight.dtype, device=base.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(d_out, r, dtype=base.weight.dtype, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear; B = 0 makes the start exact

    @property
    def weight(self) -> Tensor:
        """The effective weight ``W + (alpha / r) B A`` (d_out, d_in)."""
        return self.base.weight + self.scaling * (self.lora_B @ self.lora_A)

    @property
    def bias(self) -> Tensor | None:
        return self.base.bias

    def forward(self, x: Tensor) -> Tensor:
        # x (..., d_in) -> (..., r) -> (..., d_out); never forms the d_out x d_in product
        return self.base(x) + self.scaling * ((x @ self.lora_A.T) @ self.lora_B.T)

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` whose weight has the correction folded in."""
        d_out, d_in = self.base.weight.shape
        out = nn.Linear(d_in, d_out, bias=self.base.bias is not None,
                        dtype=self.base.weight.dtype, device=self.base.weight.device)  # fmt: skip
        with torch.no_grad():
            out.weight.copy_(self.weight)
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out

    def extra_repr(self) -> str:
        d_out, d_in = self.base.weight.shape
        return f"d_in={d_in}, d_out={d_out}, r={self.r}, alpha={self.alpha:g}"


def apply_lora(model: nn.Module, r: int = 8, alpha: float = 16.0,
               targets: tuple[str, ...] = DEFAULT_TARGETS) -> nn.Module:  # fmt: skip
    """Freeze ``model`` and wrap every ``nn.Linear`` whose name ends with one of ``targets`` in a ``LoRALinear``.

    Works in place and returns ``model``. Afterwards only the ``lora_A``/``lora_B`` matrices
    require gradients (see :func:`lora_parameters`). The default targets are the query and
    value projections of attention, the choice of the LoRA paper; ``("q_proj", "k_proj",
    "v_proj", "out_proj", "linear1", "linear2")`` adapts every linear layer of a book block.

    Raises:
        ValueError: no linear layer matched ``targets`` (the names found are listed); ``model`` already
            has LoRA adapters; ``r`` < 1 or ``alpha`` not finite.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"r (the rank) must be an integer >= 1, got {r!r}")
    check_number("alpha", alpha)
    if isinstance(targets, str):
        targets = (targets,)
    if already := [name for name, m in model.named_modules() if isinstance(m, LoRALinear)]:
        raise ValueError(f"model already has LoRA adapters ({len(already)} LoRALinear layers, e.g. {already[0]!r}); "
                         f"applying LoRA twice would freeze them. Train those, or merge_lora(model) first")  # fmt: skip
    chosen = [(name, m) for name, m in model.named_modules()
              if isinstance(m, nn.Linear) and name.split(".")[-1] in targets]  # fmt: skip
    if not chosen:
        names = sorted({n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(f"no nn.Linear named like targets={targets!r}; the model's linear layers are {names}")
    for p in model.parameters():  # only after every check: a refused call leaves the model as it was
        p.requires_grad_(False)
    for name, module in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(module, r, alpha))
    return model


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable ``lora_A`` and ``lora_B`` matrices of every ``LoRALinear`` in ``model``."""
    return [p for m in model.modules() if isinstance(m, LoRALinear) for p in (m.lora_A, m.lora_B)]


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every ``LoRALinear`` in ``model`` by a plain ``nn.Linear`` with ``W + (alpha/r) B A``.

    Works in place and returns ``model``; its outputs do not change, and it has exactly
    the parameter layout of the original model again (so it can be saved as one).
    The merged weights are left frozen, as the rest of the model is.
    """
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            if isinstance(module.base, QKVRows):  # rows of attention's fused q/k/v weight: fold in place
                with torch.no_grad():
                    module.base.weight.copy_(module.weight)
                setattr(parent, child, module.base)
                continue
            merged = module.merged()
            for p in merged.parameters():
                p.requires_grad_(False)
            setattr(parent, child, merged)
    return model


def check_lora(lora_cls, r: int = 4, alpha: float = 8.0) -> str:
    """Check a learner's LoRA layer ``lora_cls(base, r, alpha)`` (book: sec-adaptation-exercises).

    It must keep ``base`` frozen, hold trainable ``lora_A`` (r, d_in) and ``lora_B`` (d_out, r),
    start exactly at ``base`` (B = 0), and compute ``base(x) + (alpha / r) x Aᵀ Bᵀ``. Raises an
    ``AssertionError`` naming the first thing that is wrong; returns a short report if all pass.
    """
    g = torch.Generator().manual_seed(0)
    base = nn.Linear(12, 7)
    x = torch.randn(3, 5, 12, generator=g)
    layer = lora_cls(base, r, alpha)
    for name, shape in (("lora_A", (r, 12)), ("lora_B", (7, r))):
        p = getattr(layer, name, None)
        if not isinstance(p, nn.Parameter) or tuple(p.shape) != shape:
            raise AssertionError(f"{name} must be an nn.Parameter of shape {shape} (d_in=12, d_out=7, r={r}), "
                                 f"got {getattr(p, 'shape', p)}")  # fmt: skip
    trainable = {n for n, p in layer.named_parameters() if p.requires_grad}
    if trainable != {"lora_A", "lora_B"}:
        raise AssertionError(f"only lora_A and lora_B may be trainable; trainable now: {sorted(trainable)}")
    if not torch.allclose(layer(x), base(x), atol=1e-6):
        raise AssertionError("at initialisation the output must equal base(x): start lora_B at zero")
    if layer.lora_A.detach().abs().max() == 0:
        raise AssertionError("lora_A is all zeros: with A = B = 0 no gradient ever reaches B; initialise A randomly")
    with torch.no_grad():
        layer.lora_B.normal_(generator=g)
    expected = base(x) + (alpha / r) * (x @ layer.lora_A.T @ layer.lora_B.T)
    if not torch.allclose(layer(x), expected, atol=1e-5):
        scale = (layer(x) - base(x)).norm() / (expected - base(x)).norm()
        raise AssertionError(f"the correction must be (alpha / r) * B A x; yours is {scale:.3g} times that size")
    return f"LoRA layer ok: {r * (12 + 7)} trainable numbers instead of {12 * 7 + 7}"
