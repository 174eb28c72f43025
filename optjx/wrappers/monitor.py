r"""Training diagnostics recorded in the optimizer state, at every update.

The course notes tell the reader to watch the gradient norm for cliffs and exploding
gradients (Goodfellow et al. 2016, section 8.2.4; Pascanu et al. 2013), and the ratio of
update to parameter norms for a learning rate that is too large or too small. ``monitor``
records, for the update it wraps:

.. math::

   \|g\|_2, \quad \max_i |g_i|, \quad [\,g \text{ all finite}\,], \quad
   \|u\|_2, \quad \|\theta\|_2

(global norms over every leaf; ``u`` the inner optimizer's update, ``theta`` the params
before it is applied). :func:`diagnostics` reads them back as a dict of scalars, together
with what other optjx stages in the same state know: RAdam's rectification term and
whether the adaptive step was on, Lookahead's updates since the latest sync,
``apply_if_finite``'s streak and total of skipped steps, ``reduce_on_plateau``'s scale.

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
from optjx.wrappers._find import _find_all, find_unique


class MonitorState(NamedTuple):
    """The diagnostics of the latest update (zeros and ``True`` before the first one),
    and the inner optimizer's state."""

    grad_norm: jax.Array
    grad_max_abs: jax.Array
    grad_finite: jax.Array
    update_norm: jax.Array
    param_norm: jax.Array
    inner_state: optax.OptState


def _sum_of_squares(tree, dtype) -> jax.Array:
    total = jnp.zeros([], dtype)
    for leaf in jax.tree.leaves(tree):
        wide = (
            _tree.widest_float(leaf.dtype, jnp.float32)
            if jnp.issubdtype(leaf.dtype, jnp.floating)
            else jnp.float32
        )
        total = total + jnp.sum(jnp.square(leaf.astype(wide))).astype(dtype)
    return total


def _max_abs(tree, dtype) -> jax.Array:
    # max(|g|) as max(max g, -min g): two reductions that read g itself, where
    # max(abs(g)) made XLA's CPU backend write |g| to memory first. Max and min propagate
    # NaN (and an Inf is its own maximum), so the result is also the finiteness test.
    largest = jnp.zeros([], dtype)
    for leaf in jax.tree.leaves(tree):
        # The initial values make zero-size leaves harmless.
        top = jnp.max(leaf, initial=-jnp.inf).astype(dtype)
        bottom = jnp.min(leaf, initial=jnp.inf).astype(dtype)
        largest = jnp.maximum(largest, jnp.maximum(top, -bottom))
    return largest


def monitor(inner: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """Record gradient, update and parameter norms of every update of ``inner``.

    Args:
      inner: any transformation (an alias, a chain, a wrapper).

    Returns:
      A transformation whose updates are ``inner``'s, bit for bit, and whose state is a
      :class:`MonitorState` around ``inner``'s state; read it with :func:`diagnostics`.
      Put it outermost (or right after ``cross_replica_mean``) to see the raw gradients;
      around the optimizer alone, after a clipping stage, to see the clipped ones.

    Needs the params in ``update`` (for their norm). Extra keyword arguments of ``update``
    are passed to ``inner``. Not in optax or
    PyTorch (there: hooks, or ``torch.nn.utils.clip_grad_norm_``'s return value).

    Example::

        tx = optjx.monitor(optjx.chain(optjx.clip_by_global_norm(1.0), optjx.adam(1e-3)))
        ...
        stats = optjx.diagnostics(opt_state)  # {"grad_norm": ..., "update_norm": ...}
    """
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
        largest = _max_abs(updates, dtype)
        return new_updates, MonitorState(
            grad_norm=jnp.sqrt(_sum_of_squares(updates, dtype)),
            grad_max_abs=largest,
            grad_finite=jnp.isfinite(largest),
            update_norm=jnp.sqrt(_sum_of_squares(new_updates, dtype)),
            param_norm=jnp.sqrt(_sum_of_squares(params, dtype)),
            inner_state=inner_state,
        )

    return _tree.transformation(init_fn, update_fn, extra_args=True)


def _one(state, cls):
    """The single ``cls`` node in ``state``, ``None`` when there is none; with several
    (a chain of two RAdams) the diagnostic is ambiguous and left out."""
    found = _find_all(state, cls)
    return found[0] if len(found) == 1 else None


def diagnostics(state) -> dict[str, jax.Array]:
    """The diagnostics of the latest update, from an optimizer state of any shape.

    ``state`` holds one :func:`monitor` state anywhere (a chain, ``optax.masked``,
    ``multi_transform``, another wrapper). Returns a dict of scalar arrays (jittable):

    * ``grad_norm``, ``grad_max_abs``, ``grad_finite``, ``update_norm``, ``param_norm``;
    * with one RAdam in the state: ``radam_rectifier`` (``r_t``, 0 during warm-up) and
      ``radam_adaptive`` (the rectified step was applied);
    * with one ``lookahead``: ``lookahead_steps_since_sync``;
    * with one ``apply_if_finite``: ``notfinite_count`` (current streak),
      ``total_notfinite`` and ``last_finite``;
    * with one ``reduce_on_plateau``: ``plateau_scale``.

    ``ValueError`` when the state holds no monitor state, or several.
    """
    from optjx.transforms.radam import ScaleByRadamState
    from optjx.wrappers.apply_if_finite import ApplyIfFiniteState
    from optjx.wrappers.lookahead import LookaheadState
    from optjx.wrappers.reduce_on_plateau import ReduceOnPlateauState

    watched = find_unique(state, MonitorState, "diagnostics", "monitor")
    out = {name: getattr(watched, name) for name in MonitorState._fields[:-1]}
    radam = _one(state, ScaleByRadamState)
    if radam is not None:
        out["radam_rectifier"] = radam.rectifier
        out["radam_adaptive"] = radam.rectifier > 0
    slow = _one(state, LookaheadState)
    if slow is not None:
        out["lookahead_steps_since_sync"] = slow.steps_since_sync
    guard = _one(state, ApplyIfFiniteState)
    if guard is not None:
        out["notfinite_count"] = guard.notfinite_count
        out["total_notfinite"] = guard.total_notfinite
        out["last_finite"] = guard.last_finite
    plateau = _one(state, (ReduceOnPlateauState, _state.counted(ReduceOnPlateauState)))
    if plateau is not None:
        out["plateau_scale"] = plateau.scale
    return out
