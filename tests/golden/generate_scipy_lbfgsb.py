r"""Golden files for ``optjx.lbfgs_b``: ``scipy.optimize.minimize(method="L-BFGS-B")`` runs.

Needs scipy 1.17.1 (asserted) and NumPy; no torch. Run from the repository root::

    python tests/golden/generate_scipy_lbfgsb.py

Writes ``tests/golden/quasi_newton/lbfgsb_<problem>.npz`` (float64): ``x0``, ``lower``,
``upper`` (``-inf``/``inf`` where free), the problem's data, and per iteration (from
``callback(intermediate_result)``) ``x``, ``fun`` and ``nfev`` (the calls of the loss so
far), then the result's ``final_x``, ``final_fun``, ``nit``, ``nfev``, ``status`` and
``message``. The problems (written again in JAX in
``tests/full_batch/_quasi_newton_problems.py``):

* ``rosenbrock2_box``, ``rosenbrock5_box``, ``rosenbrock10_lower``: Rosenbrock in a box
  that cuts the minimiser off (one or several bounds active at the solution);
* ``rosenbrock5_free``: no bounds (L-BFGS-B skips the Cauchy point once it has pairs);
* ``nnls``: non-negative least squares $\frac12 \lVert A x - b \rVert^2$, $x \ge 0$, with
  several active bounds at the solution;
* ``rosenbrock3_infeasible``: a start outside the box (scipy projects it first);
* ``breakpoints``: $\frac12 \sum_i c_i (x_i - a_i)^2$ from 0 in $[-1, 1]^4$: on the first
  iteration ($B = I$) the projected path $x - t g$ meets the breakpoints $t = 1/4$ and
  $t = 1/3$ before the model's minimiser along it at $t = 1$: the Cauchy point stops at
  two bounds.
* ``logistic``: the BFGS goldens' L2-regularised logistic regression (80 samples, 5
  features, ``data/x`` and ``data/y``) over the flat ``[b, w]`` from 0, the intercept free
  and the weights in ``[0, 2]``: one weight ends on its lower bound, one on its upper.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import scipy
import scipy.optimize

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from generate_scipy_quasi_newton import logistic, logistic_data, save_npz  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent / "quasi_newton"


def rosenbrock(x):
    f = np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return f, g


def least_squares(a, b):
    def fg(x):
        r = a @ x - b
        return 0.5 * r @ r, a.T @ r

    return fg


def weighted_quadratic(c, a):
    def fg(x):
        return 0.5 * np.sum(c * (x - a) ** 2), c * (x - a)

    return fg


def run(name, fg, x0, lower, upper, data=None):
    calls = []

    def fun(x):
        calls.append(1)
        return fg(x)

    xs, fs, nfev = [], [], []

    def callback(intermediate_result):
        xs.append(np.array(intermediate_result.x))
        fs.append(float(intermediate_result.fun))
        nfev.append(len(calls))

    bounds = scipy.optimize.Bounds(lower, upper)
    res = scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                                  callback=callback)  # fmt: skip
    assert res.nfev == len(calls)
    arrays = dict(
        x0=np.asarray(x0, np.float64), lower=np.asarray(lower, np.float64),
        upper=np.asarray(upper, np.float64), x=np.asarray(xs), fun=np.asarray(fs),
        nfev=np.asarray(nfev), final_x=res.x, final_fun=np.asarray(res.fun),
        nit=np.asarray(res.nit), result_nfev=np.asarray(res.nfev),
        status=np.asarray(res.status), message=np.asarray(res.message),
    )  # fmt: skip
    for key, value in (data or {}).items():
        arrays[f"data/{key}"] = value
    save_npz(OUT / f"lbfgsb_{name}.npz", arrays)
    print(name, res.nit, res.nfev, res.message)


def main():
    assert scipy.__version__ == "1.17.1", scipy.__version__
    OUT.mkdir(exist_ok=True)
    inf = np.inf
    run("rosenbrock2_box", rosenbrock, np.array([-1.2, 1.0]), [-1.5, -0.5], [0.5, 2.0])
    x5 = np.array([-1.2, 1.0, -0.5, 0.8, 2.0])
    run("rosenbrock5_box", rosenbrock, x5, np.full(5, -2.0), np.full(5, 0.7))
    run("rosenbrock5_free", rosenbrock, x5, np.full(5, -inf), np.full(5, inf))
    x10 = np.linspace(-1.5, 1.5, 10)
    lower10 = np.where(np.arange(10) % 3 == 0, 1.2, -inf)
    run("rosenbrock10_lower", rosenbrock, x10, lower10, np.full(10, inf))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20, 8))
    b = a @ np.array([1.0, -2.0, 0.5, -0.3, 0.0, 2.0, -1.0, 0.7]) + 0.1 * rng.standard_normal(20)
    run("nnls", least_squares(a, b), np.full(8, 0.5), np.zeros(8), np.full(8, inf),
        data=dict(a=a, b=b))  # fmt: skip
    run("rosenbrock3_infeasible", rosenbrock, np.array([3.0, -2.0, 0.5]),
        [-1.0, -1.0, -1.0], [1.5, 0.8, 2.0])  # fmt: skip
    c = np.array([1.0, 2.0, 0.5, 1.0])
    target = np.array([3.0, -0.5, 0.2, -4.0])
    run("breakpoints", weighted_quadratic(c, target), np.zeros(4), np.full(4, -1.0),
        np.full(4, 1.0), data=dict(c=c, a=target))  # fmt: skip
    data = logistic_data()
    f, g = logistic(data)
    run("logistic", lambda v: (f(v), g(v)), np.zeros(6), [-inf, *[0.0] * 5], [inf, *[2.0] * 5],
        data=data)  # fmt: skip


if __name__ == "__main__":
    main()
