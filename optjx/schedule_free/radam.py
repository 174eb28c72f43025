r"""Schedule-free RAdam, exact to ``schedulefree.RAdamScheduleFree`` (package 1.4.1).

Defazio et al. (2024), "The Road Less Scheduled", around the variance rectification of
Liu et al. (2020); see ``optjx.schedule_free`` for the three sequences.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx.schedule_free import _parts
from optjx.schedule_free.core import build
from optjx.transforms.radam import first_adaptive_step, variance_rectification
from optjx.typing import Hyperparameter


def radam_schedule_free(
    learning_rate: Hyperparameter = 0.0025,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    *,
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 0.0,
    r: Hyperparameter = 0.0,
    weight_lr_power: Hyperparameter = 2.0,
    silent_sgd_phase: bool = True,
) -> optax.GradientTransformationExtraArgs:
    r"""Schedule-free RAdam: ``schedulefree.RAdamScheduleFree``, step for step.

    RAdam's variance rectification replaces the warm-up. While $\rho_t \le 4$ the rate
    is 0 (``silent_sgd_phase=True``: nothing moves and nothing is averaged) or $\eta$ on
    the raw gradient (SGD); after, $\gamma_t = \eta\, r_t$ on Adam's normalised gradient:

    $$
    z_{t+1} = z_t - \eta_{t-1} r_t \Big(\frac{g_t}{\sqrt{v_t/(1-\beta_2^t)}+\epsilon}
              + \lambda y_t\Big), \qquad
    r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
                     {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}}
    $$

    $$
    \rho_\infty = \frac{2}{1 - \beta_2} - 1, \qquad
    \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t}
    $$

    with $v_t$ as in [`adamw_schedule_free`][optjx.adamw_schedule_free] and $x$, $y$ and
    the weights as in [`sgd_schedule_free`][optjx.sgd_schedule_free] with
    $\beta = \beta_1$. The averaging weights use $\gamma_t = \eta\, r_t$, so the
    rectified start weighs little.

    References:
      Defazio et al. (2024), "The Road Less Scheduled", NeurIPS; Liu et al. (2020), "On
      the variance of the adaptive learning rate and beyond", Algorithm 2; the
      ``schedulefree`` package 1.4.1, ``RAdamScheduleFree``.

    Args:
      learning_rate: $\eta \ge 0$ (default 0.0025), a number, an array or a schedule.
      b1: $\beta_1 \in (0, 1)$ (default 0.9), the interpolation momentum.
      b2: $\beta_2 \in [0, 1)$ (default 0.999); $\beta_2 \le 0.6$ never switches the
        adaptive step on.
      eps: $\epsilon \ge 0$ (default 1e-8).
      weight_decay: $\lambda \ge 0$ (default 0), computed at $y$.
      r: $r \ge 0$ (default 0), the polynomial weighting $t^r$ of the average.
      weight_lr_power: $p \ge 0$ (default 2).
      silent_sgd_phase: no step before the rectification switches on (default ``True``);
        ``False`` takes SGD steps at rate $\eta$ there.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` with a ``ScheduleFreeState``;
      ``update`` needs the params $y$ and returns $y_{t+1} - y_t$.

    Raises:
      ValueError: a concrete hyperparameter out of range, or complex params at ``init``.
      TypeError: a hyperparameter of the wrong type.

    Differences from PyTorch and optax:
      optax has no schedule-free RAdam. The switch is the reference's strict
      $\rho_t > 4$ ([`scale_by_radam`][optjx.scale_by_radam]'s default threshold is 5).
      No ``warmup_steps``: the rectification is the warm-up, as in the reference.

    Examples:
      >>> tx = optjx.radam_schedule_free(2.5e-3, weight_decay=1e-4)
    """
    hypers = _parts.hyperparameters(
        learning_rate, "b1", b1, weight_decay, r, weight_lr_power,
        b2=(b2, _hyper.DECAY), eps=(eps, _hyper.NONNEGATIVE),
    )  # fmt: skip
    first_adaptive = first_adaptive_step(b2, 4.0) if not callable(b2) else None

    def rectified(h, count):
        return variance_rectification(_state.next_count(count), h.b2, 4.0, first_adaptive)

    def scalars(count):
        h = hypers.at(count)
        adaptive, rectifier = rectified(h, count)
        before = 0.0 if silent_sgd_phase else 1.0
        return _parts.scalars(
            hypers, h, h.learning_rate * jnp.where(adaptive, rectifier, before), h.b1
        )

    def direction(grads, inner_state, z, count, **extra_args):
        h = hypers.at(count)
        adaptive, _ = rectified(h, count)
        nu = _tree.update_moment(grads, inner_state.nu, h.b2, order=2)
        correction = _tree.power_complement(h.b2, _state.next_count(count))
        at = _hyper.per_dtype(correction=correction, eps=h.eps)

        def one(g, v):
            k = at(v.dtype)
            g = g.astype(v.dtype)
            return jnp.where(adaptive, g / (jnp.sqrt(v / k.correction) + k.eps), g)

        return jax.tree.map(one, grads, nu), _parts.SecondMoment(nu)

    return build(_parts.init_second_moment, direction, scalars, who="radam_schedule_free")
