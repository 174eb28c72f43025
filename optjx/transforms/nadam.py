r"""NAdam's preconditioner (``scale_by_nadam``): Adam with Nesterov momentum and Dozat's
momentum schedule $\mu_t$."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx.typing import Hyperparameter


class ScaleByNadamState(NamedTuple):
    """Step count, the product $\\prod_{i \\le t} \\mu_i$ of the momentum schedule, and the
    first and second moments."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    mu_product: jax.Array
    mu: optax.Updates
    nu: optax.Updates


def _momentum_at(b1, momentum_decay, t):
    r"""Dozat's schedule $\mu_t = \beta_1 (1 - \tfrac12 \cdot 0.96^{t \psi})$."""
    b1, momentum_decay = _tree.default_float(b1), _tree.default_float(momentum_decay)
    return b1 * (1.0 - 0.5 * jnp.power(_tree.default_float(0.96), t * momentum_decay))


def scale_by_nadam(
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    *,
    eps: Hyperparameter = 1e-8,
    momentum_decay: Hyperparameter = 4e-3,
) -> optax.GradientTransformation:
    r"""NAdam's direction: Adam with a Nesterov look-ahead on the first moment.

    $$
    \mu_t = \beta_1 \big(1 - \tfrac12\, 0.96^{t\psi}\big), \qquad
    m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
    v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2
    $$

    $$
    u_t = \Big( \frac{(1-\mu_t)\, g_t}{1 - \prod_{i=1}^{t} \mu_i}
        + \frac{\mu_{t+1}\, m_t}{1 - \prod_{i=1}^{t+1} \mu_i} \Big)
        \Big/ \Big( \sqrt{v_t / (1 - \beta_2^t)} + \epsilon \Big)
    $$

    The product of the $\mu_i$ is kept in the state (a scalar), so a scheduled $\beta_1$
    enters it as it was at each step. A descent direction: chain a learning rate after it
    (``optjx.nadam`` does).

    References:
      Dozat (2016), "Incorporating Nesterov momentum into Adam", ICLR workshop; the
      momentum schedule $\mu_t$ with $\psi$ = 0.004 is the paper's.

    Args:
      b1: $\beta_1 \in [0, 1)$ (default 0.9).
      b2: $\beta_2 \in [0, 1)$ (default 0.999).
      eps: $\epsilon \ge 0$ added to the root (default 1e-8).
      momentum_decay: $\psi \ge 0$ (default 4e-3, PyTorch's).

    Returns:
      An ``optax.GradientTransformation`` with a ``ScaleByNadamState``.

    Raises:
      ValueError: a beta outside $[0, 1)$, a negative ``eps`` or ``momentum_decay``;
        complex params.

    Differences from PyTorch and optax:
      ``torch.optim.NAdam``'s rule exactly (its ``mu_product`` is this state's). ``optax.nadam``
      has no momentum schedule ($\mu_t = \beta_1$) and bias-corrects with $\beta_1^t$.

    Examples:
      >>> tx = optjx.chain(optjx.scale_by_nadam(), optjx.scale_by_learning_rate(2e-3))
    """
    hypers = _hyper.Hyperparameters(
        b1=(b1, _hyper.DECAY),
        b2=(b2, _hyper.DECAY),
        eps=(eps, _hyper.NONNEGATIVE),
        momentum_decay=(momentum_decay, _hyper.NONNEGATIVE),
    )

    def init_fn(params):
        _tree.require_real(params, "scale_by_nadam")
        return ScaleByNadamState(
            count=_state.zero_count(),
            mu_product=_tree.default_float(1.0),
            mu=_tree.zeros_like(params),
            nu=_tree.zeros_like(params),
        )

    def update_fn(updates, state, params=None):
        del params
        _tree.check_matching(updates, state.mu)
        h = hypers.at(state.count)
        count = _state.next_count(state.count)
        t = _tree.default_float(count)
        momentum_now = _momentum_at(h.b1, h.momentum_decay, t)
        momentum_next = _momentum_at(h.b1, h.momentum_decay, t + 1.0)
        mu_product = state.mu_product * momentum_now
        at = _hyper.per_dtype(
            gradient_weight=(1.0 - momentum_now) / (1.0 - mu_product),
            moment_weight=momentum_next / (1.0 - mu_product * momentum_next),
            correction2=_tree.power_complement(h.b2, count),
            eps=h.eps,
        )

        mu = _tree.update_moment(updates, state.mu, h.b1)
        nu = _tree.update_moment(updates, state.nu, h.b2, order=2)

        def direction(g, m, v):
            # In the widest of the three dtypes, as scale_by_adam.
            wide = _tree.widest_float(g.dtype, m.dtype, v.dtype)
            k = at(wide)
            denominator = jnp.sqrt(v.astype(wide) / k.correction2) + k.eps
            step = k.gradient_weight * g.astype(wide) + k.moment_weight * m.astype(wide)
            return (step / denominator).astype(g.dtype)

        out = jax.tree.map(direction, updates, mu, nu)
        return out, ScaleByNadamState(count, mu_product.astype(state.mu_product.dtype), mu, nu)

    return _state.transformation(init_fn, update_fn)
