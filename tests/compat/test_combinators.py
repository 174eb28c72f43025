"""optjx optimizers inside optax's combinators, with optax's own optimizers as reference.

Each optjx alias is dropped into ``optax.chain``, ``optax.masked`` (mask as a tree and as a
function), ``optax.multi_transform`` and ``optax.partition`` (optjx in one group, an optax
optimizer in the other) and ``optax.flatten``; the very same combinator around optax's
optimizer of the same algorithm (``compat_helpers.TWINS``) must give the same trajectory.
Then the wrappers: ``optax.MultiSteps`` against ``optjx.accumulate_gradients``,
``optax.apply_if_finite`` around optjx (and optjx's around optax), and the accessors
``slow_params``/``averaged_params`` of a wrapper that owns only part of the params.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from compat_helpers import (
    TWINS,
    assert_trajectories_close,
    assert_trees_close,
    assert_trees_equal,
    grads_at,
    make_params,
    tolerance,
    trajectory,
    varying_scales,
)

import optjx

MASK = {"w": True, "b": False}
LABELS = {"w": "optimizer", "b": "other"}


def _frozen_b(tx):
    # optax.masked passes the masked-out gradients through unchanged; freeze them so the
    # other leaf's trajectory does not depend on a raw gradient step.
    return optax.chain(tx, optax.masked(optax.set_to_zero(), {"w": False, "b": True}))


COMBINATORS = {
    "alone": lambda tx: tx,
    "chain": lambda tx: optax.chain(optax.clip_by_global_norm(1.0), tx),
    "masked-tree": lambda tx: _frozen_b(optax.masked(tx, MASK)),
    "masked-fn": lambda tx: optax.masked(tx, lambda params: {"w": False, "b": True}),
    "multi_transform": lambda tx: optax.multi_transform(
        {"optimizer": tx, "other": optax.sgd(0.05, momentum=0.5)}, LABELS
    ),
    "partition": lambda tx: optax.partition(
        {"optimizer": tx, "other": optax.adam(0.05)},
        lambda params: {"w": "other", "b": "optimizer"},
    ),
    "flatten": lambda tx: optax.flatten(tx),
}


# Every twin alone, every combinator around two twins with different kinds of state
# (Adam's counted elementwise moments, NovoGrad's per-leaf norm and first-step rule).
CASES = [(twin, "alone") for twin in TWINS] + [
    (twin, combinator)
    for combinator in COMBINATORS
    if combinator != "alone"
    for twin in ("adam", "novograd_eps0")
]


@pytest.mark.parametrize("twin, combinator", CASES)
def test_combinator_matches_optax_twin_float64(x64, twin, combinator):
    make_optjx, make_optax = TWINS[twin]
    wrap = COMBINATORS[combinator]
    actual, _ = trajectory(wrap(make_optjx()))
    expected, _ = trajectory(wrap(make_optax()))
    assert_trajectories_close(actual, expected, **tolerance(jnp.float64))


@pytest.mark.parametrize("twin", ["adam", "adamw", "rmsprop_centered_momentum"])
def test_matches_optax_twin_float32(twin):
    make_optjx, make_optax = TWINS[twin]
    actual, _ = trajectory(make_optjx())
    expected, _ = trajectory(make_optax())
    assert_trajectories_close(actual, expected, **tolerance(jnp.float32))


@pytest.mark.parametrize(
    "make",
    [
        lambda: optjx.adam(0.1, amsgrad=True),
        lambda: optjx.rmsprop(0.05, centered=True, momentum=0.9),
        lambda: optjx.radam(0.1, b2=0.99),
    ],
    ids=["adam_amsgrad", "rmsprop", "radam"],
)
def test_flatten_equals_unflattened(x64, make):
    # Elementwise algorithms do not care whether the leaves are one vector or a tree.
    # (NovoGrad keeps one second moment per leaf: flattening changes the algorithm.)
    actual, _ = trajectory(optax.flatten(make()))
    expected, _ = trajectory(make())
    assert_trajectories_close(actual, expected, **tolerance(jnp.float64))


def test_combinators_jit_once():
    # One jitted step over a chain of combinators around optjx pieces compiles once and
    # equals the eager step.
    tx = optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.multi_transform(
            {"a": optax.masked(optjx.adam(0.1), MASK), "b": optjx.sgd(0.1, 0.9)},
            {"w": "a", "b": "b"},
        ),
    )
    traces = []

    @jax.jit
    def step(params, state):
        traces.append(1)
        updates, state = tx.update(grads_at(params), state, params)
        return optax.apply_updates(params, updates), state

    params = make_params()
    state = tx.init(params)
    eager_params, eager_state = params, state
    for _ in range(3):
        params, state = step(params, state)
        updates, eager_state = tx.update(grads_at(eager_params), eager_state, eager_params)
        eager_params = optax.apply_updates(eager_params, updates)
    assert len(traces) == 1
    assert_trees_close(params, eager_params)
    assert jax.tree.structure(state) == jax.tree.structure(eager_state)


# ------------------------------------------------------------- gradient accumulation


@pytest.mark.parametrize(
    "inner, every_k",
    [
        (lambda: optjx.adam(0.1), 3),
        (lambda: optjx.sgd(0.1, 0.9, nesterov=True), lambda step: jnp.where(step < 2, 2, 3)),
    ],
    ids=["adam-k3", "sgd-nesterov-schedule-2-then-3"],
)
def test_accumulate_gradients_matches_multisteps(x64, inner, every_k):
    # MultiSteps keeps a running mean, optjx sums and divides once: equal up to rounding.
    steps = 10
    expected, ms_state = trajectory(
        optax.MultiSteps(inner(), every_k_schedule=every_k, accumulator_dtype=jnp.float64),
        steps=steps,
        scales=varying_scales(steps),
        jit=True,
    )
    actual, state = trajectory(
        optjx.accumulate_gradients(inner(), every_k),
        steps=steps,
        scales=varying_scales(steps),
        jit=True,
    )
    assert_trajectories_close(actual, expected, **tolerance(jnp.float64))
    # The inner optimizers took the same steps; the position in the group is the same.
    assert int(state.micro_step) == int(ms_state.mini_step)
    assert_trees_close(state.inner_state, ms_state.inner_opt_state, **tolerance(jnp.float64))


@pytest.mark.parametrize("every_k", [lambda step: jnp.where(step < 1, 2, 3)], ids=["sched"])
def test_accumulate_gradients_skip_not_finite_matches_multisteps(x64, every_k):
    # A skipped micro-batch does not count towards k: NaN at calls 2, 5 and 6.
    steps = 9
    expected, ms_state = trajectory(
        optax.MultiSteps(
            optjx.adam(0.1),
            every_k_schedule=every_k,
            should_skip_update_fn=optax.skip_not_finite,
            accumulator_dtype=jnp.float64,
        ),
        steps=steps,
        scales=varying_scales(steps),
        nan_steps=(2, 5, 6),
        jit=True,
    )
    actual, state = trajectory(
        optjx.accumulate_gradients(
            optjx.adam(0.1), every_k, should_skip_update_fn=optax.skip_not_finite
        ),
        steps=steps,
        scales=varying_scales(steps),
        nan_steps=(2, 5, 6),
        jit=True,
    )
    assert all(np.all(np.isfinite(leaf)) for p in actual for leaf in jax.tree.leaves(p))
    assert_trajectories_close(actual, expected, **tolerance(jnp.float64))
    assert int(state.micro_step) == int(ms_state.mini_step)
    assert_trees_close(state.inner_state, ms_state.inner_opt_state, **tolerance(jnp.float64))


def _skip_during_second_inner_step(updates, gradient_step, params):
    """Reads MultiSteps' gradient_step: drops every micro-batch while the inner optimizer
    is on its second step (gradient_step == 1)."""
    del updates, params
    return gradient_step == 1, optax.EmptyState()


def test_skip_function_sees_the_inner_step_like_multisteps(x64):
    # A constant every_k: the skip function must still get the number of inner steps taken
    # (MultiSteps' gradient_step), not 0.
    steps = 10
    expected, ms_state = trajectory(
        optax.MultiSteps(
            optjx.adam(0.1),
            every_k_schedule=2,
            should_skip_update_fn=_skip_during_second_inner_step,
            accumulator_dtype=jnp.float64,
        ),
        steps=steps,
        scales=varying_scales(steps),
        jit=True,
    )
    actual, state = trajectory(
        optjx.accumulate_gradients(
            optjx.adam(0.1), 2, should_skip_update_fn=_skip_during_second_inner_step
        ),
        steps=steps,
        scales=varying_scales(steps),
        jit=True,
    )
    assert_trajectories_close(actual, expected, **tolerance(jnp.float64))
    assert int(state.count) == int(ms_state.gradient_step)
    assert int(state.micro_step) == int(ms_state.mini_step)


def test_multisteps_around_optjx_under_jit():
    # MultiSteps chooses between the inner update and a skip with lax.cond: both branches
    # must give the same state structure (an array weight decay of 0 keeps its stage).
    ms = optax.MultiSteps(optjx.adamw(0.1, weight_decay=jnp.asarray(0.0)), every_k_schedule=2)
    _, state = trajectory(ms, steps=4, jit=True)
    assert int(state.gradient_step) == 2
    assert int(optax.tree.get(state.inner_opt_state, "count")) == 2


# ------------------------------------------------------------------ apply_if_finite


@pytest.mark.parametrize(
    "guard, inner, reference_inner",
    [
        (optax.apply_if_finite, *TWINS["sgd_momentum"]),
        (optax.apply_if_finite, *TWINS["adam"]),
        (optjx.apply_if_finite, lambda: optax.sgd(0.1, 0.9), lambda: optax.sgd(0.1, 0.9)),
    ],
    ids=["optax-guard-optjx-sgd", "optax-guard-optjx-adam", "optjx-guard-optax-sgd"],
)
def test_apply_if_finite_matches_optax(guard, inner, reference_inner):
    # NaN at calls 2, 4 and 5: never more than max_consecutive_errors=2 in a row, where
    # optax's guard and optjx's agree (they differ only after giving up).
    nan_steps = (2, 4, 5)
    actual, state = trajectory(
        guard(inner(), max_consecutive_errors=2), nan_steps=nan_steps, jit=True
    )
    expected, ref_state = trajectory(
        optax.apply_if_finite(reference_inner(), max_consecutive_errors=2),
        nan_steps=nan_steps,
        jit=True,
    )
    assert all(np.all(np.isfinite(leaf)) for p in actual for leaf in jax.tree.leaves(p))
    assert_trajectories_close(actual, expected)
    assert int(state.total_notfinite) == int(ref_state.total_notfinite) == 3
    assert int(state.notfinite_count) == int(ref_state.notfinite_count) == 0
    assert bool(state.last_finite) and bool(ref_state.last_finite)


def test_optax_apply_if_finite_around_optjx_under_jit():
    tx = optax.apply_if_finite(optjx.adam(0.1), max_consecutive_errors=3)
    params = make_params()
    state = tx.init(params)
    step = jax.jit(tx.update)
    bad = jax.tree.map(lambda g: g * jnp.nan, grads_at(params))
    updates, state = step(bad, state, params)
    assert all(np.all(np.asarray(u) == 0) for u in jax.tree.leaves(updates))
    assert int(optax.tree.get(state.inner_state, "count")) == 0
    updates, state = step(grads_at(params), state, params)
    assert int(optax.tree.get(state.inner_state, "count")) == 1
    assert all(np.all(np.asarray(u) != 0) for u in jax.tree.leaves(updates))


# --------------------------------------------- accessors of a wrapper owning a part


def _reference_on_w(wrapper, steps):
    """The wrapper run on ``w`` alone with ``b`` frozen at its initial value."""
    b0 = make_params()["b"]
    params = {"w": make_params()["w"]}
    return trajectory(
        wrapper,
        params=params,
        steps=steps,
        grads_fn=lambda p: {"w": grads_at({"w": p["w"], "b": b0})["w"]},
    )


WRAPPED = {
    "lookahead": (
        lambda: optjx.lookahead(optjx.sgd(0.1, 0.9), sync_period=2, slow_step_size=0.5),
        optjx.slow_params,
    ),
    "polyak-uniform": (lambda: optjx.polyak_averaging(optjx.adam(0.1)), optjx.averaged_params),
    "polyak-ema": (
        lambda: optjx.polyak_averaging(optjx.sgd(0.1), decay=0.8),
        optjx.averaged_params,
    ),
}
OWNERS = {
    "masked": lambda tx: _frozen_b(optax.masked(tx, MASK)),
    "masked-fn": lambda tx: _frozen_b(optax.masked(tx, lambda p: {"w": True, "b": False})),
    "multi_transform": lambda tx: optax.multi_transform(
        {"optimizer": tx, "other": optax.set_to_zero()}, LABELS
    ),
    "partition": lambda tx: optax.partition(
        {"optimizer": tx, "other": optax.set_to_zero()}, LABELS
    ),
}


@pytest.mark.parametrize(
    "wrapped, owner",
    [
        ("lookahead", "masked"),
        ("lookahead", "partition"),
        ("polyak-uniform", "multi_transform"),
        ("polyak-ema", "masked-fn"),
    ],
)
def test_accessor_inside_masked_and_multi_transform(wrapped, owner):
    make, accessor = WRAPPED[wrapped]
    steps = 5
    final, state = trajectory(OWNERS[owner](make()), steps=steps)
    ref_final, ref_state = _reference_on_w(make(), steps)
    weights = accessor(state, final[-1])
    assert jax.tree.structure(weights) == jax.tree.structure(final[-1])
    # The leaf the wrapper does not own comes from the params, the other from its state.
    assert_trees_equal(weights["b"], final[-1]["b"])
    assert_trees_close(weights["w"], accessor(ref_state)["w"])
    assert_trees_close(final[-1]["w"], ref_final[-1]["w"])
    # and it really is the wrapper's copy, not the params
    assert not np.allclose(np.asarray(weights["w"]), np.asarray(final[-1]["w"]))
