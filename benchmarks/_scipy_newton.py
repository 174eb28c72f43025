"""Issue 22's sections of ``benchmarks/full_batch_scipy.py``: Newton-CG and trust-ncg per
iteration, Levenberg-Marquardt against ``least_squares(method="lm")``, and the implicit
gradient of ``optjx.minimize`` against unrolling.

Newton-CG and trust-ncg run as one jitted ``update`` (``max_iter`` iterations): ``minimize``
cannot drive them, nor Levenberg-Marquardt, in this tree (it reads ``state.grad``, which
their states lack); one update with room for the whole run is one scipy run.
"""

from __future__ import annotations

import json
from pathlib import Path

import _scipy_common as sc
import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.optimize

import optjx

NIST_DATA = Path(__file__).resolve().parents[1] / "tests" / "golden" / "nist_strd.json"
MINPACK_TOL = 1.49012e-8  # MINPACK's ftol and xtol defaults, optjx's too
EPS = float(np.finfo(np.float64).eps)  # scipy refuses gtol < eps for "lm" (MINPACK: 0)


# ----------------------------------------------------------------------------- Newton


def update_call(loss, x0, method):
    """One jitted ``update`` from ``x0``, with the value and gradient given as a user does."""

    @jax.jit
    def solve(x):
        value, grad = jax.value_and_grad(loss)(x)
        updates, state = method.update(grad, method.init(x), x, value=value, value_fn=loss)
        return optax.apply_updates(x, updates), state

    return lambda: jax.block_until_ready(solve(x0))


def newton_problems(cfg):
    for n, k in cfg["newton_sizes"]:
        yield "Rosenbrock", n, k, sc.rosenbrock, sc.rosenbrock_start(n)
    for n, samples, k in cfg["newton_logistic"]:
        loss, x0 = sc.logistic(n, samples)
        yield f"logistic ({samples} samples)", n, k, loss, x0


def newton(cfg):
    rows = []
    for label, n, k, loss, x0 in newton_problems(cfg):
        hessp = sc.numpy_hessp(loss)
        for name, options, method in (
            ("Newton-CG", dict(maxiter=k, xtol=0.0), optjx.newton_cg(max_iter=k, xtol=0.0)),
            ("trust-ncg", dict(maxiter=k, gtol=0.0),
             optjx.trust_region_newton(max_iter=k, tolerance_grad=0.0)),
        ):  # fmt: skip
            fun = sc.numpy_value_and_grad(loss)
            x0_np = np.asarray(x0)

            def s(fun=fun, x0_np=x0_np, name=name, options=options, hessp=hessp):
                return scipy.optimize.minimize(fun, x0_np, jac=True, hessp=hessp, method=name,
                                               options=options)  # fmt: skip

            o = update_call(loss, x0, method)
            res, _ = sc.first_call(s)
            (_, state), _ = sc.first_call(o)
            ts, to = sc.interleaved([s, o], cfg["reps"], warm_up=False)
            it = int(state.n_iter)
            per_s, per_o = ts / max(res.nit, 1), to / max(it, 1)
            rows.append([f"{name}, {label}", f"{n:,}", f"{res.nit} / {res.nfev} / {res.nhev}",
                         f"{it} / {int(state.func_evals)} / {int(state.hessian_products)}",
                         sc.ms(per_s), sc.ms(per_o), f"{per_o / per_s:.3f}",
                         f"{sc.relative_gap(res.fun, float(state.value)):.1e}"])  # fmt: skip
            sc.log(rows[-1])
    sc.print_table("Newton per iteration: a fixed number of iterations (tolerances 0); scipy "
                   "with a jitted hessp", ["method, problem", "n", "scipy nit / nfev / nhev",
                   "optjx it / evals / HVPs", "scipy ms/it", "optjx ms/it", "optjx / scipy",
                   "rel. gap in f"], rows)  # fmt: skip


# ----------------------------------------------------------------------------- least squares


def _gauss(b, x):
    return (b[0] * jnp.exp(-b[1] * x) + b[2] * jnp.exp(-((x - b[3]) ** 2) / b[4] ** 2)
            + b[5] * jnp.exp(-((x - b[6]) ** 2) / b[7] ** 2))  # fmt: skip


