"""Schedule-free learning from the paper's Algorithm 1, in float64 NumPy, in both forms.

Defazio et al. (2024), "The Road Less Scheduled", Algorithm 1 keeps three sequences:

    y_t = (1 - beta) z_t + beta x_t                      (gradient point)
    z_{t+1} = z_t - gamma_t (d_t + lambda y_t)           (base step, d_t from g(y_t))
    x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}        (weighted average)
    c_{t+1} = w_t / sum_{i<=t} w_i,  w_t = (t+1)^r max_{i<=t} gamma_i^p

and the memory-efficient form keeps only y and z:

    y_{t+1} = (1 - c) y_t + c z_t + gamma_t (beta (1 - c) - 1) (d_t + lambda y_t)

Both loops are written here from those lines; they must agree with each other, with the
``schedulefree`` 1.4.1 golden trajectories and with optjx (on a problem whose gradient
is taken at y, so the loop is closed).
"""

from __future__ import annotations

import json
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optjx

GOLDEN = pathlib.Path(__file__).resolve().parents[1] / "golden" / "schedule_free"


def rate_and_direction(kind, k, g, v, hp):
    """gamma_k and d_k at k applied updates (t = k + 1), and the new second moment."""
    t = k + 1
    lr = hp["lr"] * (min(1.0, t / hp["warmup"]) if hp["warmup"] else 1.0)
    if kind.startswith("sgd"):
        return lr, g, v
    b2, eps = hp["b2"], hp["eps"]
    v = b2 * v + (1.0 - b2) * g * g
    correction = 1.0 - b2**t
    if kind == "adamw":
        return lr, g / (np.sqrt(v / correction) + eps), v
    if kind == "paper":  # bias correction folded into the rate
        return lr * math.sqrt(correction), g / (np.sqrt(v) + eps), v
    rho_inf = 2.0 / (1.0 - b2) - 1.0  # radam (Liu et al. 2020, Alg. 2; threshold 4)
    rho = rho_inf - 2.0 * t * b2**t / correction
    if rho > 4.0:
        rect = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        return lr * rect, g / (np.sqrt(v / correction) + eps), v
    return lr * (0.0 if hp["silent"] else 1.0), g, v


def averaging_weight(k, lr, memory, hp):
    memory["lr_max"] = max(memory["lr_max"], lr)
    w = (k + 1) ** hp["r"] * memory["lr_max"] ** hp["power"]
    memory["sum"] += w
    return w / memory["sum"] if memory["sum"] > 0 else 0.0


def three_sequences(kind, hp, y0, grad_at, steps):
    """Algorithm 1 as written. ``hp["beta"]`` may be a function of k: y_{t+1} is formed
    with the beta of step k, and x stays the weighted average of the z's."""
    beta_at = hp["beta"] if callable(hp["beta"]) else lambda k: hp["beta"]
    y, z, x = y0.copy(), y0.copy(), y0.copy()
    v, memory = np.zeros_like(y0), {"lr_max": 0.0, "sum": 0.0}
    ys, xs = [], []
    for k in range(steps):
        lr, d, v = rate_and_direction(kind, k, grad_at(k, y), v, hp)
        z = z - lr * (d + hp["decay"] * y)
        c = averaging_weight(k, lr, memory, hp)
        x = (1.0 - c) * x + c * z
        y = (1.0 - beta_at(k)) * z + beta_at(k) * x
        ys.append(y)
        xs.append(x)
    return np.stack(ys), np.stack(xs)


def memory_efficient(kind, hp, y0, grad_at, steps):
    y, z = y0.copy(), y0.copy()
    v, memory, beta = np.zeros_like(y0), {"lr_max": 0.0, "sum": 0.0}, hp["beta"]
    ys, xs = [], []
    for k in range(steps):
        lr, d, v = rate_and_direction(kind, k, grad_at(k, y), v, hp)
        step = d + hp["decay"] * y
        c = averaging_weight(k, lr, memory, hp)
        y = (1.0 - c) * y + c * z + lr * (beta * (1.0 - c) - 1.0) * step
        z = z - lr * step
        ys.append(y)
        xs.append(y + (1.0 - 1.0 / beta) * (z - y))  # x recovered as eval() does
    return np.stack(ys), np.stack(xs)


KINDS = {
    "SGDScheduleFree": "sgd",
    "AdamWScheduleFree": "adamw",
    "AdamWScheduleFreePaper": "paper",
    "RAdamScheduleFree": "radam",
}


def hyperparameters(reference_kwargs):
    kw = reference_kwargs
    b1, b2 = kw.get("betas", (kw.get("momentum", 0.9), 0.999))
    return dict(
        lr=kw["lr"], beta=kw.get("momentum", b1), b2=b2, eps=kw.get("eps", 1e-8),
        decay=kw.get("weight_decay", 0.0), r=kw.get("r", 0.0),
        power=kw.get("weight_lr_power", 2.0), warmup=kw.get("warmup_steps", 0),
        silent=kw.get("silent_sgd_phase", True),
    )  # fmt: skip


