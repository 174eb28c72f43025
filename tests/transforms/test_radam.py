"""RAdam against float64 NumPy loops written from Liu et al. (2020), Algorithm 2."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _reference import (
    assert_trajectories_close,
    max_relative_difference,
    mixed_gradients,
    per_leaf,
    primitive_names,
    run,
)

import optjx


def _rho(t, b2):
    """The length of the approximated SMA at step t (Alg. 2)."""
    rho_inf = 2 / (1 - b2) - 1
    return rho_inf - 2 * t * b2**t / (1 - b2**t)


def _radam_reference(b1, b2, eps, threshold):
    """Alg. 2 with torch's eps: r_t m_hat sqrt(1 - b2^t) / (sqrt(v) + eps), or m_hat."""
    rho_inf = 2 / (1 - b2) - 1

    def reference(sequence):
        m = np.zeros_like(sequence[0])
        v = np.zeros_like(sequence[0])
        out = []
        for t, g in enumerate(sequence, start=1):
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g**2
            m_hat = m / (1 - b1**t)
            rho = _rho(t, b2)
            if rho > threshold:
                r = math.sqrt(
                    (rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)
                )
                out.append(r * m_hat * math.sqrt(1 - b2**t) / (np.sqrt(v) + eps))
            else:
                out.append(m_hat)
        return out

    return reference


def test_rho_crosses_four_at_five_and_five_at_six():
    # The regime switches the next test relies on.
    assert _rho(4, 0.99) <= 4 < _rho(5, 0.99)
    assert _rho(5, 0.99) <= 5 < _rho(6, 0.99)
    assert math.isclose(_rho(1, 0.99), 1.0)


@pytest.mark.parametrize("threshold", [4.0, 5.0])
def test_scale_by_radam_across_the_threshold(x64, threshold):
    grads = mixed_gradients(45, seed=11)
    actual, state = run(optjx.scale_by_radam(0.9, 0.99, eps=1e-8, threshold=threshold), grads)
    expected = per_leaf(_radam_reference(0.9, 0.99, 1e-8, threshold), grads)
    assert_trajectories_close(actual, expected, rtol=1e-9)
    assert int(state.count) == 45
    # The two thresholds really give different steps (at t = 5 only), so each
    # comparison above can tell them apart.
    other = per_leaf(_radam_reference(0.9, 0.99, 1e-8, 9.0 - threshold), grads)
    assert max_relative_difference(expected[4:5], other[4:5]) > 0.5
    assert max_relative_difference(expected[5:], other[5:]) == 0.0


def test_defaults_match_the_formula(x64):
    # b2 = 0.999 switches on at t = 6 too (rho_5 = 4.99..., rho_6 = 5.99...).
    grads = mixed_gradients(40, seed=12)
    actual, _ = run(optjx.scale_by_radam(), grads)
    assert_trajectories_close(
        actual, per_leaf(_radam_reference(0.9, 0.999, 1e-8, 5.0), grads), rtol=1e-9
    )


@pytest.mark.parametrize("b2", [0.999, 0.9999])
def test_float32_steps_are_accurate_near_the_switch(b2):
    # No x64: the scalars are float32. rho_inf - 2 t b2^t / (1 - b2^t) subtracts two
    # numbers near 2 / (1 - b2) to get about t; computed that way in float32, r_6 is off
    # by 0.2% (b2 = 0.999) or 27% (b2 = 0.9999). The float64 reference sees the same
    # float32 gradients.
    grads = [
        {k: np.asarray(np.asarray(x, np.float32), np.float64) for k, x in g.items()}
        for g in mixed_gradients(12, seed=13, zero_steps=())
    ]
    actual, _ = run(optjx.scale_by_radam(0.9, b2), grads)
    assert actual[0]["w"].dtype == np.float32
    expected = per_leaf(_radam_reference(0.9, b2, 1e-8, 5.0), grads)
    assert_trajectories_close(actual, expected, rtol=2e-5)


