"""L-BFGS, step for step as ``torch.optim.LBFGS``."""

from __future__ import annotations

import functools
from typing import Any, Literal, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax
from jax import lax

from optjx import _hyper
from optjx._twin import torch_twin
from optjx.full_batch import _common as c
from optjx.full_batch import _iteration, _wolfe
from optjx.full_batch._eager import compiled_when_eager
from optjx.full_batch._method import Direction, Iterate, Method, Options, Settings
from optjx.full_batch._packing import Packing
from optjx.typing import Hyperparameter

_CURVATURE_MIN = 1e-10  # torch keeps a pair only when y.s exceeds this


class LbfgsState(NamedTuple):
    r"""L-BFGS state: torch's global counters, diagnostics, the memory of $(s, y)$ pairs.

    ``steps`` ($s = t d$) and ``grad_diffs`` ($y = g_{new} - g_{old}$) are ring buffers,
    one ``(history_size, n)`` matrix per dtype of the params (the leaves of that dtype
    raveled and concatenated in tree order; with ``pack=False`` one ``(history_size,
    *leaf.shape)`` array per leaf, sharded like it): the ``pairs`` newest rows ending just before
    row ``head`` are the memory, with ``rho`` $= 1 / y^\top s$ and the initial scale
    ``diag`` $= \gamma$:

    $$
    H^0 = \gamma I, \qquad \gamma = \frac{y^\top s}{y^\top y}
    $$

    ``direction`` is a tree like the params; ``prev_grad`` is packed as the rows of the
    history (one vector of length ``n`` per dtype; with ``pack=False`` one array per
    leaf), since the loops use it packed: unpacking would compile a slice per leaf. Built by
    ``lbfgs``'s ``init``.

    Attributes:
      count: updates applied (the argument of a learning-rate schedule).
      n_iter: torch's ``state["n_iter"]``, iterations over all updates.
      func_evals: torch's ``state["func_evals"]``, evaluations over all updates.
      iterations: iterations in the last update.
      evaluations: evaluations in the last update (the given value included).
      stop_reason: a ``optjx.StopReason``, why the last update stopped.
      stop_test: a ``StopTest``, which of torch's tests stopped it.
      step_size: $t$ of the last iteration.
      direction: $d$ of the last iteration (a tree like the params).
      prev_grad: $g$ of the last iteration, packed: a tuple of one ``(n,)`` vector per
        dtype (``pack=False``: of one array per leaf).
      prev_value: $f$ of the last iteration.
      value: $f$ at the params the last update returned (``+inf`` before the first
        update), so that ``optax.value_and_grad_from_state`` finds it.
      grad: the gradient there, a tree like the params (zeros before the first update).
      diag: $\gamma$, the initial inverse Hessian scale.
      steps: the ring buffer of $s = t d$, one ``(history_size, n)`` matrix per dtype
        (``pack=False``: one ``(history_size, *leaf.shape)`` array per leaf).
      grad_diffs: the ring buffer of $y = g_{new} - g_{old}$, likewise.
      rho: $1 / y^\top s$ per stored pair.
      head: the ring buffer's next row.
      pairs: the number of stored pairs.

    A NamedTuple: a pytree to checkpoint, shard or pass through ``jit``.

    References:
      Nocedal & Wright (2006), Algorithm 7.4; ``torch.optim.LBFGS``'s state.

    Differences from PyTorch and optax:
      torch keeps Python lists of tensors (``old_dirs``, ``old_stps``); optax keeps
      ``(memory_size, ...)`` arrays per leaf. Here one matrix per dtype.

    Examples:
      >>> import jax.numpy as jnp, optjx
      >>> state = optjx.lbfgs(history_size=5).init({"w": jnp.zeros((2, 3)), "b": jnp.zeros(2)})
      >>> [m.shape for m in state.steps]
      [(5, 8)]
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    n_iter: jax.Array  # int32: iterations over all updates (torch's state["n_iter"])
    func_evals: jax.Array  # int32: evaluations over all updates (torch's state["func_evals"])
    iterations: jax.Array  # int32: iterations in the last update
    evaluations: jax.Array  # int32: evaluations in the last update (the given value included)
    stop_reason: jax.Array  # int32: a StopReason, why the last update stopped
    stop_test: jax.Array  # int32: a StopTest, which test stopped it
    step_size: jax.Array  # t of the last iteration
    direction: Any  # d of the last iteration
    prev_grad: Any
    prev_value: jax.Array
    value: jax.Array  # f at the returned params (read by optax.value_and_grad_from_state)
    grad: Any  # the gradient at the returned params, a tree like the params
    diag: jax.Array  # gamma = s.y / y.y, the initial inverse Hessian scale
    steps: Any  # s = t d
    grad_diffs: Any  # y = g_new - g_old
    rho: jax.Array  # 1 / y.s
    head: jax.Array
    pairs: jax.Array


class LbfgsMemory(NamedTuple):
    """The L-BFGS part of ``LbfgsState`` (its last six fields)."""

    diag: jax.Array
    steps: Any
    grad_diffs: Any
    rho: jax.Array
    head: jax.Array
    pairs: jax.Array


def _init_memory(packing: Packing, dtype, history_size: int) -> LbfgsMemory:
    return LbfgsMemory(
        diag=jnp.ones([], dtype),
        steps=packing.zeros(history_size),
        grad_diffs=packing.zeros(history_size),
        rho=jnp.zeros([history_size], dtype),
        head=jnp.zeros([], jnp.int32),
        pairs=jnp.zeros([], jnp.int32),
    )


def _take(tree, j):
    return jax.tree.map(lambda buf: lax.dynamic_index_in_dim(buf, j, 0, keepdims=False), tree)


def _remember(it: Iterate, mem: LbfgsMemory, history_size: int, dtype) -> LbfgsMemory:
    """Store the last iteration's pair when ``y.s > 1e-10`` (torch's rule)."""
    first = it.first
    y = c.sub(it.g, it.prev_g)
    step = c.scale(it.t, it.d)
    ys = c.dot(y, step, dtype)
    keep = ~first & (ys > _CURVATURE_MIN)

    def write(buf, new):
        old = lax.dynamic_index_in_dim(buf, mem.head, 0, keepdims=False)
        return lax.dynamic_update_index_in_dim(buf, jnp.where(keep, new, old), mem.head, 0)

    return LbfgsMemory(
        diag=jnp.where(first, 1, jnp.where(keep, ys / c.dot(y, y, dtype), mem.diag)).astype(dtype),
        steps=jax.tree.map(write, mem.steps, step),
        grad_diffs=jax.tree.map(write, mem.grad_diffs, y),
        rho=mem.rho.at[mem.head].set(jnp.where(keep, 1 / ys, mem.rho[mem.head])),
        head=jnp.where(keep, (mem.head + 1) % history_size, mem.head),
        pairs=jnp.where(
            first, 0, jnp.where(keep, jnp.minimum(mem.pairs + 1, history_size), mem.pairs)
        ),
    )


def _two_loop(g, mem: LbfgsMemory, history_size: int, dtype):
    """``-H g`` by the two-loop recursion (Nocedal & Wright, Algorithm 7.4), oldest pair
    ``(head - pairs) mod history_size``; the order of operations is torch's."""
    oldest = (mem.head - mem.pairs) % history_size

    def newest_first(k, carry):
        q, alphas = carry
        i = mem.pairs - 1 - k
        j = (oldest + i) % history_size
        alpha = c.dot(_take(mem.steps, j), q, dtype) * mem.rho[j]
        return c.axpy(-alpha, _take(mem.grad_diffs, j), q), alphas.at[i].set(alpha)

    start = (c.neg(g), jnp.zeros(history_size, dtype))
    q, alphas = lax.fori_loop(0, mem.pairs, newest_first, start)

    def oldest_first(i, r):
        j = (oldest + i) % history_size
        beta = c.dot(_take(mem.grad_diffs, j), r, dtype) * mem.rho[j]
        return c.axpy(alphas[i] - beta, _take(mem.steps, j), r)

    return lax.fori_loop(0, mem.pairs, oldest_first, c.scale(mem.diag, q))


