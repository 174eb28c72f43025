r"""RAdam's direction (``scale_by_radam``) and the float32-exact length of its SMA.

$\rho_t$ is computed without cancellation (see ``_sma_length``), and the first step
past the threshold is found once on the host for concrete hyperparameters.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optjx import _hyper, _state, _tree
from optjx.typing import Hyperparameter


class ScaleByRadamState(NamedTuple):
    """Step count, first and second moments, and the rectification term of the latest
    update (``r_t`` of Alg. 2; 0 while the adaptive step is off, and before the first
    update): a scalar kept for ``optjx.diagnostics``, never read by the update."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    mu: optax.Updates
    nu: optax.Updates
    rectifier: jax.Array


def _excess(y):
    """``1/y - 1/(e^y - 1)`` for ``y > 0`` (it falls from 1/2 to 0), accurate everywhere.

    Below 0.25 the two terms cancel, so the Taylor series (Bernoulli numbers) is used,
    to ``y^9``: its first omitted term is about 1e-16 there.
    """
    small = jnp.minimum(y, 0.25)
    z = small * small
    series = 0.5 - small * (
        1 / 12 - z * (1 / 720 - z * (1 / 30240 - z * (1 / 1209600 - z / 47900160)))
    )
    large = jnp.maximum(y, 0.25)
    return jnp.where(y < 0.25, series, 1.0 / large - 1.0 / jnp.expm1(large))


def _sma_length(t, u):
    """``rho_t = rho_inf - 2 t b2^t / (1 - b2^t)`` without the cancellation.

    Both terms are about ``2 / (1 - b2)`` while ``rho_t`` is about ``t``: in float32 with
    ``b2 = 0.999`` the textbook form puts ``r_6`` off by 0.2%, with ``b2 = 0.9999`` by
    27%. With ``u = -log(b2)``, ``rho_inf = 1 + 2 / (e^u - 1)`` and the second term is
    ``2 t / (e^{tu} - 1)``, so ``rho_t = 1 + 2 (t E(tu) - E(u))`` with ``E`` = ``_excess``,
    a difference of well-separated terms (relative error below 1e-6 in float32).
    """
    return 1.0 + 2.0 * (t * _excess(t * u) - _excess(u))


def first_adaptive_step(b2, threshold):
    r"""The first step $t$ with $\rho_t >$ ``threshold``, found once on the host.

    $$
    t^\star = \min\{\, t \ge 1 : \rho_t > \text{threshold} \,\}, \qquad
    \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t}, \quad
    \rho_\infty = \frac{2}{1 - \beta_2} - 1
    $$

    $\rho_t$ rises with $t$ towards $\rho_\infty$, so a bisection over the int32 counter
    finds the crossing, in float64 NumPy as PyTorch computes $\rho_t$ in Python floats.
    The step then compares integers instead of evaluating $\rho_t$ in every leaf. It
    raises nothing: the caller's factory has validated the arguments.

    References:
      Liu et al. (2020), "On the variance of the adaptive learning rate and beyond",
      Algorithm 2.

    Args:
      b2: $\beta_2 \in [0, 1)$, the second-moment decay. Only a concrete scalar is
        resolved; an array with a dimension, a traced value or a schedule gives ``None``.
      threshold: the switch, $\ge 4$ (4 in ``radam_schedule_free``, 5 by default in
        ``scale_by_radam``); concrete scalar only, as ``b2``.

    Returns:
      $t^\star$ as a Python int; ``INT32_MAX + 1`` (beyond any count) when $\rho_t$ never
      passes the threshold ($\beta_2 = 0$, or $\rho_\infty \le$ threshold); ``None`` when
      ``b2`` or ``threshold`` is not a concrete scalar (the step then computes the
      predicate).

    Differences from PyTorch and optax:
      Both evaluate $\rho_t$ at every step; the crossing is the one PyTorch's gives.

    Examples:
      >>> first_adaptive_step(0.99, 4.0)
      5
    """
    if not (_hyper.is_concrete(b2) and _hyper.is_concrete(threshold)):
        return None
    if np.ndim(b2) or np.ndim(threshold):
        return None
    one_minus_b2 = 1.0 - float(b2)
    if one_minus_b2 >= 1.0:  # b2 = 0: rho_inf = 1, never above a threshold >= 4
        return int(_state.INT32_MAX) + 1
    u = -np.log1p(-one_minus_b2)  # -log(b2)
    rho_inf = 2.0 / one_minus_b2 - 1.0
    limit = float(threshold)

    def crossed(t):  # rho_t > threshold, with 1 - b2^t = -expm1(-t u)
        return rho_inf - 2.0 * t * np.exp(-t * u) / -np.expm1(-t * u) > limit

    low, high = 0, int(_state.INT32_MAX)  # t = 0 never counts as crossed
    if not crossed(high):
        return high + 1
    while high - low > 1:
        middle = (low + high) // 2
        if crossed(middle):
            high = middle
        else:
            low = middle
    return high


