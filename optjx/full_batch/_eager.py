"""One compiled program for a full-batch ``update`` called outside ``jax.jit``.

A full-batch update runs ``lax.while_loop``\\ s (the iteration, the line search, an inner
conjugate-gradient solve) whose bodies close over the user's loss. Called eagerly, JAX
traces those bodies afresh on every call, sees new functions and compiles every loop
again: seconds per step for a problem of six numbers. Called eagerly, the update is
therefore compiled once per loss function and reused: a Python loop of ``update`` calls,
as torch users write with ``step(closure)``, compiles on its first step only. Under a
trace (the user's ``jax.jit``, ``vmap``, ``pmap``, ``grad``) the update runs inline.

The compiled programs hold the loss function (and what it closes over) alive: a few are
kept per transformation, the least recently used dropped first, so a new closure on every
step costs a compilation per step (as it would without this) but no growing memory.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Hashable
from typing import Any

import jax
import numpy as np

_KEEP = 4  # compiled programs kept per transformation: one per loss function in use
_ARRAY_LIKE = (jax.Array, np.ndarray, np.generic, bool, int, float, complex)


def _concrete_arrays(tree) -> bool:
    """Every leaf is a concrete array or number (not a tracer, not a string or object)."""
    return all(
        isinstance(x, _ARRAY_LIKE) and not isinstance(x, jax.core.Tracer)
        for x in jax.tree.leaves(tree)
    )


def _hashable(key) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


class CompiledWhenEager:
    """``body(key, *arrays)`` jitted once per ``key`` when called on concrete arrays.

    ``key`` holds the user's functions (hashable by identity); it is static to the
    compiled program. Calls under a trace, with an unhashable key or with leaves that are
    not arrays run ``body`` as it is.
    """

    def __init__(self, body: Callable[..., Any]):
        self._body = body
        self._programs: collections.OrderedDict[Hashable, Callable[..., Any]] = (
            collections.OrderedDict()
        )

    def __call__(self, key, *arrays):
        if not (_hashable(key) and _concrete_arrays(arrays)):
            return self._body(key, *arrays)
        program = self._programs.pop(key, None)
        if program is None:
            program = jax.jit(functools.partial(self._body, key))
        self._programs[key] = program  # now the most recently used
        while len(self._programs) > _KEEP:
            self._programs.popitem(last=False)
        return program(*arrays)
