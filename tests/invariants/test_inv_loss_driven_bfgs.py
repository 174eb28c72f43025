"""The loss-driven invariants for ``bfgs``, where ``test_inv_loss_driven.py`` is written
for ``lbfgs`` and ``conjugate_gradient`` (a learning rate, their state fields).

Its entries (``registry.LOSS_DRIVEN``) already run there through jit = eager with one
trace, checkpoint and restore, and the invalid hyperparameters; here: bad calls, dtypes,
a NaN, ``vmap`` over problems, sharded params, int leaves and optax's keywords, empty
trees and saturating counters, on the same loss and tree.
"""

from __future__ import annotations

import functools

import _harness as harness
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_inv_loss_driven import loss, step

import optjx
from optjx import _state


def test_bad_calls_raise_clear_errors():
    for bad in ("0.1", None, [0.1]):
        with pytest.raises(TypeError, match="tolerance_grad"):
            optjx.bfgs(tolerance_grad=bad)
        with pytest.raises(TypeError, match="c1"):
            optjx.bfgs(c1=bad)
    with pytest.raises(ValueError, match="c1"):
        optjx.bfgs(c1=0.5, c2=0.5)
    tx = optjx.bfgs()
    params = harness.make_params()
    state = tx.init(params)
    value, grads = jax.value_and_grad(loss)(params)
    with pytest.raises(ValueError, match="value_fn"):
        tx.update(grads, state, params, value=value)
    with pytest.raises(ValueError, match="scalar"):
        tx.update(grads, state, params, value=value, value_fn=lambda p: p["b"])
    other = {"w": params["w"], "c": params["b"]}
    with pytest.raises(ValueError, match=r"\['b'\]|\['c'\]"):
        tx.update(other, state, other, value=value, value_fn=lambda p: jnp.sum(p["w"]))


def test_dtypes_are_kept_and_the_matrix_is_in_the_widest(x64):
    tx = optjx.bfgs(max_iter=3)
    params = {"w": harness.make_params(jnp.float32)["w"],
              "b": harness.make_params(jnp.float64)["b"]}  # fmt: skip
    state = tx.init(params)
    assert state.inverse_hessian.shape == (8, 8) and state.inverse_hessian.dtype == jnp.float64
    new, new_state = jax.jit(lambda p, s: step(tx, p, s))(params, state)
    assert jax.tree.map(lambda x: x.dtype, new) == jax.tree.map(lambda x: x.dtype, params)
    assert harness.avals(new_state) == harness.avals(state)
    assert harness.all_finite(new) and loss(new) < loss(params)


def test_non_finite_stops_with_params_and_matrix_unchanged():
    tx = optjx.bfgs(max_iter=6)
    params = harness.make_params()
    params, state = jax.jit(lambda p, s: step(tx, p, s))(params, tx.init(params))  # a matrix

    def nan_far_away(p):  # no finite trial: the start's value and gradient are given
        return jnp.nan * loss(p)

    start = jax.tree.map(lambda w: w * 0.5, params)
    value, grads = jax.value_and_grad(loss)(start)
    update = jax.jit(lambda g, s, p, v: tx.update(g, s, p, value=v, value_fn=loss))
    for v, g in ((jnp.nan, grads), (value, {**grads, "b": grads["b"].at[0].set(jnp.inf)})):
        updates, new = update(g, state, start, jnp.asarray(v, jnp.float32))
        assert all(np.all(np.asarray(u) == 0) for u in jax.tree.leaves(updates))
        assert optjx.stop_reason(new) == "NON_FINITE" and int(new.iterations) == 0
    updates, new = jax.jit(lambda s, p: tx.update(grads, s, p, value=value, value_fn=nan_far_away)
                           )(state, start)  # fmt: skip
    assert optjx.stop_reason(new) == "NON_FINITE"
    assert all(np.all(np.asarray(u) == 0) for u in jax.tree.leaves(updates))
    # The update count (a schedule's argument) counts calls, NaN or not.
    kept = new._replace(count=state.count, func_evals=state.func_evals, grad_evals=state.grad_evals,
                        iterations=state.iterations, evaluations=state.evaluations,
                        stop_reason=state.stop_reason, stop_test=state.stop_test)  # fmt: skip
    harness.assert_trees_identical(kept, state, "matrix after a NaN")


