"""Argument checks and count arithmetic shared by every schedule.

Step arguments (``transition_steps``, ``transition_begin``, boundaries) are Python ints
of any size that fits int64. They enter the arithmetic as Python *floats*: a Python int
past ``2**31`` handed to a jitted ``jnp`` function is parsed as int32 and raises
``OverflowError``, while a float is exact up to ``2**53`` and merely rounded beyond.
"""

from __future__ import annotations

import math
import numbers
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


def integer(name: str, value, *, minimum: int) -> int:
    """``value`` as a Python int in ``[minimum, int64 max]``. NumPy integers are accepted
    (step counts are often computed with NumPy); bools, floats and strings are not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    as_int = int(value)
    if not minimum <= as_int <= INT64_MAX:
        kind = "positive" if minimum > 0 else "non-negative"
        raise ValueError(f"{name} must be a {kind} integer that fits int64, got {value!r}")
    return as_int


def steps(name: str, value) -> int:
    return integer(name, value, minimum=1)


def begin(value) -> int:
    return integer("transition_begin", value, minimum=0)


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
