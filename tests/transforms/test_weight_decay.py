"""add_decayed_weights against u_t = g_t + l_k w_t, masked, and coupled vs decoupled decay."""

import jax.numpy as jnp
import numpy as np
import pytest
from _reference import (
    adam_step,
    assert_trajectories_close,
    mixed_gradients,
    per_leaf,
    random_params,
    run,
    run_training,
)

import optjx
from optjx import schedules


@pytest.mark.parametrize(
    "weight_decay, ref_decay",
    [
        (1e-2, lambda k: 1e-2),
        (0.0, lambda k: 0.0),
        (schedules.cosine(0.5, 40), lambda k: 0.5 * 0.5 * (1 + np.cos(np.pi * min(k, 40) / 40))),
    ],
    ids=["constant", "zero", "schedule"],
)
def test_adds_decayed_weights(x64, weight_decay, ref_decay):
    grads = mixed_gradients(55, seed=81)
    params = random_params(seed=82, steps=55)
    actual, state = run(optjx.add_decayed_weights(weight_decay), grads, params)

    def reference(sequence, weights):
        return [
            g + ref_decay(k) * w for k, (g, w) in enumerate(zip(sequence, weights, strict=True))
        ]

    assert_trajectories_close(actual, per_leaf(reference, grads, params), rtol=1e-12)
    assert int(state.count) == 55  # a constant decay too: one structure for every form


@pytest.mark.parametrize(
    "mask",
    [{"w": True, "b": False}, lambda params: {name: p.ndim > 1 for name, p in params.items()}],
    ids=["tree", "function"],
)
def test_mask_excludes_leaves(x64, mask):
    grads = mixed_gradients(50, seed=83)
    params = random_params(seed=84, steps=50)
    actual, _ = run(optjx.add_decayed_weights(0.3, mask=mask), grads, params)
    expected = [
        {"w": g["w"] + 0.3 * p["w"], "b": g["b"]} for g, p in zip(grads, params, strict=True)
    ]
    assert_trajectories_close(actual, expected, rtol=1e-12)


def test_needs_params():
    tx = optjx.add_decayed_weights(0.1)
    g = {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match="params"):
        tx.update(g, tx.init(g))


# Coupled and decoupled decay through the aliases, closed loop (params move each step).

LR, WD, B1, B2, EPS = 1e-2, 0.1, 0.9, 0.999, 1e-8


def _adam_loop(grads, params, coupled):
    """torch.optim.Adam (coupled: g += wd w) or torch.optim.AdamW (w *= 1 - lr wd)."""
    w = {name: leaf.copy() for name, leaf in params.items()}
    state = {name: None for name in w}
    trajectory = []
    for g in grads:
        for name in w:
            grad = g[name] + WD * w[name] if coupled else g[name]
            if not coupled:
                w[name] = w[name] * (1 - LR * WD)
            direction, state[name] = adam_step(grad, state[name], b1=B1, b2=B2, eps=EPS)
            w[name] = w[name] - LR * direction
        trajectory.append({name: leaf.copy() for name, leaf in w.items()})
    return trajectory


@pytest.mark.parametrize("coupled", [True, False], ids=["adam-coupled", "adamw-decoupled"])
def test_adam_weight_decay_placement(x64, coupled):
    grads = mixed_gradients(50, seed=85)
    params = random_params(seed=86)
    alias = optjx.adam if coupled else optjx.adamw
    actual = run_training(alias(LR, B1, B2, eps=EPS, weight_decay=WD), grads, params).params
    assert_trajectories_close(actual, _adam_loop(grads, params, coupled), rtol=1e-9)


def test_sgd_weight_decay_with_momentum(x64):
    # torch.optim.SGD: g += wd w; b = mu b + (1 - tau) g (b_1 = g); w -= lr (g + mu b).
    grads = mixed_gradients(50, seed=87)
    params = random_params(seed=88)
    lr, mu, wd = 1e-3, 0.9, 0.05
    tx = optjx.sgd(lr, momentum=mu, nesterov=True, weight_decay=wd)
    actual = run_training(tx, grads, params).params
    w = {name: leaf.copy() for name, leaf in params.items()}
    b = {name: None for name in w}
    expected = []
    for g in grads:
        for name in w:
            grad = g[name] + wd * w[name]
            b[name] = grad.copy() if b[name] is None else mu * b[name] + grad
            w[name] = w[name] - lr * (grad + mu * b[name])
        expected.append({name: leaf.copy() for name, leaf in w.items()})
    assert_trajectories_close(actual, expected, rtol=1e-9)
