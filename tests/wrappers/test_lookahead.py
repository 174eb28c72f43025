"""lookahead against Zhang et al. (2019), Algorithm 1, written in float64 NumPy.

Reference, with the fast weights theta (the params) and the slow weights phi (the state):
    phi = theta = w_0
    for t = 1, 2, ...:   theta <- theta + inner(g(theta))          (the inner optimizer)
                         if t % k == 0: phi <- phi + alpha (theta - phi); theta <- phi
                                        (reset_state: the inner optimizer starts afresh)
The gradient is that of a noisy quadratic, evaluated at each side's own fast weights, so
the two trajectories are independent and a wrong sync shows in every later step.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _reference import adam_step, run_training

import optjx

SHAPES = {"w": (3, 4), "b": (5,)}
_rng = np.random.default_rng(3)
CURVATURE = {n: _rng.uniform(0.5, 3.0, size=s) for n, s in SHAPES.items()}
TARGET = {n: _rng.normal(size=s) for n, s in SHAPES.items()}
NOISE = [{n: 0.3 * _rng.normal(size=s) for n, s in SHAPES.items()} for _ in range(64)]
W0 = {n: _rng.normal(size=s) for n, s in SHAPES.items()}


def gradient(params, t):
    return {n: CURVATURE[n] * (np.asarray(params[n]) - TARGET[n]) + NOISE[t][n] for n in SHAPES}


def sgd_reference(lr, mu):
    """torch.optim.SGD: b_1 = g_1, b = mu b + g; update -lr b."""

    def step(g, state):
        b = g.copy() if state is None else mu * state + g
        return -lr * b, b

    return step


def adam_reference(lr, b1=0.9, b2=0.999, eps=1e-8):
    """Kingma & Ba, Algorithm 1: update -lr m_hat / (sqrt(v_hat) + eps)."""

    def step(g, state):
        direction, state = adam_step(g, state, b1=b1, b2=b2, eps=eps)
        return -lr * direction, state

    return step


def lookahead_reference(inner_step, steps, k, alpha, reset_state):
    """Algorithm 1; ``alpha(j)`` with j = updates already applied. Returns (fast, slow) lists."""
    fast = {n: W0[n].copy() for n in SHAPES}
    slow = {n: W0[n].copy() for n in SHAPES}
    inner = {n: None for n in SHAPES}
    fasts, slows = [], []
    for t in range(1, steps + 1):
        g = gradient(fast, t - 1)
        for n in SHAPES:
            u, inner[n] = inner_step(g[n], inner[n])
            fast[n] = fast[n] + u
        if t % k == 0:
            for n in SHAPES:
                slow[n] = slow[n] + alpha(t - 1) * (fast[n] - slow[n])
                fast[n] = slow[n].copy()
            if reset_state:
                inner = {n: None for n in SHAPES}
        fasts.append({n: fast[n].copy() for n in SHAPES})
        slows.append({n: slow[n].copy() for n in SHAPES})
    return fasts, slows


def run_optjx(tx, steps):
    """Train with ``tx`` on the same quadratic; returns the params and states after each step."""
    run = run_training(tx, gradient, W0, steps)
    return run.params, run.states


def assert_close(actual, expected, rtol, what):
    for t, (a, e) in enumerate(zip(actual, expected, strict=True)):
        for n in SHAPES:
            np.testing.assert_allclose(
                a[n], e[n], rtol=rtol, atol=1e-13, err_msg=f"{what}, step {t + 1}, {n}"
            )


@pytest.mark.parametrize("reset_state", [False, True])
@pytest.mark.parametrize(
    "inner, inner_step",
    [
        (lambda: optjx.sgd(0.05, momentum=0.9), sgd_reference(0.05, 0.9)),
        (lambda: optjx.adam(0.03), adam_reference(0.03)),
    ],
    ids=["sgd-momentum", "adam"],
)
def test_fast_and_slow_weights_follow_algorithm_1(x64, inner, inner_step, reset_state):
    steps, k, alpha = 42, 5, 0.5  # 8 syncs
    tx = optjx.lookahead(inner(), sync_period=k, slow_step_size=alpha, reset_state=reset_state)
    params, states = run_optjx(tx, steps)
    fasts, slows = lookahead_reference(inner_step, steps, k, lambda j: alpha, reset_state)
    assert_close(params, fasts, 1e-10, "fast weights")
    assert_close([optjx.slow_params(s) for s in states], slows, 1e-10, "slow weights")
    # The slow weights only move on sync steps, and then the params sit on them.
    for t in range(k - 1, steps, k):
        np.testing.assert_allclose(
            params[t]["w"], np.asarray(optjx.slow_params(states[t])["w"]), rtol=1e-14
        )
    assert not np.allclose(params[k]["w"], slows[k]["w"])


def test_reset_state_changes_the_trajectory(x64):
    # Guards the test above: with momentum, resetting the buffer at each sync must matter.
    step = sgd_reference(0.05, 0.9)
    kept, _ = lookahead_reference(step, 20, 5, lambda j: 0.5, False)
    reset, _ = lookahead_reference(step, 20, 5, lambda j: 0.5, True)
    assert np.max(np.abs(kept[-1]["w"] - reset[-1]["w"])) > 1e-3


def test_scheduled_slow_step_size(x64):
    steps, k = 40, 4
    schedule = optjx.schedules.linear(0.2, 0.8, 40)
    tx = optjx.lookahead(optjx.sgd(0.05, momentum=0.5), sync_period=k, slow_step_size=schedule)
    params, states = run_optjx(tx, steps)
    fasts, slows = lookahead_reference(
        sgd_reference(0.05, 0.5), steps, k, lambda j: 0.2 + 0.6 * min(j, 40) / 40, False
    )
    assert_close(params, fasts, 1e-10, "fast weights")
    assert_close([optjx.slow_params(s) for s in states], slows, 1e-10, "slow weights")


def test_sync_every_step_with_full_step_is_the_inner_optimizer(x64):
    steps = 40
    tx = optjx.lookahead(optjx.adam(0.03), sync_period=1, slow_step_size=1.0)
    params, states = run_optjx(tx, steps)
    # Plain Adam, no lookahead at all in the reference.
    step = adam_reference(0.03)
    w, inner, expected = {n: W0[n].copy() for n in SHAPES}, {n: None for n in SHAPES}, []
    for t in range(steps):
        g = gradient(w, t)
        for n in SHAPES:
            u, inner[n] = step(g[n], inner[n])
            w[n] = w[n] + u
        expected.append({n: w[n].copy() for n in SHAPES})
    assert_close(params, expected, 1e-10, "params")
    assert_close([optjx.slow_params(s) for s in states], expected, 1e-10, "slow weights")


def test_reset_state_selects_key_and_bool_leaves():
    def keyed_inner():
        def init(params):
            del params
            return {
                "key": jax.random.key(7),
                "flag": jnp.asarray(False),
                "n": jnp.zeros([], jnp.int32),
            }

        def update(updates, state, params=None):
            del params
            key, _ = jax.random.split(state["key"])
            return updates, {"key": key, "flag": jnp.asarray(True), "n": state["n"] + 1}

        return optax.GradientTransformation(init, update)

    tx = optjx.lookahead(keyed_inner(), sync_period=3, reset_state=True)
    params = {"x": jnp.ones(2)}
    state = tx.init(params)
    step = jax.jit(tx.update)
    fresh = keyed_inner().init(params)
    for t in range(1, 7):
        _, state = step({"x": jnp.ones(2)}, state, params)
        inner = state.inner_state
        if t % 3 == 0:
            assert not bool(inner["flag"]) and int(inner["n"]) == 0
            np.testing.assert_array_equal(
                jax.random.key_data(inner["key"]), jax.random.key_data(fresh["key"])
            )
        else:
            assert bool(inner["flag"]) and int(inner["n"]) == t % 3
            assert not np.array_equal(
                jax.random.key_data(inner["key"]), jax.random.key_data(fresh["key"])
            )


def test_slow_weights_are_a_copy_not_an_alias():
    params = {"x": jnp.arange(3.0)}
    state = optjx.lookahead(optjx.sgd(0.1)).init(params)
    assert state.slow["x"] is not params["x"]
    assert state.slow["x"].unsafe_buffer_pointer() != params["x"].unsafe_buffer_pointer()


def test_needs_params():
    tx = optjx.lookahead(optjx.sgd(0.1))
    params = {"x": jnp.zeros(2)}
    with pytest.raises(ValueError, match="lookahead needs the current params"):
        tx.update(params, tx.init(params))
