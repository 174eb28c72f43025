"""Cards of the schedule-free optimizers (``optjx.schedule_free.aliases``) and wrapper."""

from __future__ import annotations

import optax

import optjx

from ._card import Bench, Card, Tuned
from ._card import config as C
from ._shared import BENCH_LR, COPIES, DECAY, EPS0, LINEAR, LR, NAN, NONNEG, cosine, ramp

OPEN = [0.0, 1.0, NAN]  # schedule-free momentum: in (0, 1)
SF = {"r": NONNEG, "weight_lr_power": NONNEG, "warmup_steps": [-1, 1.5, True]}


def rms():
    return optjx.scale_by_rms(0.99)


# fmt: off
CARDS = [
    Card(
        "sgd_schedule_free",
        (
            C("plain", dict(learning_rate=0.1), **COPIES, **LINEAR),
            C("warmup-weight-decay-r",
              dict(learning_rate=0.1, momentum=0.8, warmup_steps=3, weight_decay=1e-2, r=0.75),
              **COPIES, **LINEAR),
            C("cosine-momentum-schedule",
              dict(learning_rate=cosine(0.1, 20), momentum=ramp(0.5, 0.9, 10)),
              **COPIES, **LINEAR),
        ),
        Tuned(
            lambda: optjx.sgd_schedule_free(0.1),
            lambda: optjx.sgd_schedule_free(2e-3, warmup_steps=100, r=1.0),
        ),
        {**LR, **SF, "momentum": OPEN, "weight_decay": NONNEG},
    ),
    Card(
        "adamw_schedule_free",
        (
            C("plain", dict(learning_rate=1e-2), **COPIES, **EPS0),
            C("paper-warmup-weight-decay-r",
              dict(learning_rate=1e-2, warmup_steps=3, weight_decay=1e-2, r=0.75,
                   variant="paper"), **COPIES),
            C("cosine-b2-schedule",
              dict(learning_rate=cosine(1e-2, 20), b2=ramp(0.9, 0.999, 10)), **COPIES),
        ),
        Tuned(
            lambda: optjx.adamw_schedule_free(0.1),
            lambda: optjx.adamw_schedule_free(5e-3, b2=0.99, warmup_steps=100),
        ),
        {**LR, **SF, "b1": OPEN, "b2": DECAY, "eps": NONNEG, "weight_decay": NONNEG,
         "variant": ["adam"]},
        # g, w, z and v read, w, z and v written. Both with the warm-up (the base rate and
        # the averaging weights both read the count) and weight decay.
        benchmark=(
            Bench("adamw_schedule_free", "adamw_schedule_free", 7,
                  lambda: optjx.adamw_schedule_free(BENCH_LR, warmup_steps=100, weight_decay=1e-4),
                  lambda: optax.contrib.schedule_free_adamw(
                      BENCH_LR, warmup_steps=100, weight_decay=1e-4),
                  "optax.contrib.schedule_free_adamw; its warm-up is off by one step (see the docs)"),
        ),
    ),
    Card(
        "radam_schedule_free",
        (
            C("plain", dict(learning_rate=1e-2), **COPIES),
            C("sgd-phase-weight-decay-r-b2-0.99",
              dict(learning_rate=1e-2, b2=0.99, weight_decay=1e-2, r=0.5, silent_sgd_phase=False),
              **COPIES),
        ),
        Tuned(
            lambda: optjx.radam_schedule_free(0.1),
            lambda: optjx.radam_schedule_free(5e-3, b2=0.99),
        ),
        {**LR, "r": NONNEG, "weight_lr_power": NONNEG, "b1": OPEN, "b2": DECAY, "eps": NONNEG,
         "weight_decay": NONNEG},
    ),
    Card(
        "schedule_free",
        (
            C("rms-warmup-decay-at-y",
              dict(learning_rate=1e-2, warmup_steps=3, weight_decay_at_y=1e-2), inner=rms,
              **COPIES),
            C("identity-cosine-r", dict(learning_rate=cosine(0.1, 20), r=0.75),
              inner=optax.identity, **COPIES, **LINEAR),
        ),
        Tuned(
            lambda: optjx.schedule_free(optjx.scale_by_rms(0.99), learning_rate=0.05),
            lambda: optjx.schedule_free(
                optjx.scale_by_rms(0.99), learning_rate=5e-3, warmup_steps=100),
        ),
        {**LR, **SF, "momentum": OPEN, "weight_decay_at_y": NONNEG},
    ),
]
# fmt: on