def variance_rectification(count, b2, threshold, first_adaptive=None):
    r"""Whether RAdam's adaptive step is on at step $t$, and its rectification term $r_t$.

    $$
    \text{adaptive}_t = \rho_t > \text{threshold}, \qquad
    r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
                     {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}}
    $$

    $$
    \rho_\infty = \frac{2}{1 - \beta_2} - 1, \qquad
    \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t}
    $$

    $\rho_t$ is computed without cancellation (the textbook form loses 0.2% at $t = 6$ in
    float32 with $\beta_2 = 0.999$). Where the step is not adaptive, $r_t$ is a finite
    placeholder (never NaN, so a ``jnp.where`` that discards it is safe).
    Shared by [`scale_by_radam`][optjx.scale_by_radam] and
    [`radam_schedule_free`][optjx.radam_schedule_free]; it raises nothing (the factories
    validate the arguments).

    References:
      Liu et al. (2020), "On the variance of the adaptive learning rate and beyond",
      Algorithm 2.

    Args:
      count: $t \ge 1$, the 1-based index of the step (an int32 scalar, traced or not).
      b2: $\beta_2 \in [0, 1)$, a number or a scalar array (traced too).
      threshold: the switch, $\ge 4$ ($r_t$ is real only for $\rho_t \ge 4$).
      first_adaptive: ``first_adaptive_step``
        of the same concrete ``b2`` and ``threshold``, when known (default ``None``): the
        predicate becomes an integer comparison ``count >= first_adaptive``, which
        compiles faster than the $\rho_t$ series in every leaf.

    Returns:
      ``(adaptive, r_t)``: a bool scalar (or the Python ``False`` when the threshold is
      never passed) and a float scalar in the default float dtype.

    Differences from PyTorch and optax:
      The switch is the paper's strict $>$, as PyTorch's; ``optax.scale_by_radam``
      switches on at $\rho_t \ge$ threshold. $\rho_t$ keeps float32 digits that the
      textbook form (PyTorch's, optax's) loses.

    Examples:
      >>> adaptive, r_t = variance_rectification(jnp.int32(6), 0.99, 5.0)
    """
    t = _tree.default_float(count)
    one_minus_b2 = _tree.default_float(1.0 - b2)
    u = -jnp.log1p(-one_minus_b2)  # -log(b2) > 0
    rho_inf = 2.0 / one_minus_b2 - 1.0  # Alg. 2: length limit of the approximated SMA
    rho_t = _sma_length(t, u)  # Alg. 2: rho_inf - 2 t b2^t / (1 - b2^t)
    if first_adaptive is not None:
        # An integer comparison: otherwise XLA repeats the rho_t series inside every
        # leaf's fused loop, which costs compile time per leaf.
        adaptive = count >= first_adaptive if first_adaptive <= _state.INT32_MAX else False
    else:
        adaptive = rho_t > _tree.default_float(threshold)
    # Both branches are evaluated. Off the adaptive branch rho_t <= threshold, so
    # (rho_t - 4) and (rho_inf - 4) can be negative or zero: feed r_t's formula a
    # harmless 5 there so no NaN is ever produced, not merely discarded.
    rho_t_safe = jnp.where(adaptive, rho_t, 5.0)
    rho_inf_safe = jnp.where(adaptive, rho_inf, 5.0)
    rectifier = jnp.sqrt(  # Alg. 2: variance rectification term r_t
        (rho_t_safe - 4.0)
        * (rho_t_safe - 2.0)
        * rho_inf_safe
        / ((rho_inf_safe - 4.0) * (rho_inf_safe - 2.0) * rho_t_safe)
    )
    return adaptive, rectifier


