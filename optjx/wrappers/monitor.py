r"""Training diagnostics recorded in the optimizer state, at every update.

Watch the gradient norm for cliffs and exploding gradients (Goodfellow et al. 2016,
section 8.2.4; Pascanu et al. 2013), and the ratio of update to parameter norms for a learning rate that is too large or too small.
``monitor`` records, for the update it wraps, $\|g\|_2$, $\max_i |g_i|$, whether
$g$ is finite, $\|u\|_2$ and $\|\theta\|_2$ (global norms over every leaf; $u$ the inner
optimizer's update, $\theta$ the params before it is applied). ``diagnostics`` reads
them back as a dict of scalars, together with what other optjx stages in the same state
know.

Cost: five reductions per leaf (``sum g^2``, ``max g``, ``min g``, ``sum u^2``,
``sum theta^2``) over arrays the update reads or writes anyway; the inner update is
computed once. On XLA's CPU backend a reduction is its own loop, and an operand that
another op also reads (Adam's ``g^2``, the update) is written to memory once more
(bounded in ``tests/wrappers/test_monitor.py`` on the compiled HLO); GPU backends fuse
reductions into the loops that produce their operands. The sums of squares accumulate
in float32 (or the leaf's wider dtype). Not wrapping costs nothing.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optjx import _state, _tree
from optjx._find import find_one_or_none, find_unique


class MonitorState(NamedTuple):
    r"""The diagnostics of the latest update, and the inner optimizer's state.

    Before the first update the norms are zeros and ``grad_finite`` is ``True``. Read it
    with ``diagnostics``, which finds it anywhere in a larger state.

    Attributes:
      grad_norm: $\|g\|_2$, the global L2 norm of the gradients ``monitor`` received.
      grad_max_abs: $\max_i |g_i|$ over every leaf (NaN if any gradient is NaN).
      grad_finite: a bool array, every gradient finite.
      update_norm: $\|u\|_2$, the global norm of the inner optimizer's update.
      param_norm: $\|\theta\|_2$, the global norm of the params before the update.
      inner_state: the state of the wrapped transformation.
    """

    grad_norm: jax.Array
    grad_max_abs: jax.Array
    grad_finite: jax.Array
    update_norm: jax.Array
    param_norm: jax.Array
    inner_state: optax.OptState


def monitor(inner: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    r"""Record gradient, update and parameter norms of every update of ``inner``.

    For gradients $g$, the inner update $u = \text{inner}(g)$ and the params $\theta$
    before it is applied, the state keeps

    $$
    \|g\|_2 = \Big(\sum_{\text{leaves}} \sum_i g_i^2\Big)^{1/2}, \quad
    \max_i |g_i|, \quad [\,g \text{ all finite}\,], \quad
    \|u\|_2, \quad \|\theta\|_2
    $$

    and the update passes through unchanged. An exploding gradient shows as a jump of
    $\|g\|_2$ (and, after a clipping stage, a flat $\|u\|_2$); $\|u\|_2 / \|\theta\|_2$
    far above $10^{-3}$ suggests a rate too large, far below one too small.

    References:
      Goodfellow, Bengio & Courville (2016), *Deep Learning*, section 8.2.4 (cliffs and
      exploding gradients); Pascanu, Mikolov & Bengio (2013), "On the difficulty of
      training recurrent neural networks" (gradient clipping).

    Args:
      inner: any transformation (required): an alias, a chain, a wrapper. Put
        ``monitor`` outermost (or right after ``cross_replica_mean``) to see the raw
        gradients; around the optimizer alone, after a clipping stage, to see the
        clipped ones.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose updates are ``inner``'s, bit for
      bit, and whose state is a ``MonitorState`` around ``inner``'s state. Its
      ``update`` needs ``params`` (for their norm) and passes extra keyword arguments on
      to ``inner``.

    Raises:
      ValueError: ``update`` is called without ``params``.

    Differences from PyTorch and optax:
      Neither has it. PyTorch users read ``torch.nn.utils.clip_grad_norm_``'s return
      value or register hooks; optax users compute ``optax.global_norm`` in the training
      step. Here the numbers live in the optimizer state, so a ``lax.scan`` over steps
      returns them, and they are checkpointed with it.

    Examples:
      >>> tx = optjx.monitor(optjx.chain(optjx.clip_by_global_norm(1.0), optjx.adam(1e-3)))
      >>> opt_state = tx.init(params)
      >>> updates, opt_state = tx.update(grads, opt_state, params)
      >>> stats = optjx.diagnostics(opt_state)
      >>> clipped = stats["grad_norm"] > 1.0     # a clipping event
    """
    _state.require_transformation("monitor", inner)
    inner = optax.with_extra_args_support(inner)

    def init_fn(params):
        zero = _tree.default_float(0.0)
        return MonitorState(
            grad_norm=zero,
            grad_max_abs=zero,
            grad_finite=jnp.asarray(True),
            update_norm=zero,
            param_norm=zero,
            inner_state=inner.init(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        _tree.require_params(params, "monitor")  # for the parameter norm
        dtype = state.grad_norm.dtype
        new_updates, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
        largest = _tree.max_abs(updates, dtype)
        return new_updates, MonitorState(
            grad_norm=jnp.sqrt(_tree.sum_of_squares(updates, dtype)),
            grad_max_abs=largest,
            grad_finite=jnp.isfinite(largest),
            update_norm=jnp.sqrt(_tree.sum_of_squares(new_updates, dtype)),
            param_norm=jnp.sqrt(_tree.sum_of_squares(params, dtype)),
            inner_state=inner_state,
        )

    return _state.transformation(init_fn, update_fn, extra_args=True)


def diagnostics(state: optax.OptState) -> dict[str, jax.Array]:
    """The diagnostics of the latest update, from an optimizer state of any shape.

    Args:
      state (optax.OptState): an optimizer state holding exactly one ``monitor`` state anywhere (a
        chain, ``optax.masked``, ``multi_transform``, another wrapper, a Flax
        ``TrainState.opt_state``).

    Returns:
      A dict of scalar arrays (jittable, so a ``lax.scan`` can return it every step):

      * ``grad_norm``, ``grad_max_abs``, ``grad_finite``, ``update_norm``,
        ``param_norm``, from the monitor;
      * with one RAdam in the state: ``radam_rectifier`` ($r_t$, 0 during warm-up) and
        ``radam_adaptive`` (the rectified step was applied);
      * with one ``lookahead``: ``lookahead_steps_since_sync``;
      * with one ``apply_if_finite``: ``notfinite_count`` (current streak),
        ``total_notfinite`` and ``last_finite``;
      * with one ``reduce_on_plateau``: ``plateau_scale``.

      A stage that appears more than once (a chain of two RAdams) is ambiguous and left
      out.

    Raises:
      ValueError: the state holds no monitor state, or several.

    Differences from PyTorch and optax:
      Neither has it: torch's diagnostics live in ``optimizer.state`` per tensor, optax's
      in each stage's state, each read its own way. Here one call reads them all.

    Examples:
      >>> tx = optjx.monitor(optjx.apply_if_finite(optjx.radam(1e-3), max_consecutive_errors=5))
      >>> stats = optjx.diagnostics(opt_state)
      >>> float(stats["grad_norm"]), bool(stats["radam_adaptive"]), int(stats["total_notfinite"])
    """
    from optjx.transforms.radam import ScaleByRadamState
    from optjx.wrappers.apply_if_finite import ApplyIfFiniteState
    from optjx.wrappers.lookahead import LookaheadState
    from optjx.wrappers.reduce_on_plateau import ReduceOnPlateauState

    watched = find_unique(state, MonitorState, "diagnostics", "monitor")
    out = {name: getattr(watched, name) for name in MonitorState._fields[:-1]}
    radam = find_one_or_none(state, ScaleByRadamState)
    if radam is not None:
        out["radam_rectifier"] = radam.rectifier
        out["radam_adaptive"] = radam.rectifier > 0
    slow = find_one_or_none(state, LookaheadState)
    if slow is not None:
        out["lookahead_steps_since_sync"] = slow.steps_since_sync
    guard = find_one_or_none(state, ApplyIfFiniteState)
    if guard is not None:
        out["notfinite_count"] = guard.notfinite_count
        out["total_notfinite"] = guard.total_notfinite
        out["last_finite"] = guard.last_finite
    plateau = find_one_or_none(state, (ReduceOnPlateauState,))
    if plateau is not None:
        out["plateau_scale"] = plateau.scale
    return out
