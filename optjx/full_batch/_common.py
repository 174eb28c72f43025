"""Pieces shared by the full-batch methods: stop reasons, tree algebra, argument checks.

The tree algebra works on any tree: the loops of ``optjx.full_batch._iteration`` apply
it to the params tree and to the packed vectors of ``optjx.full_batch._packing`` (one
per dtype). Inner products are sums of per-group sums taken in the *scalar dtype*: the
widest float dtype of the params, at least float32.
"""

from __future__ import annotations

import enum
from typing import Any

import jax
import jax.numpy as jnp

from optjx import _state, _tree
from optjx._hyper import check_int as check_int

# The reductions (one accumulator-dtype rule) and the select are the core's (``_tree``).
from optjx._tree import all_finite as all_finite
from optjx._tree import dot as dot
from optjx._tree import max_abs as max_abs
from optjx._tree import sum_abs as sum_abs


class StopReason(enum.IntEnum):
    r"""Why the last ``update`` of a full-batch method stopped: ``state.stop_reason``.

    An ``IntEnum``: ``state.stop_reason == optjx.StopReason.CONVERGED`` works on arrays,
    under ``jit`` too, and ``optjx.StopReason(int(state.stop_reason))`` names a concrete
    one. ``CONVERGED`` (a tolerance met: the method may be stopped) is distinct from the
    budget members (``MAX_ITER``, ``MAX_EVAL``: call ``update`` again to go on).
    ``state.stop_test`` (a ``StopTest``) says which test it was.

    Members:
      NOT_STARTED: no update yet.
      CONVERGED: a gradient or change tolerance was met, in torch's tests: $\max_i |g_i|
        \le \tau_{grad}$ (before any iteration, or after a step); $g^\top d >
        -\tau_{change}$ (no descent left along $d$); $\max_i |t d_i| \le \tau_{change}$;
        $|f - f_{prev}| < \tau_{change}$.
      MAX_ITER: ``max_iter`` iterations in this update.
      MAX_EVAL: ``max_eval`` evaluations in this update.
      NON_FINITE: the given value or gradient is a NaN or an Inf, or the line search
        found no point with a finite value and gradient within the evaluation budget: the
        update is zero and the state keeps its memory.
      LINE_SEARCH_FAILED: every point the line search tried was finite, but none met its
        conditions (scipy's "Desired error not necessarily achieved due to precision
        loss", ``optjx.bfgs``, ``optjx.lbfgs_b``): neither a tolerance nor a
        budget, the params are kept; usually the gradient is too inaccurate for the
        tolerance asked (loosen ``tolerance_grad``) or the loss is not smooth there.

    Examples:
      >>> import jax, jax.numpy as jnp, optjx
      >>> loss = lambda p: jnp.sum((p["x"] - 1.0) ** 2)
      >>> params = {"x": jnp.zeros(3)}
      >>> opt = optjx.lbfgs(line_search_fn="strong_wolfe")
      >>> value, grads = jax.value_and_grad(loss)(params)
      >>> _, state = opt.update(grads, opt.init(params), params, value=value, value_fn=loss)
      >>> bool(state.stop_reason == optjx.StopReason.CONVERGED)
      True
    """

    NOT_STARTED = 0
    CONVERGED = 1
    MAX_ITER = 2
    MAX_EVAL = 3
    NON_FINITE = 4
    LINE_SEARCH_FAILED = 5


