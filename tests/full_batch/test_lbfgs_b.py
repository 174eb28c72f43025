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
        "nnls", "rosenbrock3_infeasible", "breakpoints"]  # fmt: skip


def _loss(golden):
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
