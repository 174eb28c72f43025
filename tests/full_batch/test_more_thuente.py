"""The Moré-Thuente search against scipy 1.17.1 (goldens from
``tests/golden/generate_scipy_quasi_newton.py``) and against the Wolfe conditions.

``dcsrch`` alone: the state machine of ``optjx/full_batch/_dcsrch.py`` is driven here by a
Python loop that evaluates the NumPy functions exactly as scipy's ``DCSRCH.__call__``
does, and must ask for scipy's trial steps, in scipy's order, and end with scipy's task.
The jitted driver :func:`optjx.more_thuente` (with scipy's fallback) must give scipy's
step and counts, and a step that satisfies the strong Wolfe conditions, checked here
from their definitions.
"""

from __future__ import annotations

import _quasi_newton_problems as problems
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optjx
from optjx.full_batch import _dcsrch as dcsrch
from optjx.full_batch.more_thuente import first_step

DCSRCH = problems.load("dcsrch_cases")
WOLFE12 = problems.load("wolfe12_cases")
_start = jax.jit(dcsrch.start, static_argnums=3)
_iterate = jax.jit(dcsrch.iterate, static_argnums=4)


def _constants(table, i):
    return dcsrch.Constants(*(float(table[k][i]) for k in ("ftol", "gtol", "xtol", "stpmin",
                                                           "stpmax")))  # fmt: skip


def _run_dcsrch(i):
    """scipy's ``DCSRCH.__call__`` loop around optjx's ``start``/``iterate``."""
    fn, (p, q) = problems.FUNCTIONS[int(DCSRCH["function"][i])], DCSRCH["params"][i]
    k, maxiter = _constants(DCSRCH, i), int(DCSRCH["maxiter"][i])
    f, g = fn(0.0, p, q)
    state, task = _start(float(DCSRCH["stp0"][i]), f, g, k)
    stp, trials = float(DCSRCH["stp0"][i]), []
    if task != dcsrch.Task.FG:
        return trials, dcsrch.Task(int(task))
    for n in range(maxiter):
        trials.append(stp)
        f, g = fn(stp, p, q)
        if n + 1 == maxiter:  # scipy's for-else: no call after the last evaluation
            return trials, dcsrch.Task.WARNING_MAX_ITER
        state, stp, task = _iterate(state, *map(jnp.float64, (stp, f, g)), k)
        stp, task = float(stp), dcsrch.Task(int(task))
        if task == dcsrch.Task.FG and not np.isfinite(stp):
            return trials, dcsrch.Task.WARNING_NOT_FINITE
        if task != dcsrch.Task.FG:
            return trials, task
    raise AssertionError("unreachable")


@pytest.mark.parametrize("i", range(len(DCSRCH["task"])))
def test_dcsrch_asks_for_scipys_trial_steps(i, x64):
    trials, task = _run_dcsrch(i)
    want = DCSRCH["trials"][i][: int(DCSRCH["n_trials"][i])]
    assert len(trials) == len(want), (trials, want)
    np.testing.assert_allclose(trials, want, rtol=1e-13, atol=0)
    assert dcsrch.SCIPY_TASK[task] == str(DCSRCH["task"][i])
    if task == dcsrch.Task.CONVERGENCE:
        assert trials[-1] == pytest.approx(float(DCSRCH["stp"][i]), rel=1e-13)


def test_the_goldens_cover_every_exit():
    assert {str(t) for t in DCSRCH["task"]} >= {
        "CONVERGENCE", "WARNING: STP = STPMAX", "ERROR: STP .GT. STPMAX",
        "ERROR: STP .LT. STPMIN", "WARNING: XTOL TEST SATISFIED",
        "WARNING: dcsrch did not converge within max iterations",
    }  # fmt: skip
    assert set(DCSRCH["function"][:24]) == {0, 1, 2, 3}  # Moré & Thuente's functions 1-6


def _search(i, record=None):
    fn = problems.jax_phi(int(WOLFE12["function"][i]), *WOLFE12["params"][i])

    def value_and_grad(x):
        if record is not None:
            record.append(float(x[0]))
        return jax.value_and_grad(fn)(x)

    x, d = jnp.zeros(1), jnp.ones(1)
    f0, g0 = jax.value_and_grad(fn)(x)
    # scipy's first step from the previous value: the generator chose it to give stp0.
    t0 = first_step(f0, jnp.float64(WOLFE12["old_old"][i]), g0[0])
    k = _constants(WOLFE12, i)
    return optjx.more_thuente(value_and_grad, x, d, t0, f0, g0, g0[0], c1=k.ftol, c2=k.gtol,
                              xtol=k.xtol, min_step=k.stpmin, max_step=k.stpmax)  # fmt: skip


