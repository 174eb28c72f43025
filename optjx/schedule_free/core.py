r"""Schedule-free learning: the iterate average and the momentum of one method, joined.

Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky (2024), "The Road Less Scheduled",
NeurIPS, Algorithm 1; exact to the ``schedulefree`` package 1.4.1. Here: the state, the
three-sequence update shared with the aliases (``build``) and the general wrapper
``schedule_free`` (``ScheduleFreeWrapper``), whose docstring carries the rule. The
aliases are in ``optjx.schedule_free.aliases``, the accessors of $x$ in
``optjx.schedule_free.accessors``, the warm-up in ``_schedule_free_warmup``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx._tree import copy_params
from optjx.schedule_free.warmup import (
    OPEN_UNIT,
    check_warmup,
    warmup_factor,
)
from optjx.typing import Hyperparameter


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


def build(init_direction, direction, scalars, *, who: str):
    """The schedule-free transformation around a direction, for the aliases and the wrapper.

    Args:
      init_direction: ``params -> inner_state``, the direction's state.
      direction: ``(grads, inner_state, z, count, **extra) -> (d, inner_state)``, a
        descent direction without its learning rate, given as params ``z`` after the decay
        at ``y`` (as the reference's base optimizer sees them).
      scalars: ``count -> namespace`` with the step's ``lr`` (the one value feeding both
        the ``z`` step and the weights), ``momentum``, ``decay`` and ``r`` (``None`` for a
        Python zero: its arithmetic is skipped) and ``power``.
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
        lr = _tree.default_float(s.lr)
        beta = _tree.default_float(s.momentum)
        # The averaging weight uses the largest rate so far, so a decaying schedule does
        # not shrink the weight of later iterates (reference: lr_max).
        lr_max = jnp.maximum(state.lr_max, lr)
        weight = jnp.power(lr_max, _tree.default_float(s.power))
        if s.r is not None:
            assert count is not None  # a non-zero r keeps a step count
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

    return _state.transformation(init_fn, update_fn, extra_args=True)


