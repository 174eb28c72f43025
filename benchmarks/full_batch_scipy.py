"""optjx's full-batch methods against ``scipy.optimize`` on the same problems, in float64.

scipy is driven as a user drives it: ``minimize(fun, x0, jac=True, ...)`` with ``fun`` a
jitted ``jax.value_and_grad`` returning numpy (and ``hessp`` a jitted Hessian-vector
product). optjx is driven as a user drives it: ``jax.jit`` of
``optjx.minimize(f, x0, method, max_updates=...)`` (one ``lax.while_loop``), or a jitted
update where ``minimize`` cannot run the method. Contenders are timed in turn (order
rotated each round) after a first call each, and the median is reported, so a busy spell
of the shared machine slows both alike. The first call (compilation included: optjx's
solve, scipy's jitted value-and-grad) is reported apart.

Sections (``--sections``, default all):

* ``quasi_newton``: ``lbfgs_b`` and ``bfgs`` against L-BFGS-B and BFGS per
  iteration (a fixed number of iterations, tolerances 0) at 1e3, 1e5, 1e6 parameters
  (BFGS to 1e4), end to end (default tolerances, to convergence) on small problems, and
  the compile time of one update on a 100-leaf tree.
* ``newton``, ``least_squares``, ``implicit`` (``_scipy_newton.py``):
  Newton-CG and trust-ncg per iteration, Levenberg-Marquardt against
  ``least_squares(method="lm")`` on NIST StRD problems and a 1e4-residual fit, and the
  implicit gradient of ``minimize`` against unrolling (time and compiled temp memory).

    OPENBLAS_NUM_THREADS=1 python benchmarks/full_batch_scipy.py [--quick] [--reps 5]
        [--sections newton,implicit]

On a small shared machine run scipy's OpenBLAS on one thread (as above): with its default
threads competing for two loaded cores, scipy's L-BFGS-B at 1e3 parameters took 60-150x
longer per run (0.7-1.8 s instead of 11 ms), which measures the machine, not scipy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # full_batch, _scipy_common
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # optjx from a source tree

import _scipy_common as sc  # noqa: E402  # switches JAX to float64 first
import full_batch  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402

import optjx  # noqa: E402

SECTIONS = ("quasi_newton", "newton", "least_squares", "implicit")


def scipy_call(method, loss, x0, options=None, bounds=None, hessp=None):
    fun = sc.numpy_value_and_grad(loss)
    x0 = np.asarray(x0)
    return lambda: scipy.optimize.minimize(fun, x0, jac=True, method=method, bounds=bounds,
                                           hessp=hessp, options=options)  # fmt: skip


def minimize_call(loss, x0, method, max_updates, *, jit=True):
    """``optjx.minimize`` jitted as a whole (``jit=True``) or called as it is."""

    def solve(x):
        return optjx.minimize(loss, x, method, max_updates=max_updates)

    solve = jax.jit(solve) if jit else solve
    return lambda: jax.block_until_ready(solve(x0))


def per_iteration(name, n, iterations, scipy_run, optjx_run, reps):
    """A row: iterations/evaluations, ms per iteration of each, ratio, value gap."""
    res, _ = sc.first_call(scipy_run)
    (_, info), _ = sc.first_call(optjx_run)
    t_scipy, t_optjx = sc.interleaved([scipy_run, optjx_run], reps, warm_up=False)
    it = int(info.iterations)
    per_scipy, per_optjx = t_scipy / max(res.nit, 1), t_optjx / max(it, 1)
    return per_scipy, [name, f"{n:,}", f"{res.nit} / {res.nfev}", f"{it} / {int(info.evaluations)}",
            sc.ms(per_scipy), sc.ms(per_optjx), f"{per_optjx / per_scipy:.3f}",
            f"{sc.relative_gap(res.fun, float(info.value)):.1e}"]  # fmt: skip


PER_ITERATION_HEADER = ["method", "n", "scipy nit / nfev", "optjx it / evals", "scipy ms/it",
                        "optjx ms/it", "optjx / scipy", "rel. gap in f"]  # fmt: skip


def quasi_newton_per_iteration(cfg, lbfgsb_only=False):
    rows = []
    for n, k in cfg["lbfgsb_sizes"]:
        reps = cfg["reps"] if n < 1_000_000 else max(1, cfg["reps"] // 2)  # seconds a round
        x0 = sc.rosenbrock_start(n)
        for label, lo, hi in (("free", None, None), ("box [-2, 0.8]", -2.0, 0.8)):
            bounds = None if lo is None else scipy.optimize.Bounds(np.full(n, lo), np.full(n, hi))
            s = scipy_call("L-BFGS-B", sc.rosenbrock, x0, dict(maxiter=k, ftol=0.0, gtol=0.0),
                           bounds=bounds)  # fmt: skip
            o = minimize_call(sc.rosenbrock, x0, optjx.lbfgs_b(
                lower=lo, upper=hi, max_iter=k, tolerance_grad=0.0, tolerance_change=0.0), 1)  # fmt: skip
            rows.append(per_iteration(f"L-BFGS-B, Rosenbrock {label}", n, k, s, o, reps)[1])
            sc.log(rows[-1])
    bfgs_ms = {}
    for n, k in [] if lbfgsb_only else cfg["bfgs_sizes"]:
        x0 = sc.rosenbrock_start(n)
        o = minimize_call(sc.rosenbrock, x0, optjx.bfgs(max_iter=k, tolerance_grad=0.0), 1)
        if n > cfg["bfgs_scipy_max_n"]:  # scipy's BFGS update is two n x n matrix products
            (_, info), _ = sc.first_call(o)
            (t_optjx,) = sc.interleaved([o], cfg["reps"], warm_up=False)
            per_optjx = t_optjx / int(info.iterations)
            m, per = max(bfgs_ms.items())
            estimate = per * (n / m) ** 3
            rows.append(["BFGS, Rosenbrock", f"{n:,}", "not run", f"{int(info.iterations)} / "
                         f"{int(info.evaluations)}", f"~{sc.ms(estimate)} (est.)", sc.ms(per_optjx),
                         f"~{per_optjx / estimate:.4f}", "n/a"])  # fmt: skip
        else:
            s = scipy_call("BFGS", sc.rosenbrock, x0, dict(maxiter=k, gtol=0.0))
            bfgs_ms[n], row = per_iteration("BFGS, Rosenbrock", n, k, s, o, cfg["reps"])
            rows.append(row)
        sc.log(rows[-1])
    sc.print_table("Per iteration: a fixed number of iterations (tolerances 0), Rosenbrock, "
                   "from (-1.2, 1, ...)", PER_ITERATION_HEADER, rows)  # fmt: skip


def end_to_end_problems(cfg):
    """``(label, n, loss, x0, bounds or None)``: small problems solved to convergence."""
    out = []
    for n in cfg["e2e_rosenbrock"]:
        out.append(("Rosenbrock", n, sc.rosenbrock, sc.rosenbrock_start(n), None))
    for n in cfg["e2e_logistic"]:
        loss, x0 = sc.logistic(n, samples=500)
        out.append(("logistic regression (500 samples)", n, loss, x0, None))
    for n in cfg["e2e_nnls"]:
        loss, x0 = sc.nonnegative_least_squares(n, rows=2 * n)
        out.append(("non-negative least squares", n, loss, x0, (0.0, np.inf)))
    return out


def quasi_newton_end_to_end(cfg):
    rows = []
    for label, n, loss, x0, box in end_to_end_problems(cfg):
        methods = [("L-BFGS-B", optjx.lbfgs_b(lower=None if box is None else box[0],
                                              upper=None if box is None else box[1]))]  # fmt: skip
        if box is None and n <= cfg["e2e_bfgs_max_n"]:
            methods.append(("BFGS", optjx.bfgs()))
        for name, method in methods:
            bounds = None if box is None else [box] * n
            s = scipy_call(name, loss, x0, bounds=bounds)
            o = minimize_call(loss, x0, method, 1000)
            plain = minimize_call(loss, x0, method, 1000, jit=False)
            res, s_first = sc.first_call(s)
            (_, info), o_first = sc.first_call(o)
            sc.first_call(plain)
            ts, to, tp = sc.interleaved([s, o, plain], cfg["e2e_reps"], warm_up=False)
            rows.append([f"{name}, {label}", f"{n:,}", f"{res.nit} / {res.nfev}",
                         f"{int(info.iterations)} / {int(info.evaluations)}", sc.ms(ts), sc.ms(to),
                         f"{to / ts:.2f}", sc.ms(tp), f"{tp / ts:.2f}", sc.ms(s_first),
                         sc.ms(o_first), f"{sc.relative_gap(res.fun, float(info.value)):.1e}"])  # fmt: skip
            sc.log(rows[-1])
    sc.print_table("End to end: default tolerances, to convergence (ms per solve, median)",
                   ["method, problem", "n", "scipy nit / nfev", "optjx it / evals", "scipy",
                    "optjx jitted", "ratio", "optjx plain call", "ratio", "scipy first call",
                    "optjx first call", "rel. gap in f"], rows)  # fmt: skip


def quasi_newton_compile(cfg):
    rows = []
    for name, method in (("lbfgs_b", optjx.lbfgs_b()), ("bfgs", optjx.bfgs())):
        wall, cpu = full_batch.compile_seconds(method, cfg["compile_leaves"],
                                               cfg["compile_rounds"], with_cpu=True)  # fmt: skip
        rows.append([name, cfg["compile_leaves"], f"{wall:.2f}", f"{cpu:.2f}"])
        sc.log(rows[-1])
    sc.print_table(f"Compile: one update on {cfg['compile_leaves']} float32 leaves of 100 "
                   f"(fastest of {cfg['compile_rounds']}, cleared cache)",
                   ["method", "leaves", "trace + lower + compile (s)", "its CPU time (s)"], rows)  # fmt: skip


FULL = dict(reps=5, e2e_reps=15, lbfgsb_sizes=[(1_000, 50), (100_000, 20), (1_000_000, 3)],
            bfgs_sizes=[(100, 50), (1_000, 10), (10_000, 3)], bfgs_scipy_max_n=1_000,
            e2e_rosenbrock=[10, 100], e2e_logistic=[100, 1_000], e2e_nnls=[100],
            e2e_bfgs_max_n=100, compile_leaves=100, compile_rounds=2)  # fmt: skip
QUICK = dict(reps=2, e2e_reps=3, lbfgsb_sizes=[(1_000, 10)], bfgs_sizes=[(100, 10), (300, 2)],
             bfgs_scipy_max_n=100, e2e_rosenbrock=[10], e2e_logistic=[], e2e_nnls=[],
             e2e_bfgs_max_n=100, compile_leaves=10, compile_rounds=1)  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--reps", type=int, default=None, help="timed rounds (default 5)")
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--lbfgsb-only", default=None, metavar="N[,N]",
                        help="only the L-BFGS-B per-iteration rows at these sizes (e.g. "
                             "100000,1000000), nothing else")  # fmt: skip
    args = parser.parse_args(argv)
    sections = args.sections.split(",")
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    import _scipy_newton  # noqa: PLC0415  # the Newton, least-squares and implicit sections

    cfg = dict(QUICK if args.quick else FULL)
    cfg.update(_scipy_newton.QUICK if args.quick else _scipy_newton.FULL)
    if args.reps is not None:
        cfg["reps"] = args.reps
    if args.lbfgsb_only is not None:
        sizes = [int(float(n)) for n in args.lbfgsb_only.split(",")]
        cfg["lbfgsb_sizes"] = [(n, k) for n, k in FULL["lbfgsb_sizes"] if n in sizes]
        quasi_newton_per_iteration(cfg, lbfgsb_only=True)
        return
    started = time.perf_counter()
    cpu = full_batch_machine()
    print(f"{cpu}; jax {jax.__version__}, scipy {scipy.__version__}, float64; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")  # fmt: skip
    if "quasi_newton" in sections:
        quasi_newton_per_iteration(cfg)
        quasi_newton_end_to_end(cfg)
        quasi_newton_compile(cfg)
    for section in ("newton", "least_squares", "implicit"):
        if section in sections:
            getattr(_scipy_newton, section)(cfg)
    print(f"\n({time.perf_counter() - started:.0f} s)")


def full_batch_machine() -> str:
    import os

    from _harness import cpu_model

    load = os.getloadavg()[0]
    return f"{cpu_model()} ({os.cpu_count()} cpus, load average {load:.1f}), {jax.devices()[0]}"


if __name__ == "__main__":
    main()
