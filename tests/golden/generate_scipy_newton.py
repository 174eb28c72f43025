r"""Golden files for ``newton_cg`` and ``trust_region_newton`` (``tests/full_batch/test_newton.py``).

Needs scipy 1.17.1 (asserted) and NumPy; no torch. Run from the repository root::

    python tests/golden/generate_scipy_newton.py

Writes, in float64, to ``tests/golden/newton/``, one ``<method>_<problem>.npz`` per
``scipy.optimize.minimize(method=..., jac=grad, hessp=hessp)`` run, ``method`` one of
``newton_cg`` (``"Newton-CG"``) and ``trust_ncg`` (``"trust-ncg"``):

* ``x0``; per iteration (from ``callback(intermediate_result)``) ``x`` and ``fun``, and
  the cumulative calls so far of the function, the gradient and the Hessian-vector
  product: ``nfev``, ``njev``, ``nhessp``; and ``njev_settled``, the gradient calls once
  the gradient at that iterate is known (scipy evaluates it after the callback: trust-ncg
  at an accepted point, Newton-CG after a fallback search returned an untested step);
* the result's ``nit, nfev, njev, nhev, status`` and final ``x``, ``fun``;
* ``x_spread``, ``fun_spread``: scipy's own rounding spread (see ``with_rounding_spread``);
* ``options``: the method's options as a float vector (Newton-CG: ``xtol``; trust-ncg:
  ``initial_trust_radius, max_trust_radius, eta, gtol``);
* for the logistic problem its ``data/x`` and ``data/y``.

The problems (each with its gradient and Hessian-vector product written from the
formula): Rosenbrock in 2 and 5 dimensions; an L2-regularised logistic regression on 60
fixed samples of 4 features (and a bias); and ``x^2 - y^2 + y^4 / 4``, whose saddle at the
origin lies on the path from ``(0.5, 1e-3)``: both methods leave it for the minimiser
``(0, sqrt 2)``. ``tests/full_batch/test_newton.py`` writes them again in JAX.
"""

from __future__ import annotations

import io
import pathlib
import zipfile

import numpy as np
import scipy
import scipy.optimize

OUT = pathlib.Path(__file__).resolve().parent / "newton"
METHODS = {"newton_cg": "Newton-CG", "trust_ncg": "trust-ncg"}


