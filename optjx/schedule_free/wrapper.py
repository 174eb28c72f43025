r"""The schedule-free wrapper: any momentum-free descent direction made schedule-free.

Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky (2024), "The Road Less Scheduled",
NeurIPS, Algorithm 1; exact to ``schedulefree.ScheduleFreeWrapper`` (package 1.4.1). The
three-sequence update is ``build`` in ``optjx.schedule_free.core``.
"""

from __future__ import annotations

import optax

from optjx import _hyper, _state
from optjx.schedule_free.core import StepScalars, build
from optjx.schedule_free.warmup import OPEN_UNIT, check_warmup, warmup_factor
from optjx.typing import Hyperparameter


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
        return StepScalars(
            learning_rate=h.learning_rate * warmup_factor(count, warmup_steps),
            momentum=h.momentum,
            weight_decay=None if hypers.is_zero("weight_decay_at_y") else h.weight_decay_at_y,
            weight_step_power=None if hypers.is_zero("r") else h.r,
            weight_lr_power=h.weight_lr_power,
        )

    def step(grads, inner_state, z, count, **extra_args):
        del count
        return direction.update(grads, inner_state, z, **extra_args)

    return build(direction.init, step, scalars, who="schedule_free")