def scale_by_radam(
    b1: Hyperparameter = 0.9,
    b2: Hyperparameter = 0.999,
    *,
    eps: Hyperparameter = 1e-8,
    threshold: Hyperparameter = 5.0,
) -> optax.GradientTransformation:
    r"""RAdam's direction: the rectified Adam step once $\rho_t >$ ``threshold``, else $\hat m_t$.

    $$
    m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
    v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \qquad
    \hat m_t = \frac{m_t}{1 - \beta_1^t}
    $$

    $$
    \rho_\infty = \frac{2}{1 - \beta_2} - 1, \qquad
    \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t}
    $$

    $$
    r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}{(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}}
    $$

    $$
    u_t = \begin{cases}
      r_t \, \hat m_t \, \dfrac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon} & \rho_t > \text{threshold} \\
      \hat m_t & \text{otherwise}
    \end{cases}
    $$

    $\rho_1 = 1$ and $\rho_t$ rises towards $\rho_\infty$; with $\beta_2 = 0.99$ it passes
    4 at $t = 5$ and 5 at $t = 6$. ``threshold=4, eps=0`` is the paper's Algorithm 2 line
    for line; the default 5 is the authors' code, PyTorch's and optax's.

    References:
      Liu et al. (2020), "On the variance of the adaptive learning rate and beyond",
      Algorithm 2.

    Args:
      b1: $\beta_1 \in [0, 1)$ (default 0.9).
      b2: $\beta_2 \in [0, 1)$ (default 0.999). With $\beta_2 \le 0.6$, $\rho_\infty \le 4$
        and the adaptive step never switches on.
      eps: $\epsilon \ge 0$, added to $\sqrt{v_t}$ before the bias correction (default 1e-8).
      threshold: in $[4, \infty]$ (default 5). $r_t$ is real only for $\rho_t \ge 4$, so a
        concrete value below 4 raises ``ValueError``; ``inf`` never switches on.

    Returns:
      An ``optax.GradientTransformation`` with a ``ScaleByRadamState``.

    Differences from PyTorch and optax:
      PyTorch hard-codes the threshold 5. optax adds ``eps`` after the bias correction
      ($\sqrt{\hat v} + \epsilon$) and switches on at $\rho_t \ge$ threshold; optjx adds it
      before, as PyTorch does, and uses the paper's strict $>$. optjx computes $\rho_t$
      without cancellation: the textbook form is off by 0.2% at $t = 6$ in float32 with
      $\beta_2 = 0.999$.

    Examples:
      >>> tx = optjx.chain(optjx.scale_by_radam(threshold=4.0, eps=0.0),
      ...                  optjx.scale_by_learning_rate(1e-3))  # the paper, line for line
    """
    hypers = _hyper.Hyperparameters(
        b1=(b1, _hyper.DECAY),
        b2=(b2, _hyper.DECAY),
        eps=(eps, _hyper.NONNEGATIVE),
        threshold=(threshold, _hyper.at_least(4.0)),
    )

    first_adaptive = first_adaptive_step(b2, threshold)

    def init_fn(params):
        _tree.require_real(params, "scale_by_radam")
        return ScaleByRadamState(
            count=_state.zero_count(),
            mu=_tree.zeros_like(params),
            nu=_tree.zeros_like(params),
            rectifier=_tree.default_float(0.0),
        )

    def update_fn(updates, state, params=None):
        del params
        _tree.check_matching(updates, state.mu)
        h = hypers.at(state.count)
        beta1, beta2, eps_t = h.b1, h.b2, h.eps
        count = _state.next_count(state.count)

        # The scalars are computed once at full precision; each leaf casts the result.
        # 1 - beta is taken before rounding to the float type (exact for a Python number,
        # as in torch), and 1 - beta^t = -expm1(t log(beta)) keeps all its digits for
        # small t: rounding 0.9999 to float32 first changes 1 - beta by 1.7e-4.
        t = _tree.default_float(count)
        one_minus_b1 = _tree.default_float(1.0 - beta1)
        correction1 = -jnp.expm1(t * jnp.log1p(-one_minus_b1))
        correction2 = -jnp.expm1(t * jnp.log1p(-_tree.default_float(1.0 - beta2)))
        adaptive, rectifier = variance_rectification(count, beta2, h.threshold, first_adaptive)
        rectified_scale = rectifier * jnp.sqrt(correction2)

        # Each scalar cast once per dtype, not once per leaf (trace and compile time).
        at = _hyper.per_dtype(
            correction1=correction1,
            rectified_scale=rectified_scale,
            eps=eps_t,
        )

        mu = _tree.update_moment(updates, state.mu, beta1)
        nu = _tree.update_moment(updates, state.nu, beta2, order=2)

        def direction(g, m, v):
            k = at(m.dtype)
            m_hat = m / k.correction1
            # Alg. 2: r_t m_hat sqrt(1 - b2^t) / sqrt(v_t), eps as torch
            rectified = m_hat * k.rectified_scale / (jnp.sqrt(v) + at(v.dtype).eps)
            # Scalar predicate: a select, not a cond; eps=0 with v=0 makes
            # `rectified` 0/0 on the warm-up branch, and the select drops it.
            return jnp.where(adaptive, rectified, m_hat).astype(g.dtype)

        out = jax.tree.map(direction, updates, mu, nu)
        applied = jnp.where(adaptive, rectifier, 0.0).astype(state.rectifier.dtype)
        return out, ScaleByRadamState(count, mu, nu, applied)

    return _state.transformation(init_fn, update_fn)
