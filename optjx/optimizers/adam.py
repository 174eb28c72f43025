r"""The Adam family: ``adam``, ``adamw``, ``radam``, ``novograd``, each a chain of optjx
building blocks."""

from __future__ import annotations

from typing import Any

import optax

from optjx import _hyper
from optjx._twin import torch_twin
from optjx.optimizers import _stages
from optjx.transforms.adam import scale_by_adam
from optjx.transforms.novograd import scale_by_novograd
from optjx.transforms.radam import scale_by_radam
from optjx.typing import Hyperparameter


@torch_twin("adam")
def adam(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    *,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
    amsgrad: bool = False,
    weight_decay: Hyperparameter | None = None,
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
      weight_decay: coupled L2 $\lambda \ge 0$, added to the gradient (default ``None``:
        no decay stage; ``0.0`` keeps the stage). For
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
    return _stages.chain(
        _stages.decay(weight_decay),
        scale_by_adam(
            b1,
            b2,
            eps=eps,
            eps_root=eps_root,
            amsgrad=amsgrad,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        _stages.learning_rate(learning_rate),
    )


@torch_twin("adamw")
def adamw(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    *,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
    amsgrad: bool = False,
    weight_decay: Hyperparameter | None = 0.01,
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
      weight_decay: $\lambda \ge 0$ (default 0.01, PyTorch's); ``None``: no decay stage.
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
    return _stages.chain(
        scale_by_adam(
            b1,
            b2,
            eps=eps,
            eps_root=eps_root,
            amsgrad=amsgrad,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        _stages.decay(weight_decay, mask),
        _stages.learning_rate(learning_rate),
    )


@torch_twin("radam")
def radam(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    *,
    eps: Hyperparameter = 1e-8,
    threshold: Hyperparameter = 5.0,
    weight_decay: Hyperparameter | None = None,
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
      weight_decay: $\lambda \ge 0$
        (default ``None``: no decay stage; ``0.0`` keeps the stage).
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
        return _stages.chain(
            _stages.decay(weight_decay), rectified, _stages.learning_rate(learning_rate)
        )
    return _stages.chain(
        rectified, _stages.decay(weight_decay), _stages.learning_rate(learning_rate)
    )


def novograd(
    learning_rate: Hyperparameter,
    b1: Hyperparameter = 0.95,
    b2: Hyperparameter = 0.98,
    *,
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter | None = None,
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
      weight_decay: $\lambda \ge 0$ inside the momentum (default ``None``: no decay term;
        any number, 0 included, makes ``update`` need the params).
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
    return _stages.chain(
        scale_by_novograd(
            b1, b2, eps=eps, weight_decay=weight_decay, grad_averaging=grad_averaging
        ),
        _stages.learning_rate(learning_rate),
    )
