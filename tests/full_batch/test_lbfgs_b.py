"""``optjx.lbfgs_b`` against ``scipy.optimize.minimize(method="L-BFGS-B")`` (scipy 1.17.1
goldens from ``tests/golden/generate_scipy_lbfgsb.py``), and its box to the last bit.

Replayed one iteration per update (``max_iter=1``), every iterate, value and evaluation
count of the scipy run is compared; see ``RTOL`` for how close, and why.
"""

from __future__ import annotations

import _quasi_newton_problems as problems
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optjx

RUNS = ["rosenbrock2_box", "rosenbrock5_box", "rosenbrock5_free", "rosenbrock10_lower",
        "nnls", "rosenbrock3_infeasible", "breakpoints", "logistic"]  # fmt: skip


def _loss(golden):
    if "data/x" in golden:
        return problems.logistic_vector(golden)
    if "data/a" in golden and "data/b" in golden:
        return problems.least_squares(golden)
    if "data/c" in golden:
        return problems.weighted_quadratic(golden)
    return problems.rosenbrock


def _bounds(golden):
    lo, hi = golden["lower"], golden["upper"]
    lower = None if np.all(np.isneginf(lo)) else {"x": jnp.asarray(lo)}
    upper = None if np.all(np.isposinf(hi)) else {"x": jnp.asarray(hi)}
    return lower, upper


def _replay(golden, max_iter=1, updates=None):
    lower, upper = _bounds(golden)
    opt = optjx.lbfgs_b(lower=lower, upper=upper, max_iter=max_iter)
    loss = _loss(golden)
    step = jax.jit(lambda p, s: opt.update(None, s, p, value_fn=loss))
    params = {"x": jnp.asarray(golden["x0"])}
    state = opt.init(params)
    out = []
    for _ in range(updates or len(golden["fun"]) + 1):
        upd, state = step(params, state)
        params = optax.apply_updates(params, upd)
        out.append((np.asarray(params["x"]), float(state.value), int(state.func_evals),
                    int(state.stop_test), int(state.stop_reason)))  # fmt: skip
        if int(state.stop_reason) != int(optjx.StopReason.MAX_ITER):
            break
    return out, state


# Iterates agree with scipy to rtol 1e-9 (most to 1e-12): the arithmetic differs in the
# order of sums (BLAS ddot against XLA's reductions, a dense solve with M^{-1} against
# L-BFGS-B's Cholesky factors), and Rosenbrock's valley amplifies a last-bit difference;
# without bounds (no Cauchy point, 47 iterations in the valley) up to 3e-9 late in the
# run, hence 1e-8 there, and its values (near 0 at the end: 8e-5) to 1e-10 absolute
# (1.3e-7 relative). Counts are exact.
RTOL = {"rosenbrock5_free": 1e-8}
FUN_ATOL = {"rosenbrock5_free": 1e-10}
SCIPY_TEST = {
    "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL": "TOLERANCE_GRAD",
    "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH": "TOLERANCE_CHANGE_RELATIVE",
}


def _test_name(state) -> str:
    return optjx.full_batch._common.StopTest(int(state.stop_test)).name


@pytest.mark.parametrize("name", RUNS)
def test_iterates_values_and_counts_are_scipys(name, x64):
    golden = problems.load(f"lbfgsb_{name}")
    out, state = _replay(golden)
    rtol = RTOL.get(name, 1e-9)
    assert len(out) == int(golden["nit"]) == len(golden["fun"])
    for k, (x, f, nfev, _, _) in enumerate(out):
        np.testing.assert_allclose(x, golden["x"][k], rtol=rtol, atol=1e-14, err_msg=str(k))
        atol = FUN_ATOL.get(name, 1e-14)
        np.testing.assert_allclose(f, golden["fun"][k], rtol=rtol, atol=atol, err_msg=str(k))
        assert nfev == int(golden["nfev"][k]), k
    assert int(state.n_iter) == int(golden["nit"])
    assert int(state.func_evals) == int(golden["result_nfev"])
    assert state.stop_reason == optjx.StopReason.CONVERGED
    assert _test_name(state) == SCIPY_TEST[str(golden["message"])]
    x = out[-1][0]
    np.testing.assert_allclose(x, golden["final_x"], rtol=0, atol=1e-8)
    lo, hi = golden["lower"], golden["upper"]
    active = lambda v: np.stack([v == lo, v == hi])  # noqa: E731
    np.testing.assert_array_equal(active(x), active(golden["final_x"]))
    assert np.all(x >= lo) and np.all(x <= hi)


