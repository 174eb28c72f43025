"""The outer skeleton of the methods exact to ``scipy.optimize``: ``bfgs``, ``newton_cg``
and ``trust_region_newton`` (``lbfgs_b`` shares its tests).

Each update of such a method tests its start (``_common.start_test``), runs its
iterations in a carry (``run``: until the carry's ``reason`` is a ``StopTest``; each
iteration ends with ``_common.budget_test`` and its own tests), then ``finish`` turns the
carry into updates and counts as scipy does: its ``nfev``/``njev`` include the value and
gradient at the starting point, given by the caller of the first update. The iteration
itself (its direction, step and tests) is the method's; ``optjx.full_batch._iteration``
is the other skeleton, torch's, of ``lbfgs`` and ``conjugate_gradient``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional, TypeVar

import jax
import jax.numpy as jnp
from jax import lax

from optjx import _state
from optjx.full_batch import _common as c

Carry = TypeVar("Carry")  # a NamedTuple with the fields that ``finish`` reads


def run(iteration: Callable[[Carry], Carry], carry: Carry) -> Carry:
    """Iterations from ``carry`` until its ``reason`` is set (``>= 0``)."""
    return lax.while_loop(lambda s: s.reason < 0, iteration, carry)  # type: ignore[attr-defined]


def finish(state, params, s, *, kept: dict[str, Any], like: Optional[Any] = None,
           first_hessian: bool = False):  # fmt: skip
    """The updates and new state after ``run``; a NaN or Inf keeps the old state.

    Args:
      state: the state before the update (``n_iter``, ``func_evals``, ``grad_evals``,
        ``iterations``, ``evaluations``, ``stop_reason``, ``stop_test``, ``value``,
        ``prev_value``, and ``hessian_products`` when ``s`` has ``products``).
      params: the params of the update.
      s: the final carry: ``x`` (the point, a tree like ``params``), ``f``, ``f_prev``,
        ``n_local``, ``evals``, ``grad_evals``, ``reason`` (a ``StopTest``), optionally
        ``products`` (Hessian-vector products).
      kept: the method's own fields of the new state (step, direction, matrix, radius),
        kept only when the update did not stop on a NaN or an Inf.
      like: a tree whose dtypes the updates take (default: the params').
      first_hessian: the first update counts one Hessian evaluation more (scipy's
        ``nhev`` of a method that calls its Hessian wrapper at the start).

    Returns:
      ``(updates, new_state)``, the state's count advanced.
    """
    failed = s.reason == c.StopTest.NON_FINITE
    updates = jax.tree.map(
        lambda new, old: jnp.where(failed, jnp.zeros_like(old), new - old), s.x, params
    )
    if like is not None:
        updates = jax.tree.map(lambda u, d: u.astype(d.dtype), updates, like)
    moved = state._replace(
        n_iter=_state.saturating_add(state.n_iter, s.n_local), value=s.f, prev_value=s.f_prev,
        **kept,
    )  # fmt: skip
    given = jnp.where(state.func_evals == 0, 1, 0).astype(jnp.int32)  # scipy's f(x0), grad(x0)
    counts = {}
    if hasattr(s, "products"):
        products = jnp.where(failed, 0, s.products) + (given if first_hessian else 0)
        counts["hessian_products"] = _state.saturating_add(state.hessian_products, products)
    new_state = c.select(failed, state, moved)._replace(
        func_evals=_state.saturating_add(state.func_evals, given + s.evals),
        grad_evals=_state.saturating_add(state.grad_evals, given + s.grad_evals),
        iterations=s.n_local,
        evaluations=s.evals,
        **c.stopped_by(s.reason),
        **counts,
    )
    return updates, _state.advance(new_state)
