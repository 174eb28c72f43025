"""``optjx.newton_cg`` and ``optjx.trust_region_newton`` against scipy 1.17.1's
``minimize(method="Newton-CG")`` and ``minimize(method="trust-ncg")`` (goldens from
``tests/golden/generate_scipy_newton.py``), their pure pieces against their formulas, and
the saddle point of Goodfellow et al. (2016, section 8.6).

Every iterate, function value and count (``nfev``, ``njev``, ``nhev``) of each scipy run is
compared, one iteration per update. Iterates and values agree to rtol 1e-9, relative to
at least 1 (an absolute 1e-9 near zero: the saddle run's first coordinate ends at 1e-19
in scipy, 0 here, both rounding noise), except where scipy's own rounding moves them
more: Newton-CG crawls along the 2-dimensional Rosenbrock valley for 83 iterations,
which amplifies a last-bit difference by about 1e8 (scipy itself, started one unit in
the last place away, ends up to 1.2e-8 from its own run: ``x_spread`` in the goldens;
optjx is at most 5e-8 away there, its sums taken in another order than NumPy's). The
bound is then ten times scipy's spread on top of rtol 1e-9. Every count is exact.
"""

from __future__ import annotations

import functools
import pathlib

import _quasi_newton_problems as problems
import jax.numpy as jnp
import numpy as np
import pytest

import optjx
from optjx.full_batch import _steihaug
from optjx.full_batch._common import StopTest
from optjx.full_batch._truncated_cg import newton_direction

GOLDEN = pathlib.Path(__file__).resolve().parents[1] / "golden" / "newton"
PROBLEMS = ["rosenbrock2", "rosenbrock5", "logistic", "saddle"]
RUNS = [("newton_cg", p) for p in [*PROBLEMS, "rosenbrock5_xtol"]]
RUNS += [("trust_ncg", p) for p in [*PROBLEMS, "rosenbrock5_options"]]


def load(name: str) -> dict:
    with np.load(GOLDEN / f"{name}.npz") as data:
        return {k: data[k] for k in data.files}


# ------------------------------------------------------------------ the problems in JAX


def rosenbrock(p):
    x = p["x"]
    return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def logistic(golden):
    x, y = jnp.asarray(golden["data/x"]), jnp.asarray(golden["data/y"])

    def loss(p):  # the flat vector [b, w] is the params tree's order
        z = x @ p["w"] + p["b"]
        return jnp.mean(jnp.logaddexp(z, 0.0) - y * z) + 0.5 * 1e-2 * jnp.sum(p["w"] ** 2)

    return loss


def saddle(p):
    x, y = p["x"][0], p["x"][1]
    return x**2 - y**2 + y**4 / 4


def _problem(name, golden):
    x0 = golden["x0"]
    if name == "logistic":
        return logistic(golden), {"b": jnp.asarray(x0[0]), "w": jnp.asarray(x0[1:])}
    return (saddle if name == "saddle" else rosenbrock), {"x": jnp.asarray(x0)}


def _optimizer(method, golden, max_iter):
    options = [float(v) for v in golden["options"]]
    if method == "newton_cg":
        return optjx.newton_cg(max_iter=max_iter, xtol=options[0])
    radius, max_radius, eta, gtol = options
    return optjx.trust_region_newton(max_iter=max_iter, initial_trust_radius=radius,
                                     max_trust_radius=max_radius, eta=eta,
                                     tolerance_grad=gtol)  # fmt: skip


def _close(got, want, spread=0.0):
    """rtol 1e-9 (relative to at least 1), plus ten times scipy's own rounding spread."""
    bound = 1e-9 * np.maximum(np.abs(want), 1.0) + 10 * spread
    return np.all(np.abs(np.asarray(got) - want) <= bound)


def _counts(state):
    return int(state.func_evals), int(state.grad_evals), int(state.hessian_products)


# scipy's final status -> the stop reason of the last update.
FINAL = {("newton_cg", 0): "TOLERANCE_CHANGE_STEP", ("newton_cg", 2): "LINE_SEARCH_FAILED",
         ("trust_ncg", 0): "TOLERANCE_GRAD"}  # fmt: skip


