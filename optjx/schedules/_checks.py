"""Argument checks and count arithmetic shared by every schedule.

Step arguments (``transition_steps``, ``transition_begin``, boundaries) are Python ints
of any size that fits int64. They enter the arithmetic as Python *floats*: a Python int
past ``2**31`` handed to a jitted ``jnp`` function is parsed as int32 and raises
``OverflowError``, while a float is exact up to ``2**53`` and merely rounded beyond.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import jax.numpy as jnp
import numpy as np

from optjx import _hyper, _tree

INT64_MAX = int(np.iinfo(np.int64).max)
PUBLIC_MODULE = "optjx.schedules"

F = TypeVar("F", bound=Callable[..., Any])


def public(obj: F) -> F:
    """Give a factory (or the schedule it returns) its public home, ``optjx.schedules``.

    The schedules live in private submodules; tools that ask "is this an optjx
    schedule?" (the registry, the examples) read ``__module__``, as NumPy's
    ``set_module`` arranges for its own functions.
    """
    obj.__module__ = PUBLIC_MODULE
    return obj


def steps(name: str, value) -> int:
    """A positive step argument (a period, a length) as a Python int that fits int64."""
    return _hyper.check_int(name, value, 1, maximum=INT64_MAX, array_ok=True)


def step(name: str, value) -> int:
    """A non-negative step argument (a start, a boundary) as a Python int that fits int64."""
    return _hyper.check_int(name, value, 0, maximum=INT64_MAX, array_ok=True)


def begin(value) -> int:
    return step("transition_begin", value)


def increasing_steps(name: str, values, pieces: str, count: int, *, minimum: int) -> list[int]:
    """The step counts where ``count`` pieces meet: ``count - 1`` ints ``>= minimum``,
    strictly increasing (``ValueError`` naming ``name`` and ``pieces`` otherwise)."""
    values = list(values)
    if len(values) != count - 1:
        raise ValueError(
            f"{name} must have len({pieces}) - 1 = {count - 1} entries, got {len(values)}"
        )
    steps = [_hyper.check_int(name, v, minimum, maximum=INT64_MAX, array_ok=True) for v in values]
    if any(a >= b for a, b in zip(steps[:-1], steps[1:], strict=True)):
        raise ValueError(f"{name} must increase strictly, got {steps}")
    return steps


def value(name: str, given, allowed: _hyper.Range = _hyper.REAL):
    """A schedule's float argument: a real number or array (traced too), finite.

    ``TypeError`` naming ``name`` for a string, ``None``, a list, a function; ``ValueError``
    naming it for a concrete value that is NaN, infinite or outside ``allowed``.
    """
    if callable(given) and not hasattr(given, "dtype"):
        raise TypeError(f"{name} must be a real number or array, got the function {given!r}")
    _hyper.check_type(name, given)
    if _hyper.is_concrete(given):
        values = np.asarray(given, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            shown = values.item() if values.ndim == 0 else values.tolist()
            raise ValueError(f"{name} must be finite, got {shown}")
    allowed.check(name, given)
    return given


def as_float(count):
    """The count at JAX's default float precision (never an int32 that can overflow)."""
    return _tree.default_float(count)


def delayed(count, start: int):
    """The count as a float, moved back by ``start`` and held at 0 before it."""
    k = as_float(count)
    return k if start == 0 else jnp.maximum(k - float(start), 0.0)


def floor_div(k, period: int):
    """``floor(k / period)`` exactly at multiples of ``period``.

    XLA computes ``k / T`` as ``k * (1/T)``; when ``1/T`` rounds down, ``k = n T`` lands
    just below ``n`` and the floor steps one count late (T = 41, 47, 55, ... in float32).
    Multiples of ``T`` are exact in floats, so the floor is corrected by one either way.
    """
    length = float(period)
    q = jnp.floor(k / length)
    q = jnp.where((q + 1.0) * length <= k, q + 1.0, q)
    return jnp.where(q * length > k, q - 1.0, q)


def finite_or_none(name: str, given):
    return None if given is None else value(name, given)


def is_one(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == 1 and math.isfinite(x)
