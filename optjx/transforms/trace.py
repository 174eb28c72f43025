r"""Heavy-ball and Nesterov momentum with PyTorch's buffer semantics.

Polyak (1964), "Some methods of speeding up the convergence of iteration methods";
Sutskever et al. (2013) for the Nesterov form; ``torch.optim.SGD`` for dampening.

.. math::

   b_1 = g_1, \qquad b_t = \mu_k b_{t-1} + (1 - \tau_k) g_t \quad (t > 1)

   u_t = b_t \quad\text{or, with Nesterov,}\quad u_t = g_t + \mu_k b_t

with momentum ``mu`` and dampening ``tau`` evaluated at ``k = t - 1`` applied updates.
The first step copies the gradient undamped, as PyTorch does.

Learning rate inside or outside the buffer:

* ``chain(trace(mu), scale_by_learning_rate(lr))``: PyTorch's form,
  ``b = mu b + g; w -= lr_k b``.
* ``chain(scale_by_learning_rate(lr), trace(mu))``: the velocity form of the lecture
  notes, ``v = mu v - lr_k g; w += v``.

With a constant rate the two trajectories are identical. Under a schedule they differ:
the velocity form remembers each step at the rate it was taken with, PyTorch's form
rescales the whole remembered momentum by the current rate.

Differences: optax's ``trace`` starts from ``b_0 = 0`` and has no dampening, so its
first step is ``g`` too but its dampened variant does not exist; with ``dampening=0``
the two agree.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optjx import _hyper, _state, _tree


class TraceState(NamedTuple):
    """One momentum buffer per parameter (and, where a schedule or dampening reads it,
    the step count first: ``TraceStateWithCount``)."""

    momentum_buffer: optax.Updates


def trace(
    decay: _hyper.Hyper,
    *,
    dampening: _hyper.Hyper = 0.0,
    nesterov: bool = False,
    accumulator_dtype=None,
) -> optax.GradientTransformation:
    """Momentum buffer, PyTorch semantics.

    Args:
      decay: the momentum ``mu >= 0``; a number, an array or a schedule.
      dampening: ``tau >= 0``; scales the gradient into the buffer from the second step.
      nesterov: output ``g + mu b`` instead of ``b``. Needs a non-zero momentum and
        zero dampening (``ValueError`` otherwise, as in PyTorch).
      accumulator_dtype: dtype of the buffer; defaults to each parameter's dtype.
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

    # Only a Python zero drops the dampening term: an array (injected, traced) keeps it,
    # so the state's structure never depends on a value.
    undamped = hypers.is_zero("dampening")

    def init_fn(params):
        # Dampening reads the count (the first step is undamped); else only schedules do.
        return _state.init(
            TraceState,
            hypers.scheduled or not undamped,
            momentum_buffer=_tree.zeros_like(params, accumulator_dtype),
        )

    def update_fn(updates, state, params=None):
        del params
        _tree.check_matching(updates, state.momentum_buffer)
        h = hypers.at(_state.count_of(state))
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
            out = jax.tree.map(
                lambda g, b: g + _hyper.cast_like(mu, g) * b.astype(g.dtype), updates, buffer
            )
        else:
            out = jax.tree.map(lambda g, b: b.astype(g.dtype), updates, buffer)
        return out, _state.advance(state, momentum_buffer=buffer)

    return _tree.transformation(init_fn, update_fn)
