"""What ``benchmarks/full_batch_scipy.py``'s sections share: float64, the problems, scipy's
side as a user writes it, timing and tables.

Importing this module switches JAX to float64 (scipy computes in float64: both sides
then run the same arithmetic and can be checked to reach the same value).
"""

from __future__ import annotations

import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from full_batch import interleaved  # noqa: E402, F401  # the timer of the L-BFGS benchmark

# ----------------------------------------------------------------------------- problems


def rosenbrock(x):
    """The chained Rosenbrock function in ``n`` dimensions (scipy's ``rosen``)."""
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosenbrock_start(n: int):
    """The classic start, ``(-1.2, 1, -1.2, 1, ...)``."""
    return jnp.full(n, -1.2).at[1::2].set(1.0)


def logistic(n: int, samples: int, seed: int = 0):
    """An L2-regularised logistic regression on ``n`` features: ``(loss, zeros(n))``."""
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(samples, n)) / np.sqrt(n))
    y = jnp.asarray((rng.uniform(size=samples) > 0.5).astype(np.float64))

    def loss(w):
        z = x @ w
        return jnp.mean(jnp.logaddexp(z, 0.0) - y * z) + 1e-3 * jnp.sum(w * w)

    return loss, jnp.zeros(n)


def nonnegative_least_squares(n: int, rows: int, seed: int = 0):
    """``0.5 |A x - b|^2`` with ``x >= 0`` (about half the bounds active at the
    solution): ``(loss, start)``."""
    rng = np.random.default_rng(seed)
    a = jnp.asarray(rng.normal(size=(rows, n)) / np.sqrt(rows))
    b = jnp.asarray(rng.normal(size=rows))

    def loss(x):
        r = a @ x - b
        return 0.5 * jnp.sum(r * r)

    return loss, jnp.full(n, 0.5)


# ----------------------------------------------------------------------------- scipy's side


def numpy_value_and_grad(loss):
    """What a scipy user writes for ``jac=True``: a jitted value-and-grad, numpy out."""
    value_and_grad = jax.jit(jax.value_and_grad(loss))

    def fun(x):
        value, grad = value_and_grad(x)
        return float(value), np.asarray(grad)

    return fun


def numpy_hessp(loss):
    """scipy's ``hessp(x, p)``: a jitted Hessian-vector product (forward over reverse)."""
    product = jax.jit(lambda x, p: jax.jvp(jax.grad(loss), (x,), (p,))[1])
    return lambda x, p: np.asarray(product(x, p))


# ----------------------------------------------------------------------------- timing


def first_call(fn):
    """``(result, seconds)`` of one call: for a fresh jitted function, compile included."""
    start = time.perf_counter()
    result = jax.block_until_ready(fn())
    return result, time.perf_counter() - start


def log(*what) -> None:
    """Progress on stderr (the tables go to stdout)."""
    print(*what, file=sys.stderr, flush=True)


def relative_gap(a: float, b: float) -> float:
    """``|a - b| / max(|a|, |b|, 1)``: scipy's ``ftol`` measure (absolute near 0)."""
    return abs(a - b) / max(abs(a), abs(b), 1.0)


# ----------------------------------------------------------------------------- tables


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.3g}" if seconds < 10 else f"{1000 * seconds:,.0f}"


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    """A Markdown table, as the README holds it."""
    print(f"\n{title}")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
