"""The problems of tests/golden/generate_full_batch.py, in JAX from the same formulas."""

from __future__ import annotations

import json
import pathlib

import jax.numpy as jnp
import numpy as np

GOLDEN = pathlib.Path(__file__).resolve().parents[1] / "golden"


def load(name: str):
    with np.load(GOLDEN / f"{name}.npz") as data:
        return {k: data[k] for k in data.files}


def config(arrays) -> dict:
    return json.loads(str(arrays["config"]))


def rosenbrock(p):
    x = p["x"]
    return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def logistic(data):
    x, y = jnp.asarray(data["x"]), jnp.asarray(data["y"])

    def loss(p):
        z = x @ p["w"] + p["b"]
        nll = jnp.mean(jnp.logaddexp(z, jnp.zeros_like(z)) - y * z)
        return nll + 0.5 * 1e-2 * jnp.sum(p["w"] ** 2)

    return loss


def double_well(p):
    return jnp.sum(0.25 * p["x"] ** 4 - p["x"] ** 2 + 0.1 * p["x"])


def loss_fn(problem: str, data=None):
    if problem == "logistic":
        return logistic(data)
    return {"rosenbrock": rosenbrock, "double_well": double_well}[problem]


def logistic_data(arrays):
    return {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("data/")}
