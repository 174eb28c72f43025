r"""Adafactor's preconditioner (``scale_by_adafactor``), as ``torch.optim.Adafactor``: a
factored second moment (a row and a column vector per matrix), a step relative to the
weights' scale, and update clipping."""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optjx import _hyper, _state, _tree
from optjx.typing import Hyperparameter


class FactoredMoment(NamedTuple):
    """The second moment of a leaf of two or more dimensions: its mean over the last axis
    (``row``, shape ``(..., R, 1)``) and over the one before (``column``, ``(..., 1, C)``)."""

    row: jax.Array
    column: jax.Array


class ScaleByAdafactorState(NamedTuple):
    """Step count and, per leaf, a ``FactoredMoment`` (two or more dimensions) or the full
    second moment (scalars and vectors)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    second_moment: optax.Updates


class _Result(NamedTuple):
    update: jax.Array
    moment: object


def _is_factored(leaf) -> bool:
    return isinstance(leaf, FactoredMoment)


def _init_moment(p):
    if p.ndim < 2:
        return jnp.zeros_like(p)
    return FactoredMoment(
        row=jnp.zeros((*p.shape[:-1], 1), p.dtype),
        column=jnp.zeros((*p.shape[:-2], 1, p.shape[-1]), p.dtype),
    )


def _shape_of(moment) -> tuple:
    """The shape of the leaf a moment belongs to."""
    if _is_factored(moment):
        return (*moment.row.shape[:-1], moment.column.shape[-1])
    return moment.shape


def _mean(x, axis: int):
    """The mean over ``axis``, kept; 0 over an empty axis (a zero-size leaf), not NaN."""
    return jnp.sum(x, axis=axis, keepdims=True) / max(x.shape[axis], 1)


def _rms(x):
    return jnp.sqrt(jnp.sum(jnp.square(x)) / max(x.size, 1))


def scale_by_adafactor(
    learning_rate: Hyperparameter = 1e-2,
    *,
    beta2_decay: Hyperparameter = -0.8,
    eps: tuple[Optional[Hyperparameter], Hyperparameter] = (None, 1e-3),
    d: Hyperparameter = 1.0,
) -> optax.GradientTransformation:
    r"""Adafactor's direction, PyTorch's form (a descent direction).

    Per leaf, at step $t$, with $\hat\beta_t = 1 - t^{c}$ ($c$ = ``beta2_decay``):

    $$
    \rho_t = \min(\eta_k, 1/\sqrt t), \qquad
    \alpha_t = \max\big(\epsilon_2, \operatorname{RMS}(w_{t-1})\big)\, \rho_t
    $$

    For a leaf of two or more dimensions (factored over its **last two**; leading ones
    are a batch of matrices):

    $$
    R_t = \hat\beta_t R_{t-1} + (1 - \hat\beta_t) \operatorname{mean}_{-1}(g_t^2), \qquad
    C_t = \hat\beta_t C_{t-1} + (1 - \hat\beta_t) \operatorname{mean}_{-2}(g_t^2), \qquad
    \hat V_t = \frac{R_t C_t}{\max(\operatorname{mean}_{-2}(R_t), \epsilon_1)}
    $$

    and for scalars and vectors $\hat V_t = V_t = \hat\beta_t V_{t-1} + (1 - \hat\beta_t) g_t^2$. Then

    $$
    U_t = \frac{g_t}{\sqrt{\max(\hat V_t, \epsilon_1^2)}}, \qquad
    u_t = \frac{\alpha_t}{\max\big(1, \operatorname{RMS}(U_t) / d\big)}\, U_t
    $$

    $\hat\beta_1 = 0$: the first step's moments are the first gradient's. Chain
    ``scale(-1.0)`` after it (``optjx.adafactor`` does, with its weight decay); the
    learning rate is inside, as a cap on the relative step $\rho_t$.

    References:
      Shazeer & Stern (2018), "Adafactor: Adaptive learning rates with sublinear memory
      cost", Algorithms 4 and 5; PyTorch's variant (no first moment, $\epsilon_1$ in the
      denominator of the row mean, $\hat\beta_t = 1 - t^{-0.8}$).

    Args:
      learning_rate: $\eta \ge 0$, the cap on $\rho_t$ (default 1e-2).
      beta2_decay: $c \le 0$ (default -0.8).
      eps: $(\epsilon_1, \epsilon_2)$, both $\ge 0$ (default ``(None, 1e-3)``); $\epsilon_1$
        ``None`` is the machine epsilon of each leaf's dtype.
      d: $d \ge 1$, the clipping threshold on $\operatorname{RMS}(U_t)$ (default 1).

    Returns:
      An ``optax.GradientTransformation`` with a ``ScaleByAdafactorState`` (two vectors
      per matrix); its ``update`` needs ``params``.

    Raises:
      ValueError: a value out of range, naming it; complex params.

    Differences from PyTorch and optax:
      ``torch.optim.Adafactor``'s rule exactly. ``optax.scale_by_factored_rms`` factors
      over the two largest dimensions, only above a size, with a decay
      $1 - (t+1)^{-0.8}$, and has the relative step and clipping in other stages.

    Examples:
      >>> tx = optjx.chain(optjx.scale_by_adafactor(1e-2), optjx.scale(-1.0))
    """
    eps1, eps2 = _hyper.pair("eps", eps)
    if eps1 is not None:
        _hyper.check_range("eps[0]", eps1, low=0.0)
    _hyper.check_range("eps[1]", eps2, low=0.0)
    _hyper.check_range("beta2_decay", beta2_decay, high=0.0)
    _hyper.check_range("d", d, low=1.0)
    hypers = _hyper.Hyperparameters(
        learning_rate=(learning_rate, _hyper.NONNEGATIVE),
        beta2_decay=(beta2_decay, _hyper.REAL),
        eps2=(eps2, _hyper.REAL),
        d=(d, _hyper.REAL),
        **({} if eps1 is None else {"eps1": (eps1, _hyper.REAL)}),
    )

    def init_fn(params):
        _tree.require_real(params, "scale_by_adafactor")
        return ScaleByAdafactorState(
            count=_state.zero_count(), second_moment=jax.tree.map(_init_moment, params)
        )

    def update_fn(updates, state, params=None):
        _tree.require_params(params, "scale_by_adafactor")
        reference = jax.tree.map(
            lambda m: np.broadcast_to(np.float32(0), _shape_of(m)),
            state.second_moment,
            is_leaf=_is_factored,
        )
        _tree.check_matching(updates, reference)
        _tree.check_matching(params, reference, what="params")
        h = hypers.at(state.count)
        count = _state.next_count(state.count)
        t = _tree.default_float(count)
        keep = 1.0 - jnp.power(t, _tree.default_float(h.beta2_decay))  # beta-hat_t
        rho = jnp.minimum(_tree.default_float(h.learning_rate), 1.0 / jnp.sqrt(t))
        at = _hyper.per_dtype(
            keep=keep, new=1.0 - keep, rho=rho, eps2=h.eps2, d=h.d, one=1.0,
            **({} if eps1 is None else {"eps1": h.eps1}),
        )  # fmt: skip

        def one(g, moment, p):
            dtype = _tree.widest_float(g.dtype, p.dtype, _moment_dtype(moment))
            k = at(dtype)
            floor = k.eps1 if eps1 is not None else jnp.asarray(jnp.finfo(p.dtype).eps, dtype)
            square = jnp.square(g.astype(dtype))
            if _is_factored(moment):
                row = _blend(moment.row, _mean(square, -1), k)
                column = _blend(moment.column, _mean(square, -2), k)
                scale = jnp.maximum(_mean(row, -2), floor)
                # R (C / mean R), not (R C) / mean R: the product of two squares overflows
                # float32 for gradients above ~1e9 (PyTorch's order does).
                variance = row * (column / scale)
                moment = FactoredMoment(
                    row.astype(moment.row.dtype), column.astype(moment.row.dtype)
                )
            else:
                variance = _blend(moment, square, k)
                moment = variance.astype(moment.dtype)
            step = g.astype(dtype) * jax.lax.rsqrt(jnp.maximum(variance, floor * floor))
            relative = jnp.maximum(k.eps2, _rms(p.astype(dtype))) * k.rho
            clipped = relative / jnp.maximum(k.one, _rms(step) / k.d)
            return _Result((clipped * step).astype(g.dtype), moment)

        results = jax.tree.map(one, updates, state.second_moment, params)
        is_result = lambda x: isinstance(x, _Result)  # noqa: E731
        out = jax.tree.map(lambda r: r.update, results, is_leaf=is_result)
        moments = jax.tree.map(lambda r: r.moment, results, is_leaf=is_result)
        return out, ScaleByAdafactorState(count, moments)

    return _state.transformation(init_fn, update_fn)


def _moment_dtype(moment):
    return moment.row.dtype if _is_factored(moment) else moment.dtype


def _blend(old, new, k):
    """``old + (1 - keep) (new - old)``: PyTorch's ``lerp`` with weight ``1 - keep``."""
    return old.astype(new.dtype) + k.new * (new - old.astype(new.dtype))
