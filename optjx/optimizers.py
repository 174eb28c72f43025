r"""The user-facing optimizers: each one a ``chain`` of optjx building blocks.

A weight decay or momentum given as the Python number ``0`` adds no stage (and no
state); an array never drops one, whatever its value, so ``optax.inject_hyperparams``
sees one state structure eagerly and under ``jit``.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from optjx import _hyper
from optjx.transforms.adadelta import scale_by_adadelta
from optjx.transforms.adagrad import scale_by_adagrad
from optjx.transforms.adam import scale_by_adam
from optjx.transforms.delta_bar_delta import delta_bar_delta_transformation as _delta_bar_delta
from optjx.transforms.novograd import scale_by_novograd
from optjx.transforms.radam import scale_by_radam
from optjx.transforms.rms import scale_by_rms
from optjx.transforms.scale import scale_by_learning_rate
from optjx.transforms.trace import trace
from optjx.transforms.weight_decay import add_decayed_weights


def _chain(*stages) -> optax.GradientTransformation:
    """``optax.chain`` of the stages that are not ``None``."""
    return optax.chain(*(s for s in stages if s is not None))


def _decay(weight_decay, mask=None) -> optax.GradientTransformation | None:
    """``add_decayed_weights``, or nothing for a Python zero (an array always keeps it)."""
    _hyper.check_nonnegative("weight_decay", weight_decay)
    if _hyper.is_python_zero(weight_decay) and mask is None:
        return None
    return add_decayed_weights(weight_decay, mask=mask)


def _momentum(
    momentum, dampening=0.0, nesterov=False, accumulator_dtype=None
) -> optax.GradientTransformation | None:
    """``trace``, or nothing for a momentum of ``None`` (optax's default) or a Python zero."""
    if momentum is None:
        momentum = 0.0
    _hyper.check_nonnegative("momentum", momentum)
    _hyper.check_nonnegative("dampening", dampening)
    if _hyper.is_python_zero(momentum):
        if nesterov:
            raise ValueError("nesterov=True needs a momentum > 0, got momentum=0")
        return None
    return trace(
        momentum, dampening=dampening, nesterov=nesterov, accumulator_dtype=accumulator_dtype
    )


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
    return _chain(
        _decay(weight_decay),
        _momentum(momentum, dampening, nesterov, accumulator_dtype),
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
    return _chain(
        _decay(weight_decay),
        scale_by_rms(
            decay,
            eps=eps,
            eps_root=eps_root,
            centered=centered,
            initial_scale=initial_scale,
            bias_correction=bias_correction,
        ),
        _momentum(momentum, 0.0, nesterov),
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
    return _chain(
        _decay(weight_decay),
        scale_by_adagrad(initial_accumulator_value=initial_accumulator_value, eps=eps),
        scale_by_learning_rate(learning_rate),
    )


def adam(
    learning_rate: _hyper.Hyper,
    b1: _hyper.Hyper = 0.9,
    b2: _hyper.Hyper = 0.999,
    *,
    eps: _hyper.Hyper = 1e-8,
    eps_root: _hyper.Hyper = 0.0,
    amsgrad: bool = False,
    weight_decay: _hyper.Hyper = 0.0,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Adam with coupled L2 weight decay, as ``torch.optim.Adam``.

    $$
    g_t \leftarrow g_t + \lambda w_{t-1}, \qquad
    m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
    v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2
    $$

    $$
    w_t = w_{t-1} - \eta_k \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t) + \epsilon_{root}} + \epsilon}
    $$

    (AMSGrad: the running maximum of $v$ in the denominator.) See ``scale_by_adam``.

    References:
      Kingma & Ba (2015), Algorithm 1; Reddi, Kale & Kumar (2018) for AMSGrad.

    Args:
      learning_rate: $\eta \ge 0$ (required).
      b1: $\beta_1 \in [0, 1)$ (default 0.9).
      b2: $\beta_2 \in [0, 1)$ (default 0.999).
      eps: $\epsilon \ge 0$ outside the root (default 1e-8).
      eps_root: $\epsilon_{root} \ge 0$ under the root (default 0).
      amsgrad: PyTorch's AMSGrad (default ``False``).
      weight_decay: coupled L2 $\lambda \ge 0$, added to the gradient (default 0). For
        decoupled decay use ``adamw``.
      mu_dtype: dtype of $m$ (default: each parameter's dtype), as in optax.
      nu_dtype: dtype of $v$ (default: each parameter's dtype).

    Returns:
      An ``optax.GradientTransformation`` (an ``optax.chain``).

    Differences from PyTorch and optax:
      ``torch.optim.Adam`` step for step, AMSGrad and ``weight_decay`` included.
      ``optax.adam`` has no weight decay and its AMSGrad variant maximises the corrected
      $\hat v$.

    Examples:
      >>> tx = optjx.adam(optjx.schedules.warmup(optjx.schedules.cosine(1e-3, 10_000), 500))
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _chain(
        _decay(weight_decay),
        scale_by_adam(
            b1,
            b2,
            eps=eps,
            eps_root=eps_root,
            amsgrad=amsgrad,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        scale_by_learning_rate(learning_rate),
    )


def adamw(
    learning_rate: _hyper.Hyper,
    b1: _hyper.Hyper = 0.9,
    b2: _hyper.Hyper = 0.999,
    *,
    eps: _hyper.Hyper = 1e-8,
    eps_root: _hyper.Hyper = 0.0,
    amsgrad: bool = False,
    weight_decay: _hyper.Hyper = 0.01,
    mask: Any = None,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""AdamW: Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    $$
    w_t = w_{t-1} - \eta_k \Big( \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}
          + \lambda w_{t-1} \Big)
    $$

    with $\hat m_t, \hat v_t$ Adam's bias-corrected moments of the raw gradient. The decay
    is multiplied by the learning rate (PyTorch's convention), not applied on its own.

    References:
      Loshchilov & Hutter (2019), "Decoupled weight decay regularization".

    Args:
      learning_rate: $\eta \ge 0$ (required).
      b1: $\beta_1 \in [0, 1)$ (default 0.9).
      b2: $\beta_2 \in [0, 1)$ (default 0.999).
      eps: $\epsilon \ge 0$ outside the root (default 1e-8).
      eps_root: $\epsilon_{root} \ge 0$ under the root (default 0).
      amsgrad: PyTorch's AMSGrad (default ``False``).
      weight_decay: $\lambda \ge 0$ (default 0.01, PyTorch's).
      mask: restrict the decay, as in ``add_decayed_weights`` (default ``None``: all).
      mu_dtype: dtype of $m$ (default: each parameter's dtype).
      nu_dtype: dtype of $v$ (default: each parameter's dtype).

    Returns:
      An ``optax.GradientTransformation`` (an ``optax.chain``).

    Differences from PyTorch and optax:
      ``torch.optim.AdamW`` step for step; its default ``weight_decay`` is 0.01, and so is
      optjx's. ``optax.adamw`` defaults to ``weight_decay=1e-4``: pass it explicitly when
      porting optax code.

    Examples:
      >>> tx = optjx.adamw(3e-4, weight_decay=0.1, mask=lambda p: {k: k != "bias" for k in p})
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _chain(
        scale_by_adam(
            b1,
            b2,
            eps=eps,
            eps_root=eps_root,
            amsgrad=amsgrad,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        _decay(weight_decay, mask),
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
    return _chain(
        _decay(weight_decay),
        scale_by_adadelta(rho, eps=eps),
        scale_by_learning_rate(learning_rate),
    )


def radam(
    learning_rate: _hyper.Hyper,
    b1: _hyper.Hyper = 0.9,
    b2: _hyper.Hyper = 0.999,
    *,
    eps: _hyper.Hyper = 1e-8,
    threshold: _hyper.Hyper = 5.0,
    weight_decay: _hyper.Hyper = 0.0,
    decoupled_weight_decay: bool = False,
) -> optax.GradientTransformation:
    r"""RAdam, as ``torch.optim.RAdam``.

    $$
    w_t = w_{t-1} - \eta_k \cdot \begin{cases}
      r_t \, \hat m_t \, \dfrac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon} & \rho_t > \text{threshold} \\
      \hat m_t & \text{otherwise}
    \end{cases}
    $$

    with $\rho_t$ and $r_t$ as in ``scale_by_radam``. ``weight_decay`` is coupled L2
    ($g \leftarrow g + \lambda w$ before the moments) or, with
    ``decoupled_weight_decay=True``, $w \leftarrow w - \eta\lambda w$.

    References:
      Liu et al. (2020), "On the variance of the adaptive learning rate and beyond",
      Algorithm 2.

    Args:
      learning_rate: $\eta \ge 0$ (required).
      b1: $\beta_1 \in [0, 1)$ (default 0.9).
      b2: $\beta_2 \in [0, 1)$ (default 0.999).
      eps: $\epsilon \ge 0$ (default 1e-8).
      threshold: in $[4, \infty]$ (default 5, PyTorch's); 4 with ``eps=0`` is the paper.
      weight_decay: $\lambda \ge 0$ (default 0).
      decoupled_weight_decay: decoupled instead of coupled decay (default ``False``;
        PyTorch's flag of the same name).

    Returns:
      An ``optax.GradientTransformation`` (an ``optax.chain``).

    Differences from PyTorch and optax:
      ``torch.optim.RAdam`` step for step (across the rectification threshold).
      ``optax.radam`` places ``eps`` after the bias correction and switches on at
      $\rho_t \ge 5$; it has no weight decay.

    Examples:
      >>> tx = optjx.radam(1e-3, threshold=4.0, eps=0.0)  # the paper's Algorithm 2
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    rectified = scale_by_radam(b1, b2, eps=eps, threshold=threshold)
    if not decoupled_weight_decay:
        return _chain(_decay(weight_decay), rectified, scale_by_learning_rate(learning_rate))
    return _chain(rectified, _decay(weight_decay), scale_by_learning_rate(learning_rate))


def novograd(
    learning_rate: _hyper.Hyper,
    b1: _hyper.Hyper = 0.95,
    b2: _hyper.Hyper = 0.98,
    *,
    eps: _hyper.Hyper = 1e-8,
    weight_decay: _hyper.Hyper = 0.0,
    grad_averaging: bool = False,
) -> optax.GradientTransformation:
    r"""NovoGrad: Adam-like momentum with one second moment per layer.

    $$
    v^l_t = \beta_2 v^l_{t-1} + (1 - \beta_2) \lVert g^l_t\rVert^2 \;(v^l_1 = \lVert g^l_1 \rVert^2)
    $$

    $$
    m^l_t = \beta_1 m^l_{t-1} + c\, \frac{g^l_t}{\sqrt{v^l_t + \epsilon}} + \lambda w^l_{t-1}, \qquad
    w_t = w_{t-1} - \eta_k m_t
    $$

    per layer $l$ (a leaf), with $c = 1$, or $1 - \beta_1$ with ``grad_averaging``. See
    ``scale_by_novograd``.

    References:
      Ginsburg et al. (2019), Algorithm 1.

    Args:
      learning_rate: $\eta \ge 0$ (required).
      b1: $\beta_1 \in [0, 1)$ (default 0.95, the paper's).
      b2: $\beta_2 \in [0, 1)$ (default 0.98, the paper's).
      eps: $\epsilon \ge 0$ under the root (default 1e-8).
      weight_decay: $\lambda \ge 0$ inside the momentum (default 0).
      grad_averaging: $c = 1 - \beta_1$ (default ``False``).

    Returns:
      An ``optax.GradientTransformation`` (an ``optax.chain``).

    Differences from PyTorch and optax:
      Not in PyTorch. ``optax.novograd`` defaults to ``b1=0.9, b2=0.25``, puts ``eps``
      outside the root and uses a ``lax.cond`` over the tree.

    Examples:
      >>> tx = optjx.novograd(1e-2, weight_decay=1e-3)
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _chain(
        scale_by_novograd(
            b1, b2, eps=eps, weight_decay=weight_decay, grad_averaging=grad_averaging
        ),
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
    return _delta_bar_delta(initial_learning_rate, kappa, phi, gamma, descent=False)
