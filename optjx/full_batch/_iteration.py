"""One update's iterations, shared by the full-batch methods: torch's loop of ``LBFGS.step``.

A method gives its ``._method.Method`` (memory and direction); this module runs the
iterations to a stop (the method's tests, torch's by default, in torch's order) with the
line search of ``._method.Options`` or a fixed step, turns the final loop state into
updates and a new state, and wraps it all as a ``GradientTransformationExtraArgs``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from optjx import _hyper, _state, _tree
from optjx.full_batch import _calling
from optjx.full_batch import _common as c
from optjx.full_batch._common import StopTest
from optjx.full_batch._method import Iterate, Method, Options, Progress, Settings
from optjx.full_batch._packing import Packing
from optjx.full_batch._wolfe import along_packed


class Carry(NamedTuple):
    """One update's loop state: torch's local variables of ``LBFGS.step``.

    ``x``, ``g``, ``d`` and ``prev_g`` are packed (``Packing``): a step ``x + t d`` is one
    operation per dtype, and the point is unpacked into a tree only for the loss (where
    XLA fuses the leaves' slices into the loss's own kernels) and at the end.
    """

    x: Any
    g: Any
    f: jax.Array
    d: Any
    t: jax.Array
    prev_g: Any
    prev_f: jax.Array
    memory: Any  # the method's Method.memory_type
    n_local: jax.Array
    n_iter: jax.Array
    evals: jax.Array
    gradient_small: jax.Array
    test: jax.Array  # int32: a StopTest, -1 while going on


def settings_of(hypers: _hyper.Hyperparameters, state) -> Settings:
    """The hyperparameters at the state's update count, as scalars of its dtype."""
    dtype = state.prev_value.dtype
    hp = hypers.at(state.count)
    return Settings(
        learning_rate=jnp.asarray(hp.learning_rate, dtype),
        tolerance_grad=jnp.asarray(hp.tolerance_grad, dtype),
        tolerance_change=jnp.asarray(hp.tolerance_change, dtype),
        dtype=dtype,
    )


def iterate(
    method: Method,
    options: Options,
    settings: Settings,
    state,
    params,
    grads,
    value,
    value_and_grad,
) -> Carry:
    """Run one update's iterations (torch's ``while n_iter < max_iter`` loop) to a stop.

    The line search keeps its own ``tolerance_change`` (its zoom stops on a bracket shorter
    than that, relative to ``max|d|``), ``1e-9`` whatever the method's, as
    ``torch.optim.LBFGS.step`` calls ``_strong_wolfe``: with the method's, a
    ``tolerance_change`` of 0 would let the zoom spend the whole evaluation budget once
    the loss no longer changes in its precision. Returns the final ``Carry``.
    """
    dtype = settings.dtype
    packing = Packing(params, options.pack)

    def packed_value_and_grad(x):  # a tree in, the gradient packed out
        f, g = value_and_grad(x)
        return f, packing.pack(g)

    grads = packing.pack(grads)
    small = method.gradient_small(grads, settings)
    one = jnp.ones([], jnp.int32)
    carry = Carry(
        x=packing.pack(params),
        g=grads,
        f=value,
        d=packing.pack(state.direction),
        t=state.step_size,
        prev_g=state.prev_grad,
        prev_f=state.prev_value,
        memory=method.memory_of(state),
        n_local=0 * one,
        n_iter=state.n_iter,
        evals=one,
        gradient_small=small,
        test=c.start_test(value, grads, small),
    )

    def iteration(s: Carry) -> Carry:
        s = s._replace(n_local=s.n_local + 1, n_iter=s.n_iter + 1)
        it = Iterate(
            g=s.g,
            prev_g=s.prev_g,
            d=s.d,
            t=s.t,
            f=s.f,
            prev_f=s.prev_f,
            n_iter=s.n_iter,
            first=s.n_iter == 1,
            x=s.x,
            value_and_grad=packed_value_and_grad,
            packing=packing,
        )
        memory, d, t = method.direction(it, s.memory, settings)
        t = t.astype(dtype)
        gtd = c.dot(s.g, d, dtype)
        no_descent = gtd > -settings.tolerance_change  # torch stops before moving; d, t kept
        if options.line_search is not None:
            budget = jnp.where(no_descent, 0, options.max_eval - s.evals)  # skip: one wasted call
            evaluate = along_packed(value_and_grad, packing, s.x, d, dtype)
            f, g, t_new, used, bad = options.line_search(
                evaluate, s.f, s.g, gtd, t, c.max_abs(d, dtype), max_ls=budget
            )
            small = method.gradient_small(g, settings)
        elif options.max_iter == 1:  # torch never evaluates in the last iteration
            f, g, t_new, used, bad = s.f, s.g, t, 0 * one, jnp.asarray(False)
            small = s.gradient_small
        else:
            # Only the last iteration skips its evaluation; a select would pay for it.
            call = (s.n_local != options.max_iter) & ~no_descent
            f, g = lax.cond(
                call, packed_value_and_grad, lambda _: (s.f, s.g), packing.unpack(c.axpy(t, d, s.x))
            )
            bad = call & ~(jnp.isfinite(f) & c.all_finite(g))
            used, t_new = jnp.where(call, 1, 0) * one, t
            small = jnp.where(call, method.gradient_small(g, settings), s.gradient_small)
        evals = s.evals + jnp.where(no_descent, 0, used)
        progress = Progress(
            n_local=s.n_local,
            evaluations=evals,
            gradient_small=small,
            step_max=c.max_abs(d, dtype) * jnp.abs(t_new),
            value=f,
            prev_value=s.f,
        )
        test = method.stop(progress, settings, options.max_iter, options.max_eval)
        test = jnp.where(bad, StopTest.NON_FINITE, test)
        test = jnp.where(no_descent, StopTest.DIRECTIONAL_DERIVATIVE, test)
        # No finite point along d: the iteration is a step of length 0 (so that the next
        # update's first iteration stores no pair from it) and the update stops there.
        failed = bad & ~no_descent
        moved = ~no_descent & ~failed
        return s._replace(
            x=c.select(moved, c.axpy(t_new, d, s.x), s.x),  # the point each evaluation saw
            g=c.select(moved, g, s.g),
            f=jnp.where(moved, f, s.f),
            d=d,
            t=jnp.where(failed, 0, jnp.where(moved, t_new, t)).astype(dtype),
            prev_g=s.g,
            prev_f=s.f,
            memory=memory,
            evals=evals,
            gradient_small=jnp.where(moved, small, s.gradient_small),
            test=test.astype(jnp.int32),
        )

    return lax.while_loop(lambda s: s.test < 0, iteration, carry)


