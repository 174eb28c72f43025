r"""Reduce the step when a monitored value stops improving (``reduce_on_plateau``).

The scale, best value and counters are kept at JAX's default float precision.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx._hyper import check_int
from optjx.typing import Hyperparameter


class ReduceOnPlateauState(NamedTuple):
    """The update count, the current scale, the best value, the plateau and cooldown
    counts."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    scale: jax.Array
    best_value: jax.Array
    plateau_count: jax.Array
    cooldown_count: jax.Array


def reduce_on_plateau(
    *,
    factor: Hyperparameter = 0.1,
    patience: int = 10,
    rtol: Hyperparameter = 1e-4,
    cooldown: int = 0,
    min_scale: Hyperparameter = 0.0,
) -> optax.GradientTransformationExtraArgs:
    r"""Scale updates by ``factor`` each time ``value`` has not improved for ``patience`` updates.

    "Divide the learning rate by 10 when the validation loss stalls", as a transformation:
    it multiplies the updates by a scale $s$ (1 at first) and reads the monitored value
    $v_t$ as the keyword ``value=`` of ``update``. With $b$ the best value so far
    ($+\infty$ at first), on each update:

    $$
    \text{improved} = v_t < b - \text{rtol}\,|b|
    $$

    $$
    n \leftarrow 0 \text{ if improved, else } n + 1 \quad (\text{in a cooldown: } c \leftarrow c - 1,\ n \leftarrow 0)
    $$

    $$
    \text{if } n > \text{patience}:\quad
    s \leftarrow \max(s \cdot \text{factor}, \text{min\_scale}),\ n \leftarrow 0,\
    c \leftarrow \text{cooldown}; \qquad u_t = s\, g_t
    $$

    ``patience`` non-improving updates are tolerated: the next one reduces the scale, as
    ``torch.optim.lr_scheduler.ReduceLROnPlateau`` counts. The relative threshold uses
    $|b|$, so a negative loss must also fall by ``rtol`` of its size. A NaN never improves.

    Args:
      factor: in $(0, 1]$ (default 0.1), the multiplier applied at each reduction.
      patience: an int $\ge 0$ (default 10), non-improving updates tolerated.
      rtol: $\ge 0$ (default 1e-4), the relative improvement needed.
      cooldown: an int $\ge 0$ (default 0), updates after a reduction during which
        non-improving values are not counted.
      min_scale: $\ge 0$ (default 0), the scale never goes below it.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` with a ``ReduceOnPlateauState``; its
      ``update(updates, state, params=None, *, value)`` needs ``value`` (inside
      ``optax.chain`` pass it to the chain's ``update``).

    Differences from PyTorch and optax:
      PyTorch and optax test $v < b(1 - \text{rtol})$ (optax also ``- atol``), which for a
      negative $b$ accepts values slightly *above* the best. PyTorch changes the rate from
      the next ``optimizer.step()`` on; here, as in optax, the scale applies to the update
      of the same call. optax reduces one update earlier (at $n$ = patience) and can
      average the value over ``accumulation_size`` calls.

    Examples:
      >>> tx = optjx.chain(optjx.adam(1e-3), optjx.reduce_on_plateau(patience=5))
      >>> updates, state = tx.update(grads, state, params, value=loss)
    """
    hypers = _hyper.Hyperparameters(
        factor=(factor, _hyper.Range(0.0, 1.0, low_inclusive=False)),
        rtol=(rtol, _hyper.NONNEGATIVE),
        min_scale=(min_scale, _hyper.NONNEGATIVE),
    )
    check_int("patience", patience, 0)
    check_int("cooldown", cooldown, 0)

    def init_fn(params):
        del params
        return ReduceOnPlateauState(
            count=_state.zero_count(),
            scale=_tree.default_float(1.0),
            best_value=_tree.default_float(jnp.inf),
            plateau_count=_state.zero_count(),
            cooldown_count=_state.zero_count(),
        )

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args
        if value is None:
            raise ValueError(
                "reduce_on_plateau needs the monitored value: call "
                "update(updates, state, params, value=loss)."
            )
        value = jnp.asarray(value).astype(state.best_value.dtype)
        if value.shape != ():
            raise ValueError(f"reduce_on_plateau needs a scalar value, got shape {value.shape}")
        h = hypers.at(state.count)
        best = state.best_value
        at = _hyper.per_dtype(rtol=h.rtol, factor=h.factor, min_scale=h.min_scale)
        tol = at(best.dtype).rtol
        # While best is +inf the threshold is +inf too (inf - inf would be NaN).
        threshold = jnp.where(jnp.isfinite(best), best - tol * jnp.abs(best), best)
        improved = value < threshold
        best = jnp.where(improved, value, best)
        plateau = jnp.where(improved, 0, _state.next_count(state.plateau_count))
        in_cooldown = state.cooldown_count > 0
        plateau = jnp.where(in_cooldown, 0, plateau)
        cooling = jnp.where(in_cooldown, state.cooldown_count - 1, state.cooldown_count)
        reduce = plateau > patience
        reduced = jnp.maximum(
            state.scale * at(state.scale.dtype).factor, at(state.scale.dtype).min_scale
        )
        scale = jnp.where(reduce, reduced, state.scale)
        plateau = jnp.where(reduce, 0, plateau)
        cooling = jnp.where(reduce, cooldown, cooling)
        out = jax.tree.map(lambda u: u * scale.astype(u.dtype), updates)
        return out, _state.advance(
            state,
            scale=scale,
            best_value=best,
            plateau_count=plateau.astype(jnp.int32),
            cooldown_count=cooling.astype(jnp.int32),
        )

    return _state.transformation(init_fn, update_fn, extra_args=True)
