"""Stage states inside a chain's state, found by class name: read a field, set a field,
set every step counter. (A chain's state is tuples of stage ``NamedTuple`` s, wrappers'
states holding their inner state; ``count`` fields are the counters.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp


def stage_name(node) -> str:
    return type(node).__name__.removesuffix("WithCount")


def is_stage(node) -> bool:
    return isinstance(node, tuple) and hasattr(node, "_fields")


def find(state, stage: str):
    """The first stage state of class ``stage`` in the chain's state, or ``None``."""
    if is_stage(state):
        if stage_name(state) == stage:
            return state
        state = tuple(state)
    if isinstance(state, (tuple, list)):
        for child in state:
            found = find(child, stage)
            if found is not None:
                return found
    return None


def rebuild(state, change: Callable[[Any], Any]):
    """``state`` with ``change`` applied to every stage state, outermost first."""
    if is_stage(state):
        state = change(state)
        return type(state)(*(rebuild(child, change) for child in state))
    if isinstance(state, (tuple, list)):
        return type(state)(rebuild(child, change) for child in state)
    return state


def set_field(state, stage: str, field: str, value):
    def change(node):
        if stage_name(node) == stage:
            return node._replace(**{field: value})
        return node

    return rebuild(state, change)


def set_counts(state, step: int):
    def change(node):
        if "count" in node._fields:
            return node._replace(count=jnp.asarray(step, node.count.dtype))
        return node

    return rebuild(state, change)


def counts(state) -> list[int]:
    found: list[int] = []

    def collect(node):
        if "count" in node._fields:
            found.append(int(node.count))
        return node

    rebuild(state, collect)
    return found