@functools.cache
def _run(method, name, max_iter):
    """``(step, params, state)`` at scipy's start; the jitted step compiled once per run."""
    golden = load(f"{method}_{name}")
    loss, params = _problem(name.split("_")[0], golden)
    opt = _optimizer(method, golden, max_iter)
    return problems.stepper(opt, loss), params, opt.init(params)


@pytest.mark.parametrize("method, name", RUNS, ids=[f"{m}-{p}" for m, p in RUNS])
def test_one_iteration_per_update_is_scipys_run(method, name, x64):
    golden = load(f"{method}_{name}")
    step, params, state = _run(method, name, 1)
    # trust-ncg's nhev counts one call of scipy's Hessian wrapper at x0 besides hessp's.
    first_hessian = 1 if method == "trust_ncg" else 0
    for k in range(len(golden["fun"])):
        params, state = step(params, state)
        x = problems.flat(params)
        assert _close(x, golden["x"][k], golden["x_spread"][k]), (k, x, golden["x"][k])
        assert _close(state.value, golden["fun"][k], golden["fun_spread"][k]), k
        # The gradient count once scipy has the gradient at the iterate (it may evaluate
        # it after its callback), as the state counts it.
        want = (golden["nfev"][k], golden["njev_settled"][k], golden["nhessp"][k] + first_hessian)
        assert _counts(state) == want, k
        assert int(state.n_iter) == k + 1 and int(state.iterations) == 1
    status = int(golden["status"])
    if status != 0:
        # scipy's last search fails in the rounding noise of f (its trials differ from
        # f_k by 0 to 4 units in the last place): which trials it makes depends on the
        # last bits of f, which XLA sums in another order than NumPy. The search fails
        # here too and nothing moves; its counts are not compared.
        before = problems.flat(params)
        params, state = step(params, state)
        assert StopTest(int(state.stop_test)).name == FINAL[method, status]
        assert int(state.iterations) == 0 and int(state.n_iter) == int(golden["nit"])
        np.testing.assert_array_equal(problems.flat(params), before)
        return
    assert StopTest(int(state.stop_test)).name == FINAL[method, status]
    assert int(state.n_iter) == int(golden["nit"])
    assert _counts(state) == (golden["result_nfev"], golden["result_njev"],
                              golden["result_nhev"])  # fmt: skip
    assert _close(problems.flat(params), golden["x_final"], golden["x_spread"][-1])
    assert _close(state.value, golden["fun_final"], golden["fun_spread"][-1])


