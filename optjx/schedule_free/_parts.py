"""What the schedule-free aliases share: Adam's second moment as the direction's state,
the hyperparameters every alias declares, and the scalars its direction reads."""

from __future__ import annotations

from typing import NamedTuple

import optax

from optjx import _hyper, _tree
from optjx.schedule_free.core import StepScalars
from optjx.schedule_free.warmup import OPEN_UNIT


class SecondMoment(NamedTuple):
    """The direction's state of a schedule-free Adam or RAdam.

    Attributes:
      nu: $v_t$, the running mean of the squared gradient (one copy of the params).
    """

    nu: optax.Updates


def hyperparameters(
    learning_rate, momentum_name, momentum, weight_decay, r, weight_lr_power, **more
):
    return _hyper.Hyperparameters(
        learning_rate=(learning_rate, _hyper.NONNEGATIVE),
        **{momentum_name: (momentum, OPEN_UNIT)},
        weight_decay=(weight_decay, _hyper.NONNEGATIVE),
        r=(r, _hyper.NONNEGATIVE),
        weight_lr_power=(weight_lr_power, _hyper.NONNEGATIVE),
        **more,
    )


def scalars(hypers, h, learning_rate, momentum) -> StepScalars:
    """An alias's step scalars: its rate and momentum, and the shared decay and weighting."""
    return StepScalars(
        learning_rate=learning_rate,
        momentum=momentum,
        weight_decay=None if hypers.is_zero("weight_decay") else h.weight_decay,
        weight_step_power=None if hypers.is_zero("r") else h.r,
        weight_lr_power=h.weight_lr_power,
    )


def init_second_moment(params):
    _tree.require_real(params, "a schedule-free Adam")
    return SecondMoment(nu=_tree.zeros_like(params))
