"""Invariant 5 over the whole registry: every kind of tree.

* A tree that mixes every container (dict, list, tuple, a user NamedTuple), a ``None``
  leaf, 0-d arrays and zero-size arrays: the updates have the gradients' structure
  (``None`` kept where it was), the state keeps its structure, everything is finite, and
  every update equals, bit for bit, the update of the same leaves passed as a flat list:
  the containers change nothing in the arithmetic.
* Empty trees (``{}``, ``()``, ``[]``, nested empties): ``init`` and ``update`` work and
  return empty updates.
"""

from typing import NamedTuple

import _harness as harness
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from registry import ENTRIES

pytestmark = pytest.mark.usefixtures("strict_promotion")


class Pair(NamedTuple):
    left: jax.Array
    right: jax.Array


def _rich(seed):
    rng = np.random.default_rng(seed)

    def a(*shape):
        return jnp.asarray(rng.normal(size=shape), jnp.float32)

    return {
        "dict": {"matrix": a(3, 2), "vector": a(2)},
        "list": [a(), a(0)],
        "tuple": (a(2, 0), None, a(4)),
        "named": Pair(left=a(3), right=a()),
    }


def _run(entry, params, grads_list):
    tx = harness.compiled(entry.id).tx
    state = tx.init(params)
    out = []
    for t, g in enumerate(grads_list):
        updates, state = harness.update(entry, tx, g, state, params, harness.value_at(t))
        params = optax.apply_updates(params, updates)
        out.append(updates)
    return params, out, state


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_every_container_none_leaves_scalars_and_zero_size_arrays(entry):
    params = _rich(0)
    grads = [_rich(1 + t) for t in range(3)]
    init_structure = jax.tree.structure(harness.compiled(entry.id).tx.init(params))
    final, updates, state = _run(entry, params, grads)
    for u, g in zip(updates, grads, strict=True):
        assert jax.tree.structure(u) == jax.tree.structure(g)
        assert u["tuple"][1] is None and isinstance(u["named"], Pair)
    assert jax.tree.structure(state) == init_structure
    assert jax.tree.structure(final) == jax.tree.structure(params)
    assert harness.all_finite((final, updates, state))

    # The same leaves as a flat list give the same updates.
    flat = jax.tree.leaves
    _, flat_updates, _ = _run(entry, flat(params), [flat(g) for g in grads])
    for t, (u, f) in enumerate(zip(updates, flat_updates, strict=True)):
        harness.assert_trees_identical(flat(u), f, f"updates[{t}]")


@pytest.mark.parametrize("empty", [{}, (), [], {"a": {}, "b": [], "c": ()}], ids=repr)
@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_empty_trees(entry, empty):
    _, updates, state = _run(entry, empty, [empty, empty])
    assert jax.tree.structure(updates[-1]) == jax.tree.structure(empty)
    assert jax.tree.structure(state) == jax.tree.structure(
        harness.compiled(entry.id).tx.init(empty)
    )
