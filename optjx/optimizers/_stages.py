"""What the aliases share: the optional stages a Python-number zero drops, and the chain."""

from __future__ import annotations

import optax

from optjx import _hyper
from optjx.transforms.trace import trace
from optjx.transforms.weight_decay import add_decayed_weights


def chain(*stages) -> optax.GradientTransformation:
    """``optax.chain`` of the stages that are not ``None``."""
    return optax.chain(*(s for s in stages if s is not None))


def decay(weight_decay, mask=None) -> optax.GradientTransformation | None:
    """``add_decayed_weights``, or nothing for a Python zero (an array always keeps it)."""
    _hyper.check_nonnegative("weight_decay", weight_decay)
    if _hyper.is_python_zero(weight_decay) and mask is None:
        return None
    return add_decayed_weights(weight_decay, mask=mask)


def momentum(
    momentum, dampening=0.0, nesterov=False, accumulator_dtype=None
) -> optax.GradientTransformation | None:
    """``trace``, or nothing for a momentum of ``None`` (optax's default) or a Python zero."""
    if momentum is None:
        momentum = 0.0
    _hyper.check_nonnegative("momentum", momentum)
    _hyper.check_nonnegative("dampening", dampening)
    if _hyper.is_python_zero(momentum):
        if nesterov:
            raise ValueError("nesterov=True needs a momentum > 0, got momentum=0")
        return None
    return trace(
        momentum, dampening=dampening, nesterov=nesterov, accumulator_dtype=accumulator_dtype
    )
