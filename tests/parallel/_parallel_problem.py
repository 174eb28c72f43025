"""The small problem every parallel test trains on, and its one-device reference.

A two-layer tanh regression on 32 examples: three leaves of different sizes (NovoGrad's
layers), a batch that splits evenly over 2, 4 and 8 devices. The reference is one device
on the full batch (``jax.grad`` of the mean loss over all 32 examples): with equal local
batches the mean of the local gradients is exactly that gradient, so an averaging bug (a
sum, a missing division, one device's gradient) leaves its trajectory.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

import optjx

STEPS = 15
EXAMPLES = 32

OPTIMIZERS = {
    "adam": lambda: optjx.adam(0.05),
    "novograd": lambda: optjx.novograd(0.05, weight_decay=1e-3),
    # sync every 4 steps: three syncs in 15, and RAdam switches regime at step 6.
    "lookahead_radam": lambda: optjx.lookahead(optjx.radam(0.05), sync_period=4),
}
# The two-process test's optimizer (kept out of OPTIMIZERS, which the one-process tests
# parametrize over).
MULTIPROCESS = {
    "lookahead_novograd": lambda: optjx.lookahead(
        optjx.novograd(0.05, weight_decay=1e-3), sync_period=4
    ),
}


def loss_fn(params, x, y):
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] - y) ** 2)


def problem(hidden: int = 8):
    """``(params, x, y)`` at JAX's default float precision (float64 under ``x64``)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(EXAMPLES, 5))
    y = rng.normal(size=(EXAMPLES, 2))
    params = {
        "w1": 0.5 * rng.normal(size=(5, hidden)),
        "b1": 0.1 * rng.normal(size=(hidden,)),
        "w2": 0.5 * rng.normal(size=(hidden, 2)),
    }
    return jax.tree.map(jnp.asarray, params), jnp.asarray(x), jnp.asarray(y)


def train(optimizer, params, x, y, steps: int = STEPS):
    """``steps`` updates of ``optimizer`` from ``params``, as one compiled scan."""
    state = optimizer.init(params)

    def step(carry, _):
        params, state = carry
        grads = jax.grad(loss_fn)(params, x, y)
        updates, state = optimizer.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

    (params, _), _ = lax.scan(step, (params, state), None, length=steps)
    return params


_REFERENCES: dict = {}


def reference(name: str, hidden: int = 8):
    """One device, the full batch: the params after STEPS updates, as NumPy arrays."""
    key = (name, hidden, jax.config.jax_enable_x64)
    if key not in _REFERENCES:
        params, x, y = problem(hidden)
        device = jax.devices()[0]
        params, x, y = jax.device_put((params, x, y), device)
        make = {**OPTIMIZERS, **MULTIPROCESS}[name]
        out = jax.jit(lambda p: train(make(), p, x, y))(params)
        _REFERENCES[key] = jax.tree.map(np.asarray, out)
    return _REFERENCES[key]


def assert_tree_close(actual, expected, rtol: float = 1e-9) -> None:
    actual, expected = dict(actual), dict(expected)
    assert actual.keys() == expected.keys()
    for key in expected:
        np.testing.assert_allclose(
            np.asarray(actual[key]), np.asarray(expected[key]), rtol=rtol, atol=1e-12, err_msg=key
        )
