"""The functions and problems of ``tests/golden/generate_scipy_quasi_newton.py``, again.

``FUNCTIONS``: the one-dimensional functions ``(phi, dphi)(a, p, q)`` in NumPy floats,
written from Moré & Thuente (1994, sec. 5) and the generator's docstrings; ``jax_phi``: the
same as JAX functions of a 1-vector, for the searches on pytrees. ``rosenbrock`` and
``logistic``: the BFGS problems in JAX, and the L-BFGS-B ones.
"""

from __future__ import annotations

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

GOLDEN = pathlib.Path(__file__).resolve().parents[1] / "golden" / "quasi_newton"


def load(name: str) -> dict:
    with np.load(GOLDEN / f"{name}.npz") as data:
        return {k: data[k] for k in data.files}


def _gamma(b):
    return math.sqrt(1 + b**2) - b


def mt1(a, p, q):
    return -a / (a**2 + p), (a**2 - p) / (a**2 + p) ** 2


def mt2(a, p, q):
    return (a + p) ** 5 - 2 * (a + p) ** 4, 5 * (a + p) ** 4 - 8 * (a + p) ** 3


def mt3(a, p, q):
    if a <= 1 - p:
        f0, g0 = 1 - a, -1.0
    elif a >= 1 + p:
        f0, g0 = a - 1, 1.0
    else:
        f0, g0 = (a - 1) ** 2 / (2 * p) + p / 2, (a - 1) / p
    w = q * math.pi / 2
    return f0 + 2 * (1 - p) / (q * math.pi) * math.sin(w * a), g0 + (1 - p) * math.cos(w * a)


def mt456(a, p, q):
    r1, r2 = math.sqrt((1 - a) ** 2 + q**2), math.sqrt(a**2 + p**2)
    return _gamma(p) * r1 + _gamma(q) * r2, -_gamma(p) * (1 - a) / r1 + _gamma(q) * a / r2


def quadratic(a, p, q):
    return p * (a - q) ** 2 - p * q**2, 2 * p * (a - q)


def linear(a, p, q):
    return -p * a, -p


FUNCTIONS = [mt1, mt2, mt3, mt456, quadratic, linear]


def jax_phi(function: int, p: float, q: float):
    """``x -> phi(x[0])`` in JAX (autodiff gives ``dphi``)."""

    def mt3_jax(a):
        f0 = jnp.where(a <= 1 - p, 1 - a,
                       jnp.where(a >= 1 + p, a - 1, (a - 1) ** 2 / (2 * p) + p / 2))  # fmt: skip
        return f0 + 2 * (1 - p) / (q * math.pi) * jnp.sin(q * math.pi / 2 * a)

    def mt456_jax(a):
        return (_gamma(p) * jnp.sqrt((1 - a) ** 2 + q**2)
                + _gamma(q) * jnp.sqrt(a**2 + p**2))  # fmt: skip

    one = [
        lambda a: -a / (a**2 + p),
        lambda a: (a + p) ** 5 - 2 * (a + p) ** 4,
        mt3_jax,
        mt456_jax,
        lambda a: p * (a - q) ** 2 - p * q**2,
        lambda a: -p * a,
    ][function]
    return lambda x: one(x[0])


def rosenbrock(p):
    x = p["x"]
    return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def logistic(data):
    """Mean logistic loss + 0.005 |w|^2; params ``{"b": (), "w": (5,)}``."""
    x, y = jnp.asarray(data["data/x"]), jnp.asarray(data["data/y"])

    def loss(p):
        z = x @ p["w"] + p["b"]
        return jnp.mean(jnp.logaddexp(z, 0.0) - y * z) + 0.5 * 1e-2 * jnp.sum(p["w"] ** 2)

    return loss


def logistic_vector(data):
    """``logistic`` of the flat ``[b, w]`` (the L-BFGS-B golden's params ``{"x": (6,)}``)."""
    loss = logistic(data)
    return lambda p: loss({"b": p["x"][0], "w": p["x"][1:]})


def least_squares(data):
    """``0.5 |A x - b|^2`` of the golden's ``data/a``, ``data/b``; params ``{"x": (n,)}``."""
    a, b = jnp.asarray(data["data/a"]), jnp.asarray(data["data/b"])

    def loss(p):
        r = a @ p["x"] - b
        return 0.5 * r @ r

    return loss


def weighted_quadratic(data):
    """``0.5 sum c_i (x_i - a_i)^2`` of the golden's ``data/c``, ``data/a``."""
    c, a = jnp.asarray(data["data/c"]), jnp.asarray(data["data/a"])
    return lambda p: 0.5 * jnp.sum(c * (p["x"] - a) ** 2)


def flat(params) -> np.ndarray:
    """The leaves of ``params`` in one NumPy vector, in tree order (the goldens' order)."""
    return np.concatenate([np.ravel(np.asarray(leaf)) for leaf in jax.tree.leaves(params)])


def stepper(opt, loss):
    """One jitted update of ``opt`` on ``loss``, given the value and gradient at ``params``."""

    @jax.jit
    def step(params, state):
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state, params, value=value, value_fn=loss)
        return optax.apply_updates(params, updates), state

    return step
