r"""Muon's direction (``scale_by_muon``): momentum, then the Newton-Schulz orthogonalization,
scaled by the matrix's shape, as ``torch.optim.Muon``."""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx.transforms.newton_schulz import (
    COEFFICIENTS,
    STEPS,
    check_newton_schulz,
    newton_schulz,
    require_matrices,
)
from optjx.typing import Hyperparameter

ADJUSTMENTS = (None, "original", "match_rms_adamw")


class ScaleByMuonState(NamedTuple):
    """The step count (read by a scheduled momentum) and the momentum buffer."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    momentum_buffer: optax.Updates


def shape_factor(shape: tuple, adjust_lr_fn: Optional[str]) -> float:
    r"""PyTorch's learning-rate adjustment for a matrix of shape $(A, B)$:
    $\sqrt{\max(1, A/B)}$ ("original", Jordan et al.) or $0.2\sqrt{\max(A, B)}$
    ("match_rms_adamw", Liu et al.: the update's RMS of AdamW's)."""
    rows, columns = shape[:2]
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, columns))
    return math.sqrt(max(1.0, rows / columns)) if columns else 1.0


def scale_by_muon(
    momentum: Hyperparameter = 0.95,
    *,
    nesterov: bool = True,
    ns_coefficients: tuple = COEFFICIENTS,
    ns_steps: int = STEPS,
    eps: Hyperparameter = 1e-7,
    adjust_lr_fn: Optional[str] = None,
    ns_dtype: Any = jnp.bfloat16,
) -> optax.GradientTransformation:
    r"""Muon's direction for 2-d leaves (a descent direction).

    $$
    B_t = \mu B_{t-1} + (1 - \mu) g_t, \qquad
    \tilde B_t = \begin{cases} (1 - \mu) g_t + \mu B_t & \text{nesterov} \\ B_t \end{cases}
    $$

    $$
    u_t = s(A, B)\, \mathrm{NS}^{(a,b,c)}_k(\tilde B_t; \epsilon), \qquad
    s = \sqrt{\max(1, A/B)} \;\text{("original")} \quad\text{or}\quad
    0.2\sqrt{\max(A, B)} \;\text{("match\_rms\_adamw")}
    $$

    with $B_0 = 0$, $\mathrm{NS}$ the Newton-Schulz orthogonalization of
    ``orthogonalize_by_newton_schulz`` and $(A, B)$ the leaf's shape. The buffer is an
    exponential average (PyTorch's ``lerp``), not the heavy-ball sum of its docs.

    References:
      Jordan et al. (2024), "Muon: An optimizer for hidden layers in neural networks";
      Liu et al. (2025), "Muon is scalable for LLM training" (``match_rms_adamw``).

    Args:
      momentum: $\mu \ge 0$ (default 0.95).
      nesterov: Nesterov's look-ahead (default ``True``).
      ns_coefficients: $(a, b, c)$ (default (3.4445, -4.7750, 2.0315)).
      ns_steps: $k$, an int in $[0, 100)$ (default 5).
      eps: $\epsilon \ge 0$ in the normalisation (default 1e-7).
      adjust_lr_fn: ``None`` or ``"original"`` (default) or ``"match_rms_adamw"``.
      ns_dtype: the iteration's dtype (default ``jnp.bfloat16``, as PyTorch casts);
        ``None`` runs it in each gradient's own dtype.

    Returns:
      An ``optax.GradientTransformation`` with a ``ScaleByMuonState``.

    Raises:
      ValueError: a bad argument, naming it; at ``init`` and ``update``, a leaf that is
        not 2-d, naming its key path; complex params.

    Differences from PyTorch and optax:
      ``torch.optim.Muon``'s rule exactly (with ``ns_dtype=None`` in float64 it matches
      torch's step run in float64 to 1e-9). ``optax.contrib.muon`` uses the heavy-ball
      buffer, its own shape scaling and applies AdamW to the other leaves itself.

    Examples:
      >>> tx = optjx.chain(optjx.scale_by_muon(), optjx.scale_by_learning_rate(0.02))
    """
    coefficients = check_newton_schulz(ns_coefficients, ns_steps, eps)
    if adjust_lr_fn not in ADJUSTMENTS:
        raise ValueError(f"adjust_lr_fn must be one of {ADJUSTMENTS}, got {adjust_lr_fn!r}")
    hypers = _hyper.Hyperparameters(momentum=(momentum, _hyper.NONNEGATIVE))

    def init_fn(params):
        require_matrices(params, "muon")
        _tree.require_real(params, "muon")
        return ScaleByMuonState(count=_state.zero_count(), momentum_buffer=_tree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        _tree.check_matching(updates, state.momentum_buffer)
        require_matrices(updates, "muon")
        mu = hypers.at(state.count).momentum
        buffer = _tree.update_moment(updates, state.momentum_buffer, mu)
        at = _hyper.per_dtype(mu=mu)

        def direction(g, b):
            wide = _tree.widest_float(g.dtype, b.dtype)
            g_wide, b_wide = g.astype(wide), b.astype(wide)
            looked_ahead = g_wide + at(wide).mu * (b_wide - g_wide) if nesterov else b_wide
            orthogonal = newton_schulz(looked_ahead, coefficients, ns_steps, eps, ns_dtype)
            factor = shape_factor(g.shape, adjust_lr_fn)
            return (orthogonal.astype(wide) * jnp.asarray(factor, wide)).astype(g.dtype)

        out = jax.tree.map(direction, updates, buffer)
        return out, _state.advance(state, momentum_buffer=buffer)

    return _state.transformation(init_fn, update_fn)