def save_npz(path, arrays):
    """``np.savez_compressed`` with fixed timestamps: regenerating is byte-stable."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, value in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, np.asarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


# ------------------------------------------------------------------ the problems


def rosenbrock():
    def f(x):
        return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    def g(x):
        out = np.zeros_like(x)
        inner = x[1:] - x[:-1] ** 2
        out[:-1] = -400 * x[:-1] * inner - 2 * (1 - x[:-1])
        out[1:] += 200 * inner
        return out

    def hessp(x, p):
        # The Hessian is tridiagonal: diagonal 1200 x_i^2 - 400 x_{i+1} + 2 (+200 from
        # the previous term), off-diagonal -400 x_i.
        diagonal = np.zeros_like(x)
        diagonal[:-1] = 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
        diagonal[1:] += 200
        off = -400 * x[:-1]
        out = diagonal * p
        out[:-1] += off * p[1:]
        out[1:] += off * p[:-1]
        return out

    return f, g, hessp


def logistic_data():
    rng = np.random.default_rng(22)
    x = rng.normal(size=(60, 4))
    logits = x @ np.array([1.5, -1.0, 0.0, 2.0]) + 0.3 + rng.normal(size=60)
    return {"x": x, "y": (logits > 0).astype(np.float64)}


REGULARISATION = 1e-2


def logistic(data):
    """Mean logistic loss + ``0.005 |w|^2`` of the flat vector ``[b, w]`` (JAX's dict order)."""
    x, y = data["x"], data["y"]

    def f(v):
        z = x @ v[1:] + v[0]
        return np.mean(np.logaddexp(z, 0.0) - y * z) + 0.5 * REGULARISATION * np.sum(v[1:] ** 2)

    def g(v):
        z = x @ v[1:] + v[0]
        r = (1 / (1 + np.exp(-z)) - y) / len(y)
        return np.concatenate([[np.sum(r)], x.T @ r + REGULARISATION * v[1:]])

    def hessp(v, p):
        s = 1 / (1 + np.exp(-(x @ v[1:] + v[0])))
        u = s * (1 - s) * (x @ p[1:] + p[0]) / len(y)
        return np.concatenate([[np.sum(u)], x.T @ u + REGULARISATION * p[1:]])

    return f, g, hessp


def saddle():
    """``x^2 - y^2 + y^4 / 4``: a saddle at 0, minimisers ``(0, +-sqrt 2)``."""

    def f(v):
        return v[0] ** 2 - v[1] ** 2 + v[1] ** 4 / 4

    def g(v):
        return np.array([2 * v[0], -2 * v[1] + v[1] ** 3])

    def hessp(v, p):
        return np.array([2 * p[0], (-2 + 3 * v[1] ** 2) * p[1]])

    return f, g, hessp


# ------------------------------------------------------------------ the runs


def run(method, problem, x0, **options):
    f, g, hessp = problem
    counts = {"f": 0, "g": 0, "h": 0}
    xs, funs, nfev, njev, nhessp, settled = [], [], [], [], [], []
    pending = [False]

    def counted(key, fn):
        def call(*args):
            if key == "h" and pending[0]:  # the gradient at the iterate is known by now
                settled.append(counts["g"])
                pending[0] = False
            counts[key] += 1
            return fn(*args)

        return call

    def callback(intermediate_result):
        xs.append(np.copy(intermediate_result.x))
        funs.append(intermediate_result.fun)
        nfev.append(counts["f"])
        njev.append(counts["g"])
        nhessp.append(counts["h"])
        pending[0] = True

    res = scipy.optimize.minimize(
        counted("f", f), x0, jac=counted("g", g), hessp=counted("h", hessp),
        method=METHODS[method], callback=callback, options=options,
    )  # fmt: skip
    assert res.nfev == counts["f"] and res.njev == counts["g"], (res, counts)
    if pending[0]:
        settled.append(res.njev)
    return {
        "x0": x0, "x": np.array(xs), "fun": np.array(funs), "nfev": np.array(nfev),
        "njev": np.array(njev), "njev_settled": np.array(settled), "nhessp": np.array(nhessp), "nit": res.nit,
        "result_nfev": res.nfev, "result_njev": res.njev, "result_nhev": res.nhev,
        "status": res.status, "x_final": res.x, "fun_final": res.fun,
        "options": np.array(list(options.values()), dtype=np.float64),
    }  # fmt: skip


def with_rounding_spread(method, problem, x0, **options):
    """``run`` plus ``x_spread``, ``fun_spread``: how far scipy's own iterates and values
    move when ``x0`` moves by one unit in the last place (up, then down; the larger
    difference, per iteration and coordinate). A slow crawl along a curved valley
    amplifies last-bit differences: this is the spread that rounding alone causes."""
    out = run(method, problem, x0, **options)
    x_spread, fun_spread = np.zeros_like(out["x"]), np.zeros_like(out["fun"])
    for direction in (np.inf, -np.inf):
        other = run(method, problem, np.nextafter(x0, direction), **options)
        assert other["nit"] == out["nit"]  # (the counts of a failing search may differ)
        x_spread = np.maximum(x_spread, np.abs(other["x"] - out["x"]))
        fun_spread = np.maximum(fun_spread, np.abs(other["fun"] - out["fun"]))
    return {**out, "x_spread": x_spread, "fun_spread": fun_spread}


# Options in the order the test passes them (see the docstring).
TRUST_DEFAULTS = dict(initial_trust_radius=1.0, max_trust_radius=1000.0, eta=0.15, gtol=1e-4)


def main():
    assert scipy.__version__ == "1.17.1", scipy.__version__
    OUT.mkdir(exist_ok=True)
    data = logistic_data()
    problems = {
        "rosenbrock2": (rosenbrock(), np.array([-1.2, 1.0])),
        "rosenbrock5": (rosenbrock(), np.array([-1.2, 1.0, -0.5, 0.8, 1.5])),
        "logistic": (logistic(data), np.zeros(5)),
        "saddle": (saddle(), np.array([0.5, 1e-3])),
    }
    for name, (problem, x0) in problems.items():
        extra = {"data/x": data["x"], "data/y": data["y"]} if name == "logistic" else {}
        save_npz(OUT / f"newton_cg_{name}.npz", {**with_rounding_spread("newton_cg", problem, x0, xtol=1e-5),
                                                 **extra})  # fmt: skip
        save_npz(OUT / f"trust_ncg_{name}.npz", {**with_rounding_spread("trust_ncg", problem, x0,
                                                       **TRUST_DEFAULTS), **extra})  # fmt: skip
    # Other settings of the options: a tighter xtol; a small radius that must grow, a
    # low ceiling, a stricter eta and a tight gtol.
    rosen5 = problems["rosenbrock5"]
    save_npz(
        OUT / "newton_cg_rosenbrock5_xtol.npz",
        with_rounding_spread("newton_cg", *rosen5, xtol=1e-9),
    )
    options = dict(initial_trust_radius=0.1, max_trust_radius=0.5, eta=0.2, gtol=1e-8)
    save_npz(
        OUT / "trust_ncg_rosenbrock5_options.npz",
        with_rounding_spread("trust_ncg", *rosen5, **options),
    )


if __name__ == "__main__":
    main()