def _gradient(w):
    """A non-quadratic loss's gradient, so the trajectory feeds back into the steps."""
    return {"a": 2.0 * (w["a"] - 1.5) + 0.5 * np.sin(3.0 * w["a"]), "b": w["b"] ** 3 - w["b"]}


def _jax_gradient(w):
    return {"a": 2.0 * (w["a"] - 1.5) + 0.5 * jnp.sin(3.0 * w["a"]), "b": w["b"] ** 3 - w["b"]}


def _initial_params():
    rng = np.random.default_rng(5)
    return {"a": rng.normal(size=(3, 2)), "b": rng.normal(size=(4,)) * 2.0}


def _optjx_trajectory(tx, steps):
    params = jax.tree.map(jnp.asarray, _initial_params())
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        updates, state = tx.update(_jax_gradient(params), state, params)
        return optjx.apply_updates(params, updates), state

    out = []
    for _ in range(steps):
        params, state = step(params, state)
        out.append(jax.tree.map(np.asarray, params))
    return out


def test_threshold_four_eps_zero_is_algorithm_2_line_for_line(x64):
    alpha, b1, b2 = 0.01, 0.9, 0.99
    theta = _initial_params()
    m = {k: np.zeros_like(x) for k, x in theta.items()}  # 1: m_0, v_0 <- 0, 0
    v = {k: np.zeros_like(x) for k, x in theta.items()}
    rho_inf = 2 / (1 - b2) - 1  # 2: rho_inf
    expected = []
    for t in range(1, 46):  # 3: while
        g = _gradient(theta)  # 4: g_t
        theta = dict(theta)
        for k in theta:
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2  # 5: v_t
            m[k] = b1 * m[k] + (1 - b1) * g[k]  # 6: m_t
            m_hat = m[k] / (1 - b1**t)  # 7: m_hat_t
            rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)  # 8: rho_t
            if rho_t > 4:  # 9: variance tractable
                l_t = np.sqrt((1 - b2**t) / v[k])  # 10: adaptive learning rate
                r_t = np.sqrt(  # 11: rectification term
                    (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
                )
                theta[k] = theta[k] - alpha * r_t * m_hat * l_t  # 12
            else:
                theta[k] = theta[k] - alpha * m_hat  # 14: un-adapted momentum
        expected.append(theta)
    actual = _optjx_trajectory(optjx.radam(alpha, b1, b2, eps=0.0, threshold=4.0), 45)
    assert_trajectories_close(actual, expected, rtol=1e-9)


def _torch_style_reference(lr, b1, b2, eps, weight_decay, decoupled, steps):
    """torch.optim.RAdam's update order: decay, moments, rectified or plain step."""
    w = _initial_params()
    m = {k: np.zeros_like(x) for k, x in w.items()}
    v = {k: np.zeros_like(x) for k, x in w.items()}
    out = []
    for t in range(1, steps + 1):
        g = _gradient(w)
        w = dict(w)
        for k in w:
            if decoupled:
                w[k] = w[k] * (1 - lr * weight_decay)
            else:
                g[k] = g[k] + weight_decay * w[k]
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            m_hat = m[k] / (1 - b1**t)
            rho = _rho(t, b2)
            if rho > 5.0:
                rho_inf = 2 / (1 - b2) - 1
                r = math.sqrt(
                    (rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)
                )
                step = r * m_hat * math.sqrt(1 - b2**t) / (np.sqrt(v[k]) + eps)
            else:
                step = m_hat
            w[k] = w[k] - lr * step
        out.append(w)
    return out


@pytest.mark.parametrize("decoupled", [False, True], ids=["coupled", "decoupled"])
def test_weight_decay_as_torch(x64, decoupled):
    lr, wd = 0.02, 0.3
    tx = optjx.radam(lr, 0.9, 0.99, eps=1e-8, weight_decay=wd, decoupled_weight_decay=decoupled)
    actual = _optjx_trajectory(tx, 45)
    expected = _torch_style_reference(lr, 0.9, 0.99, 1e-8, wd, decoupled, 45)
    assert_trajectories_close(actual, expected, rtol=1e-9)
    # Coupled and decoupled decay really differ on this problem.
    other = _torch_style_reference(lr, 0.9, 0.99, 1e-8, wd, not decoupled, 45)
    assert max_relative_difference(expected, other) > 1e-3


def test_warm_up_branch_produces_no_nan(x64):
    # b2 = 0.6 gives rho_inf = 4 exactly: r_t's denominator is zero, and rho_t < 4 makes
    # its numerator negative. The warm-up step must be m_hat, with finite derivatives too
    # (a NaN merely discarded by the select would still poison them).
    grads = mixed_gradients(10, seed=3, zero_steps=())
    actual, _ = run(optjx.scale_by_radam(0.9, 0.6, threshold=4.0), grads)
    assert_trajectories_close(actual, per_leaf(_radam_reference(0.9, 0.6, 1e-8, 4.0), grads))

    # No zero entries here: sqrt(v) at v = 0 has an infinite derivative of its own.
    g = {"w": jnp.linspace(-2.0, 3.0, 7)}

    def total(b2):
        tx = optjx.scale_by_radam(0.9, b2, threshold=4.0)
        state = tx.init(g)
        for _ in range(3):
            out, state = tx.update(g, state)
        return sum(jnp.sum(x) for x in jax.tree.leaves(out))

    # b2 = 0.99, t = 3: rho_t = 2.99, so (rho_t - 4)(rho_t - 2) < 0 under r_t's root.
    assert 2 < _rho(3, 0.99) < 4
    derivative = jax.jit(jax.grad(total))
    assert np.isfinite(float(derivative(jnp.asarray(0.6))))
    assert np.isfinite(float(derivative(jnp.asarray(0.99))))


def test_threshold_inf_is_momentum_only(x64):
    grads = mixed_gradients(12, seed=9)
    actual, _ = run(optjx.scale_by_radam(0.9, 0.99, threshold=math.inf), grads)
    assert_trajectories_close(actual, per_leaf(_radam_reference(0.9, 0.99, 1e-8, math.inf), grads))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
def test_dtype_follows_the_gradients(x64, strict_promotion, dtype):
    # Under x64 a float32 step must not drift to float64, nor bf16 to float32.
    params = {"w": jnp.ones((3, 2), dtype), "b": jnp.zeros((4,), dtype)}
    tx = optjx.radam(1e-2, 0.9, 0.99, weight_decay=0.1, decoupled_weight_decay=True)
    state = tx.init(params)
    step = jax.jit(tx.update)
    for t in range(8):  # across the switch at t = 6
        value = (-1.0) ** t * 0.5
        grads = jax.tree.map(lambda p, value=value: jnp.full_like(p, value), params)
        updates, state = step(grads, state, params)
        params = optjx.apply_updates(params, updates)
    for leaf in jax.tree.leaves((updates, params)):
        assert leaf.dtype == dtype
        assert bool(jnp.all(jnp.isfinite(leaf)))
    radam_state = state[0]
    assert radam_state.count.dtype == jnp.int32
    assert all(x.dtype == dtype for x in jax.tree.leaves((radam_state.mu, radam_state.nu)))


def test_no_cond_over_the_tree():
    params = {f"layer{i}": jnp.ones((i % 4 + 1,)) for i in range(50)}
    tx = optjx.radam(1e-3, weight_decay=0.1)
    state = tx.init(params)
    jaxpr = jax.make_jaxpr(jax.jit(tx.update))(params, state, params)
    names = primitive_names(jaxpr.jaxpr)
    assert "select_n" in names  # the scalar select is there (the check can see inside)
    assert "cond" not in names
