"""Nonlinear conjugate gradients: linear CG on a quadratic, scipy's minimisers elsewhere.

* On an 8-dimensional strictly convex quadratic (condition number 100), with ``c2 = 1e-9``
  (an exact line search in effect), every ``beta`` reaches the minimiser in at most
  n = 8 iterations, to 1e-8: the finite-termination property of linear CG (Nocedal &
  Wright, Theorem 5.2), which all four formulas share under exact line searches.
* On Rosenbrock (5-d) and an L2-regularised logistic regression it reaches the
  minimiser that ``scipy.optimize.minimize(method="CG")`` found (recorded by
  ``tests/golden/generate_full_batch.py``; scipy is not imported here), to 1e-6.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _problems import load, logistic, rosenbrock

import optjx
from optjx.full_batch.conjugate_gradient import BETAS


def _quadratic(n=8):
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = q @ np.diag(np.logspace(0, 2, n)) @ q.T
    b = rng.normal(size=n)
    return jnp.asarray(a), jnp.asarray(b), np.linalg.solve(a, b)


@pytest.mark.parametrize("beta", BETAS)
def test_every_beta_is_linear_cg_on_a_quadratic(beta, x64):
    a, b, minimiser = _quadratic()
    n = len(minimiser)

    def loss(p):
        return 0.5 * p["x"] @ a @ p["x"] - b @ p["x"]

    opt = optjx.conjugate_gradient(beta=beta, max_iter=n, max_eval=50 * n, c2=1e-9,
                                   tolerance_grad=0.0, tolerance_change=0.0)  # fmt: skip
    params = {"x": jnp.zeros(n)}

    @jax.jit  # one compilation; eager while loops would compile each loop on its own
    def step(params):
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, opt.init(params), params, value=value, value_fn=loss)
        return optax.apply_updates(params, updates), state

    params, state = step(params)
    assert int(state.iterations) <= n
    np.testing.assert_allclose(np.asarray(params["x"]), minimiser, atol=1e-8, rtol=0)


@pytest.mark.parametrize("problem", ["rosenbrock", "logistic"])
def test_reaches_scipy_cg_minimiser(problem, x64):
    golden = load("cg_scipy_minimisers")
    want = {k.split("/", 1)[1]: v for k, v in golden.items() if k.startswith(problem + "/")}
    if problem == "rosenbrock":
        loss, params = rosenbrock, {"x": jnp.asarray([-1.2, 1.0, -0.5, 0.8, 0.3])}
    else:
        data = load("lbfgs_logistic_wolfe")
        loss = logistic({k.split("/", 1)[1]: v for k, v in data.items() if k.startswith("data/")})
        params = {"b": jnp.zeros(()), "w": jnp.zeros(4)}
    opt = optjx.conjugate_gradient(max_iter=100, max_eval=1000, tolerance_grad=1e-10,
                                   tolerance_change=1e-14)  # fmt: skip

    @jax.jit
    def step(params, state):
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state, params, value=value, value_fn=loss)
        return optax.apply_updates(params, updates), state

    state = opt.init(params)
    for _ in range(20):
        params, state = step(params, state)
    for key, value in want.items():
        np.testing.assert_allclose(np.asarray(params[key]), value, atol=1e-6, rtol=0, err_msg=key)


def test_restart_every_and_bad_beta():
    with pytest.raises(ValueError, match="beta must be one of fletcher_reeves, polak_ribiere"):
        optjx.conjugate_gradient(beta="pr")
    with pytest.raises(ValueError, match="restart_every"):
        optjx.conjugate_gradient(restart_every=0)
    for name in ("c1", "c2"):
        with pytest.raises(ValueError, match=name):
            optjx.conjugate_gradient(**{name: 1.0})


def test_zero_tolerance_change_does_not_spend_the_budget_in_the_zoom():
    # The line search keeps its own bracket tolerance (1e-9, as torch's LBFGS.step calls
    # _strong_wolfe). With the method's tolerance_change=0 instead, once a float32 loss
    # stops changing the zoom ran until max_eval: 601 evaluations for 25 iterations here.
    curvature = jnp.linspace(1.0, 10.0, 50, dtype=jnp.float32)

    def loss(p):
        return 0.5 * jnp.sum(curvature * (p["x"] - 1.0) ** 2)

    opt = optjx.conjugate_gradient(max_iter=60, max_eval=600, tolerance_grad=0.0,
                                   tolerance_change=0.0)  # fmt: skip
    params = {"x": jnp.zeros(50, jnp.float32)}
    value, grads = jax.value_and_grad(loss)(params)
    updates, state = jax.jit(lambda g, s, p, v: opt.update(g, s, p, value=v, value_fn=loss))(
        grads, opt.init(params), params, value
    )
    assert optjx.stop_reason(state) != "MAX_EVAL"
    assert int(state.evaluations) <= 3 * int(state.iterations)
    assert float(loss(optax.apply_updates(params, updates))) < 1e-10