def _satisfies_wolfe(i, t):
    fn, (p, q) = problems.FUNCTIONS[int(WOLFE12["function"][i])], WOLFE12["params"][i]
    (f0, g0), (f, g) = fn(0.0, p, q), fn(t, p, q)
    c1, c2 = float(WOLFE12["ftol"][i]), float(WOLFE12["gtol"][i])
    return f <= f0 + c1 * t * g0 and abs(g) <= c2 * abs(g0)


@pytest.mark.parametrize("i", range(len(WOLFE12["fc"])))
def test_driver_and_fallback_equal_scipys_line_search_wolfe12(i, x64):
    trials: list[float] = []
    with jax.disable_jit():  # the loop runs in Python: every evaluation is recorded
        res = _search(i, trials)
    want = WOLFE12["trials"][i][: int(WOLFE12["n_trials"][i])]
    first = min(float(WOLFE12["stp0"][i]), 1.0, float(WOLFE12["stpmax"][i]))
    assert trials[0] == pytest.approx(first, rel=1e-12)
    np.testing.assert_allclose(trials, want, rtol=1e-12)
    assert int(res.evaluations) == int(WOLFE12["fc"][i])
    assert bool(res.fallback) == (WOLFE12["fc"][i] != WOLFE12["gc"][i])
    alpha = float(WOLFE12["alpha"][i])
    assert bool(res.success) == np.isfinite(alpha)
    if np.isfinite(alpha):
        assert float(res.step_size) == pytest.approx(alpha, rel=1e-12)
        assert float(res.value) == pytest.approx(float(WOLFE12["fval"][i]), rel=1e-12, abs=1e-15)
        # scipy's BFGS evaluates the gradient once more at a step returned untested.
        extra = 0 if _satisfies_wolfe(i, alpha) else 1
        assert int(res.gradient_evaluations) == int(WOLFE12["gc"][i]) + extra
    else:
        assert float(res.step_size) == 0.0
    if i in JITTED:  # compiled: the same answer (a few cases: each compiles anew)
        jitted = jax.jit(_search, static_argnums=0)(i)
        assert float(jitted.step_size) == pytest.approx(float(res.step_size), rel=1e-14)
        assert int(jitted.evaluations) == int(res.evaluations)


JITTED = {0, len(WOLFE12["fc"]) - 4, len(WOLFE12["fc"]) - 2}  # dcsrch; 10 doublings; zoom


def test_the_goldens_run_the_fallback_in_four_ways():
    # In these goldens scipy's zoom ran exactly where the counts differ (dcsrch evaluates
    # both each time): 10 doublings, dcsrch's errors, a zoom that fails.
    assert int(np.sum(WOLFE12["fc"] != WOLFE12["gc"])) >= 4


# Moré & Thuente's gtol; their ftol where it is below gtol, else gtol / 10 (scipy's rule
# is 0 < c1 < c2; the goldens above replay dcsrch with the paper's equal values).
@pytest.mark.parametrize("function, params, c1, c2",
                         [(0, (2.0, 0.0), 1e-3, 0.1), (1, (0.004, 0.0), 0.01, 0.1),
                          (2, (0.01, 39.0), 0.01, 0.1), (3, (0.001, 0.001), 1e-4, 1e-3),
                          (3, (0.01, 0.001), 1e-4, 1e-3), (3, (0.001, 0.01), 1e-4, 1e-3)])  # fmt: skip
@pytest.mark.parametrize("t0", [1e-3, 1e-1, 1e1, 1e3])
def test_strong_wolfe_conditions_hold_at_the_step(function, params, c1, c2, t0, x64):
    """Moré & Thuente's functions from their four starts: both conditions hold at the step."""
    res = _compiled_search(function, params, c1, c2)(jnp.float64(t0))
    assert bool(res.success) and not bool(res.fallback)
    t = float(res.step_size)
    f0, g0 = problems.FUNCTIONS[function](0.0, *params)
    f, g = problems.FUNCTIONS[function](t, *params)
    assert f <= f0 + c1 * t * g0
    assert abs(g) <= c2 * abs(g0)
    assert float(res.value) == pytest.approx(f, rel=1e-12)


_COMPILED: dict = {}


