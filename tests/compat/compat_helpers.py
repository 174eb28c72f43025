"""Shared pieces of the compatibility suite: a tiny problem, trajectories, tolerances.

The suite checks optjx through optax's combinators and Flax, with optax itself as the
reference wherever the two libraries define the same algorithm. Every problem here is
tiny (a handful of weights, a few steps) so that the whole suite stays fast.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optjx

STEPS = 7  # RAdam with b2=0.99 switches to its rectified step at t=6


def make_params(dtype=None):
    """Two leaves of different shapes, nonzero everywhere (so every gradient is nonzero)."""
    dtype = dtype or jnp.asarray(0.0).dtype
    return {
        "w": jnp.asarray([[0.5, -1.0, 2.0], [0.3, 0.1, -0.7]], dtype),
        "b": jnp.asarray([0.1, -0.2, 0.3], dtype),
    }


def loss(params):
    """A smooth non-quadratic loss whose gradients change from step to step."""
    w, b = params["w"], params["b"]
    return jnp.sum(jnp.sin(w) @ b) + jnp.sum(b**2) + 0.1 * jnp.sum(w**4)


def grads_at(params):
    return jax.grad(loss)(params)


def trajectory(tx, params=None, steps=STEPS, grads_fn=grads_at, update=None):
    """Params after each of ``steps`` eager updates (and the final state)."""
    params = make_params() if params is None else params
    update = update or tx.update
    state = tx.init(params)
    out = []
    for _ in range(steps):
        updates, state = update(grads_fn(params), state, params)
        params = optax.apply_updates(params, updates)
        out.append(params)
    return out, state


def tolerance(dtype=None) -> dict:
    """Relative/absolute tolerance for comparing two implementations of one formula."""
    dtype = jnp.dtype(dtype or jnp.asarray(0.0).dtype)
    if dtype == jnp.float64:
        return dict(rtol=1e-12, atol=1e-13)
    return dict(rtol=2e-6, atol=2e-7)


def assert_trees_close(actual, expected, **tol):
    tol = tol or tolerance()
    assert jax.tree.structure(actual) == jax.tree.structure(expected), (
        jax.tree.structure(actual),
        jax.tree.structure(expected),
    )
    for (path, a), e in zip(
        jax.tree_util.tree_flatten_with_path(actual)[0], jax.tree.leaves(expected), strict=True
    ):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(e), err_msg=jax.tree_util.keystr(path), **tol
        )


def assert_trajectories_close(actual, expected, **tol):
    assert len(actual) == len(expected)
    for step, (a, e) in enumerate(zip(actual, expected, strict=True)):
        try:
            assert_trees_close(a, e, **tol)
        except AssertionError as err:
            raise AssertionError(f"step {step + 1}: {err}") from None


def assert_trees_equal(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(e))


# name -> (optjx optimizer, optax's optimizer of the same algorithm), built fresh on call.
# Only configurations whose semantics match: optax's rmsprop puts eps inside the root by
# default (eps_in_sqrt=False is optjx's/PyTorch's form); optax's radam and novograd add
# eps elsewhere (equal with eps=0); optax's adagrad is optjx's scale_by_adagrad with eps
# inside the root and a 0.1 initial accumulator.
def _sched():
    return optax.linear_schedule(0.1, 0.01, 4)


TWINS = {
    "sgd": (lambda: optjx.sgd(0.1), lambda: optax.sgd(0.1)),
    "sgd_momentum": (lambda: optjx.sgd(0.1, 0.9), lambda: optax.sgd(0.1, 0.9)),
    "sgd_nesterov": (
        lambda: optjx.sgd(0.05, 0.9, nesterov=True),
        lambda: optax.sgd(0.05, 0.9, nesterov=True),
    ),
    "sgd_schedule": (lambda: optjx.sgd(_sched(), 0.9), lambda: optax.sgd(_sched(), 0.9)),
    "adam": (lambda: optjx.adam(0.1), lambda: optax.adam(0.1)),
    "adam_betas_schedule": (
        lambda: optjx.adam(_sched(), 0.8, 0.99, eps=1e-3),
        lambda: optax.adam(_sched(), 0.8, 0.99, eps=1e-3),
    ),
    "adamw": (
        lambda: optjx.adamw(0.1, weight_decay=0.1),
        lambda: optax.adamw(0.1, weight_decay=0.1),
    ),
    "rmsprop_centered_momentum": (
        lambda: optjx.rmsprop(0.05, centered=True, momentum=0.9),
        lambda: optax.rmsprop(0.05, centered=True, momentum=0.9, eps_in_sqrt=False),
    ),
    "adagrad": (
        lambda: optax.chain(
            optjx.scale_by_adagrad(initial_accumulator_value=0.1, eps=0.0, eps_root=1e-7),
            optjx.scale_by_learning_rate(0.1),
        ),
        lambda: optax.adagrad(0.1),
    ),
    "adadelta": (lambda: optjx.adadelta(1.0, 0.9), lambda: optax.adadelta(1.0, 0.9)),
    "radam_eps0": (
        lambda: optjx.radam(0.1, b2=0.99, eps=0.0),
        lambda: optax.radam(0.1, b2=0.99, eps=0.0),
    ),
    "novograd_eps0": (
        lambda: optjx.novograd(0.1, 0.9, 0.25, eps=0.0, weight_decay=0.01),
        lambda: optax.novograd(0.1, 0.9, 0.25, eps=0.0, weight_decay=0.01),
    ),
}