@pytest.mark.parametrize("method", ["newton_cg", "trust_ncg"])
def test_updates_of_many_iterations_are_the_same_run(method, x64):
    # max_iter=20: the run spans several updates; the state carries what scipy's loop
    # carries (f_{k-1}, the radius, the counters), so the result is the same run.
    golden = load(f"{method}_rosenbrock5")
    step, params, state = _run(method, "rosenbrock5", 20)
    updates = 0
    while updates == 0 or StopTest(int(state.stop_test)).name == "MAX_ITER":
        params, state = step(params, state)
        updates += 1
    assert updates == -(-int(golden["nit"]) // 20)
    assert _counts(state) == (golden["result_nfev"], golden["result_njev"],
                              golden["result_nhev"])  # fmt: skip
    assert _close(problems.flat(params), golden["x_final"])


# ------------------------------------------------------------------ the saddle point


def test_both_methods_leave_the_saddle_where_newton_is_drawn_to_it(x64):
    # f(x, y) = x^2 - y^2 + y^4/4: grad = (2x, y^3 - 2y), Hessian diag(2, 3y^2 - 2).
    # Stationary points: x = 0 and y (y^2 - 2) = 0; the minimisers are those where the
    # Hessian is positive definite (3y^2 - 2 > 0).
    roots = np.roots([1.0, 0.0, -2.0, 0.0]).real
    minimisers = [np.array([0.0, y]) for y in roots if 3 * y**2 - 2 > 0]
    assert len(minimisers) == 2
    start = np.array([0.5, 1e-3])
    # Newton's method: one exact step x - H^{-1} g lands on the saddle (0, 0).
    gradient = np.array([2 * start[0], start[1] ** 3 - 2 * start[1]])
    newton = start - gradient / np.array([2.0, 3 * start[1] ** 2 - 2])
    assert np.max(np.abs(newton)) < 1e-8
    # Both methods with their defaults (scipy's), run to convergence.
    for method in ("newton_cg", "trust_ncg"):
        step, params, state = _run(method, "saddle", 1)
        np.testing.assert_array_equal(problems.flat(params), start)
        for _ in range(20):
            params, state = step(params, state)
            if StopTest(int(state.stop_test)).name != "MAX_ITER":
                break
        x = problems.flat(params)
        # Newton-CG converges on its step size, trust-ncg on |g| < 1e-4 (|x - x*| ~ |g| / 2).
        assert min(np.max(np.abs(x - m)) for m in minimisers) < 1e-5, (method, x)
        assert float(saddle(params)) < float(saddle({"x": jnp.zeros(2)})) - 0.99  # -1 there


# ------------------------------------------------------------------ the pure pieces


def test_boundary_steps_are_the_roots_sorted(x64):
    z, d = (jnp.array([0.3, -0.2]),), (jnp.array([1.0, 2.0]),)
    low, high = _steihaug.boundary_steps(z, d, 1.5, jnp.float64)
    for t in (low, high):
        np.testing.assert_allclose(np.linalg.norm(z[0] + t * d[0]), 1.5, rtol=1e-14)
    assert low < 0 < high


@pytest.mark.parametrize(
    "ratio, boundary, want",
    [(0.1, True, 0.25), (0.25, False, 1.0), (0.8, False, 1.0), (0.8, True, 2.0),
     (0.76, True, 2.0), (0.75, True, 1.0), (np.nan, True, 1.0)],
)  # fmt: skip
def test_radius_rule(ratio, boundary, want):
    got = _steihaug.radius_update(jnp.asarray(1.0), jnp.asarray(ratio), jnp.asarray(boundary), 1.5)
    assert float(got) == min(want, 1.5)


def _products(matrix):
    return lambda v: (jnp.asarray(matrix) @ v[0],)


def test_steihaug_interior_step_solves_the_newton_equation(x64):
    matrix, g = np.diag([1.0, 100.0]), np.array([1.0, 1.0])
    # The first CG step leaves |r| = 1.39 > min(1/2, sqrt|g|) |g| = 0.71: CG takes its
    # second step, exact in two dimensions.
    result = _steihaug.steihaug(_products(matrix), 0.0, (jnp.asarray(g),), np.linalg.norm(g),
                                10.0, jnp.float64, 40)  # fmt: skip
    np.testing.assert_allclose(result.step[0], np.linalg.solve(matrix, -g), rtol=1e-12)
    np.testing.assert_allclose(result.hessian_step[0], -g, rtol=1e-12)
    assert not result.hits_boundary and int(result.products) == 2


def test_steihaug_negative_curvature_goes_to_the_lower_boundary_point(x64):
    matrix, g = np.diag([-1.0, -2.0]), np.array([0.5, -0.25])
    result = _steihaug.steihaug(_products(matrix), 0.0, (jnp.asarray(g),), np.linalg.norm(g),
                                2.0, jnp.float64, 40)  # fmt: skip
    p = np.asarray(result.step[0])
    np.testing.assert_allclose(np.linalg.norm(p), 2.0, rtol=1e-14)
    np.testing.assert_allclose(p, -2.0 * g / np.linalg.norm(g), rtol=1e-14)  # along -g
    assert bool(result.negative_curvature) and bool(result.hits_boundary)


def test_truncated_cg_first_step_negative_curvature_is_scaled_steepest_descent(x64):
    matrix, g = np.diag([-1.0, 3.0]), np.array([2.0, 0.5])
    result = newton_direction(_products(matrix), (jnp.asarray(g),), jnp.float64, 40)
    scale = (g @ g) / abs(g @ matrix @ g)
    np.testing.assert_allclose(result.direction[0], -scale * g, rtol=1e-14)
    assert bool(result.converged) and bool(result.negative_curvature)


def test_truncated_cg_spd_direction_is_newtons(x64):
    matrix = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 2.0]])
    g = np.array([10.0, -20.0, 5.0])  # |g|_1 > 1/4: the forcing factor is 1/2, CG runs
    result = newton_direction(_products(matrix), (jnp.asarray(g),), jnp.float64, 60)
    residual = matrix @ np.asarray(result.direction[0]) + g
    assert np.sum(np.abs(residual)) <= 0.5 * np.sum(np.abs(g))
    assert bool(result.converged) and int(result.products) <= 3
