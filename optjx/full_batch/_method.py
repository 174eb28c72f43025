"""The contract between a full-batch method and the shared iteration (``._iteration``).

A method (L-BFGS, nonlinear CG, ...) is one file that builds a ``Method``: what it
remembers between iterations (its *memory*, a ``NamedTuple`` of arrays), how it makes
that memory from the params, and how it turns the current iterate into a direction and a
first trial step. Everything else is shared: the loop of iterations and its stopping
tests, the line search (or the fixed step), the evaluation budget, the packing of the
params into one vector per dtype, the NaN rule, the calling conventions of ``update``,
the counters and diagnostics of the state.

The state of a method is a ``NamedTuple`` whose fields are ``COMMON_FIELDS`` followed
by the fields of the memory (checked when the ``Method`` is built), so that the
memory reads as ``state.pairs``, not ``state.memory.pairs``.

Writing a method, in one file:

1. ``class FooMemory(NamedTuple)``: the method's arrays (packed vectors, matrices, scalars).
2. ``class FooState(NamedTuple)``: ``COMMON_FIELDS``, then ``FooMemory``'s fields,
   with the docstring users read.
3. ``init_memory(packing, dtype) -> FooMemory`` and
   ``direction(iterate, memory, settings) -> Direction``.
4. The factory validates its arguments and returns
   ``_iteration.transformation(Method(...), hypers, Options(...))``.

This is torch's loop (``LBFGS.step``'s tests, counts and NaN rule). The methods exact to
``scipy.optimize`` (``bfgs``, ``newton_cg``, ``trust_region_newton``, ``lbfgs_b``) count,
test and step as scipy does: each writes its own iteration on the skeleton of
``._scipy_loop`` (``run``, ``finish``) with the tests of ``._common`` (``start_test``,
``budget_test``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, Optional, TypeVar

import jax
import jax.numpy as jnp

from optjx.full_batch import _common as c
from optjx.full_batch._common import StopTest
from optjx.full_batch._packing import Packing

Memory = TypeVar("Memory", bound=tuple)  # a NamedTuple of arrays

COMMON_FIELDS = (
    "count",  # int32: updates applied (read by scheduled hyperparameters), always kept
    "n_iter",  # int32: iterations over all updates (torch's state["n_iter"])
    "func_evals",  # int32: evaluations over all updates (torch's state["func_evals"])
    "iterations",  # int32: iterations in the last update
    "evaluations",  # int32: evaluations in the last update (the given value included)
    "stop_reason",  # int32: a StopReason, why the last update stopped
    "stop_test",  # int32: a StopTest, which test stopped it
    "step_size",  # t of the last iteration
    "direction",  # d of the last iteration, a tree like the params
    "prev_grad",  # g of the last iteration, packed
    "prev_value",  # f of the last iteration
    "value",  # f at the returned params (+inf before the first update)
    "grad",  # the gradient at the returned params, a tree like the params
)


class Settings(NamedTuple):
    """One update's hyperparameters, resolved at the update count, in the scalar dtype."""

    learning_rate: jax.Array
    tolerance_grad: jax.Array
    tolerance_change: jax.Array
    dtype: Any  # the scalar dtype: the widest float of the params, at least float32


class Iterate(NamedTuple):
    """What a method's ``direction`` sees of the loop, at the start of an iteration.

    The vectors are packed (a tuple of one flat vector per dtype, see ``Packing``):
    use the tree algebra of ``._common`` (``dot``, ``axpy``, ...) on them. ``x``,
    ``value_and_grad`` and ``packing`` are for methods that differentiate again at the
    point (Newton-CG, trust-region Newton: a Hessian-vector product is
    ``jax.jvp(lambda y: value_and_grad(y)[1], (packing.unpack(x),),
    (packing.unpack(v),))[1]``); each call of ``value_and_grad`` in ``direction`` is an
    evaluation the loop does not count.
    """

    g: Any  # the gradient at the current point
    prev_g: Any  # the gradient at the point before the last step
    d: Any  # the last iteration's direction (the state's, on an update's first iteration)
    t: jax.Array  # the last iteration's step size
    f: jax.Array  # the value at the current point
    prev_f: jax.Array  # the value at the point before the last step
    n_iter: jax.Array  # int32: this iteration's number over all updates, from 1
    first: jax.Array  # bool: the very first iteration (n_iter == 1): no last step exists
    x: Any  # the current point, packed (packing.unpack(x): a tree like the trained params)
    value_and_grad: Any  # x tree -> (f, g packed), the user's loss
    packing: Packing  # packs and unpacks trees like x


class Direction(NamedTuple):
    """What a method's ``direction`` returns."""

    memory: Any  # the method's memory after this iteration's bookkeeping
    d: Any  # the search direction, packed like Iterate.g; a descent direction
    t: jax.Array  # the first trial step along d


class Progress(NamedTuple):
    """What the stopping tests see after an iteration's step."""

    n_local: jax.Array  # int32: iterations in this update, this one included
    evaluations: jax.Array  # int32: evaluations in this update
    gradient_small: jax.Array  # bool: Method.gradient_small at the new point
    step_max: jax.Array  # max |t d|
    value: jax.Array  # f at the new point
    prev_value: jax.Array  # f before the step


