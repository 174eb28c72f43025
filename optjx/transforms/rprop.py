r"""Rprop (``scale_by_rprop``): a step size per weight, grown while the gradient keeps its
sign and shrunk when it flips; only the gradient's sign is used."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx.typing import Hyperparameter


class ScaleByRpropState(NamedTuple):
    """The step count (read by scheduled etas and step-size bounds), the step size of every
    weight and the previous gradient (zero where it flipped)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    step_sizes: optax.Updates
    previous: optax.Updates


def scale_by_rprop(
    learning_rate: float | jax.Array = 1e-2,
    *,
    etas: tuple[Hyperparameter, Hyperparameter] = (0.5, 1.2),
    step_sizes: tuple[Hyperparameter, Hyperparameter] = (1e-6, 50.0),
) -> optax.GradientTransformation:
    r"""Rprop's direction $\Delta_t \odot \operatorname{sign}(\tilde g_t)$ (a descent direction).

    Elementwise, with $\tilde g_0 = 0$ and $\Delta_0$ = ``learning_rate``:

    $$
    s_t = \operatorname{sign}(g_t)\operatorname{sign}(\tilde g_{t-1}), \qquad
    \Delta_t = \operatorname{clip}\Big(\Delta_{t-1} \cdot
      \begin{cases} \eta_+ & s_t > 0 \\ \eta_- & s_t < 0 \\ 1 & s_t = 0 \end{cases},\;
      \Delta_{\min},\, \Delta_{\max}\Big)
    $$

    $$
    \tilde g_t = \begin{cases} 0 & s_t < 0 \\ g_t & \text{otherwise} \end{cases}, \qquad
    u_t = \Delta_t \operatorname{sign}(\tilde g_t)
    $$

    After a sign flip the weight does not move and the stored gradient is zero, so the
    next step neither grows nor shrinks its step size (Riedmiller & Braun's Rprop without
    weight backtracking, "Rprop-"). Chain ``scale(-1.0)`` after it, or use ``optjx.rprop``.

    References:
      Riedmiller & Braun (1993), "A direct adaptive method for faster backpropagation
      learning: the RPROP algorithm".

    Args:
      learning_rate: $\Delta_0 \ge 0$, every weight's first step size: a number or a scalar
        array, read once at ``init`` (so not a schedule), as PyTorch's ``lr``.
      etas: $(\eta_-, \eta_+)$ with $0 < \eta_- < 1 < \eta_+$ (default (0.5, 1.2)).
      step_sizes: $(\Delta_{\min}, \Delta_{\max})$ with $0 \le \Delta_{\min} \le
        \Delta_{\max}$ (default (1e-6, 50)).

    Returns:
      An ``optax.GradientTransformation`` with a ``ScaleByRpropState``.

    Raises:
      ValueError: a value out of its range, naming ``etas`` or ``step_sizes``; complex params.
      TypeError: ``etas`` or ``step_sizes`` not a pair.

    Differences from PyTorch and optax:
      ``torch.optim.Rprop`` step for step, the first step's clamp of $\Delta_0$ included.
      PyTorch takes the sign of the product $g_t \tilde g_{t-1}$, which underflows to 0 (no
      adaptation) for tiny gradients in low precision; optjx multiplies the signs.
      ``optax.scale_by_rprop`` keeps the previous step instead of the previous gradient,
      and in optax 0.2.8 returns the previous step's update (its first update is zero).

    Examples:
      >>> tx = optjx.chain(optjx.scale_by_rprop(0.01), optjx.scale(-1.0))
    """
    if callable(learning_rate) and not hasattr(learning_rate, "dtype"):
        raise TypeError(
            "learning_rate must be a number or an array, not a schedule: Rprop reads it "
            "once at init as every weight's first step size"
        )
    _hyper.check_nonnegative("learning_rate", learning_rate)
    eta_minus, eta_plus = _hyper.pair("etas", etas)
    low, high = _hyper.pair("step_sizes", step_sizes)
    _hyper.check_range("etas[0]", eta_minus, low=0.0, high=1.0, low_inclusive=False,
                       high_inclusive=False)  # fmt: skip
    _hyper.check_range("etas[1]", eta_plus, low=1.0, low_inclusive=False)
    _hyper.check_nonnegative("step_sizes[0]", low)
    _hyper.check_nonnegative("step_sizes[1]", high)
    if _hyper.is_concrete(low) and _hyper.is_concrete(high) and float(low) > float(high):
        raise ValueError(f"step_sizes must be (min, max) with min <= max, got {step_sizes}")
    hypers = _hyper.Hyperparameters(
        eta_minus=(eta_minus, _hyper.REAL),
        eta_plus=(eta_plus, _hyper.REAL),
        low=(low, _hyper.REAL),
        high=(high, _hyper.REAL),
    )

    def init_fn(params):
        _tree.require_real(params, "scale_by_rprop")
        return ScaleByRpropState(
            count=_state.zero_count(),
            step_sizes=_tree.full_like(params, learning_rate),
            previous=_tree.zeros_like(params),
        )

    def update_fn(updates, state, params=None):
        del params
        _tree.check_matching(updates, state.step_sizes)
        h = hypers.at(state.count)
        at = _hyper.per_dtype(
            eta_minus=h.eta_minus, eta_plus=h.eta_plus, low=h.low, high=h.high, one=1.0
        )

        def agreement(g, previous):
            # Signs multiplied, not the values: the product underflows in low precision.
            return jnp.sign(g.astype(previous.dtype)) * jnp.sign(previous)

        def adapt(s, size):
            # clip(size * factor) with the flip case split off so that the new step size
            # ends in a select, not a clamp: XLA:CPU then writes it once and the parameter
            # update reads it, instead of recomputing it from the old step sizes (which
            # costs a copy of that donated buffer). The same arithmetic, element for element.
            k = at(size.dtype)
            shrunk = jnp.clip(size * k.eta_minus, k.low, k.high)
            kept_or_grown = jnp.clip(size * jnp.where(s > 0, k.eta_plus, k.one), k.low, k.high)
            return jnp.where(s < 0, shrunk, kept_or_grown)

        def kept(g, s, size):
            # `size < -inf` never holds (nor for NaN): it makes this pass read the new step
            # sizes, so it runs after the step-size pass has read the previous gradients and
            # XLA writes them in place instead of first copying that donated buffer.
            return jnp.where((s < 0) | (size < -jnp.inf), jnp.zeros_like(g), g)

        def direction(g, size):
            return (jnp.sign(g) * size.astype(g.dtype)).astype(g.dtype)

        signs = jax.tree.map(agreement, updates, state.previous)
        sizes = jax.tree.map(adapt, signs, state.step_sizes)
        gradients = jax.tree.map(kept, updates, signs, sizes)
        out = jax.tree.map(direction, gradients, sizes)
        previous = jax.tree.map(lambda g, p: g.astype(p.dtype), gradients, state.previous)
        return out, _state.advance(state, step_sizes=sizes, previous=previous)

    return _state.transformation(init_fn, update_fn)
