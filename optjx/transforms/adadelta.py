r"""AdaDelta's direction (``scale_by_adadelta``): a step size from two running RMS values."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx.typing import Hyperparameter


class ScaleByAdadeltaState(NamedTuple):
    """The step count, the running mean squared gradient and mean squared step."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax

    mean_square_grad: optax.Updates
    mean_square_delta: optax.Updates


def scale_by_adadelta(
    rho: Hyperparameter = 0.9, *, eps: Hyperparameter = 1e-6
) -> optax.GradientTransformation:
    r"""AdaDelta's direction $\Delta_t$.

    $$
    s_t = \rho s_{t-1} + (1 - \rho) g_t^2, \qquad
    \Delta_t = \frac{\sqrt{a_{t-1} + \epsilon}}{\sqrt{s_t + \epsilon}} \, g_t, \qquad
    a_t = \rho a_{t-1} + (1 - \rho) \Delta_t^2
    $$

    with $s_0 = a_0 = 0$. The paper applies $\Delta_t$ with step 1; ``torch.optim.Adadelta``
    multiplies it by ``lr`` (default 1.0), and so does ``optjx.adadelta``. Matches
    PyTorch's update order exactly.

    References:
      Zeiler (2012), "ADADELTA: An adaptive learning rate method", Algorithm 1.

    Args:
      rho: $\rho \in [0, 1)$, decay of both running averages (default 0.9).
      eps: $\epsilon \ge 0$, added under both roots (default 1e-6); it also sets the size
        of the first steps.

    Returns:
      An ``optax.GradientTransformation`` with a ``ScaleByAdadeltaState``.

    Differences from PyTorch and optax:
      As ``torch.optim.Adadelta`` and ``optax.scale_by_adadelta`` (same defaults as
      PyTorch).

    Examples:
      >>> tx = optjx.chain(optjx.scale_by_adadelta(0.95), optjx.scale_by_learning_rate(1.0))
    """
    hypers = _hyper.Hyperparameters(rho=(rho, _hyper.DECAY), eps=(eps, _hyper.NONNEGATIVE))

    def init_fn(params):
        _tree.require_real(params, "scale_by_adadelta")
        return ScaleByAdadeltaState(
            count=_state.zero_count(),
            mean_square_grad=_tree.zeros_like(params),
            mean_square_delta=_tree.zeros_like(params),
        )

    def update_fn(updates, state, params=None):
        del params
        _tree.check_matching(updates, state.mean_square_grad)
        h = hypers.at(state.count)
        rho_t, eps_t = h.rho, h.eps
        square_grad = _tree.update_moment(updates, state.mean_square_grad, rho_t, order=2)

        at = _hyper.per_dtype(eps=eps_t)

        def delta(g, s, a):
            # In the wider of the gradient's and the state's dtypes: the step is both
            # accumulated and returned, and a float32 state should not see it rounded to
            # float16. Same-dtype leaves compute exactly as before.
            wide = _tree.widest_float(g.dtype, s.dtype)
            e = at(s.dtype).eps
            return (jnp.sqrt(a + e) / jnp.sqrt(s + e)).astype(wide) * g.astype(wide)

        deltas = jax.tree.map(delta, updates, square_grad, state.mean_square_delta)
        square_delta = _tree.update_moment(deltas, state.mean_square_delta, rho_t, order=2)
        out = jax.tree.map(lambda g, d: d.astype(g.dtype), updates, deltas)
        new_state = _state.advance(
            state, mean_square_grad=square_grad, mean_square_delta=square_delta
        )
        return out, new_state

    return _state.transformation(init_fn, update_fn)
