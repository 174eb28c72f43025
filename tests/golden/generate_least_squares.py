"""Goldens for optjx.levenberg_marquardt: scipy's ``least_squares(method="lm")`` (MINPACK's
``lmder``) on every NIST StRD problem from both starts, and on a few synthetic problems.

scipy 1.17.1, float64, exact Jacobians: each model's Jacobian from JAX's ``jacfwd`` in
float64 (exact up to rounding, no finite differences), given to MINPACK as ``jac=``. MINPACK's defaults
``ftol = xtol = 1.49012e-8``; ``gtol``: scipy refuses ``gtol < eps`` for "lm", so
``gtol = eps`` (MINPACK's default is 0: the two differ only when the cosine test falls in
``(0, eps]``); ``max_nfev`` scipy's default ``100 n``; ``x_scale="jac"`` (MINPACK's
``mode=1``). MINPACK exposes no iterates, so each run records the final ``x``, ``cost``,
``nfev``, ``njev`` and ``status`` (MINPACK's ``info``). ``leastsq`` (same ``lmder``, gtol 0)
is run as a cross-check and must agree where it stops for the same reason. Six problems
are also run with ``x_scale=1`` (MINPACK's ``mode=2``, ``diag = 1``), the scaling of
``solver="cg"``.

Usage: ``OMP_NUM_THREADS=1 python tests/golden/generate_least_squares.py`` (reads
``nist_strd.json``; writes ``least_squares_scipy.json``).
"""

from __future__ import annotations

import json
import pathlib
import sys

import jax
import numpy as np
import scipy
from scipy.optimize import least_squares, leastsq

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "full_batch"))
from _least_squares_problems import SYNTHETIC  # noqa: E402
from _nist_models import residuals  # noqa: E402

OUT = HERE / "least_squares_scipy.json"
EPS = float(np.finfo(float).eps)


UNIT_SCALE = ["Misra1a", "Chwirut2", "DanWood", "Eckerle4", "Gauss1", "Rat42"]


def solve(fun_jnp, x0, x_scale="jac"):
    fun = jax.jit(fun_jnp)
    jac = jax.jit(jax.jacfwd(fun_jnp))
    fun_np = lambda b: np.asarray(fun(jnp.asarray(b)))  # noqa: E731
    jac_np = lambda b: np.asarray(jac(jnp.asarray(b)))  # noqa: E731
    x0 = np.asarray(x0, float)
    res = least_squares(fun_np, x0, jac=jac_np, method="lm", ftol=1.49012e-8, xtol=1.49012e-8,
                        gtol=EPS, x_scale=x_scale)  # fmt: skip
    if x_scale != "jac":  # MINPACK's mode=2 with diag = 1 / x_scale; no leastsq check
        return {"x": res.x.tolist(), "cost": float(res.cost), "nfev": int(res.nfev),
                "njev": int(res.njev)}  # fmt: skip
    x2, _, info, _, ier = leastsq(fun_np, x0, Dfun=jac_np, full_output=True, maxfev=100 * x0.size)
    same = np.array_equal(x2, res.x) and info["nfev"] == res.nfev
    assert same or ier != res.status, "leastsq (gtol=0) disagrees with least_squares (gtol=eps)"
    return {"x": res.x.tolist(), "cost": float(res.cost), "nfev": int(res.nfev),
            "njev": int(res.njev), "status": int(ier), "leastsq_equal": bool(same)}  # fmt: skip


def main() -> None:
    problems = json.loads((HERE / "nist_strd.json").read_text())["problems"]
    out = {"scipy": scipy.__version__, "nist": {}, "synthetic": {}, "unit_scale": {}}
    for name, p in problems.items():
        x, y = jnp.asarray(p["x"]), jnp.asarray(p["y"])
        fn = lambda b, name=name, x=x, y=y: residuals(name, b, x, y, jnp)  # noqa: E731
        for start in ("start1", "start2"):
            out["nist"][f"{name}/{start}"] = r = solve(fn, p[start])
            rel = np.max(np.abs(np.asarray(r["x"]) / np.asarray(p["certified"]) - 1))
            print(f"{name:9s} {start} nfev {r['nfev']:4d} status {r['status']} rel {rel:.1e}")
    for name in UNIT_SCALE:  # x_scale=1: MINPACK's mode=2 with diag = 1 (start 2)
        x, y = jnp.asarray(problems[name]["x"]), jnp.asarray(problems[name]["y"])
        fn = lambda b, name=name, x=x, y=y: residuals(name, b, x, y, jnp)  # noqa: E731
        out["unit_scale"][name] = solve(fn, problems[name]["start2"], x_scale=1.0)
    for name, (fn, x0) in SYNTHETIC.items():
        out["synthetic"][name] = solve(fn, x0)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
