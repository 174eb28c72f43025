r"""Heavy-ball and Nesterov momentum with PyTorch's buffer semantics (``trace``).

The state keeps the step count whatever the hyperparameters are (the first step is
undamped, and a schedule reads it): its structure never depends on a value.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optjx import _hyper, _state, _tree
from optjx.typing import Hyperparameter


class TraceState(NamedTuple):
    """The step count and one momentum buffer per parameter."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    momentum_buffer: optax.Updates


def trace(
    decay: Hyperparameter,
    *,
    dampening: Hyperparameter = 0.0,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Momentum buffer with PyTorch's semantics, heavy-ball or Nesterov.

    $$
    b_1 = g_1, \qquad b_t = \mu_k b_{t-1} + (1 - \tau_k) g_t \quad (t > 1)
    $$

    $$
    u_t = b_t \quad\text{or, with Nesterov,}\quad u_t = g_t + \mu_k b_t
    $$

    with momentum $\mu$ and dampening $\tau$ evaluated at $k = t - 1$ applied updates. The
    first step copies the gradient undamped, as PyTorch does. Chain a learning rate after
    it for PyTorch's SGD, before it for the velocity form $v = \mu v - \eta g$ (see
    ``scale_by_learning_rate``).

    References:
      Polyak (1964), "Some methods of speeding up the convergence of iteration methods";
      Sutskever, Martens, Dahl & Hinton (2013) for the Nesterov form.

    Args:
      decay: the momentum $\mu \ge 0$ (default: none, required); a number, an array or a
        schedule.
      dampening: $\tau \ge 0$ (default 0); scales the gradient into the buffer from the
        second step on.
      nesterov: output $g + \mu b$ instead of $b$ (default ``False``). Needs a non-zero
        momentum and zero dampening.
      accumulator_dtype: dtype of the buffer (default: each parameter's dtype).

    Returns:
      An ``optax.GradientTransformation`` whose state is a ``TraceState``.

    Raises:
      ValueError: a negative ``decay`` or ``dampening``; ``nesterov=True`` with a zero
        momentum or a non-zero dampening (as in PyTorch).

    Differences from PyTorch and optax:
      The buffer is ``torch.optim.SGD``'s exactly, dampening included. ``optax.trace``
      starts from $b_0 = 0$ (so its first step is $g$ too) and has no dampening; with
      ``dampening=0`` the two agree.

    Examples:
      >>> tx = optjx.chain(optjx.trace(0.9, nesterov=True), optjx.scale_by_learning_rate(0.1))
    """
    # Messages name this function's own argument, ``decay`` (the aliases check and
    # name their ``momentum`` before calling here).
    hypers = _hyper.Hyperparameters(
        decay=(decay, _hyper.NONNEGATIVE), dampening=(dampening, _hyper.NONNEGATIVE)
    )
    if nesterov:
        if _hyper.is_concrete(decay) and not np.all(np.asarray(decay) != 0):
            raise ValueError("nesterov=True needs a momentum decay > 0, got decay=0")
        if _hyper.is_concrete(dampening) and np.any(np.asarray(dampening) != 0):
            raise ValueError(f"nesterov=True needs dampening=0, got dampening={dampening}")

    # A Python zero skips the dampening arithmetic; an array zero computes the same numbers.
    undamped = hypers.is_zero("dampening")

    def init_fn(params):
        return TraceState(
            count=_state.zero_count(),
            momentum_buffer=_tree.zeros_like(params, accumulator_dtype),
        )

    def update_fn(updates, state, params=None):
        del params
        _tree.check_matching(updates, state.momentum_buffer)
        h = hypers.at(state.count)
        mu = h.decay
        if undamped:
            # b_1 = mu * 0 + g_1 = g_1 already: no gain to select or multiply per leaf.
            at = _hyper.per_dtype(mu=mu)

            def new_buffer(g, b):
                return at(b.dtype).mu * b + g.astype(b.dtype)

        else:
            # The buffer starts at zero, so a gradient weight of 1 on the first step gives
            # PyTorch's undamped copy b_1 = g_1 with a scalar select instead of a per-element one.
            # torch ignores dampening when the momentum is 0 (no buffer at all): a zero
            # momentum given as an array must give the plain gradient too.
            gain = jnp.where(
                (state.count == 0) | (jnp.asarray(mu) == 0),
                1.0,
                _tree.default_float(1.0 - h.dampening),
            )
            at = _hyper.per_dtype(mu=mu, gain=gain)

            def new_buffer(g, b):
                k = at(b.dtype)
                return k.mu * b + k.gain * g.astype(b.dtype)

        buffer = jax.tree.map(new_buffer, updates, state.momentum_buffer)
        if nesterov:
            out = jax.tree.map(lambda g, b: g + at(g.dtype).mu * b.astype(g.dtype), updates, buffer)
        else:
            out = jax.tree.map(lambda g, b: b.astype(g.dtype), updates, buffer)
        return out, _state.advance(state, momentum_buffer=buffer)

    return _state.transformation(init_fn, update_fn)
