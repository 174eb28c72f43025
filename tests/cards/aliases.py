"""Cards of the aliases in ``optjx.optimizers``: sgd, rmsprop, ..., delta_bar_delta."""

from __future__ import annotations

import jax.numpy as jnp
import optax

import optjx
from optjx import schedules

from ._card import Bench, Card, Example, Tuned
from ._card import config as C
from ._shared import (
    ADAFACTOR,
    ADAM,
    ADAMAX,
    BENCH_LR,
    COPIES,
    DBD,
    DECAY,
    EPS0,
    LINEAR,
    LR,
    MUON,
    NADAM,
    NAN,
    NEWTON_SCHULZ,
    NO_LEAF_STATE,
    NONNEG,
    NOVOGRAD,
    PARAMS,
    RPROP,
    STEPS_FLAX,
    as_matrices,
    cosine,
    not_biases,
    optax_decay,
    q,
    r,
    ramp,
)

# fmt: off
CARDS = [
    Card(
        "sgd",
        (
            C("plain", dict(learning_rate=0.1), **LINEAR, **NO_LEAF_STATE),
            C("nesterov-weight-decay-lr-schedule",
              dict(learning_rate=cosine(0.1, 20), momentum=0.9, nesterov=True, weight_decay=1e-2),
              **LINEAR, **PARAMS),
            C("dampening-momentum-schedule",
              dict(learning_rate=0.05, momentum=ramp(0.5, 0.9, 10), dampening=0.3), **LINEAR),
            C("momentum-f32-accumulator",
              dict(learning_rate=0.05, momentum=0.9, accumulator_dtype=jnp.float32), **LINEAR),
            C("momentum-dampening-weight-decay",
              dict(learning_rate=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-2),
              **LINEAR, **PARAMS),
            C("one-cycle-lr-and-momentum",  # torch-named schedules (TorchSchedule objects)
              dict(learning_rate=schedules.one_cycle_lr(0.1, total_steps=20),
                   momentum=schedules.one_cycle_momentum(0.1, total_steps=20)), **LINEAR),
        ),
        Tuned(lambda: optjx.sgd(0.1), lambda: optjx.sgd(1.5e-3, momentum=0.9)),
        {"learning_rate": [*LR["learning_rate"], jnp.asarray(-0.1)],
         "momentum": [*NONNEG, -0.9], "dampening": [*NONNEG, -0.1],
         "weight_decay": [*NONNEG, -1e-4]},
        example=Example(lambda lr: optjx.sgd(lr, momentum=0.9, nesterov=True), 0.1),
        twins={
            "sgd": (lambda: optjx.sgd(0.1), lambda: optax.sgd(0.1)),
            "sgd_momentum": (lambda: optjx.sgd(0.1, 0.9), lambda: optax.sgd(0.1, 0.9)),
            "sgd_nesterov": (lambda: optjx.sgd(0.05, 0.9, nesterov=True),
                             lambda: optax.sgd(0.05, 0.9, nesterov=True)),
            "sgd_schedule": (lambda: optjx.sgd(optax_decay(), 0.9),
                             lambda: optax.sgd(optax_decay(), 0.9)),
        },
        sharded={
            "sgd_nesterov": lambda: optjx.sgd(0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
        },
        flax={
            "sgd_nesterov_step_schedule": (
                lambda: optjx.sgd(schedules.piecewise_constant(0.3, {STEPS_FLAX // 2: 0.1}),
                                  momentum=0.9, nesterov=True),
                None,
            ),
        },
        benchmark=(
            Bench("sgd_momentum", "sgd+momentum", 5,
                  lambda: optjx.sgd(BENCH_LR, momentum=0.9),
                  lambda: optax.sgd(BENCH_LR, momentum=0.9)),
        ),
    ),
    Card(
        "rmsprop",
        (
            C("plain", dict(learning_rate=0.01), **EPS0),
            C("centered-momentum-nesterov-weight-decay",
              dict(learning_rate=0.01, decay=0.99, centered=True, momentum=0.9, nesterov=True,
                   weight_decay=1e-2), **PARAMS),
            C("eps-root-decay-schedule",
              dict(learning_rate=0.01, decay=ramp(0.5, 0.9, 10), eps=0.0, eps_root=1e-6)),
            C("bias-correction-initial-scale",
              dict(learning_rate=0.01, decay=0.99, bias_correction=True, initial_scale=0.1)),
        ),
        Tuned(
            lambda: optjx.rmsprop(q(0.05)),
            lambda: optjx.rmsprop(r(3e-3), decay=0.99, momentum=0.9),
        ),
        {"learning_rate": [*LR["learning_rate"], -1e-3], "decay": DECAY,
         "eps": [*NONNEG, -1e-8], "eps_root": [*NONNEG, -1e-8], "momentum": [*NONNEG, -0.5],
         "weight_decay": [*NONNEG, -1.0], "initial_scale": NONNEG},
        example=Example(lambda lr: optjx.rmsprop(lr), 0.01),
        # optax's rmsprop puts eps inside the root unless eps_in_sqrt=False.
        twins={
            "rmsprop_centered_momentum": (
                lambda: optjx.rmsprop(0.05, centered=True, momentum=0.9),
                lambda: optax.rmsprop(0.05, centered=True, momentum=0.9, eps_in_sqrt=False)),
        },
        sharded={
            "rmsprop_centered_momentum": lambda: optjx.rmsprop(0.01, centered=True, momentum=0.9),
        },
        flax={"rmsprop": (lambda: optjx.rmsprop(3e-3), None)},
        benchmark=(
            Bench("rmsprop", "rmsprop", 5,
                  lambda: optjx.rmsprop(BENCH_LR, decay=0.9, eps=1e-8),
                  lambda: optax.rmsprop(BENCH_LR, decay=0.9, eps=1e-8)),
        ),
    ),
    Card(
        "adagrad",
        (
            C("plain", dict(learning_rate=0.1), **EPS0),
            C("initial-accumulator-weight-decay",
              dict(learning_rate=0.1, initial_accumulator_value=0.1, eps=1e-8, weight_decay=1e-2),
              **PARAMS),
        ),
        Tuned(lambda: optjx.adagrad(0.5), lambda: optjx.adagrad(0.5)),
        {"learning_rate": [*LR["learning_rate"], -1e-2],
         "initial_accumulator_value": [*NONNEG, -1.0], "eps": [*NONNEG, -1.0],
         "weight_decay": [*NONNEG, -1.0]},
        example=Example(lambda lr: optjx.adagrad(lr), 0.1),
        sharded={"adagrad": lambda: optjx.adagrad(0.1)},
    ),
    Card(
        "adam",
        (
            C("plain", dict(learning_rate=1e-2), **EPS0),
            C("amsgrad-weight-decay-eps-root-cosine",
              dict(learning_rate=cosine(1e-2, 20), amsgrad=True, eps_root=1e-8, weight_decay=1e-2),
              **PARAMS),
            C("f32-moments",
              dict(learning_rate=1e-2, mu_dtype=jnp.float32, nu_dtype=jnp.float32)),
        ),
        Tuned(lambda: optjx.adam(q(0.1)), lambda: optjx.adam(r(0.01), b2=0.99)),
        {"learning_rate": [*LR["learning_rate"], -1e-3], **ADAM, "b2": [*DECAY, 1.5],
         "eps": [*NONNEG, -1e-8], "eps_root": [*NONNEG, -1e-8], "weight_decay": [*NONNEG, -1e-2]},
        example=Example(lambda lr: optjx.adam(lr), 0.01),
        twins={
            "adam": (lambda: optjx.adam(0.1), lambda: optax.adam(0.1)),
            "adam_betas_schedule": (lambda: optjx.adam(optax_decay(), 0.8, 0.99, eps=1e-3),
                                    lambda: optax.adam(optax_decay(), 0.8, 0.99, eps=1e-3)),
        },
        sharded={"adam_amsgrad": lambda: optjx.adam(0.05, amsgrad=True)},
        benchmark=(
            Bench("adam", "adam", 7, lambda: optjx.adam(BENCH_LR), lambda: optax.adam(BENCH_LR)),
        ),
    ),
    Card(
        "adamw",
        (
            C("plain", dict(learning_rate=1e-2), **PARAMS),
            C("amsgrad-mask-b1-schedule",
              dict(learning_rate=1e-2, b1=ramp(0.8, 0.9, 10), amsgrad=True, weight_decay=0.1,
                   mask=not_biases), **PARAMS),
            C("warmup-cosine-eps-root",
              dict(learning_rate=schedules.warmup(cosine(1e-2, 100), 3), eps_root=1e-8),
              **PARAMS),
        ),
        Tuned(
            lambda: optjx.adamw(q(0.1), weight_decay=1e-4),
            lambda: optjx.adamw(r(0.01), b2=0.99, weight_decay=1e-4),
        ),
        {"learning_rate": [*LR["learning_rate"], -1e-3], **ADAM, "b2": [*DECAY, -0.5],
         "eps": [*NONNEG, -1.0], "weight_decay": [*NONNEG, -1e-2]},
        example=Example(lambda lr: optjx.adamw(lr, weight_decay=0.01), 0.01),
        twins={"adamw": (lambda: optjx.adamw(0.1, weight_decay=0.1),
                         lambda: optax.adamw(0.1, weight_decay=0.1))},
        sharded={"adamw": lambda: optjx.adamw(0.05)},
        flax={"adamw": (lambda: optjx.adamw(0.01, weight_decay=0.01), None)},
        benchmark=(
            Bench("adamw", "adamw", 7,
                  lambda: optjx.adamw(BENCH_LR, weight_decay=1e-4),
                  lambda: optax.adamw(BENCH_LR, weight_decay=1e-4)),
        ),
    ),
    Card(
        "adadelta",
        (
            C("plain"),
            C("weight-decay-rho-schedule",
              dict(learning_rate=0.5, rho=ramp(0.5, 0.95, 10), weight_decay=1e-2), **PARAMS),
        ),
        Tuned(lambda: optjx.adadelta(10.0), lambda: optjx.adadelta(r(0.1), rho=0.9, eps=1e-5)),
        {"learning_rate": [*LR["learning_rate"], -1.0], "rho": DECAY, "eps": [*NONNEG, -1e-6],
         "weight_decay": [*NONNEG, -1.0]},
        # Its rate only rescales a unit-free step: not decayed in the examples.
        example=Example(lambda lr: optjx.adadelta(lr), 1.0, scheduled=False),
        twins={"adadelta": (lambda: optjx.adadelta(1.0, 0.9), lambda: optax.adadelta(1.0, 0.9))},
        sharded={"adadelta": lambda: optjx.adadelta(1.0, weight_decay=1e-3)},
    ),
    Card(
        "radam",
        (
            C("plain", dict(learning_rate=1e-2)),
            C("threshold-4-decoupled-weight-decay",
              dict(learning_rate=1e-2, b2=0.99, threshold=4.0, weight_decay=1e-2,
                   decoupled_weight_decay=True), **PARAMS),
            C("coupled-weight-decay", dict(learning_rate=1e-2, b2=0.99, weight_decay=1e-2),
              **PARAMS),
        ),
        Tuned(lambda: optjx.radam(q(0.1)), lambda: optjx.radam(r(1e-3), b2=0.99)),
        {"learning_rate": [*LR["learning_rate"], -1.0], "b1": DECAY, "b2": DECAY,
         "eps": [*NONNEG, -1e-8], "threshold": [3.9, float("nan")],
         "weight_decay": [*NONNEG, -0.1]},
        example=Example(lambda lr: optjx.radam(lr), 0.03),
        # optax's radam adds eps elsewhere: equal with eps=0.
        twins={"radam_eps0": (lambda: optjx.radam(0.1, b2=0.99, eps=0.0),
                              lambda: optax.radam(0.1, b2=0.99, eps=0.0))},
        sharded={
            "radam_decoupled":
                lambda: optjx.radam(0.05, weight_decay=1e-2, decoupled_weight_decay=True),
        },
        benchmark=(
            Bench("radam", "radam", 7, lambda: optjx.radam(BENCH_LR),
                  lambda: optax.radam(BENCH_LR)),
        ),
    ),
    Card(
        "novograd",
        (
            C("plain", dict(learning_rate=1e-2), **EPS0),
            C("grad-averaging-weight-decay",
              dict(learning_rate=1e-2, grad_averaging=True, weight_decay=1e-3), **PARAMS),
        ),
        Tuned(
            lambda: optjx.novograd(q(0.1), grad_averaging=True),
            lambda: optjx.novograd(r(0.02), grad_averaging=True),
        ),
        {"learning_rate": [*LR["learning_rate"], -1e-3], **NOVOGRAD},
        example=Example(lambda lr: optjx.novograd(lr, weight_decay=1e-4), 0.03),
        # optax's novograd adds eps elsewhere: equal with eps=0.
        twins={"novograd_eps0": (
            lambda: optjx.novograd(0.1, 0.9, 0.25, eps=0.0, weight_decay=0.01),
            lambda: optax.novograd(0.1, 0.9, 0.25, eps=0.0, weight_decay=0.01))},
        sharded={
            "novograd_averaging":
                lambda: optjx.novograd(0.05, weight_decay=1e-3, grad_averaging=True),
        },
        flax={"novograd_weight_decay": (lambda: optjx.novograd(0.03, weight_decay=1e-3), None)},
        benchmark=(
            # g is read twice: the layer norm must be complete before any weight moves.
            Bench("novograd", "novograd", 6,
                  lambda: optjx.novograd(BENCH_LR, b1=0.95, b2=0.98, eps=1e-8),
                  lambda: optax.novograd(BENCH_LR, b1=0.95, b2=0.98, eps=1e-8),
                  "optax's update is a lax.cond over the whole tree (first step or not)"),
        ),
    ),
    Card(
        "delta_bar_delta",
        (
            C("jacobs", dict(initial_learning_rate=0.05, kappa=1e-3, phi=0.1, gamma=0.7)),
            C("kappa-schedule-no-average",
              dict(initial_learning_rate=0.01, kappa=ramp(1e-3, 1e-2, 10), phi=0.5, gamma=0.0)),
        ),
        Tuned(
            lambda: optjx.delta_bar_delta(0.01, kappa=1e-3, phi=0.3, gamma=0.7),
            lambda: optjx.delta_bar_delta(1e-3, kappa=1e-4, phi=0.3, gamma=0.7),
        ),
        DBD,
        # The rate is only the starting point of per-weight rates it adapts itself.
        example=Example(lambda lr: optjx.delta_bar_delta(lr, kappa=0.01, phi=0.1, gamma=0.7),
                        0.1, scheduled=False),
        sharded={
            "delta_bar_delta": lambda: optjx.delta_bar_delta(0.05, kappa=1e-3, phi=0.1, gamma=0.7),
        },
    ),
    Card(
        "nadam",
        (
            C("plain", dict(learning_rate=1e-2), **EPS0),
            C("coupled-weight-decay-lr-schedule",
              dict(learning_rate=cosine(1e-2, 20), weight_decay=1e-2), **PARAMS),
            C("decoupled-weight-decay-b1-schedule",
              dict(learning_rate=1e-2, b1=ramp(0.8, 0.9, 10), b2=0.99, momentum_decay=0.01,
                   weight_decay=0.1, decoupled_weight_decay=True), **PARAMS),
        ),
        Tuned(lambda: optjx.nadam(q(0.1)), lambda: optjx.nadam(r(0.01), b2=0.99)),
        {"learning_rate": [*LR["learning_rate"], -1e-3], **NADAM,
         "weight_decay": [*NONNEG, -1e-2]},
        benchmark=(
            # Not the same algorithm: optax's nadam is Dozat's simplified form (Adam with a
            # Nesterov look-ahead, constant b1); torch's (and ours) decays the momentum
            # with the schedule mu_t = b1 (1 - 0.5 * 0.96^(t psi)) and keeps their product.
            Bench("nadam", "nadam (optax: constant-b1 form)", 7,
                  lambda: optjx.nadam(BENCH_LR), lambda: optax.nadam(BENCH_LR),
                  "optax's nadam keeps b1 constant; torch's momentum-decay schedule is not in it"),
        ),
    ),
    Card(
        "adamax",
        (
            C("plain", dict(learning_rate=1e-2), **EPS0),
            C("weight-decay-b2-schedule",
              dict(learning_rate=1e-2, b2=ramp(0.9, 0.999, 10), eps=1e-3, weight_decay=1e-2),
              **PARAMS),
        ),
        Tuned(lambda: optjx.adamax(q(0.1)), lambda: optjx.adamax(r(0.01), b2=0.99)),
        {"learning_rate": [*LR["learning_rate"], -1e-3], **ADAMAX,
         "weight_decay": [*NONNEG, -1e-2]},
        benchmark=(
            Bench("adamax", "adamax", 7, lambda: optjx.adamax(BENCH_LR),
                  lambda: optax.adamax(BENCH_LR)),
        ),
    ),
    Card(
        "rprop",
        (
            C("plain", dict(learning_rate=1e-2), scale_invariant={}),
            C("etas-step-sizes-schedule",
              dict(learning_rate=1e-3, etas=(0.3, ramp(1.2, 1.5, 10)), step_sizes=(1e-4, 0.1)),
              scale_invariant={}),
        ),
        Tuned(lambda: optjx.rprop(1e-2), lambda: optjx.rprop(1e-3, step_sizes=(1e-8, 0.1))),
        {"learning_rate": [*LR["learning_rate"], -1e-3], **RPROP},
        benchmark=(
            # g, w, the previous gradient and the step sizes read; w and both moments written.
            # optax 0.2.8's rprop emits the previous step's update (its first is zero; open
            # optax PR #1725), so it need not read the step sizes to move w.
            Bench("rprop", "rprop (optax: one step late)", 7, lambda: optjx.rprop(BENCH_LR),
                  lambda: optax.rprop(BENCH_LR),
                  "optax's update lags one step (google-deepmind/optax#1725)"),
        ),
    ),
    Card(
        "asgd",
        (
            C("plain", **COPIES, **LINEAR),
            C("averaging-weight-decay-lr-schedule",
              dict(learning_rate=cosine(0.05, 20), lambd=1e-2, alpha=0.6, t0=3.0,
                   weight_decay=1e-2), **COPIES, **LINEAR),
        ),
        Tuned(
            lambda: optjx.asgd(0.1, t0=100.0),
            lambda: optax.chain(optjx.trace(0.9), optjx.asgd(1.5e-3)),
        ),
        {"learning_rate": [*LR["learning_rate"], -1e-3], "lambd": NONNEG, "alpha": NONNEG,
         "t0": [NAN], "weight_decay": [*NONNEG, -1e-2]},
        flax={
            "asgd_average": (
                lambda: optax.chain(optjx.trace(0.9), optjx.asgd(0.3, t0=STEPS_FLAX // 2)),
                lambda state: optjx.averaged_params(state),
            ),
        },
    ),
    Card(
        "adafactor",
        (
            C("plain", dict(learning_rate=1e-2), scale_invariant={"eps": (0.0, 1e-3)}, **PARAMS),
            C("options-weight-decay-lr-schedule",
              dict(learning_rate=cosine(0.5, 20), beta2_decay=-0.5, eps=(1e-10, 1e-2), d=1.5,
                   weight_decay=1e-2), **PARAMS),
        ),
        Tuned(lambda: optjx.adafactor(q(0.1)), lambda: optjx.adafactor(r(0.01))),
        {"learning_rate": [*LR["learning_rate"], -1e-3], **ADAFACTOR,
         "weight_decay": [*NONNEG, -1e-2]},
        sharded={"adafactor": lambda: optjx.adafactor(0.05, weight_decay=1e-2)},
        benchmark=(
            # The nearest twin, not the same algorithm: optax's adafactor follows the paper
            # and T5 (eps added to g^2, factoring from 128 rows, the rate used as given);
            # ours is torch.optim.Adafactor's (steps min(lr, 1/sqrt t) relative to RMS(w)).
            # On the benchmark's vectors neither factors: see adafactor_memory.py.
            # Arrays: the RMS of w and of the update must be complete before w moves, so
            # g, w and v are read twice (8 = 2 x 3 reads + w and v written).
            Bench("adafactor", "adafactor (optax: paper's)", 8,
                  lambda: optjx.adafactor(BENCH_LR), lambda: optax.adafactor(BENCH_LR),
                  "different algorithms (torch's vs optax's Adafactor): the nearest twin"),
        ),
    ),
    Card(
        "muon",
        (
            # The default bfloat16 iteration is not in the registry: XLA keeps float32 between
            # fused operations under jit (excess precision), so jit and eager differ at
            # bfloat16's 0.4%. It is replayed against torch in tests/test_torch_parity_more.py.
            C("float32-iteration", dict(learning_rate=0.02, ns_dtype=jnp.float32), factory=MUON,
              **PARAMS),
            C("match-rms-adamw-no-nesterov-no-decay-float32-iteration",
              dict(learning_rate=cosine(0.02, 20), momentum=0.9, nesterov=False,
                   adjust_lr_fn="match_rms_adamw", weight_decay=None, ns_dtype=jnp.float32),
              factory=MUON),
            C("coefficients-steps-eps-momentum-schedule-own-dtype",
              dict(learning_rate=0.02, momentum=ramp(0.8, 0.95, 10), ns_coefficients=(2.0, -1.5, 0.5),
                   ns_steps=3, eps=1e-5, ns_dtype=None), factory=MUON, **PARAMS),
        ),
        Tuned(
            lambda: as_matrices(optjx.muon(q(0.1), weight_decay=None)),
            lambda: as_matrices(optjx.muon(r(0.01), weight_decay=None)),
        ),
        {"learning_rate": [*LR["learning_rate"], -1e-3], "weight_decay": [*NONNEG, -1e-2],
         "momentum": [*NONNEG, -0.9], **NEWTON_SCHULZ, "adjust_lr_fn": ["bogus"]},
        # No benchmark: the step section's trees are float32 vectors, and Muon orthogonalises
        # matrices only (optax.contrib.muon would hand every vector to its Adam fallback).
    ),
]
# fmt: on
