r"""AdaMax's preconditioner (``scale_by_adamax``): Adam with the infinity norm in place of
the second moment."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx.typing import Hyperparameter


class ScaleByAdamaxState(NamedTuple):
    """Step count, first moment and the exponentially weighted infinity norm."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    mu: optax.Updates
    nu: optax.Updates


def scale_by_adamax(
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    *,
    eps: Hyperparameter = 1e-8,
) -> optax.GradientTransformation:
    r"""AdaMax's direction $m_t / ((1 - \beta_1^t)\, u_t)$.

    $$
    m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
    u_t = \max\big(\beta_2 u_{t-1},\; |g_t| + \epsilon\big), \qquad
    d_t = \frac{m_t}{(1 - \beta_1^t)\, u_t}
    $$

    with $m_0 = u_0 = 0$. ``eps`` sits inside the maximum, as in PyTorch, so $u_t > 0$
    whenever $\epsilon > 0$. A descent direction: chain a learning rate after it
    (``optjx.adamax`` does).

    References:
      Kingma & Ba (2015), "Adam: A method for stochastic optimization", section 7.1,
      Algorithm 2.

    Args:
      b1: $\beta_1 \in [0, 1)$ (default 0.9).
      b2: $\beta_2 \in [0, 1)$ (default 0.999).
      eps: $\epsilon \ge 0$ added to $|g_t|$ inside the maximum (default 1e-8).

    Returns:
      An ``optax.GradientTransformation`` with a ``ScaleByAdamaxState``.

    Raises:
      ValueError: a beta outside $[0, 1)$ or a negative ``eps``; complex params.

    Differences from PyTorch and optax:
      ``torch.optim.Adamax``'s rule exactly. ``optax.scale_by_adamax`` adds ``eps`` to
      the denominator after the maximum instead ($m / (u + \epsilon)$, with
      $u_t = \max(\beta_2 u_{t-1}, |g_t|)$).

    Examples:
      >>> tx = optjx.chain(optjx.scale_by_adamax(), optjx.scale_by_learning_rate(2e-3))
    """
    hypers = _hyper.Hyperparameters(
        b1=(b1, _hyper.DECAY), b2=(b2, _hyper.DECAY), eps=(eps, _hyper.NONNEGATIVE)
    )

    def init_fn(params):
        _tree.require_real(params, "scale_by_adamax")
        return ScaleByAdamaxState(
            count=_state.zero_count(), mu=_tree.zeros_like(params), nu=_tree.zeros_like(params)
        )

    def update_fn(updates, state, params=None):
        del params
        _tree.check_matching(updates, state.mu)
        h = hypers.at(state.count)
        count = _state.next_count(state.count)
        at = _hyper.per_dtype(
            b2=h.b2,
            eps=h.eps,
            correction1=_tree.default_float(_tree.power_complement(h.b1, count)),
        )
        mu = _tree.update_moment(updates, state.mu, h.b1)

        def infinity_norm(g, u):
            k = at(u.dtype)
            return jnp.maximum(k.b2 * u, jnp.abs(g.astype(u.dtype)) + k.eps)

        nu = jax.tree.map(infinity_norm, updates, state.nu)

        def direction(g, m, u):
            wide = _tree.widest_float(g.dtype, m.dtype, u.dtype)
            k = at(wide)
            return (m.astype(wide) / k.correction1 / u.astype(wide)).astype(g.dtype)

        out = jax.tree.map(direction, updates, mu, nu)
        return out, ScaleByAdamaxState(count, mu, nu)

    return _state.transformation(init_fn, update_fn)
