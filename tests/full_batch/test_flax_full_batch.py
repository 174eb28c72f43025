"""The README's Flax recipes for the full-batch methods, checked against the direct run.

* Linen: ``TrainState.apply_gradients`` does not forward ``value_fn`` (it raises optjx's
  "needs value_fn=" error), so the recipe calls ``state.tx.update(..., value=...,
  value_fn=...)`` itself and ``replace``s the state.
* NNX: ``nnx.Optimizer(model, tx, wrt=nnx.Param)`` forwards keywords to ``tx.update``;
  ``value_fn`` rebuilds the model from the params it is given (``nnx.merge``).

The reference for both is the plain optax loop, ``update`` then ``apply_updates``, driving
``optjx.lbfgs`` (strong Wolfe) or ``optjx.conjugate_gradient`` on the params dict
``{"hidden": {"kernel"}, "out": {"kernel"}}`` with the loss written as a function of that
dict alone. The Linen and NNX models start from those same values; after three updates
(up to four iterations each) their params and optimizer states equal the reference's
(float32, rtol 1e-6). Tiny models: the file compiles six update loops and runs in seconds.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optjx

pytest.importorskip("flax")

UPDATES = 3
N, D_IN, HIDDEN, D_OUT = 24, 5, 4, 3

OPTIMIZERS = {
    "lbfgs": lambda: optjx.lbfgs(max_iter=4, history_size=3, line_search_fn="strong_wolfe"),
    "conjugate_gradient": lambda: optjx.conjugate_gradient(max_iter=4),
}


def _data():
    kx, ky, k1, k2 = jax.random.split(jax.random.key(1), 4)
    x = jax.random.normal(kx, (N, D_IN), jnp.float32)
    y = jax.random.normal(ky, (N, D_OUT), jnp.float32)
    init = {
        "hidden": {"kernel": jax.random.normal(k1, (D_IN, HIDDEN), jnp.float32)},
        "out": {"kernel": 0.5 * jax.random.normal(k2, (HIDDEN, D_OUT), jnp.float32)},
    }
    return x, y, init


def _mse(prediction, y):
    return jnp.mean((prediction - y) ** 2)


@functools.cache
def _direct(name):
    """The reference run: ``(params, opt_state)`` after ``UPDATES`` updates."""
    x, y, params = _data()
    tx = OPTIMIZERS[name]()

    def loss(p):  # a function of the params only
        return _mse(jnp.tanh(x @ p["hidden"]["kernel"]) @ p["out"]["kernel"], y)

    @jax.jit
    def step(params, opt_state):
        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = tx.update(grads, opt_state, params, value=value, value_fn=loss)
        return optax.apply_updates(params, updates), opt_state, value

    opt_state = tx.init(params)
    losses = []
    for _ in range(UPDATES):
        params, opt_state, value = step(params, opt_state)
        losses.append(float(value))
    assert losses[2] < losses[1] < losses[0]
    assert int(opt_state.func_evals) > 2 * UPDATES  # the line searches did evaluate
    return params, opt_state


def _assert_trees_close(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=1e-6, atol=1e-7)


def _assert_states_close(actual, expected):
    """Same counters exactly; same memory, directions and scalars to rounding."""
    for field in ("n_iter", "func_evals", "iterations", "evaluations", "stop_reason"):
        assert int(getattr(actual, field)) == int(getattr(expected, field)), field
    assert type(actual).__name__ == type(expected).__name__
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_linen_train_state_recipe_equals_direct_run(name):
    import flax.linen as nn
    from flax.training import train_state

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = jnp.tanh(nn.Dense(HIDDEN, use_bias=False, name="hidden")(x))
            return nn.Dense(D_OUT, use_bias=False, name="out")(h)

    x, y, init = _data()
    model = MLP()
    params = {"params": init}
    assert jax.tree.structure(model.init(jax.random.key(0), x[:1])) == jax.tree.structure(params)

    def loss_fn(apply_fn, params, batch):
        inputs, targets = batch
        return _mse(apply_fn(params, inputs), targets)

    # The README's recipe.
    @jax.jit
    def step(state, batch):
        loss = lambda params: loss_fn(state.apply_fn, params, batch)  # params only  # noqa: E731
        value, grads = jax.value_and_grad(loss)(state.params)
        updates, opt_state = state.tx.update(
            grads, state.opt_state, state.params, value=value, value_fn=loss
        )
        return state.replace(
            step=state.step + 1,
            opt_state=opt_state,
            params=optax.apply_updates(state.params, updates),
        )

    state = train_state.TrainState.create(
        apply_fn=model.apply, params=params, tx=OPTIMIZERS[name]()
    )
    for _ in range(UPDATES):
        state = step(state, (x, y))

    expected_params, expected_state = _direct(name)
    assert int(state.step) == UPDATES
    _assert_trees_close(state.params["params"], expected_params)
    _assert_states_close(state.opt_state, expected_state)


def test_linen_apply_gradients_says_value_fn_is_missing():
    """``apply_gradients`` calls ``tx.update(grads, opt_state, params)``: a clear error."""
    from flax.training import train_state

    params = {"w": jnp.ones(3)}
    state = train_state.TrainState.create(apply_fn=None, params=params, tx=optjx.lbfgs())
    with pytest.raises(ValueError, match="value_fn"):
        state.apply_gradients(grads={"w": jnp.ones(3)})


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_nnx_optimizer_recipe_equals_direct_run(name):
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(D_IN, HIDDEN, use_bias=False, rngs=rngs)
            self.out = nnx.Linear(HIDDEN, D_OUT, use_bias=False, rngs=rngs)

        def __call__(self, x):
            return self.out(jnp.tanh(self.hidden(x)))

    x, y, init = _data()

    def loss_fn(model):
        return _mse(model(x), y)

    model = MLP(nnx.Rngs(0))
    nnx.update(model, nnx.State(init))  # start from the reference's values
    assert jax.tree.all(jax.tree.map(jnp.array_equal, nnx.to_pure_dict(nnx.state(model)), init))
    optimizer = nnx.Optimizer(model, OPTIMIZERS[name](), wrt=nnx.Param)

    # The README's recipe: value_fn rebuilds the model from the params it is given.
    @nnx.jit
    def step(model, optimizer):
        graphdef, _, rest = nnx.split(model, nnx.Param, ...)
        value_fn = lambda params: loss_fn(nnx.merge(graphdef, params, rest))  # noqa: E731
        value, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads, value=value, value_fn=value_fn)

    for _ in range(UPDATES):
        step(model, optimizer)

    expected_params, expected_state = _direct(name)
    assert int(optimizer.step[...]) == UPDATES
    _assert_trees_close(nnx.to_pure_dict(nnx.state(model, nnx.Param)), expected_params)
    _assert_states_close(nnx.as_pure(optimizer.opt_state), expected_state)
