"""A user's training script, as a new user writes it from the docs: a Flax Linen model
trained by a jitted loop with an optimizer chain, parameter groups and schedules, early stopping, and full-batch L-BFGS.

Checked, not run: ``test_user_script.py`` runs ``mypy --strict`` on it against optjx as
the README installs it, and expects no error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

import optjx
from optjx.typing import Hyperparameter, Schedule

Params = Mapping[str, Any]
Apply = Callable[..., Any]  # what flax's Module.apply is typed as


class Regressor(nn.Module):
    hidden: int = 16

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(nn.Dense(self.hidden)(x))
        out: jax.Array = nn.Dense(1)(x)
        return out[..., 0]


def learning_rate(peak: float, steps: int, warmup_steps: int) -> Schedule:
    return optjx.schedules.warmup(optjx.schedules.cosine(peak, steps - warmup_steps), warmup_steps)


def one_cycle_sgd(peak: float, steps: int) -> optjx.GradientTransformation:
    # torch's OneCycleLR, rate and momentum, as optjx's torch-named schedules
    rate = optjx.schedules.one_cycle_lr(peak, total_steps=steps, anneal_strategy="linear")
    momentum = optjx.schedules.one_cycle_momentum(peak, total_steps=steps)
    return optjx.sgd(rate, momentum, nesterov=True)


def make_optimizer(
    rate: Hyperparameter, momentum: Hyperparameter = 0.9
) -> optjx.GradientTransformation:
    return optjx.monitor(
        optjx.chain(
            optjx.clip_by_global_norm(1.0),
            optjx.param_groups(
                optjx.adamw,
                [("bias", {"weight_decay": 0.0})],
                learning_rate=rate,
                b1=momentum,
                weight_decay=0.05,
            ),
        )
    )


def mse(apply: Apply, params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean((apply(params, x) - y) ** 2)


def fit(x: jax.Array, y: jax.Array, epochs: int) -> Params:
    model = Regressor()
    params: Params = model.init(jax.random.key(0), x)
    schedule = learning_rate(1e-2, 10 * epochs, 10)
    first: jax.Array = schedule(0)
    momentum = optjx.schedules.linear(0.5, 0.9, 100)
    tx = make_optimizer(schedule, momentum) if epochs > 1 else one_cycle_sgd(1e-2, 10)
    opt_state = tx.init(params)

    @jax.jit
    def train_step(params: Params, opt_state: Any) -> tuple[Params, Any]:
        grads = jax.grad(lambda p: mse(model.apply, p, x, y))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optjx.apply_updates(params, updates), opt_state

    stopper = optjx.early_stopping(patience=3, mode="min", min_delta=1e-4)
    stop: optjx.EarlyStoppingState = stopper.init(params)
    for _ in range(epochs):
        for _ in range(10):
            params, opt_state = train_step(params, opt_state)
        grad_norm: jax.Array = optjx.diagnostics(opt_state)["grad_norm"]
        print(f"gradient norm {float(grad_norm):.3g}")
        stop = stopper.update(stop, mse(model.apply, params, x, y), params)
        if bool(stop.should_stop):
            break
    print(f"first rate {float(first):.3g}, best epoch {int(stop.best_step)}")
    best: Params = stop.best_params
    return best


def refine_full_batch(params: Params, x: jax.Array, y: jax.Array) -> Params:
    apply = Regressor().apply

    def loss(p: Params) -> jax.Array:
        return mse(apply, p, x, y)

    opt = optjx.lbfgs(line_search_fn="strong_wolfe", history_size=10)
    opt_state = opt.init(params)
    for _ in range(5):
        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = opt.update(grads, opt_state, params, value=value, value_fn=loss)
        params = optjx.apply_updates(params, updates)
    print(optjx.stop_reason(opt_state))
    return params


if __name__ == "__main__":
    xs = jax.random.normal(jax.random.key(1), (64, 3))
    ys = jnp.sin(xs).sum(axis=1)
    refine_full_batch(fit(xs, ys, epochs=20), xs, ys)
