r"""The object every torch-named schedule returns, and the checks they share.

A ``torch.optim.lr_scheduler`` class reads its base rate from the optimizer and, when
chained or sequenced, acts on the rate other schedulers left in the optimizer. optjx
schedules are pure functions of the count, so a torch-named schedule carries what
composition needs: its base rate, its factor (the rate divided by the base rate) and,
for the two classes that read the optimizer's *current* rate (``MultiplicativeLR`` and
``SWALR``), how it resumes from the rate it finds when it takes over.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from optjx import _hyper, _tree
from optjx.schedules import _checks as C
from optjx.schedules._checks import public

Fn = Callable[[jax.Array], jax.Array]
Resume = Callable[[jax.Array, jax.Array], jax.Array]


@public
class TorchSchedule:
    r"""A schedule ``count -> rate`` named after a ``torch.optim.lr_scheduler`` class.

    Calling it gives the rate after ``count`` updates (or epochs, under
    ``per_epoch``), like any optjx schedule. It also exposes what
    ``sequential_lr`` and ``chained_scheduler`` compose:

    * ``base_lr``: the base rate, $\eta_0$ (torch's ``base_lrs``: the optimizer's rate,
      ``CyclicLR``'s ``base_lr``, ``OneCycleLR``'s ``max_lr / div_factor``);
    * ``factor(count)``: the rate divided by ``base_lr`` (the product of torch's
      per-step ratios for the multiplicative classes);
    * ``resume``: ``None``, or a function ``(previous_rate, count) -> rate`` for the
      classes that continue from the rate the optimizer holds when they take over
      (``MultiplicativeLR``, ``SWALR``); ``sequential_lr`` calls it with the rate
      of the schedule before the milestone.

    Args:
      name: the torch class it reproduces (shown in ``repr``).
      base_lr: $\eta_0$.
      factor: ``count -> rate / base_lr``; give it or ``value``.
      value: ``count -> rate``; give it or ``factor``.
      resume: ``(previous_rate, count) -> rate``, or ``None``.
    """

    # __weakref__: jax.jit caches on the function it wraps by weak reference.
    __slots__ = ("__weakref__", "_factor", "_value", "base_lr", "name", "resume")

    def __init__(
        self,
        name: str,
        base_lr: float | jax.Array,
        *,
        factor: Fn | None = None,
        value: Fn | None = None,
        resume: Resume | None = None,
    ):
        if (factor is None) == (value is None):
            raise TypeError("give exactly one of factor and value")
        self.name = name
        self.base_lr = base_lr
        self._factor = factor
        self._value = value
        self.resume = resume

    def __call__(self, count) -> jax.Array:
        if self._value is not None:
            return _tree.default_float(self._value(count))
        return self.base_lr * _tree.default_float(self._factor(count))  # type: ignore[misc, operator]

    def factor(self, count) -> jax.Array:
        """The rate after ``count`` steps divided by ``base_lr``."""
        if self._factor is not None:
            return _tree.default_float(self._factor(count))
        return self(count) / self.base_lr

    def __repr__(self) -> str:
        return f"<optjx.schedules {self.name} schedule, base_lr={self.base_lr!r}>"


def rate(name: str, given):
    """A base or bound rate: a finite number or array, >= 0 when concrete (torch's lr)."""
    return C.value(name, given, _hyper.NONNEGATIVE)


def choice(name: str, given, allowed: tuple[str, ...]) -> str:
    if not isinstance(given, str) or given not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {given!r}")
    return given


def function(name: str, given):
    if not callable(given) or hasattr(given, "dtype"):
        raise TypeError(f"{name} must be a jittable function, got {given!r}")
    return given


def flag(name: str, given) -> bool:
    if not isinstance(given, bool):
        raise TypeError(f"{name} must be a bool, got {given!r}")
    return given


def anneal(strategy: str, start, end, pct):
    """Torch's ``_annealing_cos`` / ``_annealing_linear``: ``start`` at ``pct = 0``,
    ``end`` at ``pct = 1``."""
    if strategy == "cos":
        return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1.0)
    return (end - start) * pct + start
