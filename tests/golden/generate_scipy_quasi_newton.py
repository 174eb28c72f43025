r"""Golden files for the Moré-Thuente search and BFGS (``tests/full_batch``), from scipy.

Needs scipy 1.17.1 (asserted) and NumPy; no torch. Run from the repository root::

    python tests/golden/generate_scipy_quasi_newton.py

Writes, in float64, to ``tests/golden/quasi_newton/``:

* ``dcsrch_cases.npz``: calls of scipy's ``DCSRCH`` (``scipy/optimize/_dcsrch.py``) on
  one-dimensional functions, the six of Moré & Thuente (1994, sec. 5) among them. Per
  case: ``function`` (index into ``FUNCTIONS``), ``params`` (its two parameters),
  ``ftol, gtol, xtol, stpmin, stpmax, stp0, maxiter``; outputs ``trials`` (every step
  evaluated, in order, NaN-padded to ``MAX_TRIALS``), ``n_trials``, ``stp`` (NaN for
  scipy's ``None``), ``phi1`` and ``task`` (scipy's task string, as text).
* ``wolfe12_cases.npz``: calls of ``scipy.optimize._optimize._line_search_wolfe12``
  (``dcsrch``, then the strong-Wolfe zoom ``line_search_wolfe2`` when it fails) on the
  same functions, written as functions of a 1-vector: ``alpha`` (NaN when both fail),
  ``fc, gc`` (scipy's counts), ``fval``, ``trials``/``n_trials`` (every point evaluated),
  ``old_old`` (the previous value passed, from which scipy takes its first step).
* ``bfgs_<problem>.npz``: a ``scipy.optimize.minimize(method="BFGS", jac=grad)`` run:
  ``x0``, per iteration (from ``callback(intermediate_result)``) ``x``, ``fun`` and the
  cumulative ``nfev``, ``njev`` (the calls of the function and the gradient so far), and
  the result's ``nit, nfev, njev, status``, ``options`` (``gtol, xrtol``), ``x_reordered``, ``fun_reordered`` (scipy's
  iterates and values with the coordinates reversed, reversed back: its own rounding
  spread); for the logistic problem
  its ``data/x`` and ``data/y``.

The one-dimensional functions and the problems are written again in JAX in
``tests/full_batch/_quasi_newton_problems.py`` from the same formulas.
"""

from __future__ import annotations

import io
import math
import pathlib
import zipfile

import numpy as np
import scipy
import scipy.optimize
from scipy.optimize._dcsrch import DCSRCH
from scipy.optimize._optimize import _line_search_wolfe12, _LineSearchError

OUT = pathlib.Path(__file__).resolve().parent / "quasi_newton"
MAX_TRIALS = 128


