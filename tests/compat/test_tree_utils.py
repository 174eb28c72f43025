"""``optax.tree`` utilities on optjx states: ``get``/``set``/``get_all_with_path`` of "count".

A stage keeps its ``count`` whatever its hyperparameters are (DESIGN.md, convention 1),
and an alias keeps one counter that its learning-rate and weight-decay stages read, so
``optax.tree.get(state, "count")`` finds the alias's one counter (where optax's twin has
one, the same value), and ``optax.tree.set`` changes values, never the structure.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from compat_helpers import TWINS, assert_trees_close, grads_at, make_params, trajectory

import optjx

# Twins whose optax state has at most one "count" (get raises on several); optjx's has
# exactly one. (Not here: RMSProp with momentum keeps two, its preconditioner's and its
# buffer's; the adagrad twin is an optax.chain of two optjx building blocks, each counted.)
SINGLE_COUNT = [
    "sgd",
    "sgd_momentum",
    "sgd_schedule",
    "adam",
    "adamw",
    "adadelta",
    "radam_eps0",
    "novograd_eps0",
]


@pytest.mark.parametrize("twin", SINGLE_COUNT)
def test_get_count_like_optax_twin(twin):
    make_optjx, make_optax = TWINS[twin]
    params = make_params()
    for steps in (0, 2):
        _, state = (
            trajectory(make_optjx(), steps=steps) if steps else (None, make_optjx().init(params))
        )
        _, ref = (
            trajectory(make_optax(), steps=steps) if steps else (None, make_optax().init(params))
        )
        count, ref_count = optax.tree.get(state, "count"), optax.tree.get(ref, "count")
        assert int(count) == steps and count.dtype == jnp.int32
        if ref_count is not None:
            assert int(ref_count) == steps
        paths = [path for path, _ in optax.tree.get_all_with_path(state, "count")]
        ref_paths = [path for path, _ in optax.tree.get_all_with_path(ref, "count")]
        assert len(paths) == 1 and len(ref_paths) <= 1


@pytest.mark.parametrize("twin", ["adam", "adamw", "radam_eps0", "novograd_eps0", "sgd_schedule"])
def test_set_count_keeps_structure_and_continues_like_optax(x64, twin):
    # Jump both to step 100 (bias corrections, RAdam's rectification, the schedule's end)
    # and take one more step: the same update as optax's twin from the same jump.
    make_optjx, make_optax = TWINS[twin]
    params = make_params()
    grads = grads_at(params)
    tx, ref = make_optjx(), make_optax()
    state = tx.update(grads, tx.init(params), params)[1]
    ref_state = ref.update(grads, ref.init(params), params)[1]
    moved = optax.tree.set(state, count=jnp.asarray(100, jnp.int32))
    ref_moved = optax.tree.set(ref_state, count=jnp.asarray(100, jnp.int32))
    assert jax.tree.structure(moved) == jax.tree.structure(state)
    assert int(optax.tree.get(moved, "count")) == 100
    updates, after = tx.update(grads, moved, params)
    ref_updates, _ = ref.update(grads, ref_moved, params)
    assert_trees_close(updates, ref_updates, rtol=1e-12, atol=1e-14)
    assert int(optax.tree.get(after, "count")) == 101
    # Under jit too: the set state is a valid argument of the compiled update.
    jitted, _ = jax.jit(tx.update)(grads, moved, params)
    assert_trees_close(jitted, updates, rtol=1e-12, atol=1e-14)


def test_one_counter_per_alias_whatever_the_hyperparameters():
    params = make_params()
    schedule = optax.linear_schedule(0.1, 0.0, 10)
    for make in (
        lambda lr: optjx.sgd(lr),
        lambda lr: optjx.sgd(lr, 0.9, weight_decay=0.1),
        lambda lr: optjx.rmsprop(lr),
        lambda lr: optjx.adagrad(lr, weight_decay=lr),
        lambda lr: optjx.adam(lr, weight_decay=0.0),
    ):
        states = [make(lr).init(params) for lr in (0.1, jnp.asarray(0.0), schedule)]
        assert len(optax.tree.get_all_with_path(states[0], "count")) == 1
        assert len({jax.tree.structure(s) for s in states}) == 1


def test_set_on_wrapped_and_injected_states():
    params = make_params()
    # inject_hyperparams: the learning rate is a key of the hyperparams dict.
    tx = optax.inject_hyperparams(optjx.adam)(learning_rate=0.1)
    state = tx.init(params)
    changed = optax.tree.set(state, learning_rate=jnp.asarray(0.0, jnp.float32))
    assert jax.tree.structure(changed) == jax.tree.structure(state)
    updates, _ = tx.update(grads_at(params), changed, params)
    assert all(np.all(np.asarray(u) == 0) for u in jax.tree.leaves(updates))
    # Inside a guard, a chain and masked: still one counter, found and set by key path.
    guarded = optax.chain(
        optax.clip_by_global_norm(1.0),
        optjx.apply_if_finite(optjx.adam(0.1), max_consecutive_errors=2),
    )
    state = guarded.init(params)
    counts = optax.tree.get_all_with_path(state, "count")
    assert len(counts) == 1
    moved = optax.tree.set(state, count=jnp.asarray(7, jnp.int32))
    assert jax.tree.structure(moved) == jax.tree.structure(state)
    assert int(optax.tree.get(moved, "count")) == 7
    masked = optax.masked(optjx.radam(0.1), {"w": True, "b": False})
    state = masked.init(params)
    assert int(optax.tree.get(state, "count")) == 0
    moved = optax.tree.set(state, count=jnp.asarray(3, jnp.int32))
    assert jax.tree.structure(moved) == jax.tree.structure(state)