# The "Model:" lines of NIST's <Name>.dat for the problems timed here (the data and the
# certified values are read from tests/golden/nist_strd.json).
NIST_MODELS = {
    "Misra1a": lambda b, x: b[0] * (1 - jnp.exp(-b[1] * x)),
    "DanWood": lambda b, x: b[0] * x ** b[1],
    "Gauss1": _gauss,
    "Kirby2": lambda b, x: (b[0] + b[1] * x + b[2] * x**2) / (1 + b[3] * x + b[4] * x**2),
    "Eckerle4": lambda b, x: (b[0] / b[1]) * jnp.exp(-0.5 * ((x - b[2]) / b[1]) ** 2),
    "Rat42": lambda b, x: b[0] / (1 + jnp.exp(b[1] - b[2] * x)),
    "MGH10": lambda b, x: b[0] * jnp.exp(b[1] / (x + b[2])),
}


def digits(b, certified) -> float:
    """NIST's log relative error: correct significant digits of the worst parameter."""
    b, certified = np.asarray(b), np.asarray(certified)
    err = np.max(np.abs(b - certified) / np.abs(certified))
    return float(-np.log10(err)) if err > 0 else 16.0


def least_squares_problems(cfg):
    """``(label, residuals, b0, certified or None)``."""
    problems = json.loads(NIST_DATA.read_text())["problems"]
    for name in cfg["nist"]:
        p = problems[name]
        x, y = jnp.asarray(p["x"], jnp.float64), jnp.asarray(p["y"], jnp.float64)

        def residuals(b, model=NIST_MODELS[name], x=x, y=y):
            return y - model(b, x)

        for start in ("start1", "start2"):
            yield f"{name} ({p['level']}) {start}", residuals, jnp.asarray(p[start]), p["certified"]
    m = cfg["large_residuals"]
    x = jnp.linspace(1.0, 250.0, m)
    true = jnp.asarray([98.0, 0.011, 100.0, 67.0, 23.0, 72.0, 178.0, 18.0])  # Gauss1-like
    noise = jnp.asarray(np.random.default_rng(0).normal(scale=2.5, size=m))
    y = _gauss(true, x) + noise

    def gauss(b):
        return y - _gauss(b, x)

    yield f"Gauss1 model, {m:,} residuals", gauss, true * 1.1, None


def lm_call(residuals, b0, method):
    """One jitted ``update`` from ``b0`` (``minimize`` cannot drive least-squares methods in
    this tree: it reads ``state.grad``, which their states lack)."""

    @jax.jit
    def solve(b):
        updates, state = method.update(None, method.init(b), b, residual_fn=residuals)
        return optax.apply_updates(b, updates), state

    return lambda: jax.block_until_ready(solve(b0))


def least_squares(cfg):
    rows = []
    for label, residuals, b0, certified in least_squares_problems(cfg):
        fun = jax.jit(residuals)
        jac = jax.jit(jax.jacfwd(residuals))
        b0_np = np.asarray(b0)

        def s(fun=fun, jac=jac, b0_np=b0_np):
            return scipy.optimize.least_squares(
                lambda b: np.asarray(fun(b)), b0_np, jac=lambda b: np.asarray(jac(b)),
                method="lm", ftol=MINPACK_TOL, xtol=MINPACK_TOL, gtol=EPS)  # fmt: skip

        # One update with room for the whole run is one lmder run (max_eval 100 n, scipy's).
        o = lm_call(residuals, b0, optjx.levenberg_marquardt(max_iter=100 * b0.size))
        res, _ = sc.first_call(s)
        (solution, state), _ = sc.first_call(o)
        ts, to = sc.interleaved([s, o], cfg["e2e_reps"], warm_up=False)
        it = int(state.n_iter)
        cost = 0.5 * float(jnp.sum(residuals(solution) ** 2))
        quality = (f"{digits(res.x, certified):.1f} / {digits(solution, certified):.1f}" if certified
                   else f"{sc.relative_gap(res.cost, cost):.1e} (gap in cost)")  # fmt: skip
        rows.append([label, f"{b0.size}", f"{res.nfev} / {res.njev}", f"{int(state.func_evals)} / "
                     f"{it}", sc.ms(ts), sc.ms(to), f"{to / ts:.2f}", sc.ms(ts / res.njev),
                     sc.ms(to / max(it, 1)), quality])  # fmt: skip
        sc.log(rows[-1])
    sc.print_table("Levenberg-Marquardt end to end (ms per solve, median): scipy "
                   "least_squares(method='lm', jac=jitted jacfwd) vs one jitted update of optjx."
                   "levenberg_marquardt(max_iter=100 n)", ["problem", "n", "scipy nfev / njev",
                   "optjx evals / it", "scipy", "optjx", "ratio", "scipy ms/it", "optjx ms/it",
                   "digits of certified (scipy / optjx)"], rows)  # fmt: skip