def save_npz(path, arrays):
    """``np.savez_compressed`` with fixed timestamps: regenerating is byte-stable."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, value in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, np.asarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


# ------------------------------------------------------------- one-dimensional functions
# Each: (phi, dphi) of alpha with parameters (p, q). Moré & Thuente (1994), sec. 5.


def mt1(a, p, q):  # phi = -a / (a^2 + beta), beta = p
    return -a / (a**2 + p), (a**2 - p) / (a**2 + p) ** 2


def mt2(a, p, q):  # phi = (a + beta)^5 - 2 (a + beta)^4, beta = p
    return (a + p) ** 5 - 2 * (a + p) ** 4, 5 * (a + p) ** 4 - 8 * (a + p) ** 3


def mt3(a, p, q):  # phi0 + 2 (1 - beta) / (l pi) sin(l pi a / 2), beta = p, l = q
    if a <= 1 - p:
        f0, g0 = 1 - a, -1.0
    elif a >= 1 + p:
        f0, g0 = a - 1, 1.0
    else:
        f0, g0 = (a - 1) ** 2 / (2 * p) + p / 2, (a - 1) / p
    w = q * math.pi / 2
    return f0 + 2 * (1 - p) / (q * math.pi) * math.sin(w * a), g0 + (1 - p) * math.cos(w * a)


def _gamma(b):
    return math.sqrt(1 + b**2) - b


def mt456(a, p, q):  # gamma(b1) sqrt((1 - a)^2 + b2^2) + gamma(b2) sqrt(a^2 + b1^2)
    r1, r2 = math.sqrt((1 - a) ** 2 + q**2), math.sqrt(a**2 + p**2)
    return _gamma(p) * r1 + _gamma(q) * r2, -_gamma(p) * (1 - a) / r1 + _gamma(q) * a / r2


def quadratic(a, p, q):  # phi = p (a - q)^2 - p q^2
    return p * (a - q) ** 2 - p * q**2, 2 * p * (a - q)


def linear(a, p, q):  # unbounded below: dcsrch runs into stpmax
    return -p * a, -p


FUNCTIONS = [mt1, mt2, mt3, mt456, quadratic, linear]


def dcsrch_cases():
    """(function, params, ftol, gtol, xtol, stpmin, stpmax, stp0, maxiter)."""
    cases = []
    paper = [(0, (2.0, 0.0), 1e-3, 0.1), (1, (0.004, 0.0), 0.1, 0.1), (2, (0.01, 39.0), 0.1, 0.1),
             (3, (0.001, 0.001), 1e-3, 1e-3), (3, (0.01, 0.001), 1e-3, 1e-3),
             (3, (0.001, 0.01), 1e-3, 1e-3)]  # fmt: skip
    for function, params, ftol, gtol in paper:
        for stp0 in (1e-3, 1e-1, 1e1, 1e3):
            cases.append((function, params, ftol, gtol, 1e-14, 0.0, 1e10, stp0, 100))
    # scipy's defaults (line_search_wolfe1 and BFGS's bounds), warnings and errors.
    for function, params in ((0, (2.0, 0.0)), (1, (0.004, 0.0)), (4, (3.0, 0.7))):
        for stp0 in (1e-2, 1.0, 20.0):
            cases.append((function, params, 1e-4, 0.9, 1e-14, 1e-8, 50.0, stp0, 100))
    cases.append((5, (1.0, 0.0), 1e-4, 0.9, 1e-14, 1e-8, 50.0, 1.0, 100))  # STP = STPMAX
    cases.append((4, (3.0, 0.7), 1e-4, 0.9, 1e-14, 1e-8, 50.0, 60.0, 100))  # STP > STPMAX
    cases.append((4, (3.0, 0.7), 1e-4, 0.9, 1e-14, 1e-8, 50.0, 1e-9, 100))  # STP < STPMIN
    cases.append((2, (0.01, 39.0), 1e-4, 1e-4, 1e-14, 0.0, 1e10, 1e-3, 4))  # max iterations
    cases.append((2, (0.01, 39.0), 0.1, 0.1, 0.5, 0.0, 1e10, 1e1, 100))  # XTOL test
    return cases


def run_dcsrch(case):
    function, params, ftol, gtol, xtol, stpmin, stpmax, stp0, maxiter = case
    fn = FUNCTIONS[function]
    trials = []

    def phi(a):
        trials.append(a)
        return fn(a, *params)[0]

    def derphi(a):
        return fn(a, *params)[1]

    f0, g0 = fn(0.0, *params)
    search = DCSRCH(phi, derphi, ftol, gtol, xtol, stpmin, stpmax)
    stp, phi1, _, task = search(stp0, phi0=f0, derphi0=g0, maxiter=maxiter)
    return trials, (math.nan if stp is None else stp), phi1, task.decode()


def run_wolfe12(case):
    function, params, ftol, gtol, _, stpmin, stpmax, stp0, _ = case
    fn = FUNCTIONS[function]
    trials = []
    fc = [0]
    gc = [0]

    def f(x):
        fc[0] += 1
        trials.append(float(x[0]))
        return fn(float(x[0]), *params)[0]

    def g(x):
        gc[0] += 1
        return np.array([fn(float(x[0]), *params)[1]])

    x0, pk = np.zeros(1), np.ones(1)
    f0, g0 = fn(0.0, *params)
    # old_old_fval chosen so that scipy's first trial step is stp0 (when stp0 <= 1).
    old_old = f0 - stp0 * g0 / 2.02
    try:
        out = _line_search_wolfe12(f, g, x0, pk, np.array([g0]), f0, old_old, c1=ftol, c2=gtol,
                                   amin=stpmin, amax=stpmax)  # fmt: skip
        alpha, fval = out[0], out[3]
    except _LineSearchError:
        alpha, fval = math.nan, math.nan
    return trials, alpha, fc[0], gc[0], fval, old_old


def wolfe12_cases():
    """Cases for the driver: dcsrch alone, and the ones where it fails and the zoom runs."""
    cases = [c for c in dcsrch_cases() if c[7] <= 1.0 and c[8] == 100 and c[6] < 1e9]
    cases.append((5, (1.0, 0.0), 1e-4, 0.9, 1e-14, 1e-8, 50.0, 1.0, 100))  # 10 doublings
    cases.append((1, (0.004, 0.0), 1e-4, 0.9, 1e-14, 0.5, 50.0, 0.1, 100))  # STP < STPMIN
    cases.append((2, (0.01, 39.0), 1e-4, 0.9, 1e-14, 1e-8, 0.3, 0.9, 100))  # zoom after error
    return cases


def pad(trials):
    assert len(trials) <= MAX_TRIALS
    return np.array(trials + [math.nan] * (MAX_TRIALS - len(trials)))


def write_line_search_goldens():
    table = {k: [] for k in ("function", "params", "ftol", "gtol", "xtol", "stpmin", "stpmax",
                             "stp0", "maxiter", "trials", "n_trials", "stp", "phi1", "task")}  # fmt: skip
    for case in dcsrch_cases():
        trials, stp, phi1, task = run_dcsrch(case)
        for key, value in zip(list(table)[:9], case, strict=True):
            table[key].append(value)
        for key, value in (("trials", pad(trials)), ("n_trials", len(trials)), ("stp", stp),
                           ("phi1", phi1), ("task", task)):  # fmt: skip
            table[key].append(value)
    save_npz(OUT / "dcsrch_cases.npz", {k: np.array(v) for k, v in table.items()})

    table = {k: [] for k in ("function", "params", "ftol", "gtol", "xtol", "stpmin", "stpmax",
                             "stp0", "trials", "n_trials", "alpha", "fc", "gc", "fval",
                             "old_old")}  # fmt: skip
    for case in wolfe12_cases():
        trials, alpha, fc, gc, fval, old_old = run_wolfe12(case)
        for key, value in zip(list(table)[:8], case, strict=False):
            table[key].append(value)
        for key, value in (("trials", pad(trials)), ("n_trials", len(trials)), ("alpha", alpha),
                           ("fc", fc), ("gc", gc), ("fval", fval),
                           ("old_old", old_old)):  # fmt: skip
            table[key].append(value)
    save_npz(OUT / "wolfe12_cases.npz", {k: np.array(v) for k, v in table.items()})


# --------------------------------------------------------------------------- BFGS runs


def rosenbrock(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def rosenbrock_grad(x):
    g = np.zeros_like(x)
    inner = x[1:] - x[:-1] ** 2
    g[:-1] = -400 * x[:-1] * inner - 2 * (1 - x[:-1])
    g[1:] += 200 * inner
    return g


def logistic_data():
    rng = np.random.default_rng(21)
    x = rng.normal(size=(80, 5))
    logits = x @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) - 0.5 + rng.normal(size=80)
    return {"x": x, "y": (logits > 0).astype(np.float64)}


def logistic(data):
    """Mean logistic loss + 0.005 |w|^2 of the flat vector ``[b, w]`` (JAX's dict order)."""
    x, y = data["x"], data["y"]

    def f(v):
        z = x @ v[1:] + v[0]
        return np.mean(np.logaddexp(z, 0.0) - y * z) + 0.5 * 1e-2 * np.sum(v[1:] ** 2)

    def g(v):
        z = x @ v[1:] + v[0]
        r = (1 / (1 + np.exp(-z)) - y) / len(y)
        return np.concatenate([[np.sum(r)], x.T @ r + 1e-2 * v[1:]])

    return f, g


def run_bfgs(f, g, x0, **options):
    counts = {"f": 0, "g": 0}
    xs, funs, nfev, njev = [], [], [], []

    def counted_f(x):
        counts["f"] += 1
        return f(x)

    def counted_g(x):
        counts["g"] += 1
        return g(x)

    def callback(intermediate_result):
        xs.append(np.array(intermediate_result.x))
        funs.append(float(intermediate_result.fun))
        nfev.append(counts["f"])
        njev.append(counts["g"])

    res = scipy.optimize.minimize(counted_f, x0, jac=counted_g, method="BFGS", callback=callback,
                                  options=options)  # fmt: skip
    assert (res.nfev, res.njev) == (counts["f"], counts["g"])
    return {"x0": x0, "x": np.array(xs), "fun": np.array(funs), "nfev": np.array(nfev),
            "njev": np.array(njev), "nit": res.nit, "result_nfev": res.nfev,
            "result_njev": res.njev, "status": res.status, "final_x": res.x,
            "options": np.array([options.get("gtol", 1e-5), options.get("xrtol", 0.0)])}  # fmt: skip


def with_rounding_spread(f, g, x0, **options):
    """``run_bfgs`` plus ``x_reordered``: scipy's iterates on the same problem with the
    coordinates reversed (the same arithmetic up to rounding), reversed back. Their
    distance from ``x`` is how far scipy's own rounding moves its iterates."""
    run = run_bfgs(f, g, x0, **options)
    again = run_bfgs(lambda v: f(v[::-1]), lambda v: g(v[::-1])[::-1], x0[::-1].copy(),
                     **options)  # fmt: skip
    assert again["nit"] == run["nit"] and again["result_nfev"] == run["result_nfev"]
    return {**run, "x_reordered": again["x"][:, ::-1], "fun_reordered": again["fun"]}


def write_bfgs_goldens():
    for n in (2, 5, 10):
        x0 = np.array([-1.2, 1.0] * (n // 2) + [-1.2] * (n % 2))
        run = with_rounding_spread(rosenbrock, rosenbrock_grad, x0)
        save_npz(OUT / f"bfgs_rosenbrock{n}.npz", run)
    # scipy's xrtol test ends this run (with its gtol unmet).
    x0 = np.array([-1.2, 1.0, -1.2, 1.0, -1.2])
    run = with_rounding_spread(rosenbrock, rosenbrock_grad, x0, xrtol=1e-2)
    save_npz(OUT / "bfgs_rosenbrock5_xrtol.npz", run)
    data = logistic_data()
    f, g = logistic(data)
    run = with_rounding_spread(f, g, np.zeros(6))
    save_npz(OUT / "bfgs_logistic.npz", {**run, "data/x": data["x"], "data/y": data["y"]})


def main():
    assert scipy.__version__ == "1.17.1", scipy.__version__
    OUT.mkdir(exist_ok=True)
    write_line_search_goldens()
    write_bfgs_goldens()


if __name__ == "__main__":
    main()
