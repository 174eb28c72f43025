"""Cards of the building blocks in ``optjx/transforms``."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax

import optjx

from ._card import Card, Tuned
from ._card import config as C
from ._shared import (
    ADAFACTOR,
    ADAM,
    ADAMAX,
    DBD,
    DECAY,
    DIRECTION,
    EPS0,
    LINEAR,
    LR,
    NADAM,
    NAN,
    NEWTON_SCHULZ,
    NO_LEAF_STATE,
    NONNEG,
    NOVOGRAD,
    PARAMS,
    RPROP,
    as_matrices,
    cosine,
    lr,
    matrices_of,
    not_biases,
    q,
    r,
    ramp,
)

# fmt: off
CARDS = [
    Card(
        "scale",
        (
            C("negative-constant", dict(step_size=-0.1), **LINEAR, **NO_LEAF_STATE),
            C("schedule", dict(step_size=ramp(-0.1, -0.01, 10)), **LINEAR, **NO_LEAF_STATE),
        ),
        Tuned(
            lambda: optjx.scale(-0.1), lambda: optax.chain(optjx.trace(0.9), optjx.scale(-1.5e-3))
        ),
        {},  # any real number is a step size
    ),
    Card(
        "scale_by_learning_rate",
        (
            C("plain", dict(learning_rate=0.1), **LINEAR, **NO_LEAF_STATE),
            C("no-flip-cosine", dict(learning_rate=cosine(0.1, 10), flip_sign=False),
              **DIRECTION, **LINEAR, **NO_LEAF_STATE),
        ),
        Tuned(
            lambda: optjx.scale_by_learning_rate(0.1),
            lambda: optax.chain(optjx.trace(0.9), optjx.scale_by_learning_rate(1.5e-3)),
        ),
        {"learning_rate": [*LR["learning_rate"], -1e-3, np.array(-1.0)]},
    ),
    Card(
        "trace",
        (
            C("heavy-ball", dict(decay=0.9), **DIRECTION, **LINEAR),
            C("nesterov", dict(decay=0.9, nesterov=True), **DIRECTION, **LINEAR),
            C("dampening-schedule-f32-buffer",
              dict(decay=ramp(0.5, 0.9, 10), dampening=0.5, accumulator_dtype=jnp.float32),
              **DIRECTION, **LINEAR),
            C("dampening", dict(decay=0.9, dampening=0.5), **DIRECTION, **LINEAR),
        ),
        Tuned(lr(lambda: optjx.trace(0.5), 0.05), lr(lambda: optjx.trace(0.9), 1.5e-3)),
        {"decay": [*NONNEG, -0.1], "dampening": [*NONNEG, -0.5]},
    ),
    Card(
        "ema",
        (
            C("plain", dict(decay=0.9), **DIRECTION, **LINEAR),
            C("debias-schedule-f32",
              dict(decay=ramp(0.5, 0.9, 10), debias=True, accumulator_dtype=jnp.float32),
              **DIRECTION, **LINEAR),
            C("debias", dict(decay=0.9, debias=True), **DIRECTION, **LINEAR),
        ),
        Tuned(
            lr(lambda: optjx.ema(0.5, debias=True), 0.05),
            lr(lambda: optjx.ema(0.9, debias=True), 3e-3),
        ),
        {"decay": [*DECAY, 1.5]},
        sharded={
            "ema_bias_correction": lambda: optjx.chain(
                optjx.ema(0.9), optjx.bias_correction(0.9), optjx.scale_by_learning_rate(0.05)
            ),
        },
    ),
    Card(
        "bias_correction",
        (
            C("constant", dict(decay=0.9), **DIRECTION, **LINEAR, **NO_LEAF_STATE),
            C("schedule", dict(decay=ramp(0.5, 0.99, 10)),
              **DIRECTION, **LINEAR, **NO_LEAF_STATE),
        ),
        Tuned(
            lambda: optax.chain(
                optjx.ema(0.5), optjx.bias_correction(0.5), optjx.scale_by_learning_rate(0.05)
            ),
            lambda: optax.chain(
                optjx.ema(0.9), optjx.bias_correction(0.9), optjx.scale_by_learning_rate(3e-3)
            ),
        ),
        {"decay": [*DECAY, -1e-3]},
    ),
    Card(
        "scale_by_rms",
        (
            C("plain", **DIRECTION, **EPS0),
            C("centered-initial-scale-eps-root",
              dict(decay=0.99, centered=True, initial_scale=1.0, eps_root=1e-8), **DIRECTION),
        ),
        Tuned(
            lr(optjx.scale_by_rms, q(0.05)),
            lambda: optax.chain(
                optjx.scale_by_rms(0.99), optjx.trace(0.9), optjx.scale_by_learning_rate(r(3e-3))
            ),
        ),
        {"decay": [*DECAY, -0.5], "eps": [*NONNEG, -1e-8], "eps_root": [*NONNEG, -1e-8],
         "initial_scale": [*NONNEG, -1.0]},
    ),
    Card(
        "scale_by_adagrad",
        (
            C("plain", **DIRECTION, **EPS0),
            C("initial-accumulator-eps-root",
              dict(initial_accumulator_value=0.1, eps=0.0, eps_root=1e-8), **DIRECTION),
        ),
        Tuned(lr(optjx.scale_by_adagrad, 0.5), lr(optjx.scale_by_adagrad, 0.5)),
        {"initial_accumulator_value": [*NONNEG, -0.1], "eps": [*NONNEG, -1e-10],
         "eps_root": [*NONNEG, -1.0]},
        # optax's adagrad: eps inside the root and a 0.1 initial accumulator.
        twins={"adagrad": (
            lambda: optax.chain(
                optjx.scale_by_adagrad(initial_accumulator_value=0.1, eps=0.0, eps_root=1e-7),
                optjx.scale_by_learning_rate(0.1)),
            lambda: optax.adagrad(0.1))},
    ),
    Card(
        "scale_by_adam",
        (
            C("plain", **DIRECTION, **EPS0),
            C("amsgrad-f32-moments-b2-schedule",
              dict(b2=ramp(0.9, 0.999, 10), amsgrad=True, mu_dtype=jnp.float32,
                   nu_dtype=jnp.float32), **DIRECTION),
            C("eps-root", dict(b1=0.9, b2=0.99, eps_root=1e-8), **DIRECTION),
        ),
        Tuned(
            lr(optjx.scale_by_adam, q(0.1)), lr(lambda: optjx.scale_by_adam(b2=0.99), r(0.01))
        ),
        {**ADAM, "eps": [*NONNEG, -1e-8], "eps_root": [*NONNEG, -1e-8]},
    ),
    Card(
        "scale_by_adadelta",
        (
            C("plain", **DIRECTION),
            C("rho-eps", dict(rho=0.95, eps=1e-4), **DIRECTION),
        ),
        Tuned(
            lr(optjx.scale_by_adadelta, 10.0),
            lr(lambda: optjx.scale_by_adadelta(0.9, eps=1e-5), r(0.1)),
        ),
        {"rho": DECAY, "eps": [*NONNEG, -1e-6]},
    ),
    Card(
        "scale_by_radam",
        (
            C("plain", **DIRECTION),
            C("threshold-4", dict(b1=0.9, b2=0.99, threshold=4.0), **DIRECTION),
        ),
        Tuned(
            lr(optjx.scale_by_radam, q(0.1)), lr(lambda: optjx.scale_by_radam(b2=0.99), r(1e-3))
        ),
        {"b1": DECAY, "b2": DECAY, "eps": [*NONNEG, -1e-8], "threshold": [3.9, NAN]},
    ),
    Card(
        "scale_by_novograd",
        (
            C("plain", **DIRECTION, **EPS0),
            C("grad-averaging-weight-decay",
              dict(b1=0.9, b2=0.99, grad_averaging=True, weight_decay=1e-2), **DIRECTION,
              **PARAMS),
        ),
        Tuned(
            lr(lambda: optjx.scale_by_novograd(grad_averaging=True), q(0.1)),
            lr(lambda: optjx.scale_by_novograd(grad_averaging=True), r(0.02)),
        ),
        NOVOGRAD,
    ),
    Card(
        "scale_by_delta_bar_delta",
        (
            C("jacobs", dict(initial_learning_rate=0.05, kappa=1e-3, phi=0.1, gamma=0.7),
              **DIRECTION),
            C("phi-schedule",
              dict(initial_learning_rate=0.01, kappa=1e-2, phi=ramp(0.1, 0.5, 10), gamma=0.5),
              **DIRECTION),
        ),
        Tuned(
            lambda: optax.chain(
                optjx.scale_by_delta_bar_delta(0.01, kappa=1e-3, phi=0.3, gamma=0.7),
                optjx.scale(-1.0),
            ),
            lambda: optax.chain(
                optjx.scale_by_delta_bar_delta(1e-3, kappa=1e-4, phi=0.3, gamma=0.7),
                optjx.scale(-1.0),
            ),
        ),
        DBD,
    ),
    Card(
        "add_decayed_weights",
        (
            C("constant", dict(weight_decay=1e-2),
              **DIRECTION, **PARAMS, **LINEAR, **NO_LEAF_STATE),
            C("mask-schedule", dict(weight_decay=ramp(1e-2, 1e-3, 10), mask=not_biases),
              **DIRECTION, **PARAMS, **LINEAR, **NO_LEAF_STATE),
        ),
        Tuned(
            lambda: optax.chain(optjx.add_decayed_weights(1e-4), optjx.scale_by_learning_rate(0.1)),
            lambda: optax.chain(
                optjx.add_decayed_weights(1e-5), optjx.trace(0.9),
                optjx.scale_by_learning_rate(1.5e-3),
            ),
        ),
        {"weight_decay": [*NONNEG, -1e-4]},
    ),
    Card(
        "clip",
        (
            C("constant", dict(max_delta=0.5), **DIRECTION, **NO_LEAF_STATE),
            C("schedule", dict(max_delta=ramp(1.0, 0.1, 10)), **DIRECTION, **NO_LEAF_STATE),
        ),
        Tuned(
            lr(lambda: optjx.clip(1.0), 0.1),
            lambda: optax.chain(
                optjx.clip(1.0), optjx.trace(0.9), optjx.scale_by_learning_rate(1e-3)
            ),
        ),
        {"max_delta": [*NONNEG, -1.0]},
        sharded={"clip_sgd": lambda: optjx.chain(optjx.clip(0.05), optjx.sgd(0.1))},
    ),
    Card(
        "clip_by_global_norm",
        (
            C("constant", dict(max_norm=1.0), **DIRECTION, **NO_LEAF_STATE),
            C("schedule", dict(max_norm=ramp(2.0, 0.5, 10)), **DIRECTION, **NO_LEAF_STATE),
        ),
        Tuned(
            lr(lambda: optjx.clip_by_global_norm(1.0), 0.1),
            lambda: optax.chain(
                optjx.clip_by_global_norm(10.0), optjx.trace(0.9),
                optjx.scale_by_learning_rate(1.5e-3),
            ),
        ),
        {"max_norm": [0.0, -1.0, NAN]},
        sharded={
            "clip_global_norm_adam":
                lambda: optjx.chain(optjx.clip_by_global_norm(0.1), optjx.adam(0.05)),
        },
    ),
    Card(
        "scale_by_nadam",
        (
            C("plain", **DIRECTION, **EPS0),
            C("momentum-decay-b2-schedule",
              dict(b1=0.8, b2=ramp(0.9, 0.99, 10), momentum_decay=0.05), **DIRECTION),
        ),
        Tuned(
            lr(optjx.scale_by_nadam, q(0.1)), lr(lambda: optjx.scale_by_nadam(b2=0.99), r(0.01))
        ),
        NADAM,
    ),
    Card(
        "scale_by_adamax",
        (
            C("plain", **DIRECTION, **EPS0),
            C("eps-b1-schedule", dict(b1=ramp(0.5, 0.9, 10), eps=1e-3), **DIRECTION),
        ),
        Tuned(
            lr(optjx.scale_by_adamax, q(0.1)),
            lr(lambda: optjx.scale_by_adamax(b2=0.99), r(0.01)),
        ),
        ADAMAX,
    ),
    Card(
        "scale_by_rprop",
        (
            C("plain", **DIRECTION, scale_invariant={}),
            C("eta-minus-schedule", dict(learning_rate=0.1, etas=(ramp(0.2, 0.5, 10), 1.2)),
              **DIRECTION, scale_invariant={}),
        ),
        Tuned(
            lambda: optax.chain(optjx.scale_by_rprop(1e-2), optjx.scale(-1.0)),
            lambda: optax.chain(optjx.scale_by_rprop(1e-3, step_sizes=(1e-8, 0.1)),
                                optjx.scale(-1.0)),
        ),
        {"learning_rate": [*NONNEG, -0.1], **RPROP},
    ),
    Card(
        "scale_by_adafactor",
        (
            C("plain", **DIRECTION, **PARAMS, scale_invariant={"eps": (0.0, 1e-3)}),
            C("beta2-decay-eps-d-lr-schedule",
              dict(learning_rate=ramp(0.5, 0.1, 10), beta2_decay=-0.6, eps=(1e-10, 1e-2), d=2.0),
              **DIRECTION, **PARAMS),
        ),
        Tuned(
            lambda: optax.chain(optjx.scale_by_adafactor(q(0.1)), optjx.scale(-1.0)),
            lambda: optax.chain(optjx.scale_by_adafactor(r(0.01)), optjx.scale(-1.0)),
        ),
        {"learning_rate": [*NONNEG, -0.1], **ADAFACTOR},
    ),
    Card(
        "scale_by_muon",
        (
            # float32: see the muon card (bfloat16 is jit/eager-dependent under XLA).
            C("float32-iteration", dict(ns_dtype=jnp.float32),
              factory=matrices_of(optjx.scale_by_muon), **DIRECTION),
            C("no-nesterov-match-rms-momentum-schedule-own-dtype",
              dict(momentum=ramp(0.5, 0.9, 10), nesterov=False, adjust_lr_fn="match_rms_adamw",
                   ns_dtype=None), factory=matrices_of(optjx.scale_by_muon), **DIRECTION),
        ),
        Tuned(
            lambda: optax.chain(as_matrices(optjx.scale_by_muon()),
                                optjx.scale_by_learning_rate(q(0.1))),
            lambda: optax.chain(as_matrices(optjx.scale_by_muon()),
                                optjx.scale_by_learning_rate(r(0.01))),
        ),
        {"momentum": [*NONNEG, -0.5], **NEWTON_SCHULZ, "adjust_lr_fn": ["rms"]},
    ),
    Card(
        "orthogonalize_by_newton_schulz",
        (
            C("float32-iteration", dict(ns_dtype=jnp.float32),
              factory=matrices_of(optjx.orthogonalize_by_newton_schulz), **DIRECTION,
              **NO_LEAF_STATE),
            C("coefficients-steps-own-dtype",
              dict(ns_coefficients=(2.0, -1.5, 0.5), ns_steps=8, eps=1e-6, ns_dtype=None),
              factory=matrices_of(optjx.orthogonalize_by_newton_schulz), **DIRECTION,
              **NO_LEAF_STATE),
        ),
        Tuned(
            lambda: optax.chain(optjx.trace(0.9), as_matrices(optjx.orthogonalize_by_newton_schulz()),
                                optjx.scale_by_learning_rate(q(0.1))),
            lambda: optax.chain(optjx.trace(0.9), as_matrices(optjx.orthogonalize_by_newton_schulz()),
                                optjx.scale_by_learning_rate(r(0.01))),
        ),
        NEWTON_SCHULZ,
    ),
]
# fmt: on
