r"""Schedule-free learning: the iterate average and the momentum of one method, joined.

Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky (2024), "The Road Less Scheduled",
NeurIPS, Algorithm 1; exact to the ``schedulefree`` package 1.4.1. Here: the state, the
record of a step's scalars (``StepScalars``) and the three-sequence update (``build``)
shared by the wrapper and the aliases. The general wrapper ``schedule_free``, whose
docstring carries the rule, is in ``optjx.schedule_free.wrapper``; the aliases in
``optjx.schedule_free.aliases`` and ``radam``, the accessors of $x$ in
``optjx.schedule_free.accessors``, the warm-up in ``optjx.schedule_free.warmup``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx._tree import copy_params
from optjx.typing import Scalar


class ScheduleFreeState(NamedTuple):
    r"""The state of a schedule-free optimizer.

    Attributes:
      count: the number of updates applied.
      z: the base method's iterate $z_t$, a copy of the params' tree.
      weight_sum: $\sum_{i \le t} w_i$, the sum of the averaging weights so far.
      lr_max: $\max_{i \le t} \gamma_i$, the largest learning rate so far.
      momentum: the $\beta$ of the latest step, which formed the params $y_t$ (so $x$ is
        found from $y$ and $z$ alone).
      inner_state: the direction's state.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    z: optax.Params
    weight_sum: jax.Array
    lr_max: jax.Array
    momentum: jax.Array
    inner_state: optax.OptState


class StepScalars(NamedTuple):
    r"""The scalars of one schedule-free step, read by ``build`` at each update.

    Each is a number or a scalar array, evaluated at the step's count; an optional one is
    ``None`` when its hyperparameter is a Python zero, so its arithmetic is skipped.

    Attributes:
      learning_rate: $\gamma_t$, the rate after any warm-up or rectification: the one
        value feeding both the $z$ step and the averaging weights.
      momentum: $\beta_t$, where between $z$ and $x$ the gradient is taken.
      weight_decay: $\lambda$, the decoupled decay computed at $y$ and applied to $z$, or
        ``None`` for none.
      weight_step_power: $r$, the power of the step count $t$ in the averaging weights,
        or ``None`` for none (weights independent of $t$).
      weight_lr_power: $p$, the power of the largest rate so far in the averaging weights.
    """

    learning_rate: Scalar
    momentum: Scalar
    weight_decay: Scalar | None
    weight_step_power: Scalar | None
    weight_lr_power: Scalar


def build(
    init_direction,
    direction,
    scalars: Callable[[jax.Array | None], StepScalars],
    *,
    who: str,
) -> optax.GradientTransformationExtraArgs:
    """The schedule-free transformation around a direction, for the aliases and the wrapper.

    Args:
      init_direction: ``params -> inner_state``, the direction's state.
      direction: ``(grads, inner_state, z, count, **extra) -> (d, inner_state)``, a
        descent direction without its learning rate, given as params ``z`` after the decay
        at ``y`` (as the reference's base optimizer sees them).
      scalars: ``count -> StepScalars``, the step's rate, momentum, decay and weighting.
      who: the public name, for the error raised when ``update`` gets no params.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` with a ``ScheduleFreeState``; its ``update`` returns $y_{t+1} - y_t$.
    """

    def init_fn(params):
        count = _state.zero_count()
        # Each scalar its own buffer: a jitted step may donate the whole state.
        return ScheduleFreeState(
            count=count,
            z=copy_params(params),
            weight_sum=_tree.default_float(0.0),
            lr_max=_tree.default_float(0.0),
            momentum=_tree.default_float(scalars(count).momentum),
            inner_state=init_direction(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        _tree.require_params(params, who)
        _tree.check_matching(updates, state.z, against="z in the optimizer state")
        _tree.check_matching(params, state.z, what="params", against="z in the optimizer state")
        count = state.count
        s = scalars(count)
        lr = _tree.default_float(s.learning_rate)
        beta = _tree.default_float(s.momentum)
        # The averaging weight uses the largest rate so far, so a decaying schedule does
        # not shrink the weight of later iterates (reference: lr_max).
        lr_max = jnp.maximum(state.lr_max, lr)
        weight = jnp.power(lr_max, _tree.default_float(s.weight_lr_power))
        if s.weight_step_power is not None:
            assert count is not None  # a non-zero r keeps a step count
            step = _tree.default_float(_state.next_count(count))
            weight = weight * jnp.power(step, _tree.default_float(s.weight_step_power))
        weight_sum = state.weight_sum + weight
        # Nothing averaged yet (a zero rate so far): c = 0, as the reference's
        # ZeroDivisionError branch. The safe denominator keeps NaN out of both branches.
        positive = weight_sum > 0
        c = jnp.where(positive, weight / jnp.where(positive, weight_sum, 1.0), 0.0)
        # x_t is recovered from y_t with the beta that formed y_t (the state's), so a
        # changing beta (a schedule, an injected value) keeps x the weighted average of
        # the z's: the weight on z_t - y_t is c + (1 - c)(beta_prev - beta)/beta_prev,
        # exactly c for a constant beta.
        previous = state.momentum
        toward_z = c + (1.0 - c) * (previous - beta) / previous
        at = _hyper.per_dtype(
            lr=lr,
            c=toward_z,
            gain=1.0 - beta * (1.0 - c),
            decay=_tree.default_float(0.0 if s.weight_decay is None else s.weight_decay),
        )

        z = state.z
        if s.weight_decay is not None:  # the reference moves z by the decay at y first
            z = jax.tree.map(
                lambda z_, y: z_ - at(z_.dtype).lr * at(z_.dtype).decay * y.astype(z_.dtype),
                state.z,
                params,
            )
        d, inner_state = direction(updates, state.inner_state, z, count, **extra_args)

        def z_step(z_, d_, y):
            k = at(z_.dtype)
            g = d_.astype(z_.dtype)
            if s.weight_decay is not None:
                g = g + k.decay * y.astype(z_.dtype)
            return z_ - k.lr * g

        new_z = jax.tree.map(z_step, state.z, d, params)

        # The step of y reads z_{t+1} - z_t from the new z (exact by Sterbenz, up to the
        # rounding of z_{t+1} itself), not the direction: the direction then never leaves
        # the fused z step, as in optax, which saves writing and reading it back.
        def y_step(z_, y, z_next, u):
            k = at(z_.dtype)
            return (k.c * (z_ - y.astype(z_.dtype)) + k.gain * (z_next - z_)).astype(u.dtype)

        out = jax.tree.map(y_step, state.z, params, new_z, updates)
        new_state = _state.advance(
            state,
            z=new_z,
            weight_sum=weight_sum,
            lr_max=lr_max,
            momentum=beta,
            inner_state=inner_state,
        )
        return out, new_state

    return _state.transformation(init_fn, update_fn, extra_args=True)