def schedule_free(
    direction: optax.GradientTransformation,
    *,
    learning_rate: Hyperparameter,
    momentum: Hyperparameter = 0.9,
    weight_decay_at_y: Hyperparameter = 0.0,
    r: Hyperparameter = 0.0,
    weight_lr_power: Hyperparameter = 2.0,
    warmup_steps: int = 0,
) -> optax.GradientTransformationExtraArgs:
    r"""Make a momentum-free descent direction schedule-free (``ScheduleFreeWrapper``).

    $z$ takes the direction's steps, $x$ averages the $z$'s with weights from the
    learning rates, and the gradient is taken at the params $y$ you hold, between them
    (update $t = 1, 2, \dots$; $x_1 = z_1 = y_1$ the initial params):

    $$
    y_t = (1 - \beta) z_t + \beta x_t, \qquad
    z_{t+1} = z_t - \gamma_t \big(d_t + \lambda y_t\big), \qquad
    x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}
    $$

    $$
    c_{t+1} = \frac{w_t}{\sum_{i=1}^{t} w_i}, \qquad
    w_t = t^{\,r} \big(\max_{i \le t} \gamma_i\big)^{p}, \qquad
    \gamma_t = \eta_{t-1} \min\Big(1, \frac{t}{n}\Big)
    $$

    with $d_t$ = ``direction`` of the gradient at $y_t$ (given $z_t - \gamma_t \lambda
    y_t$ as its params), $\eta$ = ``learning_rate``, $n$ = ``warmup_steps``. The state
    keeps $z$ but not $x$; ``update`` returns the step of $y$ (the memory-efficient form):

    $$
    y_{t+1} - y_t = c_{t+1} (z_t - y_t) + \big(1 - \beta (1 - c_{t+1})\big)(z_{t+1} - z_t)
    $$

    Two classical averages are its limits ($\beta$ itself stays in $(0, 1)$: at 0,
    $x$ cannot be recovered from $y$ and $z$; at 1, $z$ is unused). $\beta \to 0$ takes
    the gradient at $z$, and $x$ is the Polyak-Ruppert average of the $z$ iterates
    (uniform with $p = r = 0$); $\beta \to 1$ takes it at the average $x$ itself (primal
    averaging). In between $\beta$ acts as momentum. The weights grow with the learning
    rate ($p$ = ``weight_lr_power``), so the warm-up's small first steps weigh little;
    the warm-up belongs to the wrapper because one rate feeds both the $z$ step and the
    weights. No decay schedule is needed: a constant rate with the average matches a tuned
    cosine decay, with no run length fixed in advance.

    Evaluate and export at $x$ ([`schedule_free_eval_params`][optjx.schedule_free_eval_params]);
    keep training from $y$. BatchNorm's running statistics were collected at $y$:
    recompute them at $x$ (a few training batches through the model at $x$) before
    evaluating. GroupNorm and LayerNorm need nothing.

    References:
      Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky (2024), "The Road Less
      Scheduled", NeurIPS, Algorithm 1; the ``schedulefree`` package 1.4.1,
      ``ScheduleFreeWrapper``.

    Args:
      direction: a momentum-free descent direction (``optjx.scale_by_rms(0.99)``,
        ``optjx.scale_by_adagrad()``, ``optax.identity()`` for SGD; a chain with
        ``optjx.add_decayed_weights`` for decay at $z$). The wrapper supplies the momentum
        and the learning rate; the direction's ``update`` sees $z$ as the params.
      learning_rate: $\eta \ge 0$ (required), a number, an array or a schedule
        ``count -> value``. A schedule replaces the built-in warm-up (put the warm-up
        inside it); the one value per step feeds both the $z$ step and the weights.
      momentum: $\beta \in (0, 1)$ (default 0.9), a number, an array or a schedule: where
        between $z$ and $x$ the gradient is taken.
      weight_decay_at_y: $\lambda \ge 0$ (default 0), decoupled weight decay computed at
        $y$ and applied to $z$ (the reference's ``weight_decay_at_y``).
      r: $r \ge 0$ (default 0: none), the polynomial weighting $t^r$ of the average.
      weight_lr_power: $p \ge 0$ (default 2), the power of the largest rate so far in the
        weights (0: weights independent of the rate).
      warmup_steps: $n$, an int $\ge 0$ (default 0: no warm-up), or an integer scalar
        array; the rate rises linearly, $\min(1, t/n)$, reaching $\eta$ at update $n$.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` with a ``ScheduleFreeState``; its
      ``update(grads, state, params)`` needs the params $y$ and returns $y_{t+1} - y_t$.
      Extra keyword arguments of ``update`` go to ``direction``.

    Raises:
      ValueError: a concrete hyperparameter out of range (``momentum`` outside $(0, 1)$,
        a negative one), ``warmup_steps`` negative or positive with a schedule
        ``learning_rate``; at ``update``, missing params or a tree that does not match.
      TypeError: a hyperparameter of the wrong type.

    Differences from PyTorch and optax:
      ``schedulefree.ScheduleFreeWrapper`` keeps $z$ in the base optimizer's
      per-parameter state, so a base that creates its state lazily (``torch.optim.RMSprop``,
      ``Adam``) raises ``KeyError`` on the first step; here $z$ is the wrapper's own. It
      has no warm-up (the base optimizer's ``lr`` scheduler is used) and divides by zero
      when the first rate is 0; here the average starts when a rate is positive, and the
      params stay $y$ (no in-place ``train()``/``eval()`` swap).
      ``optax.contrib.schedule_free`` evaluates the base step's schedule at count 0 but the
      averaging weights at count 1: an off-by-one, so with a warm-up its first update does
      nothing and the trajectory drifts about 1e-2 from the reference. Its
      ``schedule_free_eval_params`` only accepts the bare schedule-free state.

    Examples:
      >>> tx = optjx.schedule_free(optjx.scale_by_rms(0.99), learning_rate=1e-3,
      ...                          warmup_steps=100, weight_decay_at_y=1e-4)
      >>> updates, opt_state = tx.update(grads, opt_state, params)  # params are y
      >>> x = optjx.schedule_free_eval_params(opt_state, params)    # evaluate at x
    """
    hypers = _hyper.Hyperparameters(
        learning_rate=(learning_rate, _hyper.NONNEGATIVE),
        momentum=(momentum, OPEN_UNIT),
        weight_decay_at_y=(weight_decay_at_y, _hyper.NONNEGATIVE),
        r=(r, _hyper.NONNEGATIVE),
        weight_lr_power=(weight_lr_power, _hyper.NONNEGATIVE),
    )
    check_warmup(warmup_steps, learning_rate)
    _state.require_transformation("schedule_free", direction, "direction")
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

    return build(direction.init, step, scalars, who="schedule_free")
