"""apply_if_finite: skipped steps leave no trace, the streak resets, the guard gives up.

Reference: torch SGD with momentum (b_1 = g_1, b = mu b + g, w <- w - lr b) in float64
NumPy that simply does not run on the steps whose gradient holds a NaN or an Inf; the
streak and total counters are counted by hand from the list of bad steps.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, PartitionSpec

import optjx

SHAPES = {"w": (3, 4), "b": (5,)}
_rng = np.random.default_rng(9)
GRADS = [{n: _rng.normal(size=s) for n, s in SHAPES.items()} for _ in range(48)]
W0 = {n: _rng.normal(size=s) for n, s in SHAPES.items()}
LR, MU = 0.1, 0.9
# Bad steps: NaN in leaf "w" or Inf / -Inf in leaf "b"; runs of at most 2 in a row.
BAD = {
    3: ("w", np.nan),
    4: ("b", np.inf),
    10: ("b", -np.inf),
    17: ("w", np.nan),
    30: ("b", np.inf),
    31: ("w", np.inf),
    44: ("w", np.nan),
}


def grads_at(t):
    g = {n: GRADS[t][n].copy() for n in SHAPES}
    if t in BAD:
        name, bad = BAD[t]
        g[name][1] = bad  # one element is enough
    return g


def make_step(tx):
    @jax.jit
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), updates, state

    return step


def test_skips_non_finite_steps_and_counts_them(x64):
    # A schedule (of a constant) makes the learning-rate stage keep a counter to check.
    tx = optjx.apply_if_finite(
        optjx.sgd(optjx.schedules.constant(LR), momentum=MU), max_consecutive_errors=2
    )
    step = make_step(tx)
    params = jax.tree.map(jnp.asarray, W0)
    state = tx.init(params)
    w, b, applied, streak, total = {n: W0[n].copy() for n in SHAPES}, None, 0, 0, 0
    for t in range(len(GRADS)):
        before = state
        params, updates, state = step(params, state, jax.tree.map(jnp.asarray, grads_at(t)))
        if t in BAD:
            streak, total = streak + 1, total + 1
            for n in SHAPES:
                np.testing.assert_array_equal(updates[n], 0.0, err_msg=f"step {t}")
            # The inner state (momentum buffer and both counts) is exactly the old one.
            for new, old in zip(
                jax.tree.leaves(state.inner_state), jax.tree.leaves(before.inner_state), strict=True
            ):
                np.testing.assert_array_equal(new, old, err_msg=f"step {t}")
        else:
            streak, applied = 0, applied + 1
            g = GRADS[t]
            b = g if b is None else {n: MU * b[n] + g[n] for n in SHAPES}
            w = {n: w[n] - LR * b[n] for n in SHAPES}
        for n in SHAPES:
            np.testing.assert_allclose(params[n], w[n], rtol=1e-12, err_msg=f"step {t}, {n}")
            np.testing.assert_allclose(
                state.inner_state[0].momentum_buffer[n], b[n] if b else 0.0, rtol=1e-12
            )
        assert int(state.notfinite_count) == streak, t
        assert int(state.total_notfinite) == total, t
        assert bool(state.last_finite) == (t not in BAD), t
        # The inner alias counted the applied steps only (its one counter, in the momentum
        # stage, which the scheduled learning rate reads).
        assert state.inner_state[1] == optax.EmptyState()
        assert int(state.inner_state[0].count) == applied


def test_streak_resets_after_a_good_step(x64):
    # Two bad steps, a good one, two bad steps: with a limit of 2 nothing is ever applied
    # on a bad step. A streak that carried over the good step would give up at step 3.
    tx = optjx.apply_if_finite(optjx.sgd(1.0), max_consecutive_errors=2)
    nan = {"x": jnp.array([np.nan, 1.0])}
    good = {"x": jnp.array([1.0, 1.0])}
    params = {"x": jnp.zeros(2)}
    state = tx.init(params)
    streaks = []
    for g in [nan, nan, good, nan, nan]:
        updates, state = tx.update(g, state, params)
        assert np.all(np.isfinite(updates["x"]))
        streaks.append(int(state.notfinite_count))
    assert streaks == [1, 2, 0, 1, 2]
    assert int(state.total_notfinite) == 4


def test_gives_up_after_the_limit_then_skips_again(x64):
    limit = 3
    tx = optjx.apply_if_finite(
        optjx.sgd(optjx.schedules.constant(1.0), momentum=0.5), max_consecutive_errors=limit
    )
    step = make_step(tx)
    params = {"x": jnp.array([1.0, 2.0])}
    state = tx.init(params)
    bad = {"x": jnp.array([np.inf, 1.0])}
    for t in range(limit):
        params, updates, state = step(params, state, bad)
        np.testing.assert_array_equal(updates["x"], 0.0)
        assert int(state.notfinite_count) == t + 1
    # Run of limit + 1: applied anyway, the Inf reaches the params, the streak restarts.
    params, updates, state = step(params, state, bad)
    assert np.isneginf(updates["x"][0]) and updates["x"][1] == -1.0
    assert np.isneginf(params["x"][0]) and params["x"][1] == 1.0
    assert int(state.notfinite_count) == 0 and int(state.total_notfinite) == limit + 1
    assert int(state.inner_state[0].count) == 1
    # The next bad step is skipped again: the guard gave up once, not for good.
    params, updates, state = step(params, state, bad)
    np.testing.assert_array_equal(updates["x"], 0.0)
    assert int(state.notfinite_count) == 1 and int(state.inner_state[0].count) == 1


def test_under_pmap_each_replica_decides_on_its_gradients():
    n = 4
    tx = optjx.apply_if_finite(optjx.sgd(1.0), max_consecutive_errors=1)
    params = {"x": jnp.ones((n, 2))}
    state = jax.pmap(tx.init)(params)
    grads = {"x": jnp.array([[1.0, 1.0], [np.nan, 1.0], [1.0, 1.0], [1.0, np.inf]])}
    updates, state = jax.pmap(tx.update)(grads, state, params)
    finite = np.array([True, False, True, False])
    np.testing.assert_array_equal(np.asarray(state.last_finite), finite)
    np.testing.assert_array_equal(np.asarray(state.notfinite_count), (~finite).astype(int))
    np.testing.assert_array_equal(
        updates["x"], np.where(finite[:, None], -1.0, 0.0) * np.ones((n, 2))
    )


def test_under_shard_map():
    mesh = Mesh(np.array(jax.devices()[:4]), ("data",))
    tx = optjx.apply_if_finite(optjx.sgd(1.0), max_consecutive_errors=2)
    params = {"x": jnp.ones(8)}
    state = tx.init(params)
    replicated = PartitionSpec()

    @jax.jit
    @jax.shard_map(mesh=mesh, in_specs=(replicated, replicated, replicated), out_specs=replicated)
    def update(grads, state, params):
        return tx.update(grads, state, params)

    updates, state = update({"x": jnp.ones(8).at[3].set(np.nan)}, state, params)
    np.testing.assert_array_equal(updates["x"], 0.0)
    assert int(state.notfinite_count) == 1
    updates, state = update({"x": jnp.ones(8)}, state, params)
    np.testing.assert_array_equal(updates["x"], -1.0)
    assert int(state.notfinite_count) == 0 and int(state.total_notfinite) == 1
