r"""AdaGrad's preconditioner (``scale_by_adagrad``): the root of the sum of squared gradients."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx.typing import Hyperparameter


class ScaleByAdagradState(NamedTuple):
    """The step count and the running sum of squared gradients."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax

    sum_of_squares: optax.Updates


def scale_by_adagrad(
    *,
    initial_accumulator_value: float = 0.0,
    eps: Hyperparameter = 1e-10,
    eps_root: Hyperparameter = 0.0,
) -> optax.GradientTransformation:
    r"""AdaGrad's direction $g / (\sqrt{s + \epsilon_{root}} + \epsilon)$.

    $$
    s_0 = s_{init}, \qquad s_t = s_{t-1} + g_t^2, \qquad
    u_t = \frac{g_t}{\sqrt{s_t + \epsilon_{root}} + \epsilon}
    $$

    A descent direction: chain a learning rate after it (``optjx.adagrad`` does).

    References:
      Duchi, Hazan & Singer (2011), "Adaptive subgradient methods for online learning and
      stochastic optimization" (diagonal form); Goodfellow et al. (2016), Algorithm 8.4.

    Args:
      initial_accumulator_value: $s_{init} \ge 0$, a Python number (default 0).
      eps: $\epsilon \ge 0$ added to the root (default 1e-10, PyTorch's).
      eps_root: $\epsilon_{root} \ge 0$ added under the root (default 0).

    Returns:
      An ``optax.GradientTransformation`` with a ``ScaleByAdagradState``.

    Differences from PyTorch and optax:
      ``torch.optim.Adagrad`` exactly (``lr_decay=0``). ``optax.scale_by_rss`` puts its eps
      inside the root and starts the sum at 0.1; ``eps=0, eps_root=1e-7,
      initial_accumulator_value=0.1`` reproduces it.

    Examples:
      >>> tx = optjx.chain(optjx.scale_by_adagrad(), optjx.scale_by_learning_rate(1e-2))
    """
    _hyper.check_constant("initial_accumulator_value", initial_accumulator_value)
    _hyper.check_nonnegative("initial_accumulator_value", initial_accumulator_value)
    hypers = _hyper.Hyperparameters(
        eps=(eps, _hyper.NONNEGATIVE), eps_root=(eps_root, _hyper.NONNEGATIVE)
    )

    def init_fn(params):
        _tree.require_real(params, "scale_by_adagrad")
        return ScaleByAdagradState(
            count=_state.zero_count(),
            sum_of_squares=_tree.full_like(params, initial_accumulator_value),
        )

    def update_fn(updates, state, params=None):
        del params
        _tree.check_matching(updates, state.sum_of_squares)
        h = hypers.at(state.count)
        eps_t, eps_root_t = h.eps, h.eps_root
        sums = jax.tree.map(
            # Square in the state's dtype (float16 gradients square to inf above 256).
            lambda g, s: s + jnp.square(g.astype(s.dtype)),
            updates,
            state.sum_of_squares,
        )

        at = _hyper.per_dtype(eps=eps_t, eps_root=eps_root_t)

        def direction(g, s):
            # Divide in the wider dtype: a float32 state keeps eps (0 in float16) for
            # float16 gradients. Same-dtype leaves compute exactly as before.
            wide = _tree.widest_float(g.dtype, s.dtype)
            root = jnp.sqrt(s + at(s.dtype).eps_root)
            denominator = (root + at(s.dtype).eps).astype(wide)
            return (g.astype(wide) / denominator).astype(g.dtype)

        out = jax.tree.map(direction, updates, sums)
        return out, _state.advance(state, sum_of_squares=sums)

    return _state.transformation(init_fn, update_fn)
