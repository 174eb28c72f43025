"""Invariants 1 and 2 over the whole registry: compilation and abstract shapes.

1. ``jax.jit`` of ``update`` equals the eager ``update`` over 12 steps: structure, dtypes,
   counters and flags bit for bit, floats to ``rtol=1e-5`` of each leaf's scale. Not bit
   for bit: XLA:CPU contracts a multiply and an add inside a fusion into one fused
   multiply-add, and reassociates divisions (``jax.jit(lambda x, y: x * y + y)`` already
   differs from the eager result in the last bit, and jaxlib 0.10 has no flag to turn it
   off), so every momentum ``b = mu b + g`` can differ by an ulp. The tolerance is ~100
   float32 ulps; what jit can break (Python-side state frozen at trace time, a stale or
   off-by-one schedule value, a branch on a traced value) moves results by percents
   (``test_the_comparison_catches_python_side_state``). The jitted update traces once
   and never again on later calls, also while schedule-valued hyperparameters move and
   when the step count jumps far ahead.
2. ``init`` runs on ``jax.ShapeDtypeStruct`` params (under ``jax.eval_shape``, and directly
   where ``init`` keeps no copy of the params' values); ``jax.eval_shape(update)`` works;
   the state is a fixed point of ``lax.scan``'s carry types: same structure, shapes,
   dtypes and weak types after an update as after ``init``.
"""

import _harness as harness
import jax
import jax.numpy as jnp
import optax
import pytest
from registry import ENTRIES

pytestmark = pytest.mark.usefixtures("strict_promotion")
STEPS = 12  # past the 10-step ramps of the scheduled configurations


def _ids(entry):
    return entry.id


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids)
def test_jit_equals_eager_and_traces_once(entry):
    c = harness.compiled(entry.id)
    eager_params, eager_updates, eager_state = c.run(STEPS, jitted=False)

    params, state = harness.make_params(), c.tx.init(harness.make_params())
    # The same gradient as the eager run's first (a loss-driven entry: its loss's).
    params, first_updates, state = c.jitted(
        params, state, harness.gradient(c.entry, 0, params), harness.value_at(0)
    )
    traced = c.traces
    assert traced >= 1
    jit_params, jit_updates, jit_state = c.run(STEPS - 1, params=params, state=state, start=1)
    assert c.traces == traced, f"{entry.id}: the jitted step was traced again on a later call"

    # An update can be a difference of two params-sized numbers (Lookahead's sync step
    # returns slow - fast): allow a few float32 ulps of the params' scale.
    atol = (
        8
        * float(jnp.finfo(jnp.float32).eps)
        * max(float(jnp.max(jnp.abs(p))) for p in jax.tree.leaves(eager_params))
    )
    harness.assert_trees_close(first_updates, eager_updates[0], "updates[0]", atol=atol)
    for t, (a, b) in enumerate(zip(jit_updates, eager_updates[1:], strict=True), start=1):
        harness.assert_trees_close(a, b, f"updates[{t}]", atol=atol)
    harness.assert_trees_close(jit_params, eager_params, "params")
    harness.assert_trees_close(jit_state, eager_state, "state")
    # The run was not trivial: the updates are not all zero.
    assert any(bool(jnp.any(u != 0)) for u in jax.tree.leaves(eager_updates))


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.scheduled], ids=_ids)
def test_schedules_do_not_retrace_as_the_count_jumps(entry):
    c = harness.compiled(entry.id)
    params = harness.make_params()
    state = c.tx.init(params)
    params, _, state = c.jitted(params, state, harness.make_grads(0), harness.value_at(0))
    traced = c.traces
    for count in (3, 10, 1000, 10**6, harness.INT32_MAX - 1):
        state = harness.set_counts(state, count)
        params, updates, state = c.jitted(params, state, harness.make_grads(1), harness.value_at(1))
        assert harness.all_finite(updates), (entry.id, count)
    assert c.traces == traced, f"{entry.id}: a schedule value retraced the step"


def test_scheduled_configurations_cover_every_kind_of_hyperparameter():
    # The test above is only as good as the registry's scheduled configurations.
    scheduled = {e.name for e in ENTRIES if e.scheduled}
    assert {
        "sgd",
        "rmsprop",
        "adam",
        "adamw",
        "adadelta",
        "delta_bar_delta",
        "scale",
        "trace",
        "ema",
        "bias_correction",
        "scale_by_adam",
        "add_decayed_weights",
        "clip",
        "clip_by_global_norm",
        "lookahead",
    } <= scheduled


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids)
def test_init_accepts_shape_dtype_structs(entry):
    tx = harness.compiled(entry.id).tx
    params = harness.make_params()
    concrete = tx.init(params)
    shapes = jax.eval_shape(tx.init, harness.abstract(params))
    assert harness.avals(shapes) == harness.avals(concrete)
    if not entry.copies_params:
        # A state of zeros and counters needs no values: init takes the abstract params.
        harness.assert_trees_identical(tx.init(harness.abstract(params)), concrete)


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids)
def test_eval_shape_update_and_state_is_a_scan_carry_fixed_point(entry):
    tx = harness.compiled(entry.id).tx
    params = harness.make_params()
    state = tx.init(params)
    grads = harness.make_grads(0)

    def one(g, s, p, v):
        return harness.update(entry, tx, g, s, p, v)

    updates, new_state = jax.eval_shape(
        one, *map(harness.abstract, (grads, state, params, harness.value_at(0)))
    )
    assert harness.avals(updates) == harness.avals(grads)
    assert harness.avals(new_state) == harness.avals(state), (
        f"{entry.id}: the state's structure, dtypes or weak types change in update"
    )

    def body(carry, xs):
        p, s = carry
        g, v = xs
        u, s = one(g, s, p, v)
        return (jax.tree.map(lambda a, b: a + b, p, u), s), None

    stacked = jax.tree.map(lambda *x: jnp.stack(x), *[harness.make_grads(t) for t in range(3)])
    values = jnp.stack([harness.value_at(t) for t in range(3)])
    (_, final), _ = jax.eval_shape(
        lambda p, s, gs, vs: jax.lax.scan(body, (p, s), (gs, vs)), params, state, stacked, values
    )
    assert harness.avals(final) == harness.avals(state)


def test_the_comparison_catches_python_side_state():
    # A transformation that keeps its step count in Python: jit freezes it at trace time,
    # eager does not. The comparison above must see the difference.
    calls = []

    def update(updates, state, params=None):
        calls.append(None)
        return jax.tree.map(lambda g: g * (1.0 / len(calls)), updates), state

    tx = optax.GradientTransformation(lambda p: optax.EmptyState(), update)
    params, grads = harness.make_params(), harness.make_grads(0)
    eager = [tx.update(grads, tx.init(params))[0] for _ in range(3)]
    calls.clear()
    jitted_update = jax.jit(tx.update)
    jitted = [jitted_update(grads, tx.init(params))[0] for _ in range(3)]
    with pytest.raises(AssertionError):
        harness.assert_trees_close(jitted[-1], eager[-1])
