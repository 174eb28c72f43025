"""Invariant 9: ``apply_if_finite`` around every registry entry skips non-finite steps.

* One device: finite, NaN, +Inf, -Inf, finite gradients. The three bad steps give zero
  updates and leave the params and the whole inner state (its step counts included)
  bit-identical; the guard counts them (its own ``count`` counts every call, as
  documented). The run ends bit-identical to the inner
  optimizer run on the two finite gradients alone: a skipped step leaves no trace.
* Eight replicas under ``jax.pmap`` with ``chain(cross_replica_mean, apply_if_finite(...))``:
  a NaN on one replica's gradient reaches every replica through the mean, and all
  replicas skip the step together; their params and states stay identical. The entries
  of the selected tests run in one pmapped program (one compilation, about half the time
  of one program per entry; ``-k one_name`` compiles that name alone).
"""

import _harness as harness
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import registry
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from registry import ENTRIES

import optjx

pytestmark = pytest.mark.usefixtures("strict_promotion")
LIMIT = 5  # more than the consecutive bad steps below: none is given up on


def _poisoned(t, bad):
    g = harness.make_grads(t)
    return {**g, "w": g["w"].at[1, 0].set(bad)}


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_nonfinite_gradients_leave_params_and_inner_state_untouched(entry):
    inner = harness.compiled(entry.id).tx
    guarded = optjx.apply_if_finite(inner, max_consecutive_errors=LIMIT)
    params = harness.make_params()
    state = guarded.init(params)

    def step(t, g, params, state):
        updates, state = harness.update(entry, guarded, g, state, params, harness.value_at(t))
        return optax.apply_updates(params, updates), updates, state

    params, _, state = step(0, harness.make_grads(0), params, state)
    kept_params, kept_inner = params, state.inner_state
    for n, bad in enumerate([jnp.nan, jnp.inf, -jnp.inf], start=1):
        params, updates, state = step(n, _poisoned(n, bad), params, state)
        assert all(not bool(jnp.any(u)) for u in jax.tree.leaves(updates)), f"step {n}: update"
        harness.assert_trees_identical(params, kept_params, f"step {n}: params")
        harness.assert_trees_identical(state.inner_state, kept_inner, f"step {n}: inner state")
        assert int(state.notfinite_count) == n and int(state.total_notfinite) == n
        assert not bool(state.last_finite)
    params, _, state = step(4, harness.make_grads(4), params, state)
    assert int(state.notfinite_count) == 0 and bool(state.last_finite)

    # Reference: the inner optimizer on the finite gradients only.
    ref_params = harness.make_params()
    ref_state = inner.init(ref_params)
    for t in (0, 4):
        u, ref_state = harness.update(
            entry, inner, harness.make_grads(t), ref_state, ref_params, harness.value_at(t)
        )
        ref_params = optax.apply_updates(ref_params, u)
    harness.assert_trees_identical(params, ref_params, "params")
    harness.assert_trees_identical(state.inner_state, ref_state, "inner state")


DEVICES = 8
BAD_REPLICA = 3


@pytest.fixture(scope="module")
def pmapped(request):
    """Each selected entry guarded after a cross-replica mean, two steps on 8 replicas."""
    assert jax.device_count() >= DEVICES, "tests/conftest.py sets 8 CPU devices"
    txs = {
        e.id: optax.with_extra_args_support(
            optax.chain(
                optjx.cross_replica_mean("replicas"),
                optjx.apply_if_finite(e.build(), max_consecutive_errors=LIMIT),
            )
        )
        for e in harness.selected_entries(request)
    }

    def step(params, states, grads, value):
        new_params, new_states = {}, {}
        for key, tx in txs.items():
            # A loss-driven entry also gets the loss (the harness's standard one).
            extra = {"value_fn": harness.loss} if registry.BY_ID[key].loss_driven else {}
            u, new_states[key] = tx.update(grads, states[key], params[key], value=value, **extra)
            new_params[key] = optax.apply_updates(params[key], u)
        return new_params, new_states

    def replicate(tree):
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (DEVICES, *jnp.shape(x))), tree)

    def per_replica(t, poison):
        trees = []
        for r in range(DEVICES):
            g = harness.make_grads(10 * t + r)  # a different gradient on each replica
            if poison and r == BAD_REPLICA:
                g = {**g, "b": g["b"].at[0].set(jnp.nan)}
            trees.append(g)
        return jax.tree.map(lambda *x: jnp.stack(x), *trees)

    # The first call's params and states placed as pmap returns them (split over the
    # replicas): given on one device, the second call would compile the program again.
    devices = jax.devices()[:DEVICES]
    split = NamedSharding(Mesh(np.array(devices), ("replicas",)), PartitionSpec("replicas"))
    with jax.numpy_dtype_promotion("strict"):
        run = jax.pmap(step, axis_name="replicas", devices=devices)
        params = jax.device_put(replicate({key: harness.make_params() for key in txs}), split)
        states = jax.device_put(
            replicate({key: tx.init(harness.make_params()) for key, tx in txs.items()}), split
        )
        value = jnp.full((DEVICES,), 3.0, jnp.float32)
        first = run(params, states, per_replica(0, False), value)
        second = run(*first, per_replica(1, True), value)
    return first, second


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_nan_on_one_replica_skips_the_step_on_all_replicas(pmapped, entry):
    (params1, states1), (params2, states2) = pmapped
    key = entry.id
    guard1, guard2 = states1[key][1], states2[key][1]
    # Every replica holds the same params and state after each step.
    for tree in (params1[key], states1[key], params2[key], states2[key]):
        for x in jax.tree.leaves(tree):
            x = np.asarray(x)
            assert all(np.array_equal(x[0], x[r], equal_nan=True) for r in range(DEVICES))
    # Step 1 (finite everywhere) was applied; step 2 (NaN on one replica) was skipped.
    assert np.all(np.asarray(guard1.last_finite)) and not np.any(np.asarray(guard2.last_finite))
    assert np.all(np.asarray(guard2.notfinite_count) == 1)
    harness.assert_trees_identical(params2[key], params1[key], "params")
    harness.assert_trees_identical(guard2.inner_state, guard1.inner_state, "inner state")
    assert harness.all_finite(params2[key])
