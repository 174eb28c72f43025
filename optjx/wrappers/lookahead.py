r"""Lookahead (``lookahead``) on plain params, and ``slow_params`` to read its slow weights.

On a sync step the returned update is $\phi_{new} - \theta_{t-1}$, so ``apply_updates``
lands the params on the new slow weights. The slow weights stored are
$\theta_{t-1} + u_t$ itself, the value ``apply_updates`` computes (it differs from
$\phi_{new}$ by at most one rounding), so after a sync the fast and slow weights are
equal exactly, and XLA computes that sum once for both.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from optjx import _hyper, _state, _tree
from optjx._find import fill_from, find_unique
from optjx._hyper import check_int
from optjx._tree import copy_params, select_tree
from optjx.typing import Hyperparameter


class LookaheadState(NamedTuple):
    """Updates applied, the slow weights, the inner optimizer's state, and the updates
    since the latest sync (0 right after one; read by ``optjx.diagnostics``)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    slow: optax.Params
    inner_state: optax.OptState
    steps_since_sync: jax.Array


def lookahead(
    inner: optax.GradientTransformation,
    *,
    sync_period: int = 6,
    slow_step_size: Hyperparameter = 0.5,
    reset_state: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""Wrap ``inner`` in Lookahead: slow weights that follow the fast weights every $k$ steps.

    The inner optimizer moves the fast weights $\theta$ (the params you hold); every $k$ of
    its updates the slow weights $\phi$ move part of the way towards them and the fast
    weights restart from the slow ones:

    $$
    \theta_t = \theta_{t-1} + u_t, \qquad
    \text{if } t \bmod k = 0:\quad
    \phi \leftarrow \phi + \alpha_j (\theta_t - \phi), \quad \theta_t \leftarrow \phi
    $$

    with $\phi$ starting at the initial params and $\alpha$ evaluated at $j$ = updates
    already applied. The slow weights live in the state: ``slow_params(state)`` reads them,
    for evaluation or export. On the other steps the inner update passes through unchanged.

    References:
      Zhang, Lucas, Hinton & Ba (2019), "Lookahead Optimizer: k steps forward, 1 step
      back", Algorithm 1.

    Args:
      inner: the fast optimizer, producing parameter updates (e.g. ``optjx.adam(1e-3)``).
      sync_period: $k$, an int $\ge 1$ (default 6): the slow weights move every $k$ updates.
        Under ``optax.inject_hyperparams`` list it in ``static_args``.
      slow_step_size: $\alpha \in [0, 1]$ (default 0.5); a number, an array or a schedule.
        $\alpha = 1$ with $k = 1$ is the inner optimizer itself; $\alpha = 0$ sends the
        params back to their initial values at every sync.
      reset_state: re-initialise the inner optimizer's state from the new slow weights at
        every sync (default ``False``), as some implementations do for Adam's moments.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` with a ``LookaheadState``; its
      ``update`` needs ``params`` and passes extra keyword arguments to ``inner``.

    Differences from PyTorch and optax:
      Not in ``torch.optim``. ``optax.lookahead`` needs a ``LookaheadParams(fast, slow)``
      params type that every caller (loss, ``TrainState``, ``nnx.Optimizer``) must know
      about; here the params stay plain and the wrapper composes anywhere in a chain. optax
      resets the inner state with the blend $(1 - s)\,\text{state} + s\,\text{init}$, which
      fails on PRNG key leaves and turns a NaN in the old state into NaN; here each leaf is
      selected. optax's ``slow_step_size`` is a constant; here it may be a schedule.

    Examples:
      >>> tx = optjx.lookahead(optjx.adam(1e-3), sync_period=5, slow_step_size=0.5)
      >>> slow = optjx.slow_params(opt_state)  # evaluate with these
    """
    check_int("sync_period", sync_period, 1)
    hypers = _hyper.Hyperparameters(slow_step_size=(slow_step_size, _hyper.UNIT))
    _state.require_transformation("lookahead", inner)
    inner = optax.with_extra_args_support(inner)

    def init_fn(params):
        return LookaheadState(
            count=_state.zero_count(),
            slow=copy_params(params),
            inner_state=inner.init(params),
            steps_since_sync=_state.zero_count(),
        )

    def update_fn(updates, state, params=None, **extra_args):
        _tree.require_params(params, "lookahead")
        _tree.check_matching(updates, state.slow, against="the slow weights")
        _tree.check_matching(params, state.slow, what="params", against="the slow weights")
        fast_updates, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
        # Update number count + 1 is the k-th since the last sync (Algorithm 1, inner loop).
        # count >= 0, so the remainder needs none of jnp.remainder's sign fix-ups.
        is_sync = lax.rem(state.count, jnp.int32(sync_period)) == sync_period - 1
        at = _hyper.per_dtype(alpha=hypers.at(state.count).slow_step_size)

        def update(s, p, u):
            fast = p.astype(s.dtype) + u.astype(s.dtype)
            moved = s + at(s.dtype).alpha * (fast - s)  # phi + alpha (theta - phi)
            return jnp.where(is_sync, (moved - p.astype(s.dtype)).astype(u.dtype), u)

        out = jax.tree.map(update, state.slow, params, fast_updates)
        # The new slow weights are where the params land: p + out, the very expression
        # apply_updates computes, so XLA computes it once and the inner update feeds one
        # output only (fused, never written to memory). It also makes fast == slow exactly
        # after a sync.
        slow = jax.tree.map(
            lambda s, p, o: jnp.where(is_sync, p.astype(s.dtype) + o.astype(s.dtype), s),
            state.slow,
            params,
            out,
        )
        if reset_state:
            fresh = inner.init(jax.tree.map(lambda s, p: s.astype(p.dtype), slow, params))
            inner_state = select_tree(is_sync, fresh, inner_state)
        since = jnp.where(is_sync, 0, _state.next_count(state.steps_since_sync))
        return out, LookaheadState(
            _state.next_count(state.count), slow, inner_state, since.astype(jnp.int32)
        )

    return _state.transformation(init_fn, update_fn, extra_args=True)


def slow_params(state: optax.OptState, params: optax.Params | None = None) -> optax.Params:
    r"""The slow weights of the one ``lookahead`` state inside ``state``.

    Args:
      state: the lookahead state itself or any optimizer state that contains it: a chain,
        nested chains, ``optax.masked`` or ``optax.multi_transform``, other wrappers'
        states.
      params: the params you hold (optional). With them the result is a complete tree of
        the params' structure: leaves the wrapper does not own (masked out, another
        ``multi_transform`` group, integer leaves) come from ``params``. Without them those
        leaves are ``optax.MaskedNode()`` or ``None``.

    Returns:
      A tree shaped like the params.

    Raises:
      ValueError: ``state`` holds no lookahead state, or more than one.

    Examples:
      >>> logits = model.apply(optjx.slow_params(state.opt_state, state.params), x_test)
    """
    slow = find_unique(state, LookaheadState, "slow_params", "lookahead").slow
    return fill_from(slow, params)
