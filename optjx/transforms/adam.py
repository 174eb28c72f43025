r"""Adam: bias-corrected first and second moments.

Kingma & Ba (2015), "Adam: A method for stochastic optimization", Algorithm 1;
AMSGrad from Reddi, Kale & Kumar (2018), in the form of ``torch.optim.Adam``.

.. math::

   m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
   v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2

   \hat m_t = \frac{m_t}{1 - \beta_1^t}, \qquad
   \hat v_t = \frac{v_t}{1 - \beta_2^t} \quad\text{or, AMSGrad,}\quad
   \hat v_t = \frac{\max_{i \le t} v_i}{1 - \beta_2^t}

   u_t = \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}

``eps`` outside the root is the paper's and PyTorch's; ``eps_root`` inside it is the
course notes' form (``eps=0, eps_root=delta``). AMSGrad keeps the running maximum of
the *raw* ``v`` and bias-corrects it with the current step, exactly as PyTorch does;
optax instead takes the maximum of the already corrected ``v_hat``, which differs in
the first steps.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _tree


class ScaleByAdamState(NamedTuple):
    """Step count, first and second moments, and (AMSGrad) the largest second moment."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    mu: optax.Updates
    nu: optax.Updates
    nu_max: Optional[optax.Updates]


def scale_by_adam(
    b1: _hyper.Hyper = 0.9,
    b2: _hyper.Hyper = 0.999,
    *,
    eps: _hyper.Hyper = 1e-8,
    eps_root: _hyper.Hyper = 0.0,
    amsgrad: bool = False,
    mu_dtype=None,
    nu_dtype=None,
) -> optax.GradientTransformation:
    """Adam's direction ``m_hat / (sqrt(v_hat + eps_root) + eps)``.

    Args:
      b1: ``beta_1`` in ``[0, 1)``.
      b2: ``beta_2`` in ``[0, 1)``.
      eps: ``>= 0``, added to the root.
      eps_root: ``>= 0``, added under the root.
      amsgrad: use the running maximum of ``v`` (PyTorch's AMSGrad).
      mu_dtype, nu_dtype: moment dtypes; default to each parameter's dtype.
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
            count=_tree.zero_count(),
            mu=_tree.zeros_like(params, mu_dtype),
            nu=nu,
            nu_max=_tree.zeros_like(params, nu_dtype) if amsgrad else None,
        )

    def update_fn(updates, state, params=None):
        del params
        _tree.check_matching(updates, state.mu)
        h = hypers.at(state.count)
        beta1, beta2 = h.b1, h.b2
        count = _tree.next_count(state.count)
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

    return _tree.transformation(init_fn, update_fn)
