"""Hyperparameters that are a number, an array (traced too) or a schedule.

Every float hyperparameter in optjx goes through two helpers here:

* :func:`value_at` resolves it at the number of updates already applied (0 on the
  first update), so a schedule ``count -> value`` works for momentum, betas, decay
  and weight decay exactly as it does for the learning rate.
* :func:`check_range` validates it once, at construction, when it is concrete.
  Schedules and traced values (``jax.vmap`` over learning rates) cannot be checked
  without running them, so they are accepted as they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Union

import jax
import jax.numpy as jnp
import numpy as np

Schedule = Callable[[jax.Array], jax.Array]
Hyper = Union[float, int, jax.Array, np.ndarray, Schedule]


def value_at(hyper: Hyper, count: jax.Array):
    """The hyperparameter's value after ``count`` applied updates."""
    return hyper(count) if callable(hyper) else hyper


def cast_like(value, leaf: jax.Array) -> jax.Array:
    """``value`` as a scalar of ``leaf``'s dtype, so updates keep the leaf's dtype."""
    return jnp.asarray(value, dtype=leaf.dtype)


def is_concrete(value) -> bool:
    """True for a number or an array whose values are known now (not a tracer)."""
    if callable(value) or isinstance(value, jax.core.Tracer):
        return False
    return isinstance(value, (int, float, np.ndarray, np.generic, jax.Array))


def _bound(value: float, inclusive: bool, lower: bool) -> str:
    if lower:
        return ("[" if inclusive else "(") + _fmt(value)
    return _fmt(value) + ("]" if inclusive and not math.isinf(value) else ")")


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def check_range(
    name: str,
    value: Hyper,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """Raise ``ValueError`` naming ``name`` when a concrete value is outside the range.

    NaN is always out of range. Schedules and traced values are not checked.
    """
    if not is_concrete(value):
        return
    values = np.asarray(value, dtype=np.float64)
    above_low = values >= low if low_inclusive else values > low
    below_high = values <= high if high_inclusive else values < high
    ok = above_low & below_high & ~np.isnan(values)
    if not np.all(ok):
        allowed = f"{_bound(low, low_inclusive, True)}, {_bound(high, high_inclusive, False)}"
        shown = values.item() if values.ndim == 0 else values.tolist()
        raise ValueError(f"{name} must be in {allowed}, got {shown}")


def check_nonnegative(name: str, value: Hyper) -> None:
    """``value >= 0``: learning rates, momentum, eps, weight decay."""
    check_range(name, value, low=0.0)


def check_decay(name: str, value: Hyper) -> None:
    """``0 <= value < 1``: betas, decay rates, rho."""
    check_range(name, value, low=0.0, high=1.0, high_inclusive=False)


def is_concrete_zero(value: Hyper) -> bool:
    """True when ``value`` is known now to be exactly zero everywhere."""
    return is_concrete(value) and bool(np.all(np.asarray(value) == 0))


def per_dtype(**values):
    """``values`` cast to a leaf's dtype once per dtype, not once per leaf.

    A cast (or a fresh constant) written inside a per-leaf function is traced, lowered and
    compiled once for every leaf: with 1000 leaves that dominates the trace time. Call
    ``at = per_dtype(beta=b, ...)`` once per update, then ``at(leaf.dtype).beta`` per leaf.
    """
    cache = {}

    def at(dtype):
        dtype = jnp.dtype(dtype)
        if dtype not in cache:
            cache[dtype] = SimpleNamespace(
                **{name: jnp.asarray(v, dtype=dtype) for name, v in values.items()}
            )
        return cache[dtype]

    return at
