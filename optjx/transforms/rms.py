r"""RMSProp's preconditioner (``scale_by_rms``): divide by a running root mean square.

The division is done in the wider of the gradient's and the state's dtypes, so a
float32 state keeps ``eps`` (0 in float16) for float16 gradients.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx.typing import Hyperparameter


class ScaleByRmsState(NamedTuple):
    """The step count, the mean square ``v`` and (centered only) the mean gradient."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax

    mean_square: optax.Updates
    mean_grad: Optional[optax.Updates]


def scale_by_rms(
    decay: Hyperparameter = 0.9,
    *,
    eps: Hyperparameter = 1e-8,
    eps_root: Hyperparameter = 0.0,
    centered: bool = False,
    initial_scale: float = 0.0,
    bias_correction: bool = False,
) -> optax.GradientTransformation:
    r"""RMSProp's direction $g / (\sqrt{v - \bar g^2 + \epsilon_{root}} + \epsilon)$.

    $$
    v_t = \rho_k v_{t-1} + (1 - \rho_k) g_t^2, \qquad
    \bar g_t = \rho_k \bar g_{t-1} + (1 - \rho_k) g_t \quad\text{(centered only)}
    $$

    $$
    u_t = \frac{g_t}{\sqrt{v_t - \bar g_t^2 + \epsilon_{root}} + \epsilon}
    $$

    with $v_0$ = ``initial_scale`` and $\bar g_0 = 0$. A descent direction: chain a
    learning rate after it (``optjx.rmsprop`` does). ``eps`` sits outside the root as in
    ``torch.optim.RMSprop``; Goodfellow et al. (2016), Algorithm 8.5, writes
    $-\eta g / \sqrt{\delta + r}$, which is ``eps=0, eps_root=delta``.

    References:
      Tieleman & Hinton (2012), Coursera lecture 6e; Graves (2013), "Generating sequences
      with recurrent neural networks" (centered form).

    Args:
      decay: $\rho \in [0, 1)$ (default 0.9); a number, an array or a schedule.
      eps: $\epsilon \ge 0$ added to the root (default 1e-8).
      eps_root: $\epsilon_{root} \ge 0$ added under the root (default 0).
      centered: subtract the square of the running mean gradient (default ``False``).
      initial_scale: $v_0 \ge 0$ (default 0, PyTorch's; TensorFlow uses 1).
      bias_correction: divide $v$ (and $\bar g$) by $1 - \rho^t$ (default ``False``), as
        optax's flag of the same name; with ``initial_scale=0`` the direction is then
        Adam's with $\beta_1 = 0$.

    Returns:
      An ``optax.GradientTransformation`` with a ``ScaleByRmsState``.

    Differences from PyTorch and optax:
      PyTorch's ``alpha`` defaults to 0.99; optjx's and optax's ``decay`` to 0.9.
      ``optax.scale_by_rms`` puts ``eps`` under the root (optjx's ``eps_root``).

    Examples:
      >>> tx = optjx.chain(optjx.scale_by_rms(0.99, centered=True), optjx.scale_by_learning_rate(1e-2))
    """
    hypers = _hyper.Hyperparameters(
        decay=(decay, _hyper.DECAY),
        eps=(eps, _hyper.NONNEGATIVE),
        eps_root=(eps_root, _hyper.NONNEGATIVE),
    )
    _hyper.check_constant("initial_scale", initial_scale)
    _hyper.check_nonnegative("initial_scale", initial_scale)

    def init_fn(params):
        _tree.require_real(params, "scale_by_rms")
        return ScaleByRmsState(
            count=_state.zero_count(),
            mean_square=_tree.full_like(params, initial_scale),
            mean_grad=_tree.zeros_like(params) if centered else None,
        )

    def update_fn(updates, state, params=None):
        del params
        _tree.check_matching(updates, state.mean_square)
        h = hypers.at(state.count)
        rho = h.decay
        correction: jax.Array | float = 1.0
        if bias_correction:
            correction = _tree.power_complement(rho, _state.next_count(state.count))
        at = _hyper.per_dtype(eps=h.eps, eps_root=h.eps_root, correction=correction)

        mean_square = _tree.update_moment(updates, state.mean_square, rho, order=2)
        if centered:
            mean_grad = _tree.update_moment(updates, state.mean_grad, rho)
            if bias_correction:
                variance = jax.tree.map(
                    lambda v, m: (
                        v / at(v.dtype).correction - jnp.square(m / at(m.dtype).correction)
                    ),
                    mean_square,
                    mean_grad,
                )
            else:
                variance = jax.tree.map(lambda v, m: v - jnp.square(m), mean_square, mean_grad)
        elif bias_correction:
            mean_grad = None
            variance = jax.tree.map(lambda v: v / at(v.dtype).correction, mean_square)
        else:
            mean_grad, variance = None, mean_square

        def direction(g, var):
            # Divide in the wider dtype: a float32 state keeps eps (0 in float16) for
            # float16 gradients. Same-dtype leaves compute exactly as before.
            wide = _tree.widest_float(g.dtype, var.dtype)
            k = at(var.dtype)
            root = jnp.sqrt(var + k.eps_root)
            denominator = (root + k.eps).astype(wide)
            return (g.astype(wide) / denominator).astype(g.dtype)

        out = jax.tree.map(direction, updates, variance)
        return out, _state.advance(state, mean_square=mean_square, mean_grad=mean_grad)

    return _state.transformation(init_fn, update_fn)
