"""Argument checks shared by the public entry points: errors that name the argument, what was expected and what came.

Every public function of ``lmbook`` checks its numbers before it trains, saves or draws anything,
so a wrong argument fails at once with a message in the caller's words
(``lr must be > 0 and finite, got inf``) instead of a NaN many steps later.
``check_config`` does the same for the config dataclasses (``EncoderConfig``, ...): called from
``__post_init__``, it names the field, and the file when the config came from a ``config.json``.
"""

from __future__ import annotations

import math
import numbers
import types
import typing
from dataclasses import fields, is_dataclass

__all__ = ["check_config", "check_int", "check_number"]


def _got(value) -> str:
    return f"{value!r} ({type(value).__name__})" if not isinstance(value, numbers.Real) else repr(value)


def check_int(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int, checked ``low <= value <= high``; bools and floats (even 3.0) are refused.

    >>> check_int("steps", 10, low=1)
    10
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_got(value)}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = " and ".join(s for s in (f">= {low}" if low is not None else "",
                                          f"<= {high}" if high is not None else "") if s)  # fmt: skip
        raise ValueError(f"{name} must be {bounds}, got {value}")
    return value


def check_number(name: str, value, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False) -> float:  # fmt: skip
    """``value`` as a finite float, checked against ``low`` (``>`` when ``low_open``) and ``high``.

    >>> check_number("lr", 3e-4, low=0, low_open=True)
    0.0003
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {_got(value)}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    if not math.isfinite(value) or too_low or (high is not None and value > high):
        if low is not None and high is not None:
            wanted = f"in {'(' if low_open else '['}{low:g}, {high:g}]"
        elif low is not None:
            wanted = f"{'>' if low_open else '>='} {low:g}"
        else:
            wanted = f"<= {high:g}" if high is not None else ""
        raise ValueError(f"{name} must be {wanted + ' and finite' if wanted else 'finite'}, got {value}")
    return value


_POSITIVE_SUFFIXES = ("vocab_size", "max_len", "n_layers", "n_heads", "d_model", "d_ff", "layers")


def _type_ok(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if origin is not None:
        return isinstance(value, origin)
    return not isinstance(hint, type) or isinstance(value, hint)


def check_config(config, source: str | None = None) -> None:
    """Check a config dataclass: every field of its annotated type, sizes >= 1, dropout in [0, 1).

    Sizes are the int fields named like ``vocab_size``, ``max_len``, ``n_layers``, ``n_heads``,
    ``d_model``, ``d_ff``; ``d_model`` must divide by ``n_heads`` when both exist; floats must be finite.
    Call it from ``__post_init__``: ``def __post_init__(self): check_config(self)``.

    Args:
        config: the dataclass instance.
        source: where it came from (a ``config.json`` path), added to the message.

    Raises:
        TypeError: a field has the wrong type (named, with what came).
        ValueError: a size < 1, a dropout outside [0, 1), a non-finite float, ``d_model % n_heads != 0``.
    """
    where = f" (in {source})" if source else ""
    cls = type(config).__name__
    try:
        hints = typing.get_type_hints(type(config))
    except Exception:  # annotations that do not resolve: check values only
        hints = {}
    for f in fields(config):
        value, hint = getattr(config, f.name), hints.get(f.name)
        if is_dataclass(value) and not isinstance(value, type):
            check_config(value, source)
            continue
        if hint is not None and not _type_ok(value, hint):
            raise TypeError(f"{cls}.{f.name} must be {getattr(hint, '__name__', hint)}, got {_got(value)}{where}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{cls}.{f.name} must be a finite number, got {value}{where}")
        if value is not None and f.name.endswith(_POSITIVE_SUFFIXES) and isinstance(value, numbers.Integral):
            if value < 1:
                raise ValueError(f"{cls}.{f.name} must be >= 1, got {value}{where}")
        if "dropout" in f.name and isinstance(value, numbers.Real) and not 0 <= value < 1:
            raise ValueError(f"{cls}.{f.name} must be in [0, 1), got {value}{where}")
    d_model, n_heads = getattr(config, "d_model", None), getattr(config, "n_heads", None)
    if isinstance(d_model, int) and isinstance(n_heads, int) and d_model % n_heads:
        raise ValueError(f"{cls}.d_model={d_model} must divide by n_heads={n_heads}{where}")