def golden_cases():
    for path in sorted(GOLDEN.glob("*.npz")):
        with np.load(path) as data:
            config = json.loads(str(data["config"]))
            if config["reference"] not in KINDS:
                continue
            grads = {k[6:]: data[k] for k in data.files if k.startswith("grads/")}
            ys = {k[2:]: data[k] for k in data.files if k.startswith("y/")}
            xs = {k[2:]: data[k] for k in data.files if k.startswith("x/")}
        yield pytest.param(config, grads, ys, xs, id=path.stem)


@pytest.mark.parametrize(("config", "grads", "ys", "xs"), list(golden_cases()))
def test_both_forms_equal_the_reference_package(config, grads, ys, xs):
    kind, hp = KINDS[config["reference"]], hyperparameters(config["reference_kwargs"])
    for leaf in grads:
        y0, fed = ys[leaf][0].astype(np.float64), grads[leaf]
        for form in (three_sequences, memory_efficient):
            y_run, x_run = form(kind, hp, y0, lambda k, y, fed=fed: fed[k], config["steps"])
            np.testing.assert_allclose(y_run, ys[leaf][1:], 1e-9, 1e-13, err_msg=form.__name__)
            np.testing.assert_allclose(x_run, xs[leaf][1:], 1e-9, 1e-13, err_msg=form.__name__)


# A closed loop: the gradient of a noisy quadratic, taken at y.
CURVATURE = np.array([0.2, 1.0, 3.0, 10.0, 0.05])
TARGET = np.array([1.0, -2.0, 0.5, 0.0, 3.0])


def noisy_gradient(k, y):
    noise = np.random.default_rng(k).standard_normal(y.shape)
    return CURVATURE * (y - TARGET) + 0.3 * noise


CLOSED_LOOP = {
    "sgd": (dict(lr=0.08, beta=0.9, decay=1e-3, r=0.5, power=2.0, warmup=10),
            lambda: optjx.sgd_schedule_free(0.08, weight_decay=1e-3, r=0.5, warmup_steps=10)),
    "adamw": (dict(lr=0.05, beta=0.9, b2=0.99, eps=1e-8, decay=0.0, r=0.0, power=2.0,
                   warmup=20),
              lambda: optjx.adamw_schedule_free(0.05, b2=0.99, warmup_steps=20)),
    "paper": (dict(lr=0.05, beta=0.8, b2=0.999, eps=1e-8, decay=1e-2, r=1.0, power=1.0,
                   warmup=0),
              lambda: optjx.adamw_schedule_free(0.05, 0.8, weight_decay=1e-2, r=1.0,
                                                weight_lr_power=1.0, variant="paper")),
    "sgd-momentum-schedule": (
        dict(lr=0.08, beta=lambda k: 0.5 + 0.4 * min(k, 30) / 30, decay=0.0, r=0.0, power=2.0,
             warmup=5),
        lambda: optjx.sgd_schedule_free(
            0.08, optjx.schedules.linear(0.5, 0.9, 30), warmup_steps=5)),
    "radam": (dict(lr=0.05, beta=0.9, b2=0.95, eps=1e-8, decay=0.0, r=0.0, power=2.0,
                   warmup=0, silent=False),
              lambda: optjx.radam_schedule_free(0.05, b2=0.95, silent_sgd_phase=False)),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(CLOSED_LOOP))
def test_optjx_follows_algorithm_1_with_gradients_at_y(kind, x64):
    hp, make = CLOSED_LOOP[kind]
    steps, y0 = 120, np.zeros(5)
    y_three, x_three = three_sequences(kind, hp, y0, noisy_gradient, steps)
    if not callable(hp["beta"]):  # the memory-efficient form is for a constant beta
        y_mem, x_mem = memory_efficient(kind, hp, y0, noisy_gradient, steps)
        np.testing.assert_allclose(y_mem, y_three, 1e-10, 1e-12)
        np.testing.assert_allclose(x_mem, x_three, 1e-10, 1e-12)

    tx = make()
    update = jax.jit(tx.update)
    params = jnp.asarray(y0)
    state = tx.init(params)
    for k in range(steps):
        g = jnp.asarray(noisy_gradient(k, np.asarray(params)))
        updates, state = update(g, state, params)
        params = optax.apply_updates(params, updates)
        x = optjx.schedule_free_eval_params(state, params)
        np.testing.assert_allclose(params, y_three[k], 1e-9, 1e-12, err_msg=f"y step {k + 1}")
        np.testing.assert_allclose(x, x_three[k], 1e-9, 1e-12, err_msg=f"x step {k + 1}")

    # and the method optimizes: the loss at x falls well below its starting value
    def loss(w):
        return 0.5 * np.sum(CURVATURE * (w - TARGET) ** 2)

    assert loss(x_three[-1]) < 0.5 * loss(y0)
