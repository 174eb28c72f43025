r"""Schedule-free SGD and AdamW (RAdam in ``radam.py``, re-exported here),
exact to the ``schedulefree`` package 1.4.1.

Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky (2024), "The Road Less Scheduled",
NeurIPS. Each is the three sequences of ``optjx.schedule_free`` ($z$ steps, $x$
averages, gradients at $y$) around one direction; see that function for the rule, and
``optjx.schedule_free_eval_params`` for the evaluation weights $x$.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx.schedule_free import _parts
from optjx.schedule_free.core import build
from optjx.schedule_free.radam import radam_schedule_free as radam_schedule_free
from optjx.schedule_free.warmup import (
    check_warmup,
    warmup_factor,
)
from optjx.typing import Hyperparameter


def sgd_schedule_free(
    learning_rate: Hyperparameter = 1.0,
    momentum: Hyperparameter = 0.9,
    *,
    weight_decay: Hyperparameter = 0.0,
    warmup_steps: int = 0,
    r: Hyperparameter = 0.0,
    weight_lr_power: Hyperparameter = 2.0,
) -> optax.GradientTransformationExtraArgs:
    r"""Schedule-free SGD: ``schedulefree.SGDScheduleFree``, step for step.

    $$
    y_t = (1 - \beta) z_t + \beta x_t, \qquad g_t = \nabla f(y_t), \qquad
    z_{t+1} = z_t - \gamma_t (g_t + \lambda y_t)
    $$

    $$
    x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}, \qquad
    c_{t+1} = \frac{w_t}{\sum_{i=1}^{t} w_i}, \qquad
    w_t = t^{\,r} \big(\max_{i \le t} \gamma_i\big)^{p}
    $$

    with $\gamma_t = \eta_{t-1} \min(1, t/n)$ the warmed-up rate and $x_1 = z_1 = y_1$
    the initial params. The params you hold are $y$; ``update`` returns $y_{t+1} - y_t$.
    Two classical averages are its limits: $\beta \to 0$ is SGD on $z$ with $x$ the
    Polyak-Ruppert average of its iterates; $\beta \to 1$ takes the gradient at the average
    (primal averaging). No schedule is needed and no run length is fixed in advance.

    References:
      Defazio et al. (2024), "The Road Less Scheduled", NeurIPS, Algorithm 1 (SGD form);
      the ``schedulefree`` package 1.4.1, ``SGDScheduleFree``.

    Args:
      learning_rate: $\eta \ge 0$ (default 1.0, the reference's), a number, an array or a
        schedule (a schedule replaces the warm-up). Schedule-free SGD takes rates about
        10-50x larger than SGD with a schedule.
      momentum: $\beta \in (0, 1)$ (default 0.9), the interpolation between $z$ and $x$.
      weight_decay: $\lambda \ge 0$ (default 0), decoupled, computed at $y$.
      warmup_steps: $n$, an int $\ge 0$ (default 0): $\gamma_t = \eta \min(1, t/n)$.
      r: $r \ge 0$ (default 0), the polynomial weighting $t^r$ of the average.
      weight_lr_power: $p \ge 0$ (default 2), the power of the largest rate so far in
        the weights.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` with a ``ScheduleFreeState``;
      ``update`` needs the params $y$ and returns $y_{t+1} - y_t$. Evaluate, checkpoint for
      inference and export at ``x = optjx.schedule_free_eval_params(state, params)``.

    Raises:
      ValueError: a concrete hyperparameter out of range, or ``warmup_steps``
        negative or positive with a schedule ``learning_rate``.
      TypeError: a hyperparameter of the wrong type.

    Differences from PyTorch and optax:
      The reference is stateful (``optimizer.train()`` / ``.eval()`` swap $y$ and $x$ in
      place); here the params stay $y$ and $x$ is computed on demand.
      ``optax.contrib.schedule_free_sgd`` evaluates the warm-up at count 0 for the step
      but count 1 for the averaging weights (an off-by-one: its first warm-up update does
      nothing) and has no ``r``.

    Examples:
      >>> tx = optjx.sgd_schedule_free(0.5, warmup_steps=100)
      >>> updates, opt_state = tx.update(grads, opt_state, params)
      >>> params = optax.apply_updates(params, updates)
      >>> x = optjx.schedule_free_eval_params(opt_state, params)
    """
    hypers = _parts.hyperparameters(
        learning_rate, "momentum", momentum, weight_decay, r, weight_lr_power
    )
    check_warmup(warmup_steps, learning_rate)

    def scalars(count):
        h = hypers.at(count)
        return _parts.scalars(
            hypers, h, h.learning_rate * warmup_factor(count, warmup_steps), h.momentum
        )

    def direction(grads, inner_state, z, count, **extra_args):
        return grads, inner_state

    return build(lambda params: optax.EmptyState(), direction, scalars, who="sgd_schedule_free")


def adamw_schedule_free(
    learning_rate: Hyperparameter = 0.0025,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    *,
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 0.0,
    warmup_steps: int = 0,
    r: Hyperparameter = 0.0,
    weight_lr_power: Hyperparameter = 2.0,
    variant: Literal["reference", "paper"] = "reference",
) -> optax.GradientTransformationExtraArgs:
    r"""Schedule-free AdamW: ``schedulefree.AdamWScheduleFree`` (or ``...Paper``).

    Adam's second moment, no first moment ($\beta_1$ is the schedule-free
    interpolation):

    $$
    v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \qquad
    z_{t+1} = z_t - \gamma_t \Big(\frac{g_t}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon}
              + \lambda y_t\Big)
    $$

    with $g_t$ the gradient at $y_t = (1 - \beta_1) z_t + \beta_1 x_t$ and $x$, $c_t$,
    the weights $w_t$ and $\gamma_t$ as in [`sgd_schedule_free`][optjx.sgd_schedule_free].
    ``variant="paper"`` (``AdamWScheduleFreePaper``, the paper's Algorithm 1) folds the
    bias correction into the rate and divides by $\sqrt{v_t} + \epsilon$:

    $$
    \gamma_t = \eta_{t-1} \min(1, t/n) \sqrt{1 - \beta_2^t}
    $$

    so the rate, hence the averaging weights, rise with the correction as with a warm-up.

    References:
      Defazio et al. (2024), "The Road Less Scheduled", NeurIPS, Algorithm 1; the
      ``schedulefree`` package 1.4.1, ``AdamWScheduleFree`` and
      ``AdamWScheduleFreePaper``.

    Args:
      learning_rate: $\eta \ge 0$ (default 0.0025), a number, an array or a schedule (a
        schedule replaces the warm-up).
      b1: $\beta_1 \in (0, 1)$ (default 0.9), the interpolation momentum.
      b2: $\beta_2 \in [0, 1)$ (default 0.999), the second-moment decay.
      eps: $\epsilon \ge 0$ (default 1e-8), added to the root.
      weight_decay: $\lambda \ge 0$ (default 0), decoupled and computed at $y$.
      warmup_steps: $n$, an int $\ge 0$ (default 0), the linear warm-up of the rate.
      r: $r \ge 0$ (default 0), the polynomial weighting $t^r$ of the average.
      weight_lr_power: $p \ge 0$ (default 2), the power of the largest rate in the
        weights.
      variant: ``"reference"`` (default, ``AdamWScheduleFree``) or ``"paper"``
        (``AdamWScheduleFreePaper``).

    Returns:
      An ``optax.GradientTransformationExtraArgs`` with a ``ScheduleFreeState``
      ($z$ and $v$: two copies of the params; ``optax.contrib.schedule_free_adamw`` keeps
      three); ``update`` needs the params $y$ and returns $y_{t+1} - y_t$.

    Raises:
      ValueError: a concrete hyperparameter out of range, ``warmup_steps``
        negative or positive with a schedule ``learning_rate``, an unknown ``variant``, or
        complex params at ``init``.
      TypeError: a hyperparameter of the wrong type.

    Differences from PyTorch and optax:
      As [`sgd_schedule_free`][optjx.sgd_schedule_free]: no in-place ``train()``/
      ``eval()``; ``optax.contrib.schedule_free_adamw`` has the warm-up off-by-one, no
      ``r`` and no paper variant.

    Examples:
      >>> tx = optjx.adamw_schedule_free(2.5e-3, warmup_steps=100, weight_decay=1e-4)
      >>> x = optjx.schedule_free_eval_params(opt_state, params)  # for evaluation
    """
    if variant not in ("reference", "paper"):
        raise ValueError(f"variant must be 'reference' or 'paper', got {variant!r}")
    hypers = _parts.hyperparameters(
        learning_rate, "b1", b1, weight_decay, r, weight_lr_power,
        b2=(b2, _hyper.DECAY), eps=(eps, _hyper.NONNEGATIVE),
    )  # fmt: skip
    check_warmup(warmup_steps, learning_rate)
    paper = variant == "paper"

    def correction(h, count):  # 1 - b2^t at step t = count + 1
        return _tree.power_complement(h.b2, _state.next_count(count))

    def scalars(count):
        h = hypers.at(count)
        lr = h.learning_rate * warmup_factor(count, warmup_steps)
        if paper:
            lr = lr * jnp.sqrt(correction(h, count))
        return _parts.scalars(hypers, h, lr, h.b1)

    def direction(grads, inner_state, z, count, **extra_args):
        h = hypers.at(count)
        nu = _tree.update_moment(grads, inner_state.nu, h.b2, order=2)
        at = _hyper.per_dtype(correction=correction(h, count), eps=h.eps)

        def one(g, v):
            k = at(v.dtype)
            root = jnp.sqrt(v) if paper else jnp.sqrt(v / k.correction)
            return g.astype(v.dtype) / (root + k.eps)

        return jax.tree.map(one, grads, nu), _parts.SecondMoment(nu)

    return build(_parts.init_second_moment, direction, scalars, who="adamw_schedule_free")
