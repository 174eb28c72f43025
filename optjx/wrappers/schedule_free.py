r"""Schedule-free learning: the iterate average and the momentum of one method, joined.

Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky (2024), "The Road Less Scheduled",
NeurIPS, Algorithm 1; exact to the ``schedulefree`` package 1.4.1 (``ScheduleFreeWrapper``
and the optimizers built on it in :mod:`optjx.schedule_free_aliases`).

Three sequences. ``z`` takes the base method's steps, ``x`` is a weighted average of the
``z``'s, and the gradient is taken at ``y``, between the two:

.. math::

   y_t = (1 - \beta) z_t + \beta x_t, \qquad
   z_{t+1} = z_t - \gamma_t \, (d_t + \lambda y_t), \quad d_t = \text{direction}(\nabla f(y_t))

   x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}, \qquad
   c_{t+1} = \frac{w_t}{\sum_{i \le t} w_i}, \quad
   w_t = (t + 1)^r \, (\max_{i \le t} \gamma_i)^{p}

with ``gamma_t`` the learning rate of step ``t`` (0 on the first step), ``lambda`` the
weight decay taken at ``y``, ``r`` and ``p = weight_lr_power`` the averaging weights'
powers. The params the user holds are ``y``; the state holds ``z`` and the last ``beta``,
and ``x = y + (1 - 1/beta)(z - y)`` (:func:`schedule_free_eval_params`). Substituting
``x_t`` gives the update returned (the memory-efficient form of the reference):

.. math::

   y_{t+1} - y_t = c_{t+1} (z_t - y_t) + (1 - \beta (1 - c_{t+1})) (z_{t+1} - z_t)

for a constant ``beta``. A changing ``beta`` (a schedule) recovers ``x_t`` with the
``beta`` that formed ``y_t``, so ``x`` stays the weighted average of the ``z``'s (the
reference takes ``momentum`` as a constant).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optjx import _hyper, _state, _tree
from optjx.wrappers._find import _not_owned, check_int, copy_params, fill_from, find_unique

# beta = 0 makes y = z, so x cannot be recovered from (y, z); beta = 1 makes y = x and
# z unused. The reference forbids both; the limits are documented, not accepted.
OPEN_UNIT = _hyper.Range(low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)


class ScheduleFreeState(NamedTuple):
    """``z``, the sum of the averaging weights, the largest learning rate so far, the
    ``beta`` of the latest step (so ``x`` is found from ``y`` and ``z`` alone) and the
    direction's state. With a warm-up, ``r > 0``, a schedule or a bias correction the
    step count comes first (``ScheduleFreeStateWithCount``)."""

    z: optax.Params
    weight_sum: jax.Array
    lr_max: jax.Array
    momentum: jax.Array
    inner_state: optax.OptState


def warmup_factor(count, warmup_steps):
    """``min(1, (k + 1) / warmup_steps)`` at ``k`` applied updates (the reference's
    linear warm-up, which reaches the full rate on step ``warmup_steps``); 1 for 0 steps.
    ``warmup_steps`` may be an integer array (``optax.inject_hyperparams`` injects it)."""
    if has_no_warmup(warmup_steps):
        return 1.0
    steps = jnp.asarray(warmup_steps, jnp.int32)
    ramp = _tree.default_float(jnp.minimum(count + 1, steps)) / _tree.default_float(
        jnp.maximum(steps, 1)
    )
    return jnp.where(steps > 0, ramp, 1.0)


def has_no_warmup(warmup_steps) -> bool:
    """A Python 0: the warm-up (and the counter it reads) is dropped; an array never is."""
    return isinstance(warmup_steps, int) and warmup_steps == 0


def build(init_direction, direction, scalars, *, with_count: bool, who: str):
    """The schedule-free transformation around a direction, for the aliases and the wrapper.

    ``scalars(count)`` gives the step's ``lr`` (the one value feeding both the ``z`` step
    and the weights), ``momentum``, ``decay`` and ``r`` (``None`` when a Python zero) and
    ``power``; ``direction(grads, inner_state, z, count, **extra) -> (d, inner_state)``
    a descent direction (its learning rate excluded), given ``z`` after the decay at ``y``
    as the params, as the reference's base optimizer sees them.
    """

    def init_fn(params):
        count = _state.zero_count() if with_count else None
        # Each scalar its own buffer: a jitted step may donate the whole state.
        return _state.init(
            ScheduleFreeState,
            with_count,
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
        count = _state.count_of(state)
        s = scalars(count)
        lr = _tree.default_float(s.lr)
        beta = _tree.default_float(s.momentum)
        # The averaging weight uses the largest rate so far, so a decaying schedule does
        # not shrink the weight of later iterates (reference: lr_max).
        lr_max = jnp.maximum(state.lr_max, lr)
        weight = jnp.power(lr_max, _tree.default_float(s.power))
        if s.r is not None:
            step = _tree.default_float(_state.next_count(count))
            weight = weight * jnp.power(step, _tree.default_float(s.r))
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
            decay=_tree.default_float(0.0 if s.decay is None else s.decay),
        )

        z = state.z
        if s.decay is not None:  # the reference moves z by the decay at y first
            z = jax.tree.map(
                lambda z_, y: z_ - at(z_.dtype).lr * at(z_.dtype).decay * y.astype(z_.dtype),
                state.z,
                params,
            )
        d, inner_state = direction(updates, state.inner_state, z, count, **extra_args)

        def z_step(z_, d_, y):
            k = at(z_.dtype)
            g = d_.astype(z_.dtype)
            if s.decay is not None:
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

    return _tree.transformation(init_fn, update_fn, extra_args=True)


def schedule_free(
    direction: optax.GradientTransformation,
    *,
    learning_rate: _hyper.Hyper,
    momentum: _hyper.Hyper = 0.9,
    weight_decay_at_y: _hyper.Hyper = 0.0,
    r: _hyper.Hyper = 0.0,
    weight_lr_power: _hyper.Hyper = 2.0,
    warmup_steps: int = 0,
) -> optax.GradientTransformationExtraArgs:
    r"""Make a momentum-free descent direction schedule-free (Defazio et al. 2024, Alg. 1).

    ``z`` moves by ``-learning_rate * direction(g)``, with ``g`` the gradient at the params
    ``y`` the user holds; ``x``, the average of the ``z``'s weighted by the learning rates,
    is the point to evaluate (:func:`schedule_free_eval_params`), and ``y`` interpolates:

    .. math::

       y_t = (1-\beta) z_t + \beta x_t, \quad
       z_{t+1} = z_t - \gamma_t (d_t + \lambda y_t), \quad
       x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}, \quad
       c_{t+1} = \frac{(t+1)^r \max_{i\le t}\gamma_i^p}{\sum_{j \le t} (j+1)^r
                 \max_{i\le j}\gamma_i^p}

    The course's two averages are its limits: ``momentum -> 0`` evaluates the gradient at
    ``z`` and ``x`` is the Polyak-Ruppert average of the ``z`` iterates; ``momentum -> 1``
    evaluates it at ``x`` itself (primal averaging). The averaging weights come from the
    learning rates (``weight_lr_power``), so a warm-up puts little weight on the first
    iterates. No schedule is needed: the constant rate with averaging matches a tuned decay.

    Evaluate (and export for inference) at ``x``: ``schedule_free_eval_params(state,
    params)``; keep training from ``y``. BatchNorm's running statistics were collected at
    ``y``: recompute them at ``x`` (a few training batches through the model at ``x``)
    before evaluating. GroupNorm and LayerNorm, which the course recommends, need nothing.

    Args:
      direction: a momentum-free descent direction (``optjx.scale_by_rms()``,
        ``optjx.scale_by_adagrad()``, ``optax.identity()`` for SGD, a chain with
        ``optjx.add_decayed_weights`` for decay at ``z``): the wrapper supplies the
        momentum and the learning rate. Its ``update`` sees ``z`` as the params.
      learning_rate: ``gamma >= 0``, a number, an array or a schedule ``count -> value``.
        A schedule replaces the built-in warm-up (put the warm-up inside it); the one
        value per step feeds both the ``z`` step and the averaging weights.
      momentum: ``beta`` in ``(0, 1)`` (number, array or schedule): where between ``z``
        and ``x`` the gradient is taken.
      weight_decay_at_y: ``lambda >= 0``, decoupled weight decay computed at ``y`` and
        applied to ``z`` (the reference's ``weight_decay_at_y``).
      r: ``>= 0``, the polynomial weighting ``(t + 1)^r`` of the average (0: none).
      weight_lr_power: ``p >= 0``: weights ``max_i gamma_i ** p`` (0: uniform).
      warmup_steps: an int ``>= 0``: the rate rises linearly, ``min(1, (k+1)/n)``.

    Returns:
      A ``GradientTransformationExtraArgs`` whose ``update(grads, state, params)`` needs
      the params (``y``) and returns the step ``y_{t+1} - y_t``; extra keyword arguments
      go to ``direction``.

    Differences: ``schedulefree.ScheduleFreeWrapper`` keeps ``z`` in the base optimizer's
    per-parameter state, so a base that creates its state lazily (``torch.optim.RMSprop``,
    ``Adam``) raises ``KeyError`` on the first step; here ``z`` is the wrapper's own. It
    has no warm-up (the base optimizer's ``lr`` scheduler is used) and divides by zero
    when the first rate is 0; here the average starts when a rate is positive.
    ``optax.contrib.schedule_free`` evaluates the base step's schedule at count 0 but the
    averaging weights at count 1, so with a warm-up its first update does nothing and a
    trajectory drifts from the reference; its ``schedule_free_eval_params`` only accepts
    the bare schedule-free state.

    Example::

        tx = optjx.schedule_free(optjx.scale_by_rms(0.99), learning_rate=1e-3,
                                 warmup_steps=100)
        updates, state = tx.update(grads, state, params)      # params are y
        x = optjx.schedule_free_eval_params(state, params)    # evaluate at x
    """
    hypers = _hyper.Hyperparameters(
        learning_rate=(learning_rate, _hyper.NONNEGATIVE),
        momentum=(momentum, OPEN_UNIT),
        weight_decay_at_y=(weight_decay_at_y, _hyper.NONNEGATIVE),
        r=(r, _hyper.NONNEGATIVE),
        weight_lr_power=(weight_lr_power, _hyper.NONNEGATIVE),
    )
    check_warmup(warmup_steps, learning_rate)
    direction = optax.with_extra_args_support(direction)

    def scalars(count):
        h = hypers.at(count)
        return SimpleNamespace(
            lr=h.learning_rate * warmup_factor(count, warmup_steps),
            momentum=h.momentum,
            decay=None if hypers.is_zero("weight_decay_at_y") else h.weight_decay_at_y,
            r=None if hypers.is_zero("r") else h.r,
            power=h.weight_lr_power,
        )

    def step(grads, inner_state, z, count, **extra_args):
        del count
        return direction.update(grads, inner_state, z, **extra_args)

    with_count = hypers.scheduled or not has_no_warmup(warmup_steps) or not hypers.is_zero("r")
    return build(direction.init, step, scalars, with_count=with_count, who="schedule_free")


def check_warmup(warmup_steps, learning_rate) -> None:
    """``warmup_steps`` is an int ``>= 0`` (or an integer scalar array, as injected by
    ``optax.inject_hyperparams``), and 0 when the learning rate is a schedule."""
    if isinstance(warmup_steps, (jax.Array, np.ndarray, np.generic)):
        if np.ndim(warmup_steps) or not jnp.issubdtype(warmup_steps.dtype, jnp.integer):
            raise ValueError(f"warmup_steps must be an int >= 0, got {warmup_steps!r}")
        if _hyper.is_concrete(warmup_steps) and int(warmup_steps) < 0:
            raise ValueError(f"warmup_steps must be an int >= 0, got {int(warmup_steps)}")
    else:
        check_int("warmup_steps", warmup_steps, 0)
    if callable(learning_rate) and not has_no_warmup(warmup_steps):
        raise ValueError(
            f"warmup_steps must be 0 when learning_rate is a schedule, got {warmup_steps}: "
            "the schedule replaces the built-in warm-up, so put the warm-up inside it"
        )


def _find(state):
    classes = (ScheduleFreeState, _state.counted(ScheduleFreeState))
    return find_unique(state, classes, "schedule_free_eval_params", "a schedule-free optimizer")


def _move(state, params, toward_z):
    found = _find(state)

    def one(z, p):
        if _not_owned(z):
            return z
        weight = toward_z(found.momentum).astype(z.dtype)
        return (p.astype(z.dtype) + weight * (z - p.astype(z.dtype))).astype(p.dtype)

    moved = jax.tree.map(one, found.z, params, is_leaf=_not_owned)
    return fill_from(moved, params)


def schedule_free_eval_params(state, params) -> optax.Params:
    """The evaluation weights ``x = y + (1 - 1/beta)(z - y)`` from the params ``y``.

    ``state`` may be the schedule-free state itself or any optimizer state that holds
    exactly one (chains, nested chains, ``optax.masked``, ``optax.inject_hyperparams``,
    other wrappers). Leaves the schedule-free stage does not own (masked out, integer
    leaves) are returned from ``params`` unchanged. Checkpoint or export either form;
    :func:`schedule_free_train_params` is the inverse.
    """
    return _move(state, params, lambda beta: 1.0 - 1.0 / beta)


def schedule_free_train_params(state, eval_params) -> optax.Params:
    """The training params ``y = x + (1 - beta)(z - x)`` from evaluation weights ``x``:
    the inverse of :func:`schedule_free_eval_params` (up to rounding), for resuming
    training from exported ``x``."""
    return _move(state, eval_params, lambda beta: 1.0 - beta)
