"""Equivalents of the optax 0.2.8 tests that failed with optjx in optax's place, written
from what they assert (optax's test files are not in its wheel): its alias test
``test_optimizers_can_be_wrapped_in_inject_hyperparams``, ``tree_utils``'
``test_tree_get``/``test_tree_set``, ``add_decayed_weights``' ``test_none_argument`` and
``chain``'s ``test_extra_args``; and ``update(grads, state)`` without params wherever the
plain alias needs none, injected or not.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from compat_helpers import make_params, optax_alias_loss

import optjx

WRAPPED = [
    ("adadelta", dict(learning_rate=0.1)),
    ("adadelta", dict()),
    ("adagrad", dict(learning_rate=1.0)),
    ("adam", dict(learning_rate=1e-1)),
    ("adam", dict(learning_rate=1e-1, amsgrad=True)),  # optax's amsgrad
    ("radam", dict(learning_rate=5e-3)),
    ("rmsprop", dict(learning_rate=5e-3)),
    ("rmsprop", dict(learning_rate=5e-3, momentum=0.9)),
    ("sgd", dict(learning_rate=1e-3, momentum=0.9)),
]


@pytest.mark.parametrize("name,kwargs", WRAPPED, ids=[f"{n}-{sorted(k)}" for n, k in WRAPPED])
def test_optimizers_can_be_wrapped_in_inject_hyperparams(name, kwargs):
    factory = getattr(optjx, name)
    plain = factory(**kwargs)
    static = [n for n, v in kwargs.items() if isinstance(v, bool)]
    wrapped = optax.inject_hyperparams(factory, static_args=static)(**kwargs)
    params = [-jnp.ones((2, 3)), jnp.ones((2, 5, 2))]
    grads = [jnp.ones((2, 3)), -jnp.ones((2, 5, 2))]
    updates, state = jax.jit(plain.update)(grads, jax.jit(plain.init)(params), params)
    injected_updates, injected_state = jax.jit(wrapped.update)(
        grads, jax.jit(wrapped.init)(params), params
    )
    for a, b in zip(jax.tree.leaves(injected_updates), jax.tree.leaves(updates), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3)
    assert jax.tree.structure(injected_state.inner_state) == jax.tree.structure(state)
    for a, b in zip(
        jax.tree.leaves(injected_state.inner_state), jax.tree.leaves(state), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4)


def test_tree_get():
    params = jnp.asarray([1.0, 2.0, 3.0])
    state = optax.inject_hyperparams(optjx.sgd)(learning_rate=42.0).init(params)
    assert optax.tree.get(state, "learning_rate") == 42.0
    assert optax.tree.get(state, "ema") is None
    assert optax.tree.get(state, "ema", default=7.0) == 7.0
    two = optax.chain(
        optax.inject_hyperparams(optjx.sgd)(learning_rate=42.0),
        optax.inject_hyperparams(optjx.sgd)(learning_rate=42.0),
    )
    with pytest.raises(KeyError):
        optax.tree.get(two.init(params), "learning_rate")

    # Updated without params: plain sgd does not need them, nor does the injected one.
    opt = optax.inject_hyperparams(optjx.sgd)(learning_rate=lambda count: 1 / (count + 1))
    state = opt.init(params)
    get_rate = jax.jit(
        lambda s: optax.tree.get(
            s, "learning_rate", filtering=lambda _, v: isinstance(v, jnp.ndarray)
        )
    )
    for i in range(4):
        _, state = opt.update(params, state)
        assert get_rate(state) == 1 / (i + 1)

    def adam_state(path, _):
        return (
            isinstance(path[-1], optax.tree_utils.NamedTupleKey)
            and path[-1].tuple_name == "ScaleByAdamState"
        )

    state = optax.chain(optjx.scale_by_learning_rate(0.1), optjx.scale_by_adam()).init(params)
    assert optax.tree.get(state, "count", filtering=adam_state) == 0


def test_tree_set():
    params = jnp.asarray([1.0, 2.0, 3.0])
    opt = optax.inject_hyperparams(optjx.adam)(learning_rate=1.0)
    state = opt.init(params)
    moved = optax.tree.set(state, learning_rate=2.0, b1=3.0)
    assert optax.tree.get(moved, "learning_rate") == 2.0
    assert optax.tree.get(moved, "b1") == 3.0
    with pytest.raises(KeyError):
        optax.tree.set(state, ema=2.0)

    set_rate = jax.jit(lambda s, lr: optax.tree.set(s, learning_rate=lr))
    for i in range(4):
        state = set_rate(state, 1.0 / (i + 1))
        _, state = opt.update(params, state)  # without params, as plain adam
        assert optax.tree.get(state, "learning_rate") == 1.0 / (i + 1)

    # One counter per adam: two in a chain of two.
    state = optax.chain(optjx.adam(1.0), optjx.adam(1.0)).init(params)
    found = optax.tree.get_all_with_path(optax.tree.set(state, count=2.0), "count")
    assert len(found) == 2 and all(value == 2.0 for _, value in found)


def test_none_argument():
    weights = (jnp.ones((2,)), {"a": jnp.ones((2,)), "b": jnp.ones((2,))})
    updates, state = optjx.add_decayed_weights(0.1, mask=None).update(None, 0, weights)
    assert updates is None and state == 0


def test_extra_args():
    def update_needing_loss(updates, state, params=None, *, loss, **extra_args):
        del extra_args, params
        assert loss == 1
        return updates, state

    needs_loss = optax.GradientTransformationExtraArgs(lambda params: (), update_needing_loss)
    chained = optax.chain(optjx.adam(1e-3), needs_loss)
    assert isinstance(chained, optax.GradientTransformationExtraArgs)
    params = {"a": 1, "b": 2}  # Python ints: no params to train, zero updates
    updates, _ = chained.update(params, chained.init(params), loss=1, ignored_kwarg="hi")
    assert all(int(u) == 0 for u in jax.tree.leaves(updates))


# Every alias at its defaults (and with a schedule), plain and injected: update without params.
NO_PARAMS = {
    "sgd": dict(learning_rate=0.1),
    "sgd_momentum": dict(learning_rate=0.1, momentum=0.9),
    "rmsprop": dict(learning_rate=0.01),
    "adagrad": dict(learning_rate=0.1),
    "adam": dict(learning_rate=0.01),
    "adadelta": dict(),
    "radam": dict(learning_rate=0.01),
    "novograd": dict(learning_rate=0.01),
}


@pytest.mark.parametrize("label", list(NO_PARAMS))
def test_update_without_params_where_the_alias_needs_none(label):
    name = label.split("_")[0]
    kwargs = NO_PARAMS[label]
    params = make_params()
    grads = jax.grad(optax_alias_loss)(params)
    for tx in (
        getattr(optjx, name)(**kwargs),
        optax.inject_hyperparams(getattr(optjx, name))(**kwargs),
    ):
        state = tx.init(params)
        with_params, _ = tx.update(grads, state, params)
        without, _ = tx.update(grads, state)
        for a, b in zip(jax.tree.leaves(without), jax.tree.leaves(with_params), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=label)