def torch_stop(p: Progress, settings: Settings, max_iter: int, max_eval: int) -> jax.Array:
    """torch's five break tests after a step, in torch's order; ``-1`` when none holds.

    The later a test, the higher its priority (torch breaks at the first that holds, and
    they are written here from the last to the first).
    """
    test = jnp.where(
        jnp.abs(p.value - p.prev_value) < settings.tolerance_change,
        StopTest.TOLERANCE_CHANGE_VALUE,
        -1,
    )
    test = jnp.where(p.step_max <= settings.tolerance_change, StopTest.TOLERANCE_CHANGE_STEP, test)
    test = jnp.where(p.gradient_small, StopTest.TOLERANCE_GRAD, test)
    test = jnp.where(p.evaluations >= max_eval, StopTest.MAX_EVAL, test)
    return jnp.where(p.n_local == max_iter, StopTest.MAX_ITER, test).astype(jnp.int32)


def max_abs_gradient_small(g, settings: Settings) -> jax.Array:
    """torch's gradient test: $\\max_i |g_i| \\le$ ``tolerance_grad``."""
    return c.max_abs(g, settings.dtype) <= settings.tolerance_grad


@dataclasses.dataclass(frozen=True)
class Method(Generic[Memory]):
    """A full-batch method, as the shared iteration runs it.

    Attributes:
      name: the public factory's name (``"lbfgs"``), for error messages.
      state_type: the method's state ``NamedTuple``: ``COMMON_FIELDS``, then the
        fields of ``memory_type`` (checked here).
      memory_type: the ``NamedTuple`` of the method's own arrays.
      init_memory: ``(packing, dtype) -> memory`` at ``init``: ``packing.zeros(*lead)``
        gives packed zero buffers, ``dtype`` is the scalar dtype.
      direction: ``(iterate, memory, settings) -> Direction``, called once per iteration
        before the step: update the memory from the last step (``iterate.g`` minus
        ``iterate.prev_g``, ``iterate.t`` times ``iterate.d``; nothing to do when
        ``iterate.first``), then give the direction and the first trial step. A
        direction with $g^\\top d > -$``tolerance_change`` stops the update before any
        evaluation (``StopTest.DIRECTIONAL_DERIVATIVE``); the memory returned is kept.
      stop: ``(progress, settings, max_iter, max_eval) -> int32`` after each step, a
        ``StopTest`` or ``-1`` to go on; default torch's (``torch_stop``).
      gradient_small: ``(g, settings) -> bool``, the gradient test (before the first
        iteration too: ``StopTest.TOLERANCE_GRAD_AT_START``); default torch's
        $\\max|g| \\le$ ``tolerance_grad``.
    """

    name: str
    state_type: type
    memory_type: type[Memory]
    init_memory: Callable[[Packing, Any], Memory]
    direction: Callable[[Iterate, Memory, Settings], Direction]
    stop: Callable[[Progress, Settings, int, int], jax.Array] = torch_stop
    gradient_small: Callable[[Any, Settings], jax.Array] = max_abs_gradient_small

    def __post_init__(self):
        want = COMMON_FIELDS + tuple(self.memory_type._fields)  # type: ignore[attr-defined]
        got = tuple(self.state_type._fields)  # type: ignore[attr-defined]
        if got != want:
            raise TypeError(
                f"{self.name}: {self.state_type.__name__}'s fields must be the common ones, "
                f"then {self.memory_type.__name__}'s: {want}; got {got}."
            )

    def memory_of(self, state) -> Memory:
        """The memory fields of a state of ``state_type``."""
        return self.memory_type(*(getattr(state, f) for f in self.memory_type._fields))  # type: ignore[attr-defined]


@dataclasses.dataclass(frozen=True)
class Options:
    """How the shared iteration runs a method: the budget, the step, the packing.

    Attributes:
      max_iter: iterations per update, >= 1.
      max_eval: evaluations per update, >= 1 (the given value counts as one).
      line_search: ``None`` for a fixed step (the direction's ``t``; torch's
        ``line_search_fn=None``), else ``(evaluate, value, grad, slope, step_size,
        d_norm, *, max_ls) -> LineSearchResult`` with the conventions of
        ``optjx.full_batch._wolfe.search`` (e.g. it with ``c1``, ``c2`` bound
        by ``functools.partial``): ``evaluate(t) -> (f, g, g . d, not finite)`` with
        ``g`` packed, ``max_ls`` the evaluations left (traced), ``value``/``grad``
        at ``t = 0`` finite. A search treats a non-finite trial as failed and backs off
        towards the last finite point; ``non_finite=True`` (with ``t = 0``, ``value``
        and ``grad`` given back) only when no trial was finite: the update then stops
        with ``StopTest.NON_FINITE``.
      pack: one flat vector per dtype (``True``) or one array per leaf.
    """

    max_iter: int
    max_eval: int
    line_search: Optional[Callable[..., Any]]
    pack: bool = True
