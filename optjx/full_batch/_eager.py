"""One compiled program for a full-batch ``update`` called outside ``jax.jit``.

A full-batch update runs ``lax.while_loop``\\ s (the iteration, the line search, an inner
conjugate-gradient solve) whose bodies close over the user's loss. Called eagerly, JAX
traces those bodies afresh on every call, sees new functions and compiles every loop
again: seconds per step for a problem of six numbers. Called eagerly, an update is
therefore run by one program compiled for its factory's arguments and the loss function,
and kept: a Python loop of ``update`` calls, as torch users write with
``step(closure)``, compiles on its first step only. Under a trace (the user's
``jax.jit``, ``vmap``, ``pmap``, ``grad``) the update runs inline.

The program is shared by every transformation the factory builds alike, and a
hyperparameter given as a 0-d array (``optax.inject_hyperparams`` rebuilds the optimizer
at every call with the step's values as arrays) is an argument of the program, not a
constant in it: a rebuilt optimizer and an injected learning rate that changes at every
step compile once, where each would compile on every step.

The programs hold the loss function (and what it closes over) alive: the last
``_KEEP`` used are kept, process-wide, the least recently used dropped first. A new
closure on every step therefore costs a compilation per step, but no growing memory.
"""

from __future__ import annotations

import collections
import functools
import math
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import jax
import numpy as np

_KEEP = 16  # compiled updates kept process-wide: a few factories x loss functions in use
_ARRAY = (jax.Array, np.ndarray, np.generic)
_Factory = TypeVar("_Factory", bound=Callable[..., Any])
_PROGRAMS: collections.OrderedDict[Hashable, Callable[..., Any]] = collections.OrderedDict()


def _concrete(tree) -> bool:
    """Every leaf is a concrete array or number (not a tracer, not a string or object)."""
    return all(
        isinstance(x, (*_ARRAY, bool, int, float, complex)) and not isinstance(x, jax.core.Tracer)
        for x in jax.tree.leaves(tree)
    )


def _is_argument(x) -> bool:
    """A (concrete) factory argument the program takes as an input: a 0-d array."""
    return isinstance(x, _ARRAY) and np.ndim(x) == 0


class _Same:
    """An object compared by identity (an array bound, a schedule), kept alive by the key."""

    def __init__(self, obj):
        self.obj = obj

    def __hash__(self):
        return id(self.obj)

    def __eq__(self, other):
        return isinstance(other, _Same) and other.obj is self.obj


def _static(x) -> Hashable:
    """A factory argument baked into the program, as a key that tells it from others."""
    if isinstance(x, float):  # -0.0 and nan told apart; 1.0 apart from 1 and True
        return (float, x.hex() if math.isfinite(x) else repr(x))
    if isinstance(x, (bool, int, str, type(None))):
        return (type(x), x)
    return _Same(x)


def _aval(x: jax.Array) -> Hashable:
    return (x.shape, x.dtype, x.weak_type)


def _split_call(kwargs: dict[str, Any]):
    """``update``'s keywords: arrays (passed to the program) and the rest (functions,
    ``None``: part of the program)."""
    data = {k: v for k, v in kwargs.items() if v is not None and _concrete(v)}
    fixed = tuple(sorted((k, v) for k, v in kwargs.items() if k not in data))
    return data, fixed


def compiled_when_eager(factory: _Factory) -> _Factory:
    """Decorate a full-batch factory: its transformations' ``update``, called on concrete
    arrays, runs one compiled program per factory arguments and loss function (see the
    module docstring). The ``init`` and every result are the undecorated factory's."""

    @functools.wraps(factory)
    def build(*args, **kwargs):
        tx = factory(*args, **kwargs)
        leaves, treedef = jax.tree.flatten((args, kwargs))
        if any(isinstance(x, jax.core.Tracer) for x in leaves):
            return tx  # built under a trace: its update runs inline there
        at = [i for i, x in enumerate(leaves) if _is_argument(x)]
        dynamic = set(at)
        arrays = [jax.numpy.asarray(leaves[i]) for i in at]
        key = (
            factory,
            treedef,
            tuple(None if i in dynamic else _static(x) for i, x in enumerate(leaves)),
            tuple(_aval(a) for a in arrays),
        )

        def rebuilt_update(fixed, arrays, updates, state, params, data):
            full = list(leaves)
            for i, array in zip(at, arrays, strict=True):
                full[i] = array
            rebuilt_args, rebuilt_kwargs = jax.tree.unflatten(treedef, full)
            again = factory(*rebuilt_args, **rebuilt_kwargs)
            return again.update(updates, state, params, **data, **dict(fixed))

        @functools.wraps(tx.update)  # its signature: minimize reads the keywords it takes
        def update(updates, state, params=None, **kwargs):
            data, fixed = _split_call(kwargs)
            try:
                program_key = (key, fixed)
                hash(program_key)
            except TypeError:  # an unhashable loss function: run as it is
                return tx.update(updates, state, params, **kwargs)
            if params is None or not _concrete((updates, state, params)):
                return tx.update(updates, state, params, **kwargs)
            program = _PROGRAMS.pop(program_key, None)
            if program is None:
                program = jax.jit(functools.partial(rebuilt_update, fixed))
            _PROGRAMS[program_key] = program  # now the most recently used
            while len(_PROGRAMS) > _KEEP:
                _PROGRAMS.popitem(last=False)
            return program(arrays, updates, state, params, data)

        return type(tx)(tx.init, update)

    return build  # type: ignore[return-value]
