"""What the aliases share: the optional stages ``None`` switches off, and the chain.

An alias is ``_state.chain`` of its stages: the weight-decay and learning-rate stages
read the counter of the alias's stateful stage, so the alias keeps one counter.
"""

from __future__ import annotations

import optax

from optjx import _hyper, _state
from optjx.transforms.scale import learning_rate_rule
from optjx.transforms.trace import trace
from optjx.transforms.weight_decay import decay_rule
from optjx.typing import Hyperparameter

chain = _state.chain


def learning_rate(learning_rate: Hyperparameter) -> _state.ReadsChainCount:
    """``scale_by_learning_rate``, reading the alias's counter."""
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _state.ReadsChainCount(learning_rate_rule(learning_rate))


def decay(weight_decay, mask=None) -> _state.ReadsChainCount | None:
    """``add_decayed_weights`` reading the alias's counter, or nothing for ``None``.

    A zero (a number or an array) keeps the stage: the structure never depends on a value.
    """
    if weight_decay is None:
        return None
    _hyper.check_nonnegative("weight_decay", weight_decay)
    return _state.ReadsChainCount(decay_rule(weight_decay, mask=mask))


def momentum(
    momentum, dampening=0.0, nesterov=False, accumulator_dtype=None
) -> optax.GradientTransformation | None:
    """``trace``, or nothing for a momentum of ``None`` (as ``optax.sgd``).

    A zero momentum keeps the buffer, which then holds the last gradient: the numbers are
    those of no momentum at all (PyTorch's), the structure is that of every momentum.
    """
    _hyper.check_nonnegative("dampening", dampening)
    if momentum is None:
        if nesterov:
            raise ValueError("nesterov=True needs a momentum > 0, got momentum=None")
        return None
    _hyper.check_nonnegative("momentum", momentum)
    if nesterov and _hyper.is_python_zero(momentum):
        raise ValueError("nesterov=True needs a momentum > 0, got momentum=0")
    return trace(
        momentum, dampening=dampening, nesterov=nesterov, accumulator_dtype=accumulator_dtype
    )
