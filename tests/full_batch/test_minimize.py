"""``optjx.minimize``: closed-form minimisers, jit/vmap, implicit hypergradients, errors.

References are closed forms computed in float64 NumPy (the minimiser of a quadratic, the
ridge solution and its hypergradient) or central finite differences of the solver.
"""

import json
import pathlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optjx

GOLDEN = pathlib.Path(__file__).parents[1] / "golden"
RNG = np.random.default_rng(0)
A = RNG.normal(size=(4, 4))
HESSIAN = A @ A.T + 4 * np.eye(4)  # symmetric positive definite, condition ~ 10
TARGET = RNG.normal(size=(3, 4))  # three problems: b of 0.5 x'Hx - b'x


def quadratic(x, b):
    return 0.5 * x @ (jnp.asarray(HESSIAN) @ x) - b @ x


METHODS = {
    "lbfgs": lambda: optjx.lbfgs(
        line_search_fn="strong_wolfe", tolerance_grad=1e-10, tolerance_change=1e-14
    ),
    "conjugate_gradient": lambda: optjx.conjugate_gradient(
        tolerance_grad=1e-10, tolerance_change=1e-14
    ),
    "newton_cg": lambda: optjx.newton_cg(xtol=1e-12),
    "trust_region_newton": lambda: optjx.trust_region_newton(tolerance_grad=1e-10),
    "adam": lambda: optjx.adam(1e-2),
}


@pytest.mark.parametrize("name", list(METHODS))
def test_reaches_the_closed_form_minimiser(x64, name):
    b = TARGET[0]
    x, info = optjx.minimize(
        quadratic,
        jnp.zeros(4),
        METHODS[name](),
        args=(jnp.asarray(b),),
        max_updates=5000,
        tolerance_grad=1e-8,
    )
    np.testing.assert_allclose(x, np.linalg.solve(HESSIAN, b), rtol=0, atol=1e-7)
    assert int(info.stop_reason) == optjx.StopReason.CONVERGED
    # The gradient's largest entry, against NumPy's; where a method converges to the last
    # bits (the Newton methods) both are rounding, up to eps (|H| |x| + |b|) per entry.
    x = np.asarray(x)
    rounding = 4 * np.finfo(np.float64).eps * (np.abs(HESSIAN) @ np.abs(x) + np.abs(b)).max()
    np.testing.assert_allclose(
        info.grad_norm, np.abs(HESSIAN @ x - b).max(), rtol=1e-7, atol=rounding
    )
    np.testing.assert_allclose(info.value, quadratic(x, b))
    # scipy's Newton-CG does not count the trial of a zero step: nfev can equal nit.
    assert 1 <= int(info.updates) <= int(info.iterations) <= int(info.evaluations)


def test_adam_counts_one_evaluation_per_update(x64):
    _, info = optjx.minimize(
        quadratic, jnp.zeros(4), optjx.adam(1e-2), args=(jnp.asarray(TARGET[0]),), max_updates=7
    )
    assert int(info.stop_reason) == optjx.StopReason.MAX_ITER
    assert (int(info.updates), int(info.iterations), int(info.evaluations)) == (7, 7, 8)


@jax.custom_jvp
def lying_square(x):
    """``sum(x^2)`` whose gradient points uphill (``-2x``): no step along ``-g`` decreases it."""
    return jnp.sum(x**2)


@lying_square.defjvp
def _lying_square_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return lying_square(x), jnp.sum(-2 * x * t)


def test_a_failed_line_search_stops_the_loop(x64):
    """scipy stops on a line-search failure: the next update would fail from the same point."""
    x0 = jnp.array([1.0, -2.0])
    x, info = optjx.minimize(lambda x: lying_square(x), x0, optjx.bfgs(), max_updates=50)
    assert int(info.stop_reason) == optjx.StopReason.LINE_SEARCH_FAILED
    assert int(info.updates) == 1
    np.testing.assert_array_equal(x, x0)


def test_a_non_finite_start_stops_before_any_update():
    def fun(x, b):
        return jnp.sum(jnp.sqrt(x - b))  # NaN below b

    for method in (optjx.adam(1e-2), optjx.lbfgs()):
        x, info = optjx.minimize(fun, jnp.zeros(2), method, args=(jnp.ones(2),))
        assert int(info.stop_reason) == optjx.StopReason.NON_FINITE
        np.testing.assert_array_equal(x, np.zeros(2))