# ----------------------------------------------------------------------------- implicit


def implicit_problem(n: int, samples: int):
    """Logistic regression with an L2 strength ``theta`` (an arg), and the validation loss
    of its minimiser: the hyperparameter gradient one tunes ``theta`` with."""
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(2 * samples, n)) / np.sqrt(n))
    y = jnp.asarray((rng.uniform(size=2 * samples) > 0.5).astype(np.float64))
    train, val = (x[:samples], y[:samples]), (x[samples:], y[samples:])

    def nll(w, data):
        z = data[0] @ w
        return jnp.mean(jnp.logaddexp(z, 0.0) - data[1] * z)

    def loss(w, theta):
        return nll(w, train) + 0.5 * theta * jnp.sum(w * w)

    return loss, lambda w: nll(w, val), jnp.zeros(n)


def implicit(cfg):
    loss, validation, w0 = implicit_problem(cfg["implicit_n"], cfg["implicit_samples"])
    method = optjx.sgd(1.0)
    theta = jnp.asarray(0.1)
    rows = []
    for k in cfg["implicit_iterations"]:

        def by_implicit(theta, k=k):
            w, _ = optjx.minimize(loss, w0, method, args=(theta,), max_updates=k,
                                  implicit_diff=True, tolerance_grad=0.0)  # fmt: skip
            return validation(w)

        def by_unrolling(theta, k=k):
            def step(carry, _):
                w, state = carry
                updates, state = method.update(jax.grad(loss)(w, theta), state, w)
                return (optax.apply_updates(w, updates), state), None

            (w, _), _ = jax.lax.scan(step, (w0, method.init(w0)), None, length=k)
            return validation(w)

        grads = [jax.jit(jax.grad(f)) for f in (by_implicit, by_unrolling)]
        temp = [g.lower(theta).compile().memory_analysis().temp_size_in_bytes for g in grads]
        values = [float(g(theta)) for g in grads]
        calls = [lambda g=g: jax.block_until_ready(g(theta)) for g in grads]
        t_imp, t_unr = sc.interleaved(calls, cfg["reps"])
        rows.append([k, sc.ms(t_imp), sc.ms(t_unr), f"{t_imp / t_unr:.2f}",
                     f"{temp[0] / 2**10:,.0f}", f"{temp[1] / 2**10:,.0f}",
                     f"{temp[1] / max(temp[0], 1):.1f}", f"{values[0]:.6e}", f"{values[1]:.6e}"])  # fmt: skip
        sc.log(rows[-1])
    sc.print_table(f"Hypergradient d(validation loss)/d(L2 strength) through {cfg['implicit_n']:,}"
                   f"-parameter logistic regression, k steps of sgd(1.0): implicit (minimize, "
                   f"implicit_diff=True) vs unrolled (lax.scan)",
                   ["k", "implicit ms", "unrolled ms", "time ratio", "implicit temp KiB",
                    "unrolled temp KiB", "memory factor (unrolled / implicit)", "grad implicit",
                    "grad unrolled"], rows)  # fmt: skip


FULL = dict(newton_sizes=[(1_000, 20), (100_000, 10)],
            newton_logistic=[(1_000, 500, 10), (100_000, 100, 5)],
            nist=list(NIST_MODELS), large_residuals=10_000, implicit_n=1_000,
            implicit_samples=500, implicit_iterations=[10, 100, 1_000])  # fmt: skip
QUICK = dict(newton_sizes=[(1_000, 5)], newton_logistic=[], nist=["Misra1a"],
             large_residuals=1_000, implicit_n=100, implicit_samples=50,
             implicit_iterations=[10, 30])  # fmt: skip