def test_vmap_over_problems_equals_a_loop(x64):
    tx = optjx.bfgs(max_iter=4)
    starts = [harness.make_params(jnp.float64),
              jax.tree.map(lambda x: -0.5 * x, harness.make_params(jnp.float64))]  # fmt: skip
    one = jax.jit(lambda p: step(tx, p, tx.init(p)))
    looped = [one(p) for p in starts]
    batched = jax.tree.map(lambda *xs: jnp.stack(xs), *starts)
    got = jax.jit(jax.vmap(lambda p: step(tx, p, tx.init(p))))(batched)
    for i, want in enumerate(looped):
        harness.assert_trees_close(jax.tree.map(lambda x, i=i: x[i], got), want, f"problem {i}",
                                   rtol=1e-9)  # fmt: skip


def _sharded_problem():
    tx = optjx.bfgs(max_iter=4)
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=(16, 3)), jnp.float32),
              "b": jnp.asarray(rng.normal(size=(8,)), jnp.float32)}  # fmt: skip

    def big_loss(p):
        return jnp.sum((p["w"] - 1) ** 2 + 0.1 * p["w"] ** 4) + jnp.sum(jnp.log(jnp.cosh(p["b"])))

    def two_steps(p):
        p, s = step(tx, p, tx.init(p), big_loss)
        return step(tx, p, s, big_loss)

    return params, two_steps


@functools.cache
def _unsharded_two_steps():
    """The unsharded run both axis types compare with (compiled once)."""
    params, two_steps = _sharded_problem()
    return jax.jit(two_steps)(params)


@pytest.mark.parametrize("axis_type", ["Explicit", "Auto"])
def test_sharded_params_give_the_same_step_and_stay_sharded(axis_type):
    axis = getattr(jax.sharding.AxisType, axis_type)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(axis,))
    spec = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    params, two_steps = _sharded_problem()
    want = _unsharded_two_steps()
    sharded = jax.device_put(params, spec)
    if axis_type == "Explicit":
        with jax.set_mesh(mesh):
            got = jax.jit(two_steps)(sharded)
    else:
        got = jax.jit(two_steps)(sharded)
    # b heads for 0: after 8 float32 iterations its entries (~1e-2) carry the rounding of
    # sums taken in another order across devices at the scale of w (~1): atol, not rtol.
    harness.assert_trees_close(got[0], want[0], "sharded", rtol=1e-5, atol=1e-6)
    for leaf in jax.tree.leaves(got[0]):
        assert leaf.sharding.is_equivalent_to(spec, leaf.ndim)


def test_int_leaves_and_optax_keywords():
    tx = optjx.bfgs(max_iter=3)
    params = {**harness.make_params(), "steps": jnp.asarray(3, jnp.int32)}

    def with_int(p):
        return loss({"w": p["w"], "b": p["b"]}) * (p["steps"] > 0)

    value, grads = jax.value_and_grad(with_int, allow_int=True)(params)
    updates, state = tx.update(grads, tx.init(params), params, value=value, grad=grads,
                               value_fn=with_int, unknown_keyword=1)  # fmt: skip
    assert state.inverse_hessian.shape == (8, 8)  # the int leaf is not trained
    new = {**optax.apply_updates({k: params[k] for k in "wb"}, {k: updates[k] for k in "wb"}),
           "steps": params["steps"]}  # fmt: skip
    assert with_int(new) < value


@pytest.mark.parametrize("tree", [{}, (), {"a": {}, "b": []}], ids=str)
def test_empty_trees(tree):
    tx = optjx.bfgs()
    state = tx.init(tree)
    updates, state = jax.jit(lambda s: tx.update(tree, s, tree, value=0.0,
                                                 value_fn=lambda p: 0.0))(state)  # fmt: skip
    assert updates == tree and int(state.stop_test) == 1  # TOLERANCE_GRAD_AT_START


def test_counters_saturate():
    tx = optjx.bfgs(max_iter=2)
    params = harness.make_params()
    state = tx.init(params)
    top = jnp.asarray(_state.INT32_MAX - 1, jnp.int32)
    state = state._replace(n_iter=top, func_evals=top, grad_evals=top)
    _, state = jax.jit(lambda p, s: step(tx, p, s))(params, state)
    assert int(state.n_iter) == int(state.func_evals) == int(state.grad_evals) == _state.INT32_MAX