def test_jit_and_vmap_over_problems_one_trace(x64):
    run = jax.jit(
        jax.vmap(lambda b: optjx.minimize(quadratic, jnp.zeros(4), METHODS["lbfgs"](), args=(b,)))
    )
    for targets in (TARGET, 2 * TARGET):
        x, info = run(jnp.asarray(targets))
        np.testing.assert_allclose(x, np.linalg.solve(HESSIAN, targets.T).T, atol=1e-7)
        assert np.all(np.asarray(info.stop_reason) == optjx.StopReason.CONVERGED)
    assert run._cache_size() == 1


# Ridge regression: w(lam) = argmin 0.5 |X w - y|^2 + 0.5 lam |w|^2, validated on (V, z).
X, Y = RNG.normal(size=(20, 5)), RNG.normal(size=20)
V, Z = RNG.normal(size=(10, 5)), RNG.normal(size=10)


def ridge_loss(w, lam):
    return 0.5 * jnp.sum((jnp.asarray(X) @ w - Y) ** 2) + 0.5 * lam * w @ w


def validation_loss(w):
    return 0.5 * jnp.sum((jnp.asarray(V) @ w - Z) ** 2)


def ridge_hypergradient(lam):
    """d/dlam of the validation loss at w(lam): -(V'(Vw - z))' (X'X + lam I)^-1 w."""
    system = X.T @ X + lam * np.eye(5)
    w = np.linalg.solve(system, X.T @ Y)
    return -(V.T @ (V @ w - Z)) @ np.linalg.solve(system, w)


# Tight tolerances: the implicit gradient is exact at the exact minimiser only. The fixed
# unit step reaches max|g| ~ 1e-11 here; the strong-Wolfe search stalls at ~1e-7. Built
# once: minimize compiles once per method object.
TIGHT = optjx.lbfgs(learning_rate=1.0, tolerance_grad=1e-12, tolerance_change=0.0)


def tuned(lam, implicit_diff=True):
    w, _ = optjx.minimize(ridge_loss, jnp.zeros(5), TIGHT, args=(lam,), implicit_diff=implicit_diff)
    return validation_loss(w)


def test_ridge_hypergradient_matches_the_closed_form(x64):
    lams = (0.1, 1.0, 10.0)
    got = jax.jit(jax.vmap(jax.grad(tuned)))(jnp.asarray(lams))  # vmap: one problem per lam
    want = [ridge_hypergradient(lam) for lam in lams]
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)


def test_unrolled_forward_mode_and_implicit_agree(x64):
    lam = jnp.asarray(1.0)
    unrolled = jax.jit(jax.jacfwd(lambda t: tuned(t, implicit_diff=False)))(lam)
    implicit = jax.jit(jax.grad(tuned))(lam)
    np.testing.assert_allclose(unrolled, implicit, rtol=1e-8)
    np.testing.assert_allclose(unrolled, ridge_hypergradient(1.0), rtol=1e-8)


def test_reverse_mode_without_implicit_diff_is_an_error(x64):
    with pytest.raises(ValueError, match="[Rr]everse-mode"):
        jax.grad(lambda t: tuned(t, implicit_diff=False))(jnp.asarray(1.0))


def logistic_loss(w, data):
    features, labels, lam = data
    margins = labels * (features @ w)
    return jnp.mean(jnp.logaddexp(0.0, -margins)) + 0.5 * lam * w @ w


def test_logistic_hypergradient_matches_central_differences(x64):
    features = jnp.asarray(RNG.normal(size=(30, 3)))
    labels = jnp.asarray(np.sign(RNG.normal(size=30)))

    # Central differences need the minimiser to ~1e-12 (an error e in w costs e / h).
    def objective(lam, shift):
        w, _ = optjx.minimize(
            logistic_loss,
            jnp.zeros(3),
            TIGHT,
            args=((features + shift, labels, lam),),
            implicit_diff=True,
        )
        return jnp.sum(w**2) + w[0]

    lam, shift = jnp.asarray(0.3), jnp.asarray(0.1)
    got = jax.jit(jax.grad(objective, argnums=(0, 1)))(lam, shift)
    objective = jax.jit(objective)
    h = 1e-4
    want = (
        (objective(lam + h, shift) - objective(lam - h, shift)) / (2 * h),
        (objective(lam, shift + h) - objective(lam, shift - h)) / (2 * h),
    )
    np.testing.assert_allclose(got, want, rtol=1e-6)


class ToyLeastSquaresState(NamedTuple):
    value: jax.Array
    grad: jax.Array
    stop_reason: jax.Array
    iterations: jax.Array
    evaluations: jax.Array


