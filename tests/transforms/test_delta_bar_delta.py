"""Delta-bar-delta against a float64 NumPy loop from Jacobs (1988) / Goodfellow et al. 8.5."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _reference import assert_trajectories_close, primitive_names, run

import optjx


def _sign_pattern_gradients(steps, seed):
    """Columns with a kept sign, an alternating sign, random signs, and zeros.

    Row 0 keeps its sign, row 1 alternates, row 2 is random, row 3 is random with one
    entry in three exactly zero; every fifth step is zero everywhere.
    """
    rng = np.random.default_rng(seed)
    out = []
    for t in range(steps):
        magnitude = 10.0 ** rng.uniform(-2, 1, size=(4, 3))
        sign = np.stack(
            [
                np.array([1.0, -1.0, 1.0]),
                (-1.0) ** t * np.ones(3),
                rng.choice([-1.0, 1.0], size=3),
                rng.choice([-1.0, 0.0, 1.0], size=3),
            ]
        )
        g = sign * magnitude
        if t % 5 == 3:
            g = np.zeros_like(g)
        out.append({"w": g, "b": magnitude[0, :2] * rng.choice([-1.0, 1.0], size=2)})
    return out


def _delta_bar_delta_reference(grads, initial, kappa, phi, gamma):
    """u_t = eps_{t-1} g_t; eps grows by kappa_k where dbar_{t-1} g_t > 0, shrinks by
    phi_k eps where < 0; dbar_t = (1 - gamma_k) g_t + gamma_k dbar_{t-1} (k = t - 1)."""
    value = lambda h, k: h(k) if callable(h) else h  # noqa: E731
    rates = {name: np.full_like(g, initial) for name, g in grads[0].items()}
    delta_bar = {name: np.zeros_like(g) for name, g in grads[0].items()}
    out, moves = [], {"grown": 0, "shrunk": 0, "kept": 0}
    for k, g in enumerate(grads):
        out.append({name: rates[name] * g[name] for name in g})
        for name in g:
            agreement = delta_bar[name] * g[name]
            moves["grown"] += int(np.sum(agreement > 0))
            moves["shrunk"] += int(np.sum(agreement < 0))
            moves["kept"] += int(np.sum(agreement == 0))
            rates[name] = np.where(
                agreement > 0,
                rates[name] + value(kappa, k),
                np.where(agreement < 0, rates[name] - value(phi, k) * rates[name], rates[name]),
            )
            delta_bar[name] = (1 - value(gamma, k)) * g[name] + value(gamma, k) * delta_bar[name]
    return out, rates, moves


def test_scale_by_delta_bar_delta_matches_the_rule(x64):
    grads = _sign_pattern_gradients(45, seed=7)
    tx = optjx.scale_by_delta_bar_delta(0.05, kappa=0.01, phi=0.3, gamma=0.6)
    actual, state = run(tx, grads)
    expected, rates, moves = _delta_bar_delta_reference(grads, 0.05, 0.01, 0.3, 0.6)
    assert_trajectories_close(actual, expected, rtol=1e-12)
    for name in rates:
        np.testing.assert_allclose(np.asarray(state.learning_rates[name]), rates[name], rtol=1e-12)
    # The data exercises all three branches, and the rates really moved.
    assert min(moves.values()) > 20, moves
    assert np.ptp(rates["w"]) > 0.05


def test_alias_returns_minus_eps_g_with_scheduled_hyperparameters(x64):
    grads = _sign_pattern_gradients(40, seed=8)
    kappa = optjx.schedules.exponential(0.02, 0.5, 10)
    tx = optjx.delta_bar_delta(0.1, kappa=kappa, phi=0.5, gamma=0.0)
    actual, state = run(tx, grads)
    expected, rates, _ = _delta_bar_delta_reference(
        grads, 0.1, lambda k: 0.02 * 0.5 ** (k / 10), 0.5, 0.0
    )
    negated = [{name: -x for name, x in step.items()} for step in expected]
    assert_trajectories_close(actual, negated, rtol=1e-12)
    # No second stage: the alias's state is the building block's own (with the count the
    # schedule reads, first).
    assert type(state).__name__ == "ScaleByDeltaBarDeltaState"
    assert int(state.count) == len(grads)
    np.testing.assert_allclose(np.asarray(state.learning_rates["w"]), rates["w"], rtol=1e-12)


def test_first_step_uses_the_initial_rate_and_tiny_gradients_still_count():
    # dbar_0 = 0: nothing changes on the first step. Then 1e-30 * 1e-30 underflows to 0
    # even in float32, yet the signs agree: the rate must grow by kappa.
    tx = optjx.scale_by_delta_bar_delta(0.5, kappa=0.25, phi=0.5, gamma=0.0)
    grads = {"w": jnp.asarray([1e-30, -1e-30, 2.0], jnp.float32)}
    state = tx.init(grads)
    step = jax.jit(tx.update)
    updates, state = step(grads, state)
    np.testing.assert_array_equal(np.asarray(updates["w"]), 0.5 * np.asarray(grads["w"]))
    np.testing.assert_array_equal(np.asarray(state.learning_rates["w"]), [0.5, 0.5, 0.5])
    flipped = {"w": jnp.asarray([1e-30, -1e-30, -2.0], jnp.float32)}
    _, state = step(flipped, state)
    np.testing.assert_array_equal(np.asarray(state.learning_rates["w"]), [0.75, 0.75, 0.25])


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
def test_dtype_follows_the_gradients(x64, strict_promotion, dtype):
    params = {"w": jnp.ones((3, 2), dtype), "b": jnp.zeros((4,), dtype)}
    tx = optjx.delta_bar_delta(0.1, kappa=0.01, phi=0.1, gamma=0.7)
    state = tx.init(params)
    step = jax.jit(tx.update)
    for value in (0.5, 0.5, -0.5):
        grads = jax.tree.map(lambda p, value=value: jnp.full_like(p, value), params)
        updates, state = step(grads, state, params)
    for leaf in jax.tree.leaves((updates, state.learning_rates, state.delta_bar)):
        assert leaf.dtype == dtype
    assert int(state.count) == 3  # kept for constant hyperparameters too (one structure)
    # No history, same sign, flipped sign: 0.1 + 0.01 - 0.1 * 0.11 (to bf16 precision).
    np.testing.assert_allclose(np.asarray(state.learning_rates["w"], np.float64), 0.099, rtol=1e-2)


def test_boundaries_are_allowed_and_a_schedule_is_not_an_initial_rate():
    optjx.scale_by_delta_bar_delta(0.0, kappa=0.0, phi=1.0, gamma=0.0)
    optjx.scale_by_delta_bar_delta(0.0, kappa=0.0, phi=0.0, gamma=0.99)
    with pytest.raises(TypeError, match="initial_learning_rate"):
        optjx.delta_bar_delta(lambda count: 0.1, kappa=0.01, phi=0.1, gamma=0.5)
    with pytest.raises(TypeError):  # kappa, phi and gamma are required
        optjx.delta_bar_delta(0.1)


def test_no_cond_over_the_tree():
    params = {f"layer{i}": jnp.ones((i % 4 + 1,)) for i in range(50)}
    tx = optjx.delta_bar_delta(0.1, kappa=0.01, phi=0.1, gamma=0.5)
    state = tx.init(params)
    names = primitive_names(jax.make_jaxpr(jax.jit(tx.update))(params, state).jaxpr)
    assert "select_n" in names
    assert "cond" not in names
