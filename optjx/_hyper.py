"""Hyperparameters that are a number, an array (traced too) or a schedule.

One class, ``Hyperparameters``, owns the whole job for every stage:

* it checks each value's **type** at construction (``TypeError`` naming the argument for a
  string, ``None``, a list, a complex number, a non-callable object) and, when the value
  is concrete, its **range** (``ValueError`` naming the argument and the allowed range);
* it **resolves** every value at the number of updates already applied (0 on the first
  update) with ``Hyperparameters.at``, and ``per_dtype`` casts the resolved
  scalars once per dtype, not once per leaf.

A factory lists its hyperparameters once, in one ``Hyperparameters(...)`` call; reading
one that was not listed is an ``AttributeError`` on the first call, not a silent constant
when a user passes a schedule.

Structure rule (DESIGN.md, convention 1): no value and no form (number, array, schedule)
of a hyperparameter changes a state's structure; ``None`` switches a stage off. A Python
zero (``Hyperparameters.is_zero``) may only skip arithmetic that an array zero would
compute to the same numbers. An int that shapes the state must be a Python int: under
``optax.inject_hyperparams`` it goes in ``static_args`` (``refuse_injected_int``).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import operator
from types import SimpleNamespace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optjx.typing import Hyperparameter, ScheduleLike

# The public names (optjx.typing) under the short names the stages use internally.
Schedule = ScheduleLike
Hyper = Hyperparameter

_ACCEPTS = "a real number, a real JAX or NumPy array, or a schedule count -> value"


def value_at(hyper: Hyper, count: jax.Array | None):
    """The hyperparameter's value after ``count`` applied updates."""
    # A schedule only exists in a stage that keeps a count, so ``count`` is set then.
    return hyper(count) if callable(hyper) else hyper  # type: ignore[arg-type]


def is_concrete(value) -> bool:
    """True for a number or an array whose values are known now (not a tracer)."""
    if callable(value) or isinstance(value, jax.core.Tracer):
        return False
    return isinstance(value, (int, float, np.ndarray, np.generic, jax.Array))


def is_python_zero(value) -> bool:
    """True only for a Python number (not an array) that is exactly zero.

    It may skip arithmetic that an array zero computes to the same numbers; it never
    drops a stage (DESIGN.md, convention 1).
    """
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def check_type(name: str, value) -> None:
    """``TypeError`` naming ``name`` unless ``value`` is a real number, array or schedule."""
    if callable(value) and not isinstance(value, (jax.Array, np.ndarray)):
        return
    if isinstance(value, bool) or isinstance(value, np.bool_):
        raise TypeError(f"{name} must be {_ACCEPTS}, got the bool {value!r}")
    if isinstance(value, numbers.Real):
        return
    if isinstance(value, numbers.Complex):
        raise TypeError(f"{name} must be {_ACCEPTS}, got the complex number {value!r}")
    dtype = getattr(value, "dtype", None)
    if isinstance(value, (jax.Array, np.ndarray, np.generic)) and dtype is not None:
        if jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating):
            check_scalar(name, value)
            return
        raise TypeError(f"{name} must be {_ACCEPTS}, got an array of dtype {dtype}")
    shown = repr(value) if isinstance(value, (str, list, tuple, type(None))) else type(value)
    raise TypeError(f"{name} must be {_ACCEPTS}, got {shown}")


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


@dataclasses.dataclass(frozen=True)
class Range:
    """An allowed interval; ``check`` raises ``ValueError`` for a concrete value outside it."""

    low: float = -math.inf
    high: float = math.inf
    low_inclusive: bool = True
    high_inclusive: bool = True

    def __str__(self) -> str:
        left = ("[" if self.low_inclusive else "(") + _fmt(self.low)
        closed = self.high_inclusive and not math.isinf(self.high)
        return f"{left}, {_fmt(self.high)}{']' if closed else ')'}"

    def check(self, name: str, value: Hyper) -> None:
        """NaN is always out of range; schedules and traced values are not checked."""
        if not is_concrete(value):
            return
        values = np.asarray(value, dtype=np.float64)
        above = values >= self.low if self.low_inclusive else values > self.low
        below = values <= self.high if self.high_inclusive else values < self.high
        if not np.all(above & below & ~np.isnan(values)):
            shown = values.item() if values.ndim == 0 else values.tolist()
            raise ValueError(f"{name} must be in {self}, got {shown}")


REAL = Range()
NONNEGATIVE = Range(low=0.0)  # learning rates, momentum, eps, weight decay
POSITIVE = Range(low=0.0, low_inclusive=False)
DECAY = Range(low=0.0, high=1.0, high_inclusive=False)  # betas, decay rates, rho
UNIT = Range(low=0.0, high=1.0)


def at_least(low: float) -> Range:
    return Range(low=low)