class StopTest(enum.IntEnum):
    """Which of torch's tests stopped the last update: ``state.stop_test``.

    The numbers are those ``state.stop_reason`` held before ``StopReason`` was
    public; ``StopTest(n).reason`` is the ``StopReason`` it reports.
    """

    NONE = 0  # no update yet
    TOLERANCE_GRAD_AT_START = 1  # max|g| <= tolerance_grad before any iteration
    DIRECTIONAL_DERIVATIVE = 2  # g.d > -tolerance_change: no descent left along d
    MAX_ITER = 3  # max_iter iterations in this update
    MAX_EVAL = 4  # max_eval evaluations in this update
    TOLERANCE_GRAD = 5  # max|g| <= tolerance_grad after a step
    TOLERANCE_CHANGE_STEP = 6  # max|t d| <= tolerance_change
    TOLERANCE_CHANGE_VALUE = 7  # |f - f_prev| < tolerance_change
    NON_FINITE = 8  # no finite value and gradient: update zeroed, state kept
    LINE_SEARCH_FAILED = 9  # bfgs: no step found (scipy's "precision loss"); params kept
    TOLERANCE_CHANGE_RELATIVE = 10  # lbfgs_b: (f_prev - f) / max(|f_prev|, |f|, 1) <= ftol
    NO_PREDICTED_DECREASE = 11  # trust_region_newton: the model predicts no decrease
    INNER_CG_NOT_CONVERGED = 12  # newton_cg: the inner CG used its 20 n products

    @property
    def reason(self) -> StopReason:
        return StopReason(_REASON_OF_TEST[self])


_REASON_OF_TEST = (
    StopReason.NOT_STARTED,
    StopReason.CONVERGED,
    StopReason.CONVERGED,
    StopReason.MAX_ITER,
    StopReason.MAX_EVAL,
    StopReason.CONVERGED,
    StopReason.CONVERGED,
    StopReason.CONVERGED,
    StopReason.NON_FINITE,
    StopReason.LINE_SEARCH_FAILED,
    StopReason.CONVERGED,
    StopReason.LINE_SEARCH_FAILED,  # no predicted decrease: no acceptable step
    StopReason.LINE_SEARCH_FAILED,  # the inner CG gave no usable direction
)


def reason_of(test: jax.Array) -> jax.Array:
    """The int32 ``StopReason`` of an int32 ``StopTest`` (traced allowed)."""
    return jnp.asarray([int(r) for r in _REASON_OF_TEST], jnp.int32)[test]


def stop_reason(state: Any) -> str:
    r"""The name of the ``StopReason`` of ``state``'s last update, e.g. ``"CONVERGED"``.

    ``optjx.StopReason(int(state.stop_reason)).name``; under ``jit`` compare
    ``state.stop_reason`` with the enum instead. ``state.stop_test`` says which of torch's
    tests stopped it (a ``StopTest``: ``TOLERANCE_GRAD_AT_START``,
    ``DIRECTIONAL_DERIVATIVE``, ``MAX_ITER``, ``MAX_EVAL``, ``TOLERANCE_GRAD``,
    ``TOLERANCE_CHANGE_STEP``, ``TOLERANCE_CHANGE_VALUE``, ``NON_FINITE``,
    ``LINE_SEARCH_FAILED`` (``optjx.bfgs``, ``optjx.newton_cg``), ``TOLERANCE_CHANGE_RELATIVE``
    (``optjx.lbfgs_b``), ``NO_PREDICTED_DECREASE`` (``optjx.trust_region_newton``),
    ``INNER_CG_NOT_CONVERGED`` (``optjx.newton_cg``).

    References:
      ``torch.optim.LBFGS.step`` (torch 2.13), its break tests.

    Args:
      state: the state of a full-batch method (concrete, not traced).

    Returns:
      The ``StopReason`` member's name, a ``str``: ``NOT_STARTED``, ``CONVERGED``,
      ``MAX_ITER``, ``MAX_EVAL``, ``NON_FINITE`` or ``LINE_SEARCH_FAILED``.

    Differences from PyTorch and optax:
      torch does not report why ``step`` returned, optax's ``lbfgs`` runs one iteration
      per update and has no stopping tests; ``NON_FINITE`` is optjx's own.

    Examples:
      >>> import jax.numpy as jnp, optjx
      >>> optjx.stop_reason(optjx.lbfgs().init({"x": jnp.zeros(2)}))
      'NOT_STARTED'
    """
    return StopReason(int(state.stop_reason)).name