def _direction(it: Iterate, mem: LbfgsMemory, settings: Settings, history_size: int):
    """The pair of the last step stored, then ``-H g`` and torch's first trial step."""
    dtype, lr = settings.dtype, settings.learning_rate
    memory = _remember(it, mem, history_size, dtype)
    # The l1 norm is a pass over g that only the very first iteration needs.
    t = lax.cond(it.first, lambda: c.first_step(it.g, lr, dtype), lambda: lr)
    return Direction(memory, _two_loop(it.g, memory, history_size, dtype), t)


@torch_twin("lbfgs")
@compiled_when_eager
def lbfgs(
    learning_rate: Hyperparameter = 1.0,
    *,
    max_iter: int = 20,
    max_eval: Optional[int] = None,
    tolerance_grad: Hyperparameter = 1e-7,
    tolerance_change: Hyperparameter = 1e-9,
    history_size: int = 100,
    line_search_fn: Optional[Literal["strong_wolfe"]] = None,
    respect_max_eval: bool = False,
    pack: bool = True,
) -> optax.GradientTransformationExtraArgs:
    r"""L-BFGS: one ``update`` is one ``torch.optim.LBFGS.step(closure)``.

    Limited-memory BFGS with the iteration of ``torch.optim.LBFGS`` (torch 2.13). At
    iteration $k$ the newest pair is kept when its curvature is positive enough:

    $$
    y = g_k - g_{k-1}, \qquad s = t_{k-1} d_{k-1}, \qquad
    \text{keep } (s, y) \text{ if } y^\top s > 10^{-10}, \qquad
    \gamma = \frac{y^\top s}{y^\top y}
    $$

    (at most ``history_size`` pairs, the oldest dropped), then

    $$
    d_k = -H_k g_k \ \text{(two-loop recursion, } H^0_k = \gamma I), \qquad
    x_{k+1} = x_k + t_k d_k
    $$

    with $d_1 = -g_1$ and $t = \min(1, 1/\lVert g_1 \rVert_1)\,\mathrm{lr}$ on the very
    first iteration, $t = \mathrm{lr}$ after, or $t$ from ``strong_wolfe``
    ($c_1 = 10^{-4}$, $c_2 = 0.9$) started there. An update stops, in torch's order: at
    once when $\max|g| \le$ ``tolerance_grad``; when $g^\top d > -$``tolerance_change``;
    then after a step when ``max_iter`` iterations or ``max_eval`` evaluations were used in
    this update, when $\max|g| \le$ ``tolerance_grad``, $\max|t d| \le$
    ``tolerance_change`` or $|f - f_{prev}| <$ ``tolerance_change``. The memory, $d$, $t$
    and the iteration count carry over to the next update as in torch (the first-step
    rule applies once ever).

    Non-finite values: with ``"strong_wolfe"``, a trial point whose value or gradient is
    a NaN or an Inf is a failed trial and the search bisects back towards the last
    finite point (see ``strong_wolfe``), so losses finite only on a region
    (``log1p(-x)``, a positive variance) are minimised. The update stops with
    ``stop_reason`` ``NON_FINITE`` when the given value or gradient is not finite, when
    the fixed step (``line_search_fn=None``) lands on a non-finite point, or when a line
    search finds no finite point within the evaluation budget: in the first iteration the
    update is zero and the state keeps its memory and counters; in a later one the update
    keeps the iterations before (the failed one is a step of length 0), and the next
    update starts from there with a fresh budget.

    The loops' vector algebra runs on one flat vector per dtype (the history is one
    ``(history_size, n)`` matrix per dtype); the point stays a tree, trial points are
    built leaf by leaf from the direction, unpacked once per iteration. The compiled
    program grows by about one kernel (a slice) per leaf: 100 leaves compile in about
    3 s on a 2-core CPU. Params sharded over ``Explicit`` mesh axes are supported under
    ``with jax.set_mesh(mesh):`` (replicated inside the update: an all-gather per
    evaluation); ``Auto`` axes are placed by XLA. ``pack=False`` keeps every leaf in its
    own shape and sharding instead: no gather of sharded params.

    References:
      Liu & Nocedal (1989), "On the limited memory BFGS method for large scale
      optimization"; Nocedal & Wright (2006), "Numerical Optimization", Algorithms 7.4
      (two-loop recursion) and 7.5; ``torch.optim.LBFGS`` (torch 2.13).

    Args:
      learning_rate: $\mathrm{lr} \ge 0$ (a number, array or schedule of the update
        count), default 1.
      max_iter: iterations per update, int $\ge 1$, default 20.
      max_eval: evaluations per update, int $\ge 1$; default ``max_iter * 5 // 4`` (torch).
      tolerance_grad: $\ge 0$, default ``1e-7``.
      tolerance_change: $\ge 0$, default ``1e-9``. As in torch, it is not the line
        search's: ``strong_wolfe``'s zoom always stops on a bracket shorter than
        ``1e-9`` (relative to $\max|d|$), whatever this value.
      history_size: pairs kept, int $\ge 1$, default 100 (memory: ``2 history_size + 3``
        copies of the params). It shapes the state: under ``optax.inject_hyperparams``
        list it in ``static_args``.
      line_search_fn: ``None`` (fixed step $t$) or ``"strong_wolfe"``.
      respect_max_eval: never let the line search exceed ``max_eval`` (torch may by one,
        https://github.com/pytorch/pytorch/issues/91581). Default ``False``, as torch.
      pack: default ``True``: the loops run on one flat vector per dtype (the leaves
        raveled and concatenated), so compile time grows only slowly with the number of
        leaves; sharded leaves may be gathered to be concatenated (``Explicit`` ones are
        replicated: an all-gather per evaluation). ``False``: every leaf stays its own
        array, in its own shape and sharding (history buffers ``(history_size,
        *leaf.shape)`` sharded like the leaf), so sharded params are never gathered (only
        the inner products are reduced across devices), at the cost of a program (and
        compile time) that grows with the number of leaves. Use it for a few large
        sharded leaves. The buffers take the sharding of concrete params; an ``init``
        traced under ``jit`` on ``Auto`` axes leaves their placement to XLA (replicated:
        correct, no gather, more memory; give ``jit`` ``out_shardings`` to shard them).

    Returns:
      A ``GradientTransformationExtraArgs`` with an ``LbfgsState``.
      ``update(grads, state, params, *, value=None, value_fn=None,
      value_and_grad_fn=None)`` takes the gradient and loss at ``params`` and exactly one
      of ``value_fn``, the loss as a deterministic function of the params alone, and
      ``value_and_grad_fn``, a function of the params returning ``(loss, grads)`` (a
      torch-style closure: one call per evaluation). ``apply_updates(params, updates)``
      is torch's params after ``step``. ``grads=None`` computes the value and gradient at
      ``params`` (torch's ``step(closure)``); ``value`` may be omitted (one forward pass
      is then made); optax's ``grad=`` and unknown keywords are ignored. With
      ``line_search_fn=None`` and ``max_iter=1`` an update evaluates nothing more: the
      stochastic use. The state reports ``iterations``, ``evaluations``, ``stop_reason``
      (a ``StopReason``), ``stop_test`` and ``step_size``, and keeps the ``value``
      and ``grad`` at the returned params, where ``optax.value_and_grad_from_state``
      finds them: optax's documented ``lbfgs`` loop runs unchanged and evaluates nothing
      twice.

    Raises:
      ValueError: a hyperparameter out of range, an unknown ``line_search_fn``, neither or
        both of ``value_fn`` and ``value_and_grad_fn``, a ``value_fn`` that returns a
        tuple (pass it as ``value_and_grad_fn``), missing params, a non-scalar loss,
        gradients that do not match the state.

    Differences from PyTorch and optax:
      From torch, only the non-finite rule and ``respect_max_eval``; mixed dtypes and sharded
      params work (each dtype packed on its own, inner products summed in the widest).
      From ``optax.lbfgs``: one update runs up to ``max_iter`` iterations (optax's: one
      iteration), with torch's first step, stopping tests and (for ``"strong_wolfe"``)
      line search instead of optax's zoom.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, optjx
      >>> loss = lambda p: jnp.sum((p["x"] - 1.0) ** 2)
      >>> params = {"x": jnp.zeros(3)}
      >>> opt = optjx.lbfgs(line_search_fn="strong_wolfe")
      >>> state = opt.init(params)
      >>> value, grads = jax.value_and_grad(loss)(params)
      >>> updates, state = opt.update(grads, state, params, value=value, value_fn=loss)
      >>> params = optax.apply_updates(params, updates)
      >>> round(float(loss(params)), 6)
      0.0
    """
    hypers = _hyper.Hyperparameters(
        learning_rate=(learning_rate, _hyper.NONNEGATIVE),
        tolerance_grad=(tolerance_grad, _hyper.NONNEGATIVE),
        tolerance_change=(tolerance_change, _hyper.NONNEGATIVE),
    )
    max_eval = c.check_max_eval(max_iter, max_eval)
    c.check_int("history_size", history_size, 1)
    if line_search_fn not in (None, "strong_wolfe"):
        raise ValueError(f'line_search_fn must be None or "strong_wolfe", got {line_search_fn!r}')
    m = int(history_size)
    method = Method(
        name="lbfgs",
        state_type=LbfgsState,
        memory_type=LbfgsMemory,
        init_memory=functools.partial(_init_memory, history_size=m),
        direction=functools.partial(_direction, history_size=m),
    )
    search = None
    if line_search_fn == "strong_wolfe":
        search = functools.partial(_wolfe.search, respect_max_eval=respect_max_eval)
    return _iteration.transformation(method, hypers, Options(max_iter, max_eval, search, pack))
