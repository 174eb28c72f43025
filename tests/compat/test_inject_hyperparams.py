"""Every optjx alias under ``optax.inject_hyperparams``.

``inject_hyperparams`` calls the factory with concrete arrays in ``init`` and with traced
arrays under ``jit``; the state it builds must have one structure for both (DESIGN.md,
convention 1: no value and no form of a number changes it). A hyperparameter set to
0 and back between steps (eagerly, then under ``jit`` without a retrace) must give, step by
step, what the alias rebuilt with those values as arrays gives from the same state.
Integer and callable configuration (``mask``, flags) goes through ``static_args``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from compat_helpers import assert_trees_close, grads_at, make_params, trajectory

import optjx

# alias -> (Python-number hyperparameters, those that go to 0 and back)
ALIASES = {
    "sgd": (dict(learning_rate=0.1, momentum=0.9, weight_decay=0.01), ("momentum", "weight_decay")),
    "rmsprop": (
        dict(learning_rate=0.01, decay=0.9, momentum=0.9, weight_decay=0.01),
        ("momentum", "weight_decay"),
    ),
    "adagrad": (dict(learning_rate=0.1, weight_decay=0.01), ("weight_decay",)),
    "adam": (dict(learning_rate=0.1, b1=0.9, b2=0.999, weight_decay=0.01), ("weight_decay",)),
    "adamw": (dict(learning_rate=0.1, weight_decay=0.0), ("weight_decay",)),
    "adadelta": (dict(learning_rate=1.0, rho=0.9, weight_decay=0.01), ("weight_decay",)),
    "radam": (dict(learning_rate=0.1, b2=0.99, weight_decay=0.01), ("weight_decay",)),
    "novograd": (dict(learning_rate=0.1, weight_decay=0.01), ("weight_decay",)),
}


def _schedule_of_values(config, zeroed):
    """Hyperparameter values for 4 steps: as given, zeroed (learning rate too), back, back."""
    zero = {**config, **{name: 0.0 for name in zeroed}, "learning_rate": 0.0}
    other = {**config, "learning_rate": config["learning_rate"] / 2}
    return [config, zero, other, config]


def _set(state, values, as_array):
    for name, value in values.items():
        old = state.hyperparams[name]
        state.hyperparams[name] = jnp.asarray(value, old.dtype) if as_array else value
    return state


@pytest.mark.parametrize("name", list(ALIASES))
def test_inject_hyperparams_eager_and_jit(name):
    factory = getattr(optjx, name)
    config, zeroed = ALIASES[name]
    tx = optax.inject_hyperparams(factory)(**config)
    params = make_params()
    state = tx.init(params)
    structure = jax.tree.structure(state)
    values = _schedule_of_values(config, zeroed)

    # Eagerly, with Python floats written into the state: zero and back. (The state's
    # hyperparams dict is mutable and shared between states: use a fresh state for this.)
    eager_state = tx.init(params)
    for step_values in values[:3]:
        eager_state = _set(eager_state, step_values, as_array=False)
        updates, eager_state = tx.update(grads_at(params), eager_state, params)
        assert jax.tree.structure(eager_state) == structure
        if step_values["learning_rate"] == 0.0:
            assert all(np.all(np.asarray(u) == 0) for u in jax.tree.leaves(updates))

    # Under jit, with arrays of the same dtype: one trace for every value.
    traces = []

    @jax.jit
    def step(grads, state, params):
        traces.append(1)
        return tx.update(grads, state, params)

    @jax.jit
    def rebuilt(hyperparams, grads, inner_state, params):
        return factory(**hyperparams).update(grads, inner_state, params)

    for step_values in values:
        state = _set(state, step_values, as_array=True)
        grads = grads_at(params)
        updates, new_state = step(grads, state, params)
        assert jax.tree.structure(new_state) == structure
        # inject_hyperparams hands the factory every numeric argument, defaults included.
        assert set(step_values) <= set(state.hyperparams)
        expected, expected_inner = rebuilt(
            dict(state.hyperparams),
            grads,
            state.inner_state,
            params,
        )
        assert_trees_close(updates, expected, rtol=1e-6, atol=1e-7)
        assert_trees_close(new_state.inner_state, expected_inner, rtol=1e-6, atol=1e-7)
        if step_values["learning_rate"] == 0.0:
            assert all(np.all(np.asarray(u) == 0) for u in jax.tree.leaves(updates))
        params, state = optax.apply_updates(params, updates), new_state
    assert len(traces) == 1


def test_inject_hyperparams_inner_state_is_the_alias_state():
    # inject_hyperparams turns every numeric argument (defaults too) into an array: the
    # inner state is the plain alias's all the same (DESIGN.md, convention 1), traced too.
    params = make_params()
    injected = optax.inject_hyperparams(optjx.sgd)(learning_rate=0.1, momentum=0.0)
    state = injected.init(params)
    plain = optjx.sgd(0.1, momentum=0.0).init(params)
    assert jax.tree.structure(state.inner_state) == jax.tree.structure(plain)
    traced = jax.eval_shape(lambda hp: optjx.sgd(**hp).init(params), state.hyperparams)
    assert jax.tree.structure(traced) == jax.tree.structure(plain)
    # None switches the momentum stage off, injected or not.
    no_momentum = optax.inject_hyperparams(optjx.sgd)(learning_rate=0.1).init(params)
    assert jax.tree.structure(no_momentum.inner_state) == jax.tree.structure(
        optjx.sgd(0.1).init(params)
    )
    assert len(jax.tree.leaves(no_momentum.inner_state)) < len(jax.tree.leaves(plain))


def test_inject_hyperparams_static_args_mask_and_flags():
    def not_biases(params):
        return {"w": True, "b": False}

    injected = optax.inject_hyperparams(optjx.adamw, static_args=("mask", "amsgrad"))(
        learning_rate=0.1, weight_decay=0.1, mask=not_biases, amsgrad=True
    )
    plain = optjx.adamw(0.1, weight_decay=0.1, mask=not_biases, amsgrad=True)
    actual, state = trajectory(injected, steps=3, jit=True)
    expected, _ = trajectory(plain, steps=3)
    for a, e in zip(actual, expected, strict=True):
        assert_trees_close(a, e, rtol=1e-6, atol=1e-7)
    assert float(state.hyperparams["weight_decay"]) == pytest.approx(0.1)

    nesterov = optax.inject_hyperparams(optjx.sgd, static_args=("nesterov",))(
        learning_rate=0.1, momentum=0.9, nesterov=True
    )
    actual, _ = trajectory(nesterov, steps=3, jit=True)
    expected, _ = trajectory(optjx.sgd(0.1, 0.9, nesterov=True), steps=3)
    for a, e in zip(actual, expected, strict=True):
        assert_trees_close(a, e, rtol=1e-6, atol=1e-7)


def test_inject_hyperparams_schedule_equals_alias_schedule():
    # inject_hyperparams evaluates a schedule at its own count and hands adam the value;
    # optjx.adam evaluates it at the number of updates applied: the same values.
    schedule = optax.linear_schedule(0.1, 0.01, 3)
    actual, state = trajectory(
        optax.inject_hyperparams(optjx.adam)(learning_rate=schedule), jit=True
    )
    expected, _ = trajectory(optjx.adam(schedule))
    for a, e in zip(actual, expected, strict=True):
        assert_trees_close(a, e, rtol=1e-6, atol=1e-7)
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(0.01)


def test_inject_hyperparams_in_chain_and_vmap_over_learning_rates():
    # A traced learning rate under vmap: one optimizer per rate, equal to a loop.
    params = make_params()
    grads = grads_at(params)
    tx = optax.chain(
        optax.clip_by_global_norm(1.0), optax.inject_hyperparams(optjx.adam)(learning_rate=0.1)
    )
    state = tx.init(params)
    rates = jnp.asarray([0.0, 0.05, 0.1], jnp.float32)

    def one(rate):
        inner = state[1]._replace(hyperparams={**state[1].hyperparams, "learning_rate": rate})
        return tx.update(grads, (state[0], inner), params)[0]

    @jax.jit
    def reference(rate):
        hyperparams = {**state[1].hyperparams, "learning_rate": rate}
        rebuilt = optax.chain(optax.clip_by_global_norm(1.0), optjx.adam(**hyperparams))
        return rebuilt.update(grads, (state[0], state[1].inner_state), params)[0]

    batched = jax.jit(jax.vmap(one))(rates)
    for i, rate in enumerate(rates):
        expected = reference(rate)
        assert_trees_close(
            jax.tree.map(lambda u, i=i: u[i], batched), expected, rtol=1e-6, atol=1e-8
        )
