r"""Adam's preconditioner (``scale_by_adam``): bias-corrected first and second moments.

Moments are divided in the widest of the gradient's and the moments' dtypes, so wider
moments (``mu_dtype``, ``nu_dtype``) also protect the ratio and ``eps``.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx.typing import Hyperparameter


class ScaleByAdamState(NamedTuple):
    """Step count, first and second moments, and (AMSGrad) the largest second moment."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    mu: optax.Updates
    nu: optax.Updates
    nu_max: Optional[optax.Updates]


def scale_by_adam(
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    *,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
    amsgrad: bool = False,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Adam's direction $\hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)$.

    $$
    m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
    v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2
    $$

    $$
    \hat m_t = \frac{m_t}{1 - \beta_1^t}, \qquad
    \hat v_t = \frac{v_t}{1 - \beta_2^t} \quad\text{or, AMSGrad,}\quad
    \hat v_t = \frac{\max_{i \le t} v_i}{1 - \beta_2^t}
    $$

    $$
    u_t = \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}
    $$

    A descent direction: chain a learning rate after it (``optjx.adam`` does).
    ``eps`` outside the root is the paper's and PyTorch's; ``eps_root`` puts a constant
    under the root instead (``eps=0, eps_root=delta``), as optax's ``eps_root`` does.

    References:
      Kingma & Ba (2015), "Adam: A method for stochastic optimization", Algorithm 1;
      Reddi, Kale & Kumar (2018), "On the convergence of Adam and beyond" (AMSGrad).

    Args:
      b1: $\beta_1 \in [0, 1)$ (default 0.9); a number, an array or a schedule.
      b2: $\beta_2 \in [0, 1)$ (default 0.999).
      eps: $\epsilon \ge 0$ added to the root (default 1e-8).
      eps_root: $\epsilon_{root} \ge 0$ added under the root (default 0).
      amsgrad: use the running maximum of the raw $v$ (default ``False``).
      mu_dtype: dtype of $m$ (default: each parameter's dtype).
      nu_dtype: dtype of $v$ (default: each parameter's dtype).

    Returns:
      An ``optax.GradientTransformation`` with a ``ScaleByAdamState``.

    Raises:
      ValueError: a beta outside $[0, 1)$ or a negative eps; complex params.

    Differences from PyTorch and optax:
      AMSGrad keeps the running maximum of the *raw* $v$ and bias-corrects it with the
      current step, exactly as ``torch.optim.Adam``; ``optax.scale_by_amsgrad`` takes the
      maximum of the already corrected $\hat v$, which differs in the first steps.
      $1 - \beta^t$ is computed before rounding, so float32 keeps PyTorch's digits.

    Examples:
      >>> tx = optjx.chain(optjx.scale_by_adam(b2=0.99), optjx.scale_by_learning_rate(1e-3))
    """
    hypers = _hyper.Hyperparameters(
        b1=(b1, _hyper.DECAY),
        b2=(b2, _hyper.DECAY),
        eps=(eps, _hyper.NONNEGATIVE),
        eps_root=(eps_root, _hyper.NONNEGATIVE),
    )

    def init_fn(params):
        _tree.require_real(params, "scale_by_adam")
        nu = _tree.zeros_like(params, nu_dtype)
        return ScaleByAdamState(
            count=_state.zero_count(),
            mu=_tree.zeros_like(params, mu_dtype),
            nu=nu,
            nu_max=_tree.zeros_like(params, nu_dtype) if amsgrad else None,
        )

    def update_fn(updates, state, params=None):
        del params
        _tree.check_matching(updates, state.mu)
        h = hypers.at(state.count)
        beta1, beta2 = h.b1, h.b2
        count = _state.next_count(state.count)
        correction1 = _tree.power_complement(beta1, count)
        correction2 = _tree.power_complement(beta2, count)
        eps_t, eps_root_t = h.eps, h.eps_root

        at = _hyper.per_dtype(
            correction1=_tree.default_float(correction1),
            correction2=_tree.default_float(correction2),
            eps=eps_t,
            eps_root=eps_root_t,
        )

        mu = _tree.update_moment(updates, state.mu, beta1)
        nu = _tree.update_moment(updates, state.nu, beta2, order=2)
        nu_max = jax.tree.map(jnp.maximum, state.nu_max, nu) if amsgrad else None
        second = nu_max if amsgrad else nu

        def direction(g, m, v):
            # Divide in the widest of the three dtypes, so that wider moments (mu_dtype,
            # nu_dtype) also protect the ratio and eps (1e-8 is 0 in float16).
            wide = _tree.widest_float(g.dtype, m.dtype, v.dtype)
            k = at(wide)
            m_hat = m.astype(wide) / k.correction1
            v_hat = v.astype(wide) / k.correction2
            root = jnp.sqrt(v_hat + k.eps_root)
            return (m_hat / (root + k.eps)).astype(g.dtype)

        out = jax.tree.map(direction, updates, mu, second)
        return out, ScaleByAdamState(count, mu, nu, nu_max)

    return _state.transformation(init_fn, update_fn)