# The int32 counters a state may hold, all zero at ``init``.
COUNTERS = ("count", "n_iter", "func_evals", "grad_evals", "hessian_products", "iterations",
            "evaluations")  # fmt: skip


def not_started(state_type) -> dict[str, jax.Array]:
    """The fields of a fresh ``state_type`` that every method starts alike: its
    ``COUNTERS`` at 0, ``stop_reason`` ``NOT_STARTED``, ``stop_test`` ``NONE``."""
    fields = {name: _state.zero_count() for name in COUNTERS if name in state_type._fields}
    return dict(
        fields,
        stop_reason=jnp.asarray(StopReason.NOT_STARTED, jnp.int32),
        stop_test=jnp.asarray(StopTest.NONE, jnp.int32),
    )


def stopped_by(test) -> dict[str, jax.Array]:
    """A state's ``stop_test`` (an int32 ``StopTest``) and the ``stop_reason`` it reports."""
    return dict(stop_reason=reason_of(test), stop_test=test)


def start_test(value, grad, small) -> jax.Array:
    """The test before any iteration, an int32 ``StopTest`` (-1: go on): ``NON_FINITE``
    for a NaN or Inf value or gradient, else ``TOLERANCE_GRAD_AT_START`` where ``small``
    (the method's gradient test; ``False`` for none)."""
    finite = jnp.isfinite(value) & all_finite(grad)
    test = jnp.where(small, StopTest.TOLERANCE_GRAD_AT_START, -1)
    return jnp.where(~finite, StopTest.NON_FINITE, test).astype(jnp.int32)


def budget_test(iterations, evaluations, max_iter: int, max_eval) -> jax.Array:
    """``MAX_EVAL`` once ``evaluations`` reach ``max_eval`` (``None``: no limit), else
    ``MAX_ITER`` once ``iterations`` reach ``max_iter``, else -1 (scipy's order: a later
    test of the method overrides these)."""
    test = jnp.where(iterations >= max_iter, StopTest.MAX_ITER, -1)
    if max_eval is not None:
        test = jnp.where(evaluations >= max_eval, StopTest.MAX_EVAL, test)
    return test


# ------------------------------------------------------------------ tree algebra


scalar_dtype = _tree.reduction_dtype  # the line-search scalars: widest param float, >= f32
select = _tree.select_tree  # on_true where the scalar pred holds (no lax.cond)


def first_step(grad, lr, dtype) -> jax.Array:
    """torch's first trial step, ``min(1, 1 / ||g||_1) * lr`` (``LBFGS.step`` at ``n_iter == 1``)."""
    inv_l1 = 1 / sum_abs(grad, dtype)
    return jnp.where(inv_l1 < 1, inv_l1, 1) * lr


def norm(x, dtype) -> jax.Array:
    """The 2-norm of the flat vector of ``x``'s leaves, as ``dtype``."""
    return jnp.sqrt(dot(x, x, dtype))


def axpy(alpha, x, y):
    """``y + alpha * x`` leaf by leaf, ``alpha`` a scalar cast to each leaf's dtype."""
    return jax.tree.map(lambda a, b: b + jnp.asarray(alpha, b.dtype) * a, x, y)


def scale(alpha, x):
    return jax.tree.map(lambda a: jnp.asarray(alpha, a.dtype) * a, x)


def sub(a, b):
    return jax.tree.map(jnp.subtract, a, b)


def neg(a):
    return jax.tree.map(jnp.negative, a)


def check_budget(max_iter: int, max_eval) -> None:
    """``max_iter`` an int >= 1; ``max_eval`` ``None`` or an int >= 1."""
    check_int("max_iter", max_iter, 1)
    if max_eval is not None:
        check_int("max_eval", max_eval, 1)


def check_max_eval(max_iter: int, max_eval) -> int:
    """``check_budget``, and ``None`` as torch's default ``max_iter * 5 // 4``."""
    check_budget(max_iter, max_eval)
    return max(1, max_iter * 5 // 4) if max_eval is None else int(max_eval)
