"""Every NIST StRD problem (and the synthetic ones of ``_least_squares_problems``) as one
residual function of one shape, so that one compiled ``update`` serves all 31 (the tests
would otherwise compile 31 programs).

Problem ``k`` with ``n_k`` parameters and ``m_k`` observations becomes a problem in
``N = 9`` parameters with ``M + N`` residuals (``M = 250``): the data residuals padded with
zeros, then one residual ``b_j`` for each padding parameter ``j >= n_k`` (started at 0).
In exact arithmetic Levenberg-Marquardt takes the same steps: the padding block of the
Jacobian is the identity with zero residuals, so its step, its gradient and its share of
``||D x||`` stay 0 (``D_j = 1``), and the real block is untouched. ``lax.switch`` picks
the model.
"""

from __future__ import annotations

import json
import pathlib

import jax.numpy as jnp
import numpy as np
from _least_squares_problems import SYNTHETIC
from _nist_models import residuals
from jax import lax

GOLDEN = pathlib.Path(__file__).parents[1] / "golden"
PROBLEMS = json.loads((GOLDEN / "nist_strd.json").read_text())["problems"]
NAMES = list(PROBLEMS) + list(SYNTHETIC)
N = max(len(p["start1"]) for p in PROBLEMS.values())
M = max(len(p["y"]) for p in PROBLEMS.values())
_SYNTHETIC_ROWS = {"rosenbrock": 2, "exponential_exact": 12, "linear": 8, "freudenstein_roth": 2}


def size(name: str) -> int:
    """The number of real parameters of problem ``name``."""
    return len(SYNTHETIC[name][1]) if name in SYNTHETIC else len(PROBLEMS[name]["start1"])


def data(name: str):
    """``(which, x, y, rows, n_k)``: the model index, the padded predictors ``(2, M)``, the
    padded response, the mask of real rows and the number of real parameters."""
    if name in SYNTHETIC:
        zeros = jnp.zeros(M)
        return (
            NAMES.index(name),
            jnp.stack([zeros, zeros]),
            zeros,
            jnp.arange(M) < _SYNTHETIC_ROWS[name],
            size(name),
        )
    p = PROBLEMS[name]
    x = np.asarray(p["x"], np.float64)
    x = x if x.ndim == 2 else np.stack([x, x])
    m = x.shape[1]
    x = np.concatenate([x, np.repeat(x[:, :1], M - m, axis=1)], axis=1)  # finite padding
    y = np.concatenate([np.asarray(p["y"]), np.repeat(p["y"][:1], M - m)])
    return NAMES.index(name), jnp.asarray(x), jnp.asarray(y), jnp.arange(M) < m, len(p["start1"])


def start(name: str, which_start: str = "start1") -> jnp.ndarray:
    """The padded start (NIST's "Start 1" or "Start 2"; a synthetic problem has one)."""
    b = np.zeros(N)
    b[: size(name)] = SYNTHETIC[name][1] if name in SYNTHETIC else PROBLEMS[name][which_start]
    return jnp.asarray(b)


def residual_fn(which, x, y, rows, n_real):
    """The padded residuals of problem ``which`` as a function of the 9 parameters."""

    def branch(name):
        n = size(name)
        if name in SYNTHETIC:
            fn = SYNTHETIC[name][0]
            return lambda b: jnp.zeros(M, b.dtype).at[: _SYNTHETIC_ROWS[name]].set(fn(b[:n]))
        predictor = x if name == "Nelson" else x[0]
        return lambda b: residuals(name, b[:n], predictor, y, jnp)

    branches = [branch(name) for name in NAMES]

    def fn(b):
        data_part = jnp.where(rows, lax.switch(which, branches, b), 0.0)
        padding_part = jnp.where(jnp.arange(N) >= n_real, b, 0.0)
        return jnp.concatenate([data_part, padding_part])

    return fn
