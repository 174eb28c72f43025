"""L-BFGS, step for step as ``torch.optim.LBFGS``."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax
from jax import lax

from optjx import _hyper, _state, _tree
from optjx._twin import torch_twin
from optjx.full_batch import _common as c
from optjx.full_batch import _iteration
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
    ``lbfgs``'s ``init``; with a scheduled learning rate its sibling
    ``LbfgsStateWithCount`` has an int32 ``count`` first.

    Attributes:
      n_iter: torch's ``state["n_iter"]``, iterations over all updates.
      func_evals: torch's ``state["func_evals"]``, evaluations over all updates.
      iterations: iterations in the last update.
      evaluations: evaluations in the last update (the given value included).
      stop_reason: a ``StopReason``, why the last update stopped.
      step_size: $t$ of the last iteration.
      direction: $d$ of the last iteration (a tree like the params).
      prev_grad: $g$ of the last iteration, packed: a tuple of one ``(n,)`` vector per
        dtype (``pack=False``: of one array per leaf).
      prev_value: $f$ of the last iteration.
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

    n_iter: jax.Array  # int32: iterations over all updates (torch's state["n_iter"])
    func_evals: jax.Array  # int32: evaluations over all updates (torch's state["func_evals"])
    iterations: jax.Array  # int32: iterations in the last update
    evaluations: jax.Array  # int32: evaluations in the last update (the given value included)
    stop_reason: jax.Array  # int32: a StopReason, why the last update stopped
    step_size: jax.Array  # t of the last iteration
    direction: Any  # d of the last iteration
    prev_grad: Any
    prev_value: jax.Array
    diag: jax.Array  # gamma = s.y / y.y, the initial inverse Hessian scale
    steps: Any  # s = t d
    grad_diffs: Any  # y = g_new - g_old
    rho: jax.Array  # 1 / y.s
    head: jax.Array
    pairs: jax.Array


class _Memory(NamedTuple):
    diag: Any
    steps: Any
    grad_diffs: Any
    rho: Any
    head: Any
    pairs: Any


def _take(tree, j):
    return jax.tree.map(lambda buf: lax.dynamic_index_in_dim(buf, j, 0, keepdims=False), tree)


def _remember(s: _iteration.Carry, first, history_size: int, dtype) -> _Memory:
    """Store the last iteration's pair when ``y.s > 1e-10`` (torch's rule)."""
    mem = s.memory
    y = c.sub(s.g, s.prev_g)
    step = c.scale(s.t, s.d)
    ys = c.dot(y, step, dtype)
    keep = ~first & (ys > _CURVATURE_MIN)

    def write(buf, new):
        old = lax.dynamic_index_in_dim(buf, mem.head, 0, keepdims=False)
        return lax.dynamic_update_index_in_dim(buf, jnp.where(keep, new, old), mem.head, 0)

    return _Memory(
        diag=jnp.where(first, 1, jnp.where(keep, ys / c.dot(y, y, dtype), mem.diag)).astype(dtype),
        steps=jax.tree.map(write, mem.steps, step),
        grad_diffs=jax.tree.map(write, mem.grad_diffs, y),
        rho=mem.rho.at[mem.head].set(jnp.where(keep, 1 / ys, mem.rho[mem.head])),
        head=jnp.where(keep, (mem.head + 1) % history_size, mem.head),
        pairs=jnp.where(
            first, 0, jnp.where(keep, jnp.minimum(mem.pairs + 1, history_size), mem.pairs)
        ),
    )


def _two_loop(g, mem: _Memory, history_size: int, dtype):
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


@torch_twin("lbfgs")
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
    rule applies once ever). A NaN or Inf value or gradient stops the update: the update
    is zero, the state keeps its memory and counters, ``stop_reason`` is ``NON_FINITE``.

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
      history_size: pairs kept, int $\ge 1$, default 100 (memory: ``2 history_size + 2``
        copies of the params).
      line_search_fn: ``None`` (fixed step $t$) or ``"strong_wolfe"``.
      respect_max_eval: never let the line search exceed ``max_eval`` (torch may by one,
        pytorch/pytorch#91581). Default ``False``, as torch.
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
      ``update(grads, state, params, *, value, value_fn)`` takes the gradient and loss at
      ``params`` and ``value_fn``, the loss as a deterministic function of the params
      alone; ``apply_updates(params, updates)`` is torch's params after ``step``. ``value``
      may be omitted (one forward pass is then made); optax's ``grad=`` and unknown
      keywords are ignored. With ``line_search_fn=None`` and ``max_iter=1`` an update
      evaluates nothing more: the stochastic use. The state reports ``iterations``,
      ``evaluations``, ``stop_reason`` (see ``stop_reason``) and ``step_size``.

    Raises:
      ValueError: a hyperparameter out of range, an unknown ``line_search_fn``, a missing
        ``value_fn`` or params, a non-scalar loss, gradients that do not match the state.

    Differences from PyTorch and optax:
      From torch, only the NaN rule and ``respect_max_eval``; mixed dtypes and sharded
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

    def init_fn(params):
        dtype = c.scalar_dtype(params)
        scalar = jnp.zeros([], dtype)
        return _state.init(
            LbfgsState, hypers.scheduled,
            n_iter=_state.zero_count(), func_evals=_state.zero_count(),
            iterations=_state.zero_count(), evaluations=_state.zero_count(),
            stop_reason=jnp.asarray(c.StopReason.NOT_STARTED, jnp.int32),
            step_size=scalar, direction=_tree.zeros_like(params),
            prev_grad=Packing(params, pack).zeros(), prev_value=scalar, diag=jnp.ones([], dtype),
            steps=Packing(params, pack).zeros(m), grad_diffs=Packing(params, pack).zeros(m),
            rho=jnp.zeros([m], dtype), head=_state.zero_count(), pairs=_state.zero_count(),
        )  # fmt: skip

    def step_fn(grads, state, params, value, value_and_grad):
        dtype = state.prev_value.dtype
        hp = hypers.at(_state.count_of(state))
        lr = jnp.asarray(hp.learning_rate, dtype)

        def direction(s: _iteration.Carry, first):
            memory = _remember(s, first, m, dtype)
            # The l1 norm is a pass over g that only the very first iteration needs.
            t = lax.cond(first, lambda: c.first_step(s.g, lr, dtype), lambda: lr)
            return memory, _two_loop(s.g, memory, m, dtype), t

        memory = _Memory(state.diag, state.steps, state.grad_diffs, state.rho, state.head,
                         state.pairs)  # fmt: skip
        line_search = None
        if line_search_fn == "strong_wolfe":
            line_search = {"respect_max_eval": respect_max_eval}
        s = _iteration.iterate(state, params, grads, value, value_and_grad, memory, direction,
                               lr=lr, tolerance_grad=jnp.asarray(hp.tolerance_grad, dtype),
                               tolerance_change=jnp.asarray(hp.tolerance_change, dtype),
                               max_iter=max_iter, max_eval=max_eval, line_search=line_search,
                               pack=pack)  # fmt: skip
        return _iteration.finish(state, params, s, **s.memory._asdict())

    return c.full_batch_transformation("lbfgs", init_fn, step_fn)
