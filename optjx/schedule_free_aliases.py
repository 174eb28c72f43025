r"""Schedule-free SGD, AdamW and RAdam, exact to the ``schedulefree`` package 1.4.1.

Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky (2024), "The Road Less Scheduled",
NeurIPS. Each is :func:`optjx.schedule_free`'s three sequences (``z`` steps, ``x``
averages, gradients at ``y``) around one direction; see that function for the rule, and
:func:`optjx.schedule_free_eval_params` for the evaluation weights ``x``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _tree
from optjx.transforms.radam import first_adaptive_step, variance_rectification
from optjx.wrappers._schedule_free_warmup import (
    OPEN_UNIT,
    check_warmup,
    has_no_warmup,
    warmup_factor,
)
from optjx.wrappers.schedule_free import build


class SecondMoment(NamedTuple):
    """The running mean of the squared gradient of a schedule-free Adam or RAdam."""

    nu: optax.Updates


def _common(learning_rate, momentum_name, momentum, weight_decay, r, weight_lr_power, **more):
    return _hyper.Hyperparameters(
        learning_rate=(learning_rate, _hyper.NONNEGATIVE),
        **{momentum_name: (momentum, OPEN_UNIT)},
        weight_decay=(weight_decay, _hyper.NONNEGATIVE),
        r=(r, _hyper.NONNEGATIVE),
        weight_lr_power=(weight_lr_power, _hyper.NONNEGATIVE),
        **more,
    )


def _scalars(hypers, h, lr, momentum):
    return SimpleNamespace(
        lr=lr,
        momentum=momentum,
        decay=None if hypers.is_zero("weight_decay") else h.weight_decay,
        r=None if hypers.is_zero("r") else h.r,
        power=h.weight_lr_power,
    )


def _init_second_moment(params):
    _tree.require_real(params, "a schedule-free Adam")
    return SecondMoment(nu=_tree.zeros_like(params))


def sgd_schedule_free(
    learning_rate: _hyper.Hyper = 1.0,
    momentum: _hyper.Hyper = 0.9,
    *,
    weight_decay: _hyper.Hyper = 0.0,
    warmup_steps: int = 0,
    r: _hyper.Hyper = 0.0,
    weight_lr_power: _hyper.Hyper = 2.0,
) -> optax.GradientTransformationExtraArgs:
    r"""Schedule-free SGD: ``schedulefree.SGDScheduleFree``, step for step.

    .. math::

       z_{t+1} = z_t - \gamma_t (g_t + \lambda y_t), \quad
       x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}, \quad
       y_{t+1} = (1 - \beta) z_{t+1} + \beta x_{t+1}

    with ``g_t`` the gradient at ``y_t`` (the params) and ``c_{t+1}`` the averaging
    weight of :func:`optjx.schedule_free`. ``momentum -> 0`` is the Polyak-Ruppert
    average of SGD's iterates, ``momentum -> 1`` primal averaging.

    Args:
      learning_rate: ``gamma >= 0`` (number, array or schedule; a schedule replaces the
        warm-up). Schedule-free SGD takes rates ~10-50x larger than SGD with a schedule.
      momentum: ``beta`` in ``(0, 1)``.
      weight_decay: ``lambda >= 0``, computed at ``y``.
      warmup_steps: an int ``>= 0``: ``gamma_k = lr * min(1, (k + 1) / warmup_steps)``.
      r: ``>= 0``, polynomial weighting ``(t + 1)^r`` of the average.
      weight_lr_power: ``>= 0``, the power of the largest rate so far in the weights.

    Returns the step ``y_{t+1} - y_t``; ``update`` needs the params. Evaluate, checkpoint
    for inference and export at ``x = optjx.schedule_free_eval_params(state, params)``.

    Differences: the reference is stateful (``optimizer.train()`` / ``.eval()`` swap ``y``
    and ``x`` in place); here the params stay ``y`` and ``x`` is computed on demand.
    ``optax.contrib.schedule_free_sgd`` is wrong with a warm-up (see
    :func:`optjx.schedule_free`) and has no ``r``.

    Example::

        tx = optjx.sgd_schedule_free(0.5, warmup_steps=100)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        x = optjx.schedule_free_eval_params(state, params)
    """
    hypers = _common(learning_rate, "momentum", momentum, weight_decay, r, weight_lr_power)
    check_warmup(warmup_steps, learning_rate)

    def scalars(count):
        h = hypers.at(count)
        return _scalars(hypers, h, h.learning_rate * warmup_factor(count, warmup_steps), h.momentum)

    def direction(grads, inner_state, z, count, **extra_args):
        return grads, inner_state

    with_count = hypers.scheduled or not has_no_warmup(warmup_steps) or not hypers.is_zero("r")
    return build(
        lambda params: optax.EmptyState(),
        direction,
        scalars,
        with_count=with_count,
        who="sgd_schedule_free",
    )


def adamw_schedule_free(
    learning_rate: _hyper.Hyper = 0.0025,
    b1: _hyper.Hyper = 0.9,
    b2: _hyper.Hyper = 0.999,
    *,
    eps: _hyper.Hyper = 1e-8,
    weight_decay: _hyper.Hyper = 0.0,
    warmup_steps: int = 0,
    r: _hyper.Hyper = 0.0,
    weight_lr_power: _hyper.Hyper = 2.0,
    variant: str = "reference",
) -> optax.GradientTransformationExtraArgs:
    r"""Schedule-free AdamW: ``schedulefree.AdamWScheduleFree`` (or ``...Paper``).

    Adam's second moment, no first moment (``b1`` is the schedule-free interpolation):

    .. math::

       v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \qquad
       z_{t+1} = z_t - \gamma_t \Big(\frac{g_t}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon}
                 + \lambda y_t\Big)

    and ``x``, ``y`` as in :func:`optjx.sgd_schedule_free` with ``beta = b1``.
    ``variant="paper"`` (``AdamWScheduleFreePaper``, the paper's Algorithm 1) folds the
    bias correction into the rate, ``gamma_t = lr_t sqrt(1 - b2^t)``, and divides by
    ``sqrt(v_t) + eps``: the rate, hence the averaging weights, then rise with the
    correction as with a warm-up.

    Args:
      learning_rate: ``>= 0`` (number, array or schedule; a schedule replaces the warm-up).
      b1: ``beta`` in ``(0, 1)``, the interpolation momentum.
      b2: in ``[0, 1)``, the second-moment decay.
      eps: ``>= 0``, added to the root.
      weight_decay: ``lambda >= 0``, decoupled and computed at ``y``.
      warmup_steps: an int ``>= 0`` (linear warm-up of the rate).
      r: ``>= 0``, polynomial weighting of the average.
      weight_lr_power: ``>= 0``, the power of the largest rate in the weights.
      variant: ``"reference"`` or ``"paper"``.

    Returns the step ``y_{t+1} - y_t``; ``update`` needs the params. State: ``z`` and
    ``v`` (two copies of the params; ``optax.contrib.schedule_free_adamw`` keeps three).

    Differences: as :func:`optjx.sgd_schedule_free`; optax's version also has no paper
    variant.

    Example::

        tx = optjx.adamw_schedule_free(2.5e-3, warmup_steps=100, weight_decay=1e-4)
        x = optjx.schedule_free_eval_params(state, params)   # for evaluation
    """
    if variant not in ("reference", "paper"):
        raise ValueError(f"variant must be 'reference' or 'paper', got {variant!r}")
    hypers = _common(
        learning_rate, "b1", b1, weight_decay, r, weight_lr_power,
        b2=(b2, _hyper.DECAY), eps=(eps, _hyper.NONNEGATIVE),
    )  # fmt: skip
    check_warmup(warmup_steps, learning_rate)
    paper = variant == "paper"

    def correction(h, count):  # 1 - b2^t at step t = count + 1
        return _tree.power_complement(h.b2, _tree.next_count(count))

    def scalars(count):
        h = hypers.at(count)
        lr = h.learning_rate * warmup_factor(count, warmup_steps)
        if paper:
            lr = lr * jnp.sqrt(correction(h, count))
        return _scalars(hypers, h, lr, h.b1)

    def direction(grads, inner_state, z, count, **extra_args):
        h = hypers.at(count)
        nu = _tree.update_moment(grads, inner_state.nu, h.b2, order=2)
        at = _hyper.per_dtype(correction=correction(h, count), eps=h.eps)

        def one(g, v):
            k = at(v.dtype)
            root = jnp.sqrt(v) if paper else jnp.sqrt(v / k.correction)
            return g.astype(v.dtype) / (root + k.eps)

        return jax.tree.map(one, grads, nu), SecondMoment(nu)

    return build(
        _init_second_moment, direction, scalars, with_count=True, who="adamw_schedule_free"
    )


def radam_schedule_free(
    learning_rate: _hyper.Hyper = 0.0025,
    b1: _hyper.Hyper = 0.9,
    b2: _hyper.Hyper = 0.999,
    *,
    eps: _hyper.Hyper = 1e-8,
    weight_decay: _hyper.Hyper = 0.0,
    r: _hyper.Hyper = 0.0,
    weight_lr_power: _hyper.Hyper = 2.0,
    silent_sgd_phase: bool = True,
) -> optax.GradientTransformationExtraArgs:
    r"""Schedule-free RAdam: ``schedulefree.RAdamScheduleFree``, step for step.

    RAdam's rectification (Liu et al. 2020, Alg. 2; optjx's :func:`optjx.scale_by_radam`
    helpers) replaces the warm-up: while ``rho_t <= 4`` the rate is 0
    (``silent_sgd_phase=True``: nothing moves and nothing is averaged) or ``lr`` on the
    raw gradient (SGD); after, ``gamma_t = lr * r_t`` on Adam's normalised gradient:

    .. math::

       z_{t+1} = z_t - \text{lr}\, r_t \Big(\frac{g_t}{\sqrt{v_t/(1-\beta_2^t)}+\epsilon}
                 + \lambda y_t\Big), \qquad
       r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
                        {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}}

    and ``x``, ``y`` as in :func:`optjx.sgd_schedule_free` with ``beta = b1``. The
    averaging weights use ``lr * r_t``, so the rectified start weighs little.

    Args:
      learning_rate: ``>= 0`` (number, array or schedule).
      b1: ``beta`` in ``(0, 1)``.
      b2: in ``[0, 1)``; ``b2 <= 0.6`` never switches the adaptive step on.
      eps: ``>= 0``.
      weight_decay: ``lambda >= 0``, computed at ``y``.
      r: ``>= 0``, polynomial weighting of the average.
      weight_lr_power: ``>= 0``.
      silent_sgd_phase: no step before the rectification switches on (else SGD steps).

    Returns the step ``y_{t+1} - y_t``; ``update`` needs the params.

    Differences: optax has no schedule-free RAdam. The switch is the reference's strict
    ``rho_t > 4`` (``scale_by_radam``'s default threshold is 5).

    Example::

        tx = optjx.radam_schedule_free(2.5e-3, weight_decay=1e-4)
    """
    hypers = _common(
        learning_rate, "b1", b1, weight_decay, r, weight_lr_power,
        b2=(b2, _hyper.DECAY), eps=(eps, _hyper.NONNEGATIVE),
    )  # fmt: skip
    first_adaptive = first_adaptive_step(b2, 4.0) if not callable(b2) else None

    def rectified(h, count):
        return variance_rectification(_tree.next_count(count), h.b2, 4.0, first_adaptive)

    def scalars(count):
        h = hypers.at(count)
        adaptive, rectifier = rectified(h, count)
        before = 0.0 if silent_sgd_phase else 1.0
        return _scalars(hypers, h, h.learning_rate * jnp.where(adaptive, rectifier, before), h.b1)

    def direction(grads, inner_state, z, count, **extra_args):
        h = hypers.at(count)
        adaptive, _ = rectified(h, count)
        nu = _tree.update_moment(grads, inner_state.nu, h.b2, order=2)
        correction = _tree.power_complement(h.b2, _tree.next_count(count))
        at = _hyper.per_dtype(correction=correction, eps=h.eps)

        def one(g, v):
            k = at(v.dtype)
            g = g.astype(v.dtype)
            return jnp.where(adaptive, g / (jnp.sqrt(v / k.correction) + k.eps), g)

        return jax.tree.map(one, grads, nu), SecondMoment(nu)

    return build(
        _init_second_moment, direction, scalars, with_count=True, who="radam_schedule_free"
    )
