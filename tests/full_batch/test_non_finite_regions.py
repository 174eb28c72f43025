"""Losses that are not finite everywhere: the line search backs off and the methods converge.

* ``sum(-log1p(-x)) + k/2 |x - a|^2`` with ``a > 1``: the quadratic pulls ``x`` beyond
  ``x = 1``, where the loss is ``+inf`` (at 1) or NaN (beyond). Its minimiser solves
  ``1 / (1 - x) + k (x - a) = 0`` per coordinate: with ``u = 1 - x > 0``,
  ``k u^2 + k (a - 1) u - 1 = 0``, the positive root (closed form, below).
* The Gaussian negative log-likelihood of data ``y`` in the mean ``mu`` and the variance
  ``v`` itself (not its log): NaN for ``v < 0``. Its minimiser is the sample mean and the
  biased sample variance.

On each, ``lbfgs`` (strong Wolfe), ``conjugate_gradient`` and ``bfgs`` (Moré-Thuente) reach the minimiser to 1e-6
through repeated updates, and a trial point with a non-finite value was met (recorded by
a callback in the loss), so the recovery was exercised: before it, both stopped at the
start with ``NON_FINITE`` on every one of these problems (scipy's own BFGS ends in NaN on
the 1-d barrier). The halving rule itself is
checked on one line search, trial by trial.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optjx
from optjx.full_batch.line_search import strong_wolfe

METHODS = {
    "lbfgs": lambda: optjx.lbfgs(
        line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15
    ),
    "conjugate_gradient": lambda: optjx.conjugate_gradient(
        tolerance_grad=1e-12, tolerance_change=1e-15
    ),
    # 1e-6: below, the value changes by less than its rounding (scipy's "precision loss").
    "bfgs": lambda: optjx.bfgs(tolerance_grad=1e-6),
    "lbfgs_b": lambda: optjx.lbfgs_b(tolerance_grad=1e-6, tolerance_change=0.0),
}


FINITE: list = []  # whether each loss value computed was finite (every test clears it)


def _recorded(value):
    """``value``, appending whether it is finite to ``FINITE`` (also under jit)."""
    jax.debug.callback(lambda v: FINITE.append(bool(np.isfinite(v))), value)
    return value


def _solve(opt, step, params, *data, updates: int = 30):
    """Updates until CONVERGED, as a user's loop; NON_FINITE after progress goes on.

    ``step(params, state, *data)`` is the jitted update; the problem's constants are its
    arguments, so that problems of one shape share one compiled program per method."""
    FINITE.clear()
    state = opt.init(params)
    for _ in range(updates):
        new_updates, state = step(params, state, *data)
        params = optax.apply_updates(params, new_updates)
        if state.stop_reason == optjx.StopReason.CONVERGED:
            break
    return params, state


def _barrier_loss(p, a, k):
    x = p["x"]
    return _recorded(jnp.sum(-jnp.log1p(-x) + 0.5 * k * (x - a) ** 2))


def _barrier_minimiser(a, k):
    a64 = np.asarray(a, np.float64)
    u = (-(a64 - 1) * k + np.sqrt(k**2 * (a64 - 1) ** 2 + 4 * k)) / (2 * k)
    return 1 - u


@functools.cache
def _barrier(name):
    """The method and its jitted update on the barrier with ``a`` and ``k`` as arguments."""
    opt = METHODS[name]()

    def step(p, s, a, k):
        return opt.update(None, s, p, value_fn=lambda q: _barrier_loss(q, a, k))

    return opt, jax.jit(step)


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("a, k", [([2.0], 1.0), ([2.0, 3.0, 1.5], 10.0), ([2.0, 3.0, 1.5], 100.0)])
def test_log1p_barrier_reaches_the_closed_form_minimiser(name, a, k, x64):
    opt, step = _barrier(name)
    x0 = {"x": jnp.zeros(len(a), jnp.float64)}
    params, state = _solve(opt, step, x0, jnp.asarray(a, jnp.float64), jnp.float64(k))
    assert state.stop_reason == optjx.StopReason.CONVERGED, optjx.stop_reason(state)
    np.testing.assert_allclose(np.asarray(params["x"]), _barrier_minimiser(a, k), atol=1e-6, rtol=0)
    assert not all(FINITE), "no trial point reached the non-finite region"


@pytest.mark.parametrize("name", sorted(METHODS))
def test_gaussian_likelihood_with_a_variance_reaches_the_mle(name, x64):
    y = 0.3 + 0.1 * np.random.default_rng(0).standard_normal(50)
    data = jnp.asarray(y)

    def nll(p):  # NaN for var < 0, -inf log at var = 0
        squares = jnp.sum((data - p["mu"]) ** 2)
        return _recorded(0.5 * data.size * jnp.log(p["var"]) + squares / (2 * p["var"]))

    opt = METHODS[name]()
    step = jax.jit(lambda p, s: opt.update(None, s, p, value_fn=nll))
    # Strongly typed: weak-typed params become strong after a step and compile it twice.
    params = {"mu": jnp.asarray(0.0, jnp.float64), "var": jnp.asarray(1.0, jnp.float64)}
    params, state = _solve(opt, step, params)
    assert state.stop_reason == optjx.StopReason.CONVERGED, optjx.stop_reason(state)
    np.testing.assert_allclose(float(params["mu"]), y.mean(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(float(params["var"]), y.var(), atol=1e-6, rtol=0)
    assert not all(FINITE), "no trial point reached the non-finite region"


def test_the_search_halves_towards_the_last_finite_point(x64):
    # phi(t) = (t - 0.9)^2, NaN beyond t = 1. From t0 = 8: 8, 4 and 2 fail, each the
    # midpoint of the last finite point (0) and the failed one; 1 is finite and satisfies
    # both Wolfe conditions (phi'(1) = 0.2 <= 0.9 * 1.8).
    trials: list = []

    def phi(x):
        jax.debug.callback(lambda v: trials.append(float(v)), x[0])
        return jnp.where(x[0] > 1, jnp.nan, (x[0] - 0.9) ** 2)

    x0, d = jnp.zeros(1), jnp.ones(1)
    f, g = jax.value_and_grad(phi)(x0)
    trials.clear()
    res = strong_wolfe(jax.value_and_grad(phi), x0, d, 8.0, f, g, g @ d)
    assert trials == [8.0, 4.0, 2.0, 1.0]
    assert float(res.step_size) == 1.0 and int(res.evaluations) == 4
    assert not bool(res.non_finite)


def test_no_finite_trial_within_the_budget_returns_the_start(x64):
    def nan_off_zero(x):
        return jnp.where(jnp.all(x == 0), jnp.sum((x - 1) ** 2), jnp.nan)

    x0, d = jnp.zeros(2), jnp.ones(2)
    f, g = jax.value_and_grad(nan_off_zero)(x0)
    res = strong_wolfe(jax.value_and_grad(nan_off_zero), x0, d, 1.0, f, g, g @ d, max_ls=5)
    assert bool(res.non_finite) and float(res.step_size) == 0.0
    assert int(res.evaluations) == 6 and float(res.value) == float(f)
    np.testing.assert_array_equal(np.asarray(res.grad), np.asarray(g))
