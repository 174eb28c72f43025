r"""Per-coordinate step sizes from the gradient history: ``rmsprop``, ``adagrad``, ``adadelta``,
each a chain of optjx building blocks."""

from __future__ import annotations

import optax

from optjx import _hyper
from optjx._twin import torch_twin
from optjx.optimizers import _stages
from optjx.transforms.adadelta import scale_by_adadelta
from optjx.transforms.adagrad import scale_by_adagrad
from optjx.transforms.rms import scale_by_rms
from optjx.typing import Hyperparameter


@torch_twin("rmsprop")
def rmsprop(
    learning_rate: Hyperparameter,
    decay: Hyperparameter = 0.9,
    *,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
    centered: bool = False,
    momentum: Hyperparameter | None = None,
    nesterov: bool = False,
    weight_decay: Hyperparameter | None = None,
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
      momentum: $\mu \ge 0$ (default ``None``: no momentum stage; ``0.0`` keeps a buffer,
        with the numbers of none).
      nesterov: use $d_t + \mu b_t$ (default ``False``; not in PyTorch).
      weight_decay: coupled L2 $\lambda \ge 0$
        (default ``None``: no decay stage; ``0.0`` keeps the stage).
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
    return _stages.chain(
        _stages.decay(weight_decay),
        scale_by_rms(
            decay,
            eps=eps,
            eps_root=eps_root,
            centered=centered,
            initial_scale=initial_scale,
            bias_correction=bias_correction,
        ),
        _stages.momentum(momentum, 0.0, nesterov),
        _stages.learning_rate(learning_rate),
    )


@torch_twin("adagrad")
def adagrad(
    learning_rate: Hyperparameter,
    *,
    initial_accumulator_value: float = 0.0,
    eps: Hyperparameter = 1e-10,
    weight_decay: Hyperparameter | None = None,
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
      weight_decay: coupled L2 $\lambda \ge 0$
        (default ``None``: no decay stage; ``0.0`` keeps the stage).

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
    return _stages.chain(
        _stages.decay(weight_decay),
        scale_by_adagrad(initial_accumulator_value=initial_accumulator_value, eps=eps),
        _stages.learning_rate(learning_rate),
    )


@torch_twin("adadelta")
def adadelta(
    learning_rate: Hyperparameter = 1.0,
    rho: Hyperparameter = 0.9,
    *,
    eps: Hyperparameter = 1e-6,
    weight_decay: Hyperparameter | None = None,
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
      weight_decay: coupled L2 $\lambda \ge 0$
        (default ``None``: no decay stage; ``0.0`` keeps the stage).

    Returns:
      An ``optax.GradientTransformation`` (an ``optax.chain``).

    Differences from PyTorch and optax:
      ``torch.optim.Adadelta`` step for step, same defaults. ``optax.adadelta`` has no
      default learning rate.

    Examples:
      >>> tx = optjx.adadelta()
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _stages.chain(
        _stages.decay(weight_decay),
        scale_by_adadelta(rho, eps=eps),
        _stages.learning_rate(learning_rate),
    )
