"""Stage states that keep a step counter only where something reads it.

A stage reads its counter for a schedule, a first-step rule or a bias correction; a
stage without such a reader keeps no ``count`` field at all (not ``count=None``), as the
optax twin of each stage does, so that ``optax.tree.get(state, "count")`` finds the one
counter that matters and ``optax.tree.set`` cannot change the state's structure.

Each state class is written without ``count``; ``init`` builds it, or its counted
sibling ``<Name>WithCount`` (``count`` first), from a Python-level decision taken in the
factory, so the structure depends only on configuration.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

INT32_MAX = int(np.iinfo(np.int32).max)

_COUNTED: dict[type, type] = {}


class ScheduleState(NamedTuple):
    """The counter of a stage whose only state it is (a scheduled step size, bound or
    decay); the same stage with constant hyperparameters keeps ``optax.EmptyState()``."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax


def zero_count() -> jax.Array:
    """A fresh int32 step counter."""
    return jnp.zeros([], jnp.int32)


def next_count(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the int32 maximum instead of wrapping negative."""
    return jnp.where(count < INT32_MAX, count + 1, count)


def counted(cls: type) -> type:
    """``cls`` with a leading int32 ``count`` field: the sibling class ``<Name>WithCount``.

    Registered in ``cls``'s module under that name, so pickling finds it.
    """
    if cls not in _COUNTED:
        name = f"{cls.__name__}WithCount"
        fields = [("count", jax.Array), *cls.__annotations__.items()]
        sibling = NamedTuple(name, fields)  # type: ignore[misc]
        sibling.__module__ = cls.__module__
        sibling.__doc__ = f"{cls.__name__} with the stage's int32 step counter first."
        setattr(sys.modules[cls.__module__], name, sibling)
        _COUNTED[cls] = sibling
    return _COUNTED[cls]


def init(cls: type, with_count: bool, **fields: Any):
    """A fresh state of ``cls``, with a zero ``count`` first when ``with_count``."""
    if with_count:
        return counted(cls)(count=zero_count(), **fields)
    return cls(**fields)


def count_of(state) -> jax.Array | None:
    """The stage's step counter, or ``None`` for a state that keeps none.

    (Not ``getattr(state, "count")``: every NamedTuple has a ``count`` method.)
    """
    return state.count if "count" in getattr(state, "_fields", ()) else None


def advance(state, **fields: Any):
    """``state`` with new ``fields`` and, where it keeps one, its counter advanced."""
    if "count" in getattr(state, "_fields", ()):
        fields["count"] = next_count(state.count)
    return state._replace(**fields)