def toy_gauss_newton():
    """A least-squares method with the calling convention minimize dispatches on
    (``update(grads, state, params, *, residual_fn)``): one dense Gauss-Newton step."""

    def init(x):
        return ToyLeastSquaresState(jnp.inf, jnp.zeros_like(x), 0, 0, 0)

    def update(grads, state, x, *, residual_fn):
        del grads, state
        step = -jnp.linalg.lstsq(jax.jacfwd(residual_fn)(x), residual_fn(x))[0]
        r, jacobian = residual_fn(x + step), jax.jacfwd(residual_fn)(x + step)
        grad = jacobian.T @ r
        converged = jnp.max(jnp.abs(grad)) <= 1e-9
        reason = jnp.where(converged, optjx.StopReason.CONVERGED, optjx.StopReason.MAX_ITER)
        return step, ToyLeastSquaresState(0.5 * r @ r, grad, reason, 1, 2)

    return optjx.GradientTransformationExtraArgs(init, update)


def test_least_squares_methods_get_the_residuals(x64):
    design, observed = RNG.normal(size=(8, 3)), RNG.normal(size=8)

    def residuals(x, y):
        return jnp.asarray(design) @ x - y

    x, info = optjx.minimize(residuals, jnp.zeros(3), toy_gauss_newton(), args=(observed,))
    want = np.linalg.lstsq(design, observed, rcond=None)[0]
    np.testing.assert_allclose(x, want, atol=1e-12)
    np.testing.assert_allclose(info.value, 0.5 * np.sum((design @ want - observed) ** 2))
    assert int(info.stop_reason) == optjx.StopReason.CONVERGED
    assert (int(info.updates), int(info.evaluations)) == (1, 2)


def test_levenberg_marquardt_through_minimize_is_one_minpack_run(x64):
    """optjx's own LM (its state has no value nor gradient): the params and counts of
    scipy 1.17.1's MINPACK run on NIST's Misra1a from start 1, the value its cost, the
    gradient norm max |J^T r| with J written out by hand."""
    golden = json.loads((GOLDEN / "least_squares_scipy.json").read_text())["nist"]["Misra1a/start1"]
    data = json.loads((GOLDEN / "nist_strd.json").read_text())["problems"]["Misra1a"]
    x, y = np.asarray(data["x"]), np.asarray(data["y"])

    def residuals(b, x, y):
        return y - b[0] * (1 - jnp.exp(-b[1] * x))

    tx = optjx.levenberg_marquardt(max_iter=100)  # one update: one lmder run
    b, info = optjx.minimize(residuals, jnp.asarray(data["start1"]), tx, args=(x, y))
    np.testing.assert_allclose(b, golden["x"], rtol=1e-8)
    assert int(info.stop_reason) == optjx.StopReason.CONVERGED
    assert (int(info.updates), int(info.iterations), int(info.evaluations)) == (
        1, golden["njev"], golden["nfev"],
    )  # fmt: skip
    np.testing.assert_allclose(info.value, golden["cost"], rtol=1e-10)
    b = np.asarray(b)
    decay = np.exp(-b[1] * x)
    jacobian = -np.stack([1 - decay, b[0] * x * decay], axis=1)
    gradient = jacobian.T @ (y - b[0] * (1 - decay))
    # At the solution J^T r is rounding: its terms reach 1e4 and r is known to ~3e-14.
    np.testing.assert_allclose(info.grad_norm, np.max(np.abs(gradient)), rtol=0, atol=1e-7)


def test_bad_input_is_a_clear_error():
    b = jnp.ones(4, jnp.float32)
    with pytest.raises(ValueError, match="scalar loss"):
        optjx.minimize(lambda x, b: x - b, jnp.zeros(4), optjx.lbfgs(), args=(b,))
    with pytest.raises(ValueError, match="args of structure"):
        optjx.minimize(quadratic, jnp.zeros(4), optjx.lbfgs(), args=(b, b))
    with pytest.raises(TypeError, match="args must be a tuple"):
        optjx.minimize(quadratic, jnp.zeros(4), optjx.lbfgs(), args=b)
    with pytest.raises(TypeError, match="max_updates"):
        optjx.minimize(quadratic, jnp.zeros(4), optjx.lbfgs(), args=(b,), max_updates=2.0)
    with pytest.raises(ValueError, match="max_updates"):
        optjx.minimize(quadratic, jnp.zeros(4), optjx.lbfgs(), args=(b,), max_updates=-1)
    with pytest.raises(TypeError, match="optimizer instance"):
        optjx.minimize(quadratic, jnp.zeros(4), optjx.lbfgs, args=(b,))
