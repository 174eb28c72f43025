"""``optjx.bfgs`` against ``scipy.optimize.minimize(method="BFGS")`` (scipy 1.17.1 goldens
from ``tests/golden/generate_scipy_quasi_newton.py``), and its update against the formula.

Every iterate, function value and evaluation count of the scipy run is compared. The
iterates agree to rtol 1e-9, except where scipy's own rounding moves them more: the
Rosenbrock valley amplifies a difference in the last bit by up to 1e8 before the run
converges, and scipy itself, run on the same problem with the coordinates reversed (the
same arithmetic in another order), leaves its iterates by up to 2e-8 there
(``x_reordered`` in the goldens). There the bound is ten times scipy's own spread.
"""

from __future__ import annotations

import _quasi_newton_problems as problems
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optjx
from optjx.full_batch._bfgs_loop import inverse_hessian_update
from optjx.full_batch._common import StopTest


def _test(state) -> str:
    return StopTest(int(state.stop_test)).name


RUNS = ["rosenbrock2", "rosenbrock5", "rosenbrock10", "logistic", "rosenbrock5_xrtol"]


def _problem(golden):
    x0 = golden["x0"]
    if "data/x" in golden:  # the flat vector is [b, w]: the params tree's order
        return problems.logistic(golden), {"b": jnp.asarray(x0[0]), "w": jnp.asarray(x0[1:])}
    return problems.rosenbrock, {"x": jnp.asarray(x0)}


def _bound(golden, k, key="x", floor=1.0):
    """How far iterate (or value) ``k`` may be from scipy's: rtol 1e-9 (relative to at
    least ``floor``), or 10x scipy's own spread."""
    x = golden[key][k]
    spread = np.abs(golden[f"{key}_reordered"][k] - x) if f"{key}_reordered" in golden else 0.0
    return 1e-9 * np.maximum(np.abs(x), floor) + 10 * spread


@pytest.mark.parametrize("name", RUNS)
def test_one_iteration_per_update_is_scipys_run(name, x64):
    golden = problems.load(f"bfgs_{name}")
    gtol, xrtol = golden["options"]
    loss, params = _problem(golden)
    opt = optjx.bfgs(max_iter=1, tolerance_grad=float(gtol), tolerance_step=float(xrtol))
    step, state = problems.stepper(opt, loss), opt.init(params)
    for k in range(len(golden["fun"])):
        params, state = step(params, state)
        assert np.all(np.abs(problems.flat(params) - golden["x"][k]) <= _bound(golden, k)), k
        assert abs(float(state.value) - golden["fun"][k]) <= _bound(golden, k, "fun", 1e-6), k
        assert (int(state.func_evals), int(state.grad_evals)) == (golden["nfev"][k],
                                                                   golden["njev"][k]), k  # fmt: skip
        assert int(state.n_iter) == k + 1 and int(state.iterations) == 1
    want = "TOLERANCE_CHANGE_STEP" if xrtol > 0 else "TOLERANCE_GRAD"
    assert _test(state) == want and optjx.stop_reason(state) == "CONVERGED"
    assert int(state.n_iter) == int(golden["nit"]) and int(golden["status"]) == 0
    assert int(state.func_evals) == int(golden["result_nfev"])
    assert int(state.grad_evals) == int(golden["result_njev"])
    # scipy's answer is its last iterate: the same bound (rosenbrock5_xrtol: scipy's own
    # spread there is 1e-8).
    assert np.all(np.abs(problems.flat(params) - golden["final_x"]) <= _bound(golden, -1))
    # Converged: the next update stops at once and moves nothing.
    again, after = step(params, state)
    if xrtol == 0:
        assert _test(after) == "TOLERANCE_GRAD_AT_START"
        np.testing.assert_array_equal(problems.flat(again), problems.flat(params))
        assert int(after.func_evals) == int(state.func_evals)


