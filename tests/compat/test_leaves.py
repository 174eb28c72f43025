"""Leaves optax accepts, optjx accepts (CONTRIBUTING.md, convention 4).

A params tree that mixes a float array with a Python float, an int32 array, a bool array
and ``None``; gradients from ``jax.grad(..., allow_int=True)`` (``float0`` for the int and
bool leaves) or integer gradients. The float leaves must move exactly as they do when the
optimizer sees only them, the others get a zero update and no state, and
``apply_updates`` leaves the int params unchanged. Stateless transforms accept ``None``,
``{}`` and ``optax.EmptyState()`` as their state.
"""

from __future__ import annotations

import cards
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from compat_helpers import assert_trees_close, assert_trees_equal, grads_at, make_params

import optjx

# Every card's first configuration (tests/cards), and optax's chain around optjx.
# (Not the loss-driven methods: they take value_fn=, and their leaves are tested by the
# loss-driven invariants.)
FIRST = {card.name: card.entries[0] for card in cards.CARDS if not card.loss_driven}
OPTIMIZERS = {
    **{name: entry.build for name, entry in FIRST.items()},
    "chain": lambda: optax.chain(optjx.clip_by_global_norm(1.0), optjx.adam(0.1)),
}
STEPS = 3


def mixed_params():
    return {
        "w": make_params()["w"],
        "s": 1.5,  # a Python float
        "i": jnp.asarray([1, 2, 3], jnp.int32),
        "flag": jnp.asarray(True),
        "n": None,
    }


def mixed_loss(params):
    scale = jnp.where(params["flag"], 1.0, 2.0)
    shift = params["i"].astype(jnp.float32)
    return (
        scale * jnp.sum(jnp.sin(params["w"]) * shift)
        + params["s"] ** 3
        + 0.1 * jnp.sum(params["w"] ** 4)
    )


def mixed_grads(params, kind):
    grads = jax.grad(mixed_loss, allow_int=True)(params)
    if kind == "int":  # integer (and bool) gradients instead of float0
        grads = {**grads, "i": jnp.zeros_like(params["i"]), "flag": jnp.zeros_like(params["flag"])}
    return grads


def _update(name, tx, grads, state, params):
    """``tx.update``, with ``value=`` for an optimizer that reads the loss value."""
    entry = FIRST.get(name)
    if entry is not None and entry.needs_value:
        return tx.update(grads, state, params, value=jnp.asarray(1.0))
    return tx.update(grads, state, params)


def float_part(tree):
    return {"s": jnp.asarray(tree["s"]), "w": tree["w"]}


# float0 gradients for every optimizer; integer gradients for a few of each kind.
INT_GRADS = ["sgd", "adam", "add_decayed_weights", "lookahead", "accumulate_gradients"]


@pytest.mark.parametrize(
    "name, kind",
    # block_coordinate's card labels leaves by their shape: the int leaf makes a block of its
    # own (with its own inner state), which the float leaves alone do not have.
    [(name, "float0") for name in OPTIMIZERS if name != "block_coordinate"]
    + [(name, "int") for name in INT_GRADS],
)
def test_mixed_leaves_match_the_float_leaves_alone(name, kind):
    tx, ref = OPTIMIZERS[name](), OPTIMIZERS[name]()
    params = mixed_params()
    ref_params = float_part(params)
    state, ref_state = tx.init(params), ref.init(ref_params)
    for _ in range(STEPS):
        grads = mixed_grads(params, kind)
        updates, state = _update(name, tx, grads, state, params)
        ref_updates, ref_state = _update(name, ref, float_part(grads), ref_state, ref_params)
        assert updates["n"] is None
        assert_trees_close(float_part(updates), ref_updates, rtol=1e-6, atol=1e-7)
        for key in ("i", "flag"):
            # A zero update in the param's dtype (float0 cannot be added to anything).
            assert updates[key].dtype == params[key].dtype
            assert updates[key].shape == params[key].shape
            assert not np.any(np.asarray(updates[key]))
        # The state holds the float leaves' state and nothing for the others.
        assert_trees_close(jax.tree.leaves(state), jax.tree.leaves(ref_state), rtol=1e-6, atol=1e-7)
        params = optax.apply_updates(params, updates)
        ref_params = optax.apply_updates(ref_params, ref_updates)
        assert params["i"].dtype == jnp.int32 and params["flag"].dtype == jnp.bool_
        np.testing.assert_array_equal(params["i"], [1, 2, 3])
        assert bool(params["flag"])


@pytest.mark.parametrize("name", ["adam", "lookahead"])
def test_apply_updates_with_float0_updates_leaves_int_params_unchanged(name):
    # jax.grad(..., allow_int=True) gives float0 gradients for int and bool params; the
    # update optjx returns for them must be something optjx.apply_updates can apply.
    tx = OPTIMIZERS[name]()
    params = mixed_params()
    updates, _ = _update(name, tx, mixed_grads(params, "float0"), tx.init(params), params)
    new_params = optjx.apply_updates(params, updates)
    np.testing.assert_array_equal(new_params["i"], params["i"])
    assert new_params["i"].dtype == jnp.int32
    assert bool(new_params["flag"]) and new_params["n"] is None


