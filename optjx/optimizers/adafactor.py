r"""Adafactor as ``torch.optim.Adafactor``: ``adafactor``, a chain of optjx building blocks."""

from __future__ import annotations

from typing import Optional

import optax

from optjx import _hyper
from optjx._twin import torch_twin
from optjx.optimizers import _stages
from optjx.transforms.adafactor import scale_by_adafactor
from optjx.transforms.scale import scale
from optjx.typing import Hyperparameter


def product(a: Hyperparameter, b: Hyperparameter) -> Hyperparameter:
    """``a * b``, a schedule when either is one."""
    if callable(a) or callable(b):
        return lambda count: _hyper.value_at(a, count) * _hyper.value_at(b, count)
    return a * b


@torch_twin("adafactor")
def adafactor(
    learning_rate: Hyperparameter = 1e-2,
    beta2_decay: Hyperparameter = -0.8,
    eps: tuple[Optional[Hyperparameter], Hyperparameter] = (None, 1e-3),
    d: Hyperparameter = 1.0,
    weight_decay: Optional[Hyperparameter] = None,
) -> optax.GradientTransformation:
    r"""Adafactor, as ``torch.optim.Adafactor``: a factored second moment, relative steps.

    $$
    w_t = w_{t-1} - \eta_k \lambda w_{t-1} - u_t
    $$

    with $u_t$ the direction of ``scale_by_adafactor``: the gradient over the root of a
    second moment that, for every leaf of two or more dimensions, is the outer product of
    a row and a column vector over its last two dimensions (memory $R + C$ instead of
    $RC$ per matrix), scaled to a step $\max(\epsilon_2, \operatorname{RMS}(w))\min(\eta_k,
    1/\sqrt t)$ relative to the weights and clipped at RMS $d$. The decay is decoupled
    and multiplied by the learning rate, as in PyTorch. The chain is
    ``scale_by_adafactor``, ``add_decayed_weights`` ($\eta_k\lambda$, if any),
    ``scale(-1.0)``.

    References:
      Shazeer & Stern (2018), "Adafactor: Adaptive learning rates with sublinear memory
      cost".

    Args:
      learning_rate: $\eta \ge 0$ (default 1e-2), the cap on the relative step.
      beta2_decay: $c \le 0$ in $\hat\beta_t = 1 - t^c$ (default -0.8).
      eps: $(\epsilon_1, \epsilon_2)$ (default ``(None, 1e-3)``: $\epsilon_1$ is each
        leaf's machine epsilon).
      d: $d \ge 1$, the clipping threshold (default 1).
      weight_decay: decoupled $\lambda \ge 0$, or ``None`` (default) for no stage
        (PyTorch's default 0; an explicit 0 keeps the stage).

    Returns:
      An ``optax.GradientTransformation`` (an ``optax.chain``); its ``update`` needs
      ``params``.

    Differences from PyTorch and optax:
      ``torch.optim.Adafactor`` step for step (``maximize=True``: chain
      ``optjx.scale(-1.0)`` before it). ``optax.adafactor`` is the paper's variant
      (first moment optional, factoring over the two largest dimensions above a size,
      $\hat\beta_t = 1 - (t+1)^{-0.8}$, the learning rate multiplying the step).

    Examples:
      >>> tx = optjx.adafactor(1e-2, weight_decay=1e-2)
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    decay = None
    if weight_decay is not None:
        _hyper.check_nonnegative("weight_decay", weight_decay)
        decay = _stages.decay(product(learning_rate, weight_decay))
    return _stages.chain(
        scale_by_adafactor(learning_rate, beta2_decay=beta2_decay, eps=eps, d=d),
        decay,
        scale(-1.0),
    )