@pytest.mark.parametrize("name", ["rosenbrock5", "logistic"])
def test_twenty_iterations_per_update_reach_scipys_answer(name, x64):
    golden = problems.load(f"bfgs_{name}")
    loss, params = _problem(golden)
    opt = optjx.bfgs()
    step, state = problems.stepper(opt, loss), opt.init(params)
    updates = 0
    while _test(state) != "TOLERANCE_GRAD":
        params, state = step(params, state)
        updates += 1
        assert _test(state) in ("MAX_ITER", "TOLERANCE_GRAD") and updates < 10
    nit = int(golden["nit"])
    assert updates == -(-nit // 20) and int(state.n_iter) == nit
    assert int(state.func_evals) == int(golden["result_nfev"])
    np.testing.assert_allclose(problems.flat(params), golden["final_x"], rtol=1e-9, atol=1e-12)


def test_inverse_hessian_update_is_the_bfgs_formula(x64):
    """Against scipy's form, (I - rho s y^T) H (I - rho y s^T) + rho s s^T, in NumPy."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    h = a @ a.T + np.eye(6)
    for s, y in ((rng.normal(size=6), rng.normal(size=6)), (np.eye(6)[0], np.eye(6)[1])):
        ys = y @ s
        rho = 1000.0 if ys == 0 else 1 / ys  # scipy: "rhok assumed large" at y.s = 0
        left = np.eye(6) - rho * np.outer(s, y)
        want = left @ h @ left.T + rho * np.outer(s, s)
        got = inverse_hessian_update(jnp.asarray(h), jnp.asarray(s), jnp.asarray(y))
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(got, np.asarray(got).T)
        if ys != 0:  # the secant equation
            np.testing.assert_allclose(got @ y, s, rtol=1e-12, atol=1e-12)


def test_no_finite_trial_stops_with_params_and_matrix_unchanged(x64):
    golden = problems.load("bfgs_rosenbrock2")
    loss, params = _problem(golden)
    opt = optjx.bfgs(max_iter=3)
    params, state = problems.stepper(opt, loss)(params, opt.init(params))

    def cliff(p):  # NaN at every trial point (the start's value and gradient are given)
        return jnp.nan * loss(p)

    value, grads = jax.value_and_grad(loss)(params)
    updates, new = opt.update(grads, state, params, value=value, value_fn=cliff)
    assert optjx.stop_reason(new) == "NON_FINITE"
    assert all(np.all(np.asarray(u) == 0) for u in jax.tree.leaves(updates))
    np.testing.assert_array_equal(new.inverse_hessian, state.inverse_hessian)
    assert int(new.n_iter) == int(state.n_iter)


def test_a_line_search_that_finds_no_step_stops_in_place(x64):
    # A gradient that is not the loss's: -g is no descent direction of the loss, dcsrch
    # and the zoom fail (scipy's "precision loss"), the params stay where they are.
    @jax.custom_vjp
    def lying(x):
        return jnp.sum(x**2)

    lying.defvjp(lambda x: (jnp.sum(x**2), x), lambda x, ct: (-2 * ct * x,))
    loss = lambda p: lying(p["x"])  # noqa: E731
    params = {"x": jnp.asarray([1.0, -2.0])}
    opt = optjx.bfgs()
    value, grads = jax.value_and_grad(loss)(params)
    updates, state = opt.update(grads, opt.init(params), params, value=value, value_fn=loss)
    assert optjx.stop_reason(state) == "LINE_SEARCH_FAILED"
    assert int(state.iterations) == 0 and int(state.evaluations) > 1
    assert all(np.all(np.asarray(u) == 0) for u in jax.tree.leaves(updates))


@pytest.mark.parametrize("kwargs, name", [
    (dict(c1=0.95), "c1"), (dict(c2=1.0), "c2"), (dict(c1=jnp.asarray(0.95)), "c1"),
])  # fmt: skip
def test_line_search_constants_are_checked(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        optjx.bfgs(**kwargs)
