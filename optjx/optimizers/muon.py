r"""Muon, as ``torch.optim.Muon``: ``muon``, a chain of optjx building blocks."""

from __future__ import annotations

from typing import Any, Optional

import jax.numpy as jnp
import optax

from optjx import _hyper
from optjx._twin import torch_twin
from optjx.optimizers import _stages
from optjx.transforms.muon import scale_by_muon
from optjx.transforms.newton_schulz import COEFFICIENTS, STEPS
from optjx.typing import Hyperparameter


@torch_twin("muon")
def muon(
    learning_rate: Hyperparameter = 1e-3,
    weight_decay: Optional[Hyperparameter] = 0.1,
    momentum: Hyperparameter = 0.95,
    nesterov: bool = True,
    ns_coefficients: tuple = COEFFICIENTS,
    eps: Hyperparameter = 1e-7,
    ns_steps: int = STEPS,
    adjust_lr_fn: Optional[str] = None,
    *,
    ns_dtype: Any = jnp.bfloat16,
) -> optax.GradientTransformation:
    r"""Muon (momentum, then orthogonalized by Newton-Schulz), as ``torch.optim.Muon``.

    For every leaf, a matrix of shape $(A, B)$:

    $$
    B_t = \mu B_{t-1} + (1 - \mu) g_t, \qquad
    \tilde B_t = \begin{cases} (1 - \mu) g_t + \mu B_t & \text{nesterov} \\ B_t \end{cases}
    $$

    $$
    w_t = w_{t-1} - \eta_k \lambda w_{t-1}
          - \eta_k\, s(A, B)\, \mathrm{NS}^{(a,b,c)}_k(\tilde B_t; \epsilon)
    $$

    with $s = \sqrt{\max(1, A/B)}$ (``adjust_lr_fn`` ``None`` or ``"original"``) or
    $0.2\sqrt{\max(A, B)}$ (``"match_rms_adamw"``), and $\mathrm{NS}$ the Newton-Schulz
    iteration of ``orthogonalize_by_newton_schulz``. The chain is ``scale_by_muon``,
    ``add_decayed_weights`` (decoupled, if any), ``scale_by_learning_rate``.

    Muon is for the 2-d weights of hidden layers. **Recipe: Muon on matrices, AdamW on
    the rest**, with ``optjx.param_groups`` and a factory that picks the optimizer::

        def muon_or_adamw(*, use_muon=False, **kwargs):
            return optjx.muon(**kwargs) if use_muon else optjx.adamw(**kwargs)

        def is_hidden_matrix(path, leaf):  # not the embedding nor the output layer
            return leaf.ndim == 2 and "embed" not in path and "head" not in path

        tx = optjx.param_groups(
            muon_or_adamw,
            [(is_hidden_matrix, {"use_muon": True, "learning_rate": 0.02})],
            learning_rate=3e-4, weight_decay=0.01,
        )

    A convolution kernel (Flax: ``(h, w, in, out)``) is a matrix once reshaped to
    ``(h * w * in, out)`` (PyTorch's Muon recipes reshape its ``(out, in, h, w)`` to
    ``(out, in * h * w)``): wrap ``muon`` in a transformation that reshapes the gradients
    and params with ``x.reshape(-1, x.shape[-1])`` before ``update`` and the updates back
    to the kernel's shape after, and match ``leaf.ndim in (2, 4)`` above. Every other leaf
    raises a ``ValueError`` naming its key path.

    References:
      Jordan et al. (2024), "Muon: An optimizer for hidden layers in neural networks";
      Liu et al. (2025), "Muon is scalable for LLM training".

    Args:
      learning_rate: $\eta \ge 0$ (default 1e-3, PyTorch's).
      weight_decay: decoupled $\lambda \ge 0$ (default 0.1, PyTorch's), or ``None`` for no
        stage; multiplied by the unadjusted $\eta_k$, as in PyTorch.
      momentum: $\mu \ge 0$ (default 0.95).
      nesterov: Nesterov's look-ahead (default ``True``).
      ns_coefficients: $(a, b, c)$ (default (3.4445, -4.7750, 2.0315)).
      eps: $\epsilon \ge 0$ (default 1e-7).
      ns_steps: $k$, an int in $[0, 100)$ (default 5).
      adjust_lr_fn: ``None``, ``"original"`` or ``"match_rms_adamw"`` (default ``None``,
        which is ``"original"``).
      ns_dtype: the Newton-Schulz iteration's dtype (default ``jnp.bfloat16``, as PyTorch
        casts); ``None`` runs it in the params' dtype.

    Returns:
      An ``optax.GradientTransformation`` (an ``optax.chain``); its ``update`` needs
      ``params`` unless ``weight_decay`` is ``None``.

    Differences from PyTorch and optax:
      ``torch.optim.Muon`` step for step: with ``ns_dtype=None`` in float64 equal to its
      step run in float64 (rtol 1e-9); with the default bfloat16 equal to its plain step
      at bfloat16 accuracy. ``optax.contrib.muon`` uses a heavy-ball buffer and its own
      shape scaling, and runs AdamW on the other leaves itself.

    Examples:
      >>> tx = optjx.muon(0.02, adjust_lr_fn="match_rms_adamw")
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _stages.chain(
        scale_by_muon(
            momentum,
            nesterov=nesterov,
            ns_coefficients=ns_coefficients,
            ns_steps=ns_steps,
            eps=eps,
            adjust_lr_fn=adjust_lr_fn,
            ns_dtype=ns_dtype,
        ),
        _stages.decay(weight_decay),
        _stages.learning_rate(learning_rate),
    )