@pytest.mark.parametrize("name", ["adam", "sgd", "polyak_averaging"])
def test_mixed_leaves_under_jit(name):
    tx = OPTIMIZERS[name]()
    params = {**mixed_params(), "s": jnp.asarray(1.5)}
    grads = mixed_grads(params, "float0")
    state = tx.init(params)
    eager, eager_state = _update(name, tx, grads, state, params)
    jitted, jitted_state = jax.jit(lambda *a: _update(name, tx, *a))(grads, state, params)
    assert_trees_close(float_part(jitted), float_part(eager), rtol=1e-6, atol=1e-7)
    assert jax.tree.structure(jitted_state) == jax.tree.structure(eager_state)


@pytest.mark.parametrize("name", ["adam", "sgd", "add_decayed_weights"])
def test_optax_twin_accepts_the_same_int_gradients(name):
    # optax accepts integer gradients for integer params (it does not accept float0):
    # optjx gives the same float updates.
    tx, twin = {
        "adam": (
            optjx.adam(0.1, weight_decay=0.01),
            optax.chain(optax.add_decayed_weights(0.01), optax.adam(0.1)),
        ),
        "sgd": (
            optjx.sgd(0.1, 0.9, weight_decay=0.01),
            optax.chain(optax.add_decayed_weights(0.01), optax.sgd(0.1, 0.9)),
        ),
        "add_decayed_weights": (optjx.add_decayed_weights(0.1), optax.add_decayed_weights(0.1)),
    }[name]
    params = {"w": make_params()["w"], "s": 1.5, "i": jnp.asarray([1, 2, 3], jnp.int32)}
    floats = {"w": params["w"], "s": params["s"]}
    grads = jax.grad(lambda f: mixed_loss({**params, **f, "flag": jnp.asarray(True)}))(floats)
    grads = {**grads, "i": jnp.zeros(3, jnp.int32)}
    updates, _ = tx.update(grads, tx.init(params), params)
    expected, _ = twin.update(grads, twin.init(params), params)
    assert_trees_close(float_part(updates), float_part(expected), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(optax.apply_updates(params, updates)["i"], [1, 2, 3])


def test_none_gradients_where_params_are_none():
    params = {"w": make_params()["w"], "n": None, "nested": {"m": None}}
    grads = {"w": grads_at(make_params())["w"], "n": None, "nested": {"m": None}}
    for name, make in OPTIMIZERS.items():
        tx = make()
        updates, state = _update(name, tx, grads, tx.init(params), params)
        assert updates["n"] is None and updates["nested"]["m"] is None, name
        ref = make()
        w = {"w": params["w"]}
        ref_updates, _ = _update(name, ref, {"w": grads["w"]}, ref.init(w), w)
        assert_trees_close(updates["w"], ref_updates["w"], rtol=1e-6, atol=1e-7)


def test_add_decayed_weights_passes_none_updates_where_params_exist():
    params = make_params()
    grads = {"w": grads_at(params)["w"], "b": None}
    for tx in (
        optjx.add_decayed_weights(0.1),
        optjx.add_decayed_weights(0.1, mask={"w": True, "b": True}),
    ):
        updates, _ = tx.update(grads, tx.init(params), params)
        expected, _ = optax.add_decayed_weights(0.1).update(grads, optax.EmptyState(), params)
        assert updates["b"] is None and expected["b"] is None
        assert_trees_close(updates["w"], expected["w"], rtol=1e-6, atol=1e-7)


def _stateless(make):
    return make().init(make_params()) == optax.EmptyState()


# The cards' first configurations that keep no state at all.
STATELESS = {name: make for name, make in OPTIMIZERS.items() if _stateless(make)}


@pytest.mark.parametrize(
    "empty", [None, {}, optax.EmptyState()], ids=["None", "dict", "EmptyState"]
)
def test_stateless_transforms_accept_any_empty_state(empty):
    params = make_params()
    grads = grads_at(params)
    for name, make in STATELESS.items():
        tx = make()
        expected, _ = tx.update(grads, tx.init(params), params)
        updates, state = tx.update(grads, empty, params)
        assert_trees_equal(updates, expected)
        assert state == empty or (state is None and empty is None), name
        # inside optax.chain, whose state for it may come from elsewhere
        chained = optax.chain(make(), optjx.scale(1.0))
        updates, _ = chained.update(grads, (empty, optax.EmptyState()), params)
        assert_trees_equal(updates, expected)


@pytest.mark.parametrize(
    "empty", [None, {}, optax.EmptyState()], ids=["None", "dict", "EmptyState"]
)
def test_cross_replica_mean_accepts_any_empty_state(empty):
    tx = optjx.cross_replica_mean("batch")
    stacked = jax.tree.map(lambda g: jnp.stack([g, 3 * g]), grads_at(make_params()))
    out = jax.vmap(lambda g: tx.update(g, empty)[0], axis_name="batch")(stacked)
    expected = jax.tree.map(lambda g: 2 * g, grads_at(make_params()))
    for i in range(2):
        assert_trees_close(jax.tree.map(lambda u, i=i: u[i], out), expected, rtol=1e-6, atol=1e-7)
    assert tx.init(make_params()) == optax.EmptyState()
