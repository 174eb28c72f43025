r"""More of the Adam family, as ``torch.optim`` has them: ``nadam`` and ``adamax``, each a
chain of optjx building blocks."""

from __future__ import annotations

from typing import Optional

import optax

from optjx import _hyper
from optjx._twin import torch_twin
from optjx.optimizers import _stages
from optjx.transforms.adamax import scale_by_adamax
from optjx.transforms.nadam import scale_by_nadam
from optjx.typing import Hyperparameter


@torch_twin("nadam")
def nadam(
    learning_rate: Hyperparameter = 2e-3,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    *,
    eps: Hyperparameter = 1e-8,
    weight_decay: Optional[Hyperparameter] = None,
    momentum_decay: Hyperparameter = 4e-3,
    decoupled_weight_decay: bool = False,
) -> optax.GradientTransformation:
    r"""NAdam, as ``torch.optim.NAdam``.

    $$
    w_t = w_{t-1} - \eta_k \Big( \frac{(1-\mu_t)\, g_t}{1 - \prod_{i \le t} \mu_i}
        + \frac{\mu_{t+1}\, m_t}{1 - \prod_{i \le t+1} \mu_i} \Big)
        \Big/ \Big( \sqrt{v_t / (1 - \beta_2^t)} + \epsilon \Big)
    $$

    with $\mu_t = \beta_1 (1 - \tfrac12\, 0.96^{t\psi})$ and Adam's moments $m, v$ (see
    ``scale_by_nadam``). ``weight_decay`` is coupled L2 ($g \leftarrow g + \lambda w$
    before the moments) or, with ``decoupled_weight_decay=True`` (NAdamW),
    $w \leftarrow w - \eta\lambda w$.

    References:
      Dozat (2016), "Incorporating Nesterov momentum into Adam"; Loshchilov & Hutter (2019)
      for the decoupled decay.

    Args:
      learning_rate: $\eta \ge 0$ (default 2e-3, PyTorch's).
      b1: $\beta_1 \in [0, 1)$ (default 0.9).
      b2: $\beta_2 \in [0, 1)$ (default 0.999).
      eps: $\epsilon \ge 0$ (default 1e-8).
      weight_decay: $\lambda \ge 0$, or ``None`` (default) for no decay stage; PyTorch's
        default 0 is ``None`` here (an explicit 0 keeps the stage, e.g. for a schedule
        that starts at 0 or ``inject_hyperparams``).
      momentum_decay: $\psi \ge 0$ (default 4e-3).
      decoupled_weight_decay: decoupled instead of coupled decay (default ``False``;
        PyTorch's flag of the same name).

    Returns:
      An ``optax.GradientTransformation`` (an ``optax.chain``).

    Differences from PyTorch and optax:
      ``torch.optim.NAdam`` step for step (``maximize``: chain ``optjx.scale(-1.0)``
      first). ``optax.nadam`` has no momentum schedule and bias-corrects with $\beta_1^t$.

    Examples:
      >>> tx = optjx.nadam(2e-3, weight_decay=1e-2, decoupled_weight_decay=True)
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    direction = scale_by_nadam(b1, b2, eps=eps, momentum_decay=momentum_decay)
    decay = _stages.decay(weight_decay)
    if decoupled_weight_decay:
        return _stages.chain(direction, decay, _stages.learning_rate(learning_rate))
    return _stages.chain(decay, direction, _stages.learning_rate(learning_rate))


@torch_twin("adamax")
def adamax(
    learning_rate: Hyperparameter = 2e-3,
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    *,
    eps: Hyperparameter = 1e-8,
    weight_decay: Optional[Hyperparameter] = None,
) -> optax.GradientTransformation:
    r"""AdaMax (Adam with the infinity norm), as ``torch.optim.Adamax``.

    $$
    g_t \leftarrow g_t + \lambda w_{t-1}, \qquad
    m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
    u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon)
    $$

    $$
    w_t = w_{t-1} - \frac{\eta_k}{1 - \beta_1^t} \frac{m_t}{u_t}
    $$

    See ``scale_by_adamax``.

    References:
      Kingma & Ba (2015), section 7.1, Algorithm 2.

    Args:
      learning_rate: $\eta \ge 0$ (default 2e-3, PyTorch's).
      b1: $\beta_1 \in [0, 1)$ (default 0.9).
      b2: $\beta_2 \in [0, 1)$ (default 0.999).
      eps: $\epsilon \ge 0$ inside the maximum (default 1e-8).
      weight_decay: coupled L2 $\lambda \ge 0$, or ``None`` (default) for no decay stage
        (PyTorch's default 0; an explicit 0 keeps the stage).

    Returns:
      An ``optax.GradientTransformation`` (an ``optax.chain``).

    Differences from PyTorch and optax:
      ``torch.optim.Adamax`` step for step (``maximize``: chain ``optjx.scale(-1.0)``
      first). ``optax.adamax`` adds ``eps`` after the maximum and has no weight decay.

    Examples:
      >>> tx = optjx.adamax(2e-3, weight_decay=1e-4)
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _stages.chain(
        _stages.decay(weight_decay),
        scale_by_adamax(b1, b2, eps=eps),
        _stages.learning_rate(learning_rate),
    )