def _compiled_search(function, params, c1, c2):
    """One compiled search per function (the four starts reuse it)."""
    key = (function, params, c1, c2)
    if key not in _COMPILED:
        fn = problems.jax_phi(function, *params)
        _COMPILED[key] = jax.jit(lambda t: optjx.more_thuente(
            jax.value_and_grad(fn), jnp.zeros(1), jnp.ones(1), t, *_at_zero(fn), c1=c1, c2=c2,
            min_step=0.0, max_step=1e10))  # fmt: skip
    return _COMPILED[key]


def _at_zero(fn):
    f0, g0 = jax.value_and_grad(fn)(jnp.zeros(1))
    return f0, g0, g0[0]


def test_on_a_pytree_it_equals_the_flat_search(x64):
    def tree_loss(p):
        return jnp.sum((p["a"] - 1.0) ** 4) + jnp.sum(jnp.cosh(p["b"]) * jnp.arange(1.0, 4.0))

    def flat_loss(v):
        return tree_loss({"a": v[:2].reshape(2, 1), "b": v[2:]})

    tree = {"a": jnp.zeros((2, 1)), "b": jnp.asarray([0.5, -1.0, 2.0])}
    vector = jnp.concatenate([tree["a"].ravel(), tree["b"]])
    f, g = jax.value_and_grad(tree_loss)(tree)
    d = jax.tree.map(jnp.negative, g)
    slope = -sum(jnp.sum(x * x) for x in jax.tree.leaves(g))
    got = jax.jit(lambda: optjx.more_thuente(jax.value_and_grad(tree_loss), tree, d, 1.0, f, g,
                                             slope))()  # fmt: skip
    fv, gv = jax.value_and_grad(flat_loss)(vector)
    want = optjx.more_thuente(jax.value_and_grad(flat_loss), vector, -gv, 1.0, fv, gv, -gv @ gv)
    assert float(got.step_size) == pytest.approx(float(want.step_size), rel=1e-12)
    assert int(got.evaluations) == int(want.evaluations) and bool(got.success)
    np.testing.assert_allclose(jnp.concatenate([got.grad["a"].ravel(), got.grad["b"]]),
                               want.grad, rtol=1e-12)  # fmt: skip


def test_a_non_finite_trial_halves_the_step_toward_the_last_finite_point(x64):
    def loss(x):
        return jnp.where(x[0] > 0.5, jnp.nan, (x[0] - 2.0) ** 2)

    f, g = jax.value_and_grad(loss)(jnp.zeros(1))
    res = optjx.more_thuente(jax.value_and_grad(loss), jnp.zeros(1), -g, 1.0, f, g, -g @ g)
    # Trials 1, 1/2, 1/4 put x at 4, 2, 1 (NaN); 1/8 puts it at 0.5, where both strong
    # Wolfe conditions hold: phi = 2.25 <= 4 - 1e-4 * 2, |phi'| = 12 <= 0.9 * 16.
    assert bool(res.success) and not bool(res.non_finite)
    assert float(res.step_size) == 0.125 and int(res.evaluations) == 4
    assert float(res.value) == 2.25 and np.isfinite(np.asarray(res.grad)).all()


def test_no_finite_trial_is_non_finite_with_a_zero_step(x64):
    def loss(x):
        return jnp.where(x[0] > 0.0, jnp.nan, (x[0] - 2.0) ** 2)

    f, g = jax.value_and_grad(loss)(jnp.zeros(1))
    res = optjx.more_thuente(jax.value_and_grad(loss), jnp.zeros(1), -g, 1.0, f, g, -g @ g,
                             max_iter=5)  # fmt: skip
    assert bool(res.non_finite) and not bool(res.success)
    assert float(res.step_size) == 0.0 and float(res.value) == float(f)
    # dcsrch's 5 trials, then the fallback: one bracketing trial and 11 zoom trials.
    assert int(res.evaluations) == 5 + 1 + 11


@pytest.mark.parametrize("kwargs, name", [
    (dict(c1=0.0), "c1"), (dict(c1=0.95), "c2"), (dict(c2=1.0), "c2"),
    (dict(c1=float("nan")), "c1"), (dict(xtol=-1.0), "xtol"),
    (dict(min_step=-1.0), "min_step"), (dict(max_step=1e-9), "max_step"),
    (dict(max_iter=0), "max_iter"),
])  # fmt: skip
def test_bad_constants_raise_naming_them(kwargs, name):
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    x = jnp.ones(1)
    with pytest.raises(ValueError, match=name):
        optjx.more_thuente(jax.value_and_grad(f), x, -x, 1.0, 1.0, x, -1.0, **kwargs)