class Hyperparameters:
    """The float hyperparameters of one stage, each a number, an array or a schedule.

    ``Hyperparameters(b1=(b1, DECAY), eps=(eps, NONNEGATIVE))`` checks every type and
    every concrete range at once, at construction. Then:

    * ``hypers.scheduled``: some value is a schedule;
    * ``hypers.at(count)``: a namespace of the values at ``count`` applied updates
      (``count`` may be ``None`` when nothing is scheduled);
    * ``hypers.is_zero(name)``: the value is a Python number exactly zero (may skip
      arithmetic that gives the same numbers; never changes the state's structure).
    """

    def __init__(self, **specs: tuple[Any, Range]):
        for name, (value, allowed) in specs.items():
            check_type(name, value)
            allowed.check(name, value)
        self._values = {name: value for name, (value, _) in specs.items()}

    @property
    def scheduled(self) -> bool:
        return any(callable(v) for v in self._values.values())

    def is_zero(self, name: str) -> bool:
        return is_python_zero(self._values[name])

    def at(self, count: jax.Array | None) -> SimpleNamespace:
        if count is None and self.scheduled:
            raise ValueError("a scheduled hyperparameter needs the stage's step counter")
        values = {n: value_at(v, count) for n, v in self._values.items()}
        for n, v in self._values.items():
            if callable(v):
                check_schedule_value(n, values[n])
        return SimpleNamespace(**values)


# Single-value checks, for factories that validate an argument outside a stage.
def check_range(name: str, value: Hyper, **bounds) -> None:
    """``TypeError`` naming ``name`` for a wrong type, ``ValueError`` for a concrete value
    outside ``Range(**bounds)`` (for arguments outside a ``Hyperparameters`` record, such
    as the elements of torch's pair arguments)."""
    check_type(name, value)
    Range(**bounds).check(name, value)


def check_nonnegative(name: str, value: Hyper) -> None:
    check_type(name, value)
    NONNEGATIVE.check(name, value)


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


def check_int(
    name: str, value, minimum: int, *, maximum: int | None = None, array_ok: bool = False
) -> int:
    """``value`` as a Python int in ``[minimum, maximum]`` (no upper bound for ``None``).

    Accepted: a Python or NumPy integer, or a concrete integer scalar array (step counts are
    often computed with NumPy). ``TypeError`` naming ``name`` for any other type: a bool, a
    float (``2.0`` too), a string, ``None``, a traced value. ``ValueError`` naming it for an
    integer out of range. Without ``array_ok`` an array is refused with a ``TypeError`` that
    points to ``static_args`` (the int shapes the state or the control flow, and
    ``optax.inject_hyperparams`` would hand it over as an array).
    """
    if not array_ok:
        refuse_injected_int(name, value)
    if isinstance(value, (bool, np.bool_)) or getattr(value, "dtype", None) == np.bool_:
        raise TypeError(f"{name} must be an int, got the bool {value!r}")
    try:
        as_int = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {value!r}") from None
    if as_int < minimum or (maximum is not None and as_int > maximum):
        allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be an int {allowed}, got {value!r}")
    return as_int


def pair(name: str, value) -> tuple:
    """``value`` as a pair, or a ``TypeError`` naming ``name`` (torch's tuple arguments:
    ``etas``, ``step_sizes``, Adafactor's ``eps``)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (a tuple of two values), got {value!r}")
    return tuple(value)


def refuse_injected_int(name: str, value) -> None:
    """``TypeError`` naming ``name`` for an array where a Python int is needed.

    An int argument shapes the state or the control flow (a history size, a sync period,
    a patience); ``optax.inject_hyperparams`` turns every number into an array, so such an
    argument must be listed in its ``static_args``.
    """
    if isinstance(value, (jax.Array, np.ndarray)) and not isinstance(value, np.generic):
        raise TypeError(
            f"{name} must be a Python int, got an array: under optax.inject_hyperparams, "
            f"pass static_args=({name!r},) so that it stays an int"
        )


def check_constant(name: str, value) -> None:
    """``TypeError`` naming ``name`` for a schedule where the value is read once, at ``init``
    (an initial accumulator): a number or an array only."""
    check_type(name, value)
    if callable(value) and not isinstance(value, (jax.Array, np.ndarray)):
        raise TypeError(f"{name} is read once, by init: pass a number or an array, not a schedule")


def check_scalar(name: str, value) -> None:
    """``ValueError`` naming ``name`` for an array that is not a scalar: one value is
    applied to every parameter (it would otherwise broadcast per element, silently)."""
    if np.ndim(value) != 0:
        raise ValueError(
            f"{name} must be a scalar, got an array of shape {np.shape(value)}: one value "
            "for every parameter (for different values per group of parameters use "
            "optjx.param_groups)"
        )


def check_schedule_value(name: str, value) -> None:
    """``TypeError`` naming ``name`` when its schedule returned something other than a
    real number or a real scalar array (checked where it is called, at trace time)."""
    dtype = getattr(value, "dtype", None)
    real = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if dtype is not None and not isinstance(value, (str, bytes)):
        real = bool(jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating))
    if not real:
        shown = repr(value) if isinstance(value, (str, list, tuple, type(None))) else type(value)
        raise TypeError(
            f"{name} is a schedule that returned {shown}: a schedule count -> value must "
            "return a real number or a real scalar array"
        )
    check_scalar(name, value)