def finish(state, params, packing: Packing, s: Carry):
    """The updates and new state of a finished loop.

    ``NON_FINITE`` in the first iteration (or in the given value or gradient) keeps the
    old state, with a zero update; later, the update keeps the iterations before.
    """
    failed = (s.test == StopTest.NON_FINITE) & (s.n_local <= 1)
    updates = jax.tree.map(
        lambda new, old: jnp.where(failed, jnp.zeros_like(old), new - old),
        packing.unpack(s.x),
        params,
    )
    kept = state._replace(
        n_iter=s.n_iter,
        step_size=s.t,
        direction=packing.unpack(s.d),
        prev_grad=s.prev_g,
        prev_value=s.prev_f,
        **s.memory._asdict(),
    )
    new_state = c.select(failed, state, kept)._replace(
        value=s.f,  # at the returned point: the given value when nothing moved
        grad=packing.unpack(s.g),
        func_evals=state.func_evals + s.evals,
        iterations=jnp.where(failed, 0, s.n_local),
        evaluations=s.evals,
        **c.stopped_by(s.test),
    )
    return updates, _state.advance(new_state)


def transformation(
    method: Method, hypers: _hyper.Hyperparameters, options: Options
) -> optax.GradientTransformationExtraArgs:
    """The public ``init``/``update`` pair of ``method``.

    ``hypers`` holds ``learning_rate``, ``tolerance_grad`` and ``tolerance_change``
    (numbers, arrays or schedules of the update count; see ``settings_of``).
    """

    def init_fn(params):
        dtype = c.scalar_dtype(params)
        packing = Packing(params, options.pack)
        scalar = jnp.zeros([], dtype)
        return method.state_type(
            **c.not_started(method.state_type),
            step_size=scalar,
            direction=_tree.zeros_like(params),
            prev_grad=packing.zeros(),
            prev_value=scalar,
            value=jnp.full([], jnp.inf, dtype),  # not evaluated: optax's loops evaluate
            grad=_tree.zeros_like(params),
            **method.init_memory(packing, dtype)._asdict(),
        )

    def step(grads, state, params, value, value_and_grad):
        settings = settings_of(hypers, state)
        s = iterate(method, options, settings, state, params, grads, value, value_and_grad)
        return finish(state, params, Packing(params, options.pack), s)

    return _calling.transformation(method.name, init_fn, step)
