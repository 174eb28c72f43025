"""Shared pieces of the compatibility suite: a tiny problem, trajectories, tolerances.

The suite checks optjx through optax's combinators and Flax, with optax itself as the
reference wherever the two libraries define the same algorithm. Every problem here is
tiny (a handful of weights, a few steps) so that the whole suite stays fast.
"""

from __future__ import annotations

import cards
import jax
import jax.numpy as jnp
import numpy as np
import optax

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


def optax_alias_loss(params):
    """The loss of optax's own alias test: a quadratic in ``w``, a cosine in ``b``."""
    return jnp.sum((params["w"] - 0.2) ** 2) + jnp.sum(jnp.cos(params["b"]))


@jax.jit
def grads_at(params):
    """The gradient of ``loss``, compiled: differentiated eagerly at every step of every
    trajectory, it was a good part of these tests' time."""
    return jax.grad(loss)(params)


def perturbed(grads, scale=1.0, nan=False):
    """``grads * scale``, with ``b[0]`` set to NaN where ``nan``: micro-batches that differ."""
    grads = jax.tree.map(lambda g: g * jnp.asarray(scale, g.dtype), grads)
    if "b" in grads:
        bad = grads["b"].at[0].set(jnp.nan)
        grads = {**grads, "b": jnp.where(nan, bad, grads["b"])}
    return grads


def trajectory(
    tx, params=None, steps=STEPS, *, scales=None, nan_steps=(), jit=False, grads_fn=None
):
    """Params after each of ``steps`` updates, and the final state.

    Step ``i`` (from 1) uses ``grads_fn(params) * scales[i-1]`` with a NaN in ``b[0]`` when
    ``i`` is in ``nan_steps``. ``jit=True`` runs the whole trajectory as one compiled
    ``lax.scan`` (for combinators that use ``lax.cond``, slow eagerly).
    """
    params = make_params() if params is None else params
    grads_fn = grads_fn or grads_at
    scales = np.ones(steps) if scales is None else np.asarray(scales)
    nans = np.asarray([i + 1 in nan_steps for i in range(steps)])

    def step(params, state, scale, nan):
        grads = perturbed(grads_fn(params), scale, nan)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    if not jit:
        state = tx.init(params)
        out = []
        for i in range(steps):
            params, state = step(params, state, scales[i], nans[i])
            out.append(params)
        return out, state

    def run(params):
        def body(carry, x):
            params, state = step(*carry, *x)
            return (params, state), params

        (_, state), stacked = jax.lax.scan(body, (params, tx.init(params)), (scales, nans))
        return stacked, state

    stacked, state = jax.jit(run)(params)
    return [jax.tree.map(lambda leaf, i=i: leaf[i], stacked) for i in range(steps)], state


def varying_scales(steps):
    """Gradient scales that differ from one step to the next."""
    return 1.0 + 0.5 * np.sin(np.arange(1, steps + 1))


def tolerance(dtype=None) -> dict:
    """Relative/absolute tolerance for comparing two implementations of one formula."""
    dtype = jnp.dtype(dtype or jnp.asarray(0.0).dtype)
    if dtype == jnp.float64:
        return dict(rtol=1e-12, atol=1e-13)
    # optjx takes Adam's 1 - b**t as -expm1(t log b) with log b of the Python number in
    # double precision; optax rounds b to float32 first: ~1e-6 of the step per step.
    return dict(rtol=1e-5, atol=1e-5)


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


# Test id -> (optjx optimizer, optax's optimizer of the same algorithm), built fresh on
# call: the cards' ``twins`` (tests/cards), only configurations whose semantics match.
TWINS = cards.TWINS