@pytest.mark.parametrize("name", ["rosenbrock5_box", "rosenbrock3_infeasible", "nnls"])
def test_twenty_iterations_per_update_reach_scipys_answer(name, x64):
    golden = problems.load(f"lbfgsb_{name}")
    out, state = _replay(golden, max_iter=20, updates=10)
    assert state.stop_reason == optjx.StopReason.CONVERGED
    assert len(out) == -(-int(golden["nit"]) // 20)
    assert int(state.n_iter) == int(golden["nit"])
    assert int(state.func_evals) == int(golden["result_nfev"])
    np.testing.assert_allclose(out[-1][0], golden["final_x"], rtol=0, atol=1e-8)


def test_every_evaluated_point_and_every_update_stays_in_the_box(x64):
    golden = problems.load("lbfgsb_rosenbrock3_infeasible")
    lo, hi = golden["lower"], golden["upper"]
    seen: list = []

    def loss(p):  # the test in the trace: the callback's operands are not float64
        inside = jnp.all((p["x"] >= jnp.asarray(lo)) & (p["x"] <= jnp.asarray(hi)))
        jax.debug.callback(lambda ok: seen.append(bool(ok)), inside)
        return problems.rosenbrock(p)

    opt = optjx.lbfgs_b(lower={"x": jnp.asarray(lo)}, upper={"x": jnp.asarray(hi)})
    params = {"x": jnp.asarray(golden["x0"])}
    state = opt.init(params)
    for _ in range(5):
        updates, state = opt.update(None, state, params, value_fn=loss)
        params = optax.apply_updates(params, updates)
        assert np.all(params["x"] >= lo) and np.all(params["x"] <= hi)
    jax.effects_barrier()
    # The first call is the user's start (infeasible, before the projection).
    assert not seen[0] and len(seen) > 20 and all(seen[1:])


def test_updates_are_nudged_so_that_apply_updates_stays_inside(x64):
    from optjx.full_batch._lbfgsb_bounds import inside_updates

    rng = np.random.default_rng(0)
    p = jnp.asarray(rng.uniform(-1, 1, 10_000))
    hi = jnp.asarray(rng.uniform(1, 3, 10_000))
    naive = p + (hi - p)
    assert np.any(naive > hi)  # rounding leaves the box for some
    u = inside_updates(p, hi, -jnp.inf * jnp.ones_like(hi), hi)
    assert np.all(p + u <= hi) and np.all(hi - (p + u) <= 4 * np.spacing(np.asarray(hi)))
    lo = -hi
    u = inside_updates(p, lo, lo, jnp.inf * jnp.ones_like(lo))
    assert np.all(p + u >= lo)


def test_a_loss_not_finite_outside_a_region_converges(x64):
    # -log1p(-x) pulls nothing; the quadratic pulls x beyond 1 (NaN there); the lower
    # bound is inactive. Closed form: 1 / (1 - x) = k (a - x), as in test_non_finite_regions.
    a, k = 2.0, 1.0
    loss = lambda p: jnp.sum(-jnp.log1p(-p["x"]) + 0.5 * k * (p["x"] - a) ** 2)  # noqa: E731
    u = (-(a - 1) * k + np.sqrt(k**2 * (a - 1) ** 2 + 4 * k)) / (2 * k)
    opt = optjx.lbfgs_b(lower=-5.0, tolerance_grad=1e-8)
    params, state = {"x": jnp.zeros(3)}, opt.init({"x": jnp.zeros(3)})
    for _ in range(5):
        updates, state = opt.update(None, state, params, value_fn=loss)
        params = optax.apply_updates(params, updates)
        if state.stop_reason == optjx.StopReason.CONVERGED:
            break
    assert state.stop_reason == optjx.StopReason.CONVERGED, optjx.stop_reason(state)
    np.testing.assert_allclose(params["x"], 1 - u, atol=1e-6, rtol=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(lower=1.0, upper=0.0), "lower > upper"),
    (dict(lower={"a": jnp.asarray([0.0, 2.0])}, upper=1.0), "lower > upper at \\['a'\\]"),
    (dict(lower={"a": None, "b": 3.0}, upper={"a": 1.0, "b": 2.0}), "lower > upper at \\['b'\\]"),
    (dict(lower=float("nan")), "lower contains NaN"),
    (dict(upper={"x": "a"}), "upper\\['x'\\]"),
    (dict(history_size=0), "history_size"),
    (dict(max_line_search=0), "max_line_search"),
    (dict(tolerance_grad=-1.0), "tolerance_grad"),
    (dict(tolerance_change=True), "tolerance_change"),
])  # fmt: skip
def test_bad_arguments_at_construction_name_them(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        optjx.lbfgs_b(**kwargs)


@pytest.mark.parametrize("lower, upper, match", [
    ({"x": jnp.zeros(3), "b": None}, None, "lower\\['x'\\] has shape \\(3,\\)"),
    ({"y": 0.0}, None, "lower has lower\\['y'\\]"),
    ({"x": 0.0, "z": None}, None, "z"),
    (None, {"w": {"a": 1.0}}, "upper"),
])  # fmt: skip
def test_bounds_that_do_not_fit_the_params_fail_at_init_naming_the_key(lower, upper, match):
    opt = optjx.lbfgs_b(lower=lower, upper=upper)
    with pytest.raises(ValueError, match=match):
        opt.init({"x": jnp.zeros(2), "b": jnp.zeros(())} if upper is None else {"x": jnp.zeros(2)})


def test_scalar_and_none_bounds_and_a_free_leaf(x64):
    loss = lambda p: jnp.sum((p["x"] - 3.0) ** 2) + (p["b"] + 2.0) ** 2  # noqa: E731
    opt = optjx.lbfgs_b(
        lower={"x": 0.0, "b": None}, upper={"x": jnp.asarray([1.0, 5.0]), "b": None}
    )
    params = {"x": jnp.asarray([0.5, 0.5]), "b": jnp.asarray(0.0)}
    updates, state = opt.update(None, opt.init(params), params, value_fn=loss)
    params = optax.apply_updates(params, updates)
    assert state.stop_reason == optjx.StopReason.CONVERGED
    np.testing.assert_allclose(params["x"], [1.0, 3.0], atol=1e-8)
    assert float(params["x"][0]) == 1.0  # on its bound exactly
    np.testing.assert_allclose(params["b"], -2.0, atol=1e-8)


def test_float32_params_keep_a_float64_box_rounded_inward():
    # float32(0.8) > 0.8: the upper bound becomes the float32 just below; float32(0.1) is
    # above 0.1, inside already: kept. The answer lies on both (to the nudge).
    loss = lambda p: jnp.sum((p["x"] - jnp.asarray([2.0, -2.0])) ** 2)  # noqa: E731
    opt = optjx.lbfgs_b(lower={"x": np.asarray([-1.0, 0.1])}, upper={"x": np.asarray([0.8, 1.0])})
    params = {"x": jnp.zeros(2, jnp.float32) + 0.5}
    updates, state = opt.update(None, opt.init(params), params, value_fn=loss)
    x = np.asarray(optax.apply_updates(params, updates)["x"], np.float64)
    assert x[0] <= 0.8 and x[1] >= 0.1
    assert x[0] == np.float64(np.nextafter(np.float32(0.8), np.float32(0)))
    # 0.5 + u reaches only the multiples of u's ulp near 0.1: within ulp(0.5) above it.
    low = np.float64(np.float32(0.1))
    assert low <= x[1] <= low + np.spacing(np.float32(0.5))


@pytest.mark.parametrize("tree", [{}, (), {"a": {}, "b": []}], ids=str)
def test_empty_trees(tree):
    opt = optjx.lbfgs_b(lower=0.0)
    state = opt.init(tree)
    updates, state = jax.jit(lambda s: opt.update(tree, s, tree, value=0.0,
                                                  value_fn=lambda p: 0.0))(state)  # fmt: skip
    assert updates == tree and _test_name(state) == "TOLERANCE_GRAD_AT_START"


def test_vmap_over_problems_solves_each():
    opt = optjx.lbfgs_b(lower=0.0)

    def solve(a):
        p = {"x": jnp.zeros(2)}
        u, s = opt.update(None, opt.init(p), p, value_fn=lambda q: jnp.sum((q["x"] - a) ** 2))
        return optax.apply_updates(p, u)["x"], s.stop_reason

    x, reason = jax.vmap(solve)(jnp.asarray([[1.0, -1.0], [2.0, 3.0]]))
    np.testing.assert_allclose(x, [[1.0, 0.0], [2.0, 3.0]], atol=1e-6)
    assert np.all(reason == optjx.StopReason.CONVERGED)
