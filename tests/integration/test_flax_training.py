"""optjx inside Flax: Linen ``TrainState`` and NNX ``nnx.Optimizer`` train an MLP on digits.

The reference is the task itself: an MLP that reaches >= 95% training accuracy on the
1797 digits in 200 full-batch steps is trained by a working optimizer; a broken one (wrong
sign, a stuck state, a wrapper that does not apply updates, an accessor returning the
initial weights) stays far below. Wrapped optimizers are judged on the weights their
accessor returns: Lookahead's slow weights, Polyak's average.
"""

from __future__ import annotations

import cards
import jax
import jax.numpy as jnp
import numpy as np
import pytest

STEPS = 200


def cross_entropy(logits, labels):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1))


def accuracy(logits, labels) -> float:
    return float(np.mean(np.asarray(jnp.argmax(logits, axis=-1)) == np.asarray(labels)))


TARGET = 0.95

# name -> (optimizer factory, accessor for the weights to evaluate, or None for the params):
# every card's Flax cases (tests/cards).
OPTIMIZERS = cards.FLAX
assert STEPS == cards.STEPS_FLAX


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_linen_train_state(name, digits, linen_mlp):
    from flax.training import train_state

    x, y = digits
    model, params = linen_mlp
    make_tx, evaluated = OPTIMIZERS[name]
    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=make_tx())

    @jax.jit
    def train(state):
        def step(state, _):
            grads = jax.grad(lambda p: cross_entropy(state.apply_fn(p, x), y))(state.params)
            return state.apply_gradients(grads=grads), None

        return jax.lax.scan(step, state, None, length=STEPS)[0]

    state = train(state)
    assert int(state.step) == STEPS
    weights = evaluated(state.opt_state) if evaluated else state.params
    assert jax.tree.structure(weights) == jax.tree.structure(state.params)
    assert accuracy(model.apply(weights, x), y) >= TARGET
    if evaluated is not None:
        # The accessor must not hand back the initial weights (a wrapper that never
        # updates its copy would still "evaluate" at chance level, caught above, but
        # check the copy moved explicitly).
        moved = jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), weights, params)
        assert max(float(v) for v in jax.tree.leaves(moved)) > 1e-2


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_nnx_optimizer(name, digits):
    from flax import nnx

    x, y = digits

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(64, 32, rngs=rngs)
            self.out = nnx.Linear(32, 10, rngs=rngs)

        def __call__(self, x):
            return self.out(jax.nn.relu(self.hidden(x)))

    model = MLP(nnx.Rngs(0))
    make_tx, evaluated = OPTIMIZERS[name]
    optimizer = nnx.Optimizer(model, make_tx(), wrt=nnx.Param)

    @nnx.jit
    def train(model, optimizer):
        # The whole run in one compiled call: a Python loop unrolled at trace time would
        # compile 200 steps; fori_loop over the split state compiles one.
        graphdef, state = nnx.split((model, optimizer))

        def step(_, state):
            model, optimizer = nnx.merge(graphdef, state)
            grads = nnx.grad(lambda m: cross_entropy(m(x), y))(model)
            optimizer.update(model, grads)
            return nnx.state((model, optimizer))

        nnx.update((model, optimizer), jax.lax.fori_loop(0, STEPS, step, state))

    train(model, optimizer)
    assert int(optimizer.step[...]) == STEPS
    if evaluated is None:
        eval_model = model
    else:
        eval_model = nnx.clone(model)
        nnx.update(eval_model, evaluated(nnx.as_pure(optimizer.opt_state)))
        assert not np.allclose(eval_model.hidden.kernel[...], MLP(nnx.Rngs(0)).hidden.kernel[...])
    assert accuracy(eval_model(x), y) >= TARGET
