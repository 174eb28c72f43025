"""optjx in Flax: Linen ``TrainState`` and NNX ``nnx.Optimizer``, against optax's twins.

A tiny linear model, a few steps; the optax optimizer of the same algorithm
(``compat_helpers.TWINS``) in the same Flax object is the reference. Then the optax recipe
for changing a learning rate during training, ``opt_state.hyperparams['learning_rate']``,
with ``optax.inject_hyperparams(optjx.adam)`` inside a ``TrainState``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import pytest
from compat_helpers import TWINS, assert_trees_close, tolerance

import optjx

pytest.importorskip("flax")

X = jax.random.normal(jax.random.key(0), (8, 4))
Y = jax.random.normal(jax.random.key(1), (8, 3))
STEPS = 3
TOL = tolerance(jnp.float32)  # optjx computes Adam's 1 - b**t more precisely in float32


def _mse(pred):
    return jnp.mean((pred - Y) ** 2)


def _linen_train(tx, lr_per_step=None):
    from flax import linen as nn
    from flax.training import train_state

    model = nn.Dense(3)
    params = model.init(jax.random.key(2), X)
    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)
    traces = []

    @jax.jit
    def step(state):
        traces.append(1)
        grads = jax.grad(lambda p: _mse(state.apply_fn(p, X)))(state.params)
        return state.apply_gradients(grads=grads)

    history = []
    for i in range(STEPS):
        if lr_per_step is not None:
            # optax's recipe: write the new value into the injected hyperparameters.
            state.opt_state.hyperparams["learning_rate"] = jnp.asarray(lr_per_step[i], jnp.float32)
        state = step(state)
        history.append(state.params)
    assert len(traces) == 1
    assert int(state.step) == STEPS
    return history, state


@pytest.mark.parametrize("twin", ["adamw", "sgd_nesterov", "novograd_eps0"])
def test_linen_train_state_matches_optax_twin(twin):
    make_optjx, make_optax = TWINS[twin]
    actual, _ = _linen_train(make_optjx())
    expected, _ = _linen_train(make_optax())
    for a, e in zip(actual, expected, strict=True):
        assert_trees_close(a, e, **TOL)


def test_linen_train_state_inject_hyperparams_learning_rate_changed_between_steps():
    rates = [0.1, 0.0, 0.03]
    actual, state = _linen_train(optax.inject_hyperparams(optjx.adam)(learning_rate=0.1), rates)
    expected, _ = _linen_train(optax.inject_hyperparams(optax.adam)(learning_rate=0.1), rates)
    for a, e in zip(actual, expected, strict=True):
        assert_trees_close(a, e, **TOL)
    # The step at rate 0 left the params where they were.
    assert_trees_close(actual[1], actual[0], rtol=0, atol=0)
    assert float(state.opt_state.hyperparams["learning_rate"]) == pytest.approx(0.03)
    # inject_hyperparams keeps a count of its own; optjx.adam's is the inner state's one.
    assert int(state.opt_state.count) == STEPS
    assert int(optax.tree.get(state.opt_state.inner_state, "count")) == STEPS


def _nnx_train(tx):
    from flax import nnx

    class Model(nnx.Module):
        def __init__(self, rngs):
            self.linear = nnx.Linear(4, 3, rngs=rngs)
            self.calls = nnx.Variable(jnp.asarray(0, jnp.int32))  # not a Param: not trained

        def __call__(self, x):
            self.calls[...] += 1
            return self.linear(x)

    model = Model(nnx.Rngs(2))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
        grads = nnx.grad(lambda m: _mse(m(X)))(model)
        optimizer.update(model, grads)

    history = []
    for _ in range(STEPS):
        step(model, optimizer)
        history.append(nnx.state(model, nnx.Param))
    assert int(optimizer.step[...]) == STEPS
    assert int(model.calls[...]) == STEPS
    return history


@pytest.mark.parametrize("twin", ["adam", "sgd_momentum"])
def test_nnx_optimizer_matches_optax_twin(twin):
    make_optjx, make_optax = TWINS[twin]
    actual = _nnx_train(make_optjx())
    expected = _nnx_train(make_optax())
    for a, e in zip(actual, expected, strict=True):
        assert_trees_close(jax.tree.leaves(a), jax.tree.leaves(e), **TOL)
