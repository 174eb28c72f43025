r"""The user-facing optimizers: each one a ``chain`` of optjx building blocks.

A weight decay or momentum given as the Python number ``0`` adds no stage (and no
state); an array never drops one, whatever its value, so ``optax.inject_hyperparams``
sees one state structure eagerly and under ``jit``. The Adam family (``adam``, ``adamw``,
``radam``, ``novograd``) lives in ``optjx.adam_optimizers`` and is re-exported here.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from optjx import _alias, _hyper
from optjx.adam_optimizers import adam as adam
from optjx.adam_optimizers import adamw as adamw
from optjx.adam_optimizers import novograd as novograd
from optjx.adam_optimizers import radam as radam
from optjx.transforms.adadelta import scale_by_adadelta
from optjx.transforms.adagrad import scale_by_adagrad
from optjx.transforms.delta_bar_delta import delta_bar_delta_transformation
from optjx.transforms.rms import scale_by_rms
from optjx.transforms.scale import scale_by_learning_rate


def sgd(
    learning_rate: _hyper.Hyper,
    momentum: _hyper.Hyper | None = 0.0,
    *,
    dampening: _hyper.Hyper = 0.0,
    nesterov: bool = False,
    weight_decay: _hyper.Hyper = 0.0,
    accumulator_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Stochastic gradient descent with optional heavy-ball or Nesterov momentum.

    $$
    g_t \leftarrow g_t + \lambda w_{t-1}, \qquad
    b_1 = g_1, \quad b_t = \mu b_{t-1} + (1 - \tau) g_t
    $$

    $$
    w_t = w_{t-1} - \eta_k \cdot \begin{cases} b_t & \\ g_t + \mu b_t & \text{(Nesterov)} \end{cases}
    $$

    Without momentum the update is $w_t = w_{t-1} - \eta_k g_t$. The chain is
    ``add_decayed_weights`` (if any), ``trace`` (if any momentum), ``scale_by_learning_rate``.

    References:
      Robbins & Monro (1951); Polyak (1964); Sutskever et al. (2013) for Nesterov.

    Args:
      learning_rate: $\eta \ge 0$ (required).
      momentum: $\mu \ge 0$ (default 0: no momentum stage; ``None`` means 0 as in optax).
      dampening: $\tau \ge 0$ (default 0), from the second step on.
      nesterov: Nesterov momentum (default ``False``); needs $\mu > 0$ and $\tau = 0$.
      weight_decay: coupled L2 $\lambda \ge 0$ (default 0).
      accumulator_dtype: dtype of the momentum buffer (default: each parameter's dtype).

    Returns:
      An ``optax.GradientTransformation`` (an ``optax.chain``).

    Raises:
      ValueError: a negative hyperparameter, or ``nesterov=True`` with zero momentum.

    Differences from PyTorch and optax:
      ``torch.optim.SGD`` step for step (``lr``, ``momentum``, ``dampening``,
      ``nesterov``, ``weight_decay``). ``optax.sgd`` starts its momentum from zero and has no
      dampening or weight decay; with ``dampening=0`` the trajectories agree.

    Examples:
      >>> tx = optjx.sgd(0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _alias.chain(
        _alias.decay(weight_decay),
        _alias.momentum(momentum, dampening, nesterov, accumulator_dtype),
        scale_by_learning_rate(learning_rate),
    )


def rmsprop(
    learning_rate: _hyper.Hyper,
    decay: _hyper.Hyper = 0.9,
    *,
    eps: _hyper.Hyper = 1e-8,
    eps_root: _hyper.Hyper = 0.0,
    centered: bool = False,
    momentum: _hyper.Hyper | None = 0.0,
    nesterov: bool = False,
    weight_decay: _hyper.Hyper = 0.0,
    initial_scale: float = 0.0,
    bias_correction: bool = False,
) -> optax.GradientTransformation:
    r"""RMSProp, optionally centered and with momentum, as ``torch.optim.RMSprop``.

    $$
    g_t \leftarrow g_t + \lambda w_{t-1}, \qquad
    v_t = \rho v_{t-1} + (1-\rho) g_t^2, \qquad
    d_t = \frac{g_t}{\sqrt{v_t - \bar g_t^2 + \epsilon_{root}} + \epsilon}
    $$

    $$
    b_t = \mu b_{t-1} + d_t, \qquad w_t = w_{t-1} - \eta_k \, (b_t \text{ or } d_t)
    $$

    with $\bar g_t$ the running mean gradient (``centered`` only, else 0). See
    ``scale_by_rms``.

    References:
      Tieleman & Hinton (2012), lecture 6e; Graves (2013) for the centered form.

    Args:
      learning_rate: $\eta \ge 0$ (required).
      decay: $\rho \in [0, 1)$ (default 0.9; PyTorch's ``alpha`` defaults to 0.99).
      eps: $\epsilon \ge 0$ outside the root (default 1e-8).
      eps_root: $\epsilon_{root} \ge 0$ under the root (default 0).
      centered: subtract $\bar g_t^2$ (default ``False``).
      momentum: $\mu \ge 0$ (default 0: no momentum stage).
      nesterov: use $d_t + \mu b_t$ (default ``False``; not in PyTorch).
      weight_decay: coupled L2 $\lambda \ge 0$ (default 0).
      initial_scale: $v_0 \ge 0$ (default 0).
      bias_correction: divide $v$ by $1 - \rho^t$ (default ``False``; optax's flag).

    Returns:
      An ``optax.GradientTransformation`` (an ``optax.chain``).

    Differences from PyTorch and optax:
      ``torch.optim.RMSprop(alpha=decay)`` step for step; mind the default ``decay`` 0.9
      against PyTorch's ``alpha=0.99``. ``optax.rmsprop`` puts ``eps`` under the root
      (``eps_in_sqrt=True``): pass ``eps=0, eps_root=1e-8`` for optax's.

    Examples:
      >>> tx = optjx.rmsprop(1e-2, decay=0.99, momentum=0.9, centered=True)
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _alias.chain(
        _alias.decay(weight_decay),
        scale_by_rms(
            decay,
            eps=eps,
            eps_root=eps_root,
            centered=centered,
            initial_scale=initial_scale,
            bias_correction=bias_correction,
        ),
        _alias.momentum(momentum, 0.0, nesterov),
        scale_by_learning_rate(learning_rate),
    )


def adagrad(
    learning_rate: _hyper.Hyper,
    *,
    initial_accumulator_value: float = 0.0,
    eps: _hyper.Hyper = 1e-10,
    weight_decay: _hyper.Hyper = 0.0,
) -> optax.GradientTransformation:
    r"""AdaGrad, as ``torch.optim.Adagrad``.

    $$
    g_t \leftarrow g_t + \lambda w_{t-1}, \qquad s_t = s_{t-1} + g_t^2, \qquad
    w_t = w_{t-1} - \eta_k \frac{g_t}{\sqrt{s_t} + \epsilon}
    $$

    References:
      Duchi, Hazan & Singer (2011).

    Args:
      learning_rate: $\eta \ge 0$ (required).
      initial_accumulator_value: $s_0 \ge 0$ (default 0).
      eps: $\epsilon \ge 0$ outside the root (default 1e-10).
      weight_decay: coupled L2 $\lambda \ge 0$ (default 0).

    Returns:
      An ``optax.GradientTransformation`` (an ``optax.chain``).

    Differences from PyTorch and optax:
      ``torch.optim.Adagrad`` with ``lr_decay=0`` (use a schedule for its ``lr_decay``:
      ``lambda k: lr / (1 + k * lr_decay)``). ``optax.adagrad`` starts the sum at 0.1 and
      puts ``eps=1e-7`` under the root.

    Examples:
      >>> tx = optjx.adagrad(1e-2)
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _alias.chain(
        _alias.decay(weight_decay),
        scale_by_adagrad(initial_accumulator_value=initial_accumulator_value, eps=eps),
        scale_by_learning_rate(learning_rate),
    )


def adadelta(
    learning_rate: _hyper.Hyper = 1.0,
    rho: _hyper.Hyper = 0.9,
    *,
    eps: _hyper.Hyper = 1e-6,
    weight_decay: _hyper.Hyper = 0.0,
) -> optax.GradientTransformation:
    r"""AdaDelta, scaled by ``learning_rate`` as ``torch.optim.Adadelta``.

    $$
    g_t \leftarrow g_t + \lambda w_{t-1}, \qquad
    s_t = \rho s_{t-1} + (1-\rho) g_t^2, \qquad
    \Delta_t = \frac{\sqrt{a_{t-1} + \epsilon}}{\sqrt{s_t + \epsilon}} g_t
    $$

    $$
    a_t = \rho a_{t-1} + (1-\rho) \Delta_t^2, \qquad w_t = w_{t-1} - \eta_k \Delta_t
    $$

    References:
      Zeiler (2012), Algorithm 1 (where $\eta = 1$).

    Args:
      learning_rate: $\eta \ge 0$ (default 1.0, PyTorch's; the paper has no rate).
      rho: $\rho \in [0, 1)$ (default 0.9).
      eps: $\epsilon \ge 0$ under both roots (default 1e-6).
      weight_decay: coupled L2 $\lambda \ge 0$ (default 0).

    Returns:
      An ``optax.GradientTransformation`` (an ``optax.chain``).

    Differences from PyTorch and optax:
      ``torch.optim.Adadelta`` step for step, same defaults. ``optax.adadelta`` has no
      default learning rate.

    Examples:
      >>> tx = optjx.adadelta()
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _alias.chain(
        _alias.decay(weight_decay),
        scale_by_adadelta(rho, eps=eps),
        scale_by_learning_rate(learning_rate),
    )


def delta_bar_delta(
    initial_learning_rate: float | jax.Array,
    *,
    kappa: _hyper.Hyper,
    phi: _hyper.Hyper,
    gamma: _hyper.Hyper,
) -> optax.GradientTransformation:
    r"""Delta-bar-delta: one learning rate per weight, $w_t = w_{t-1} - \epsilon_{t-1} \odot g_t$.

    Each rate grows by $\kappa$ while the gradient keeps the sign of its running average
    $\bar\delta$ and shrinks by the fraction $\phi$ when it flips; see
    ``scale_by_delta_bar_delta``. Returns $-\epsilon \odot g$ directly (no learning-rate
    stage: the rates live in the state).

    References:
      Jacobs (1988); Goodfellow, Bengio & Courville (2016), section 8.5.

    Args:
      initial_learning_rate: $\epsilon_0 \ge 0$, a number or scalar array (not a schedule).
      kappa: $\kappa \ge 0$, the additive increase (required).
      phi: $\phi \in [0, 1]$, the multiplicative decrease (required).
      gamma: $\gamma \in [0, 1)$, the decay of $\bar\delta$ (required).

    Returns:
      An ``optax.GradientTransformation``.

    Differences from PyTorch and optax:
      Neither has this algorithm.

    Examples:
      >>> tx = optjx.delta_bar_delta(0.01, kappa=1e-3, phi=0.1, gamma=0.7)
    """
    return delta_bar_delta_transformation(initial_learning_rate, kappa, phi, gamma, descent=False)
