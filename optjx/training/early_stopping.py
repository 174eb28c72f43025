r"""Early stopping that remembers the best weights: pure, jittable, checkpointable.

Goodfellow, Bengio & Courville (2016), section 7.8, Algorithm 7.1: evaluate on the
validation set every so often, keep a copy of the parameters whenever the validation
error is the best so far, and stop after ``patience`` evaluations in a row without
improvement; return the best parameters, not the last ones. The rule is written out on ``early_stopping``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from optjx import _hyper, _state, _tree
from optjx._hyper import check_int
from optjx._tree import copy_params, select_tree
from optjx.typing import Hyperparameter


class EarlyStoppingState(NamedTuple):
    r"""What early stopping remembers; every field a JAX array, so orbax saves it as is.

    Attributes:
      best_value: the best validation value so far, $v^*$ (``+inf`` for ``"min"``,
        ``-inf`` for ``"max"`` before any evaluation), at JAX's default float dtype.
      best_params: a copy of the params at the best evaluation, $\theta^*$ (the initial
        params before any); never an alias of the params you train.
      best_step: the value of ``evaluations`` at the best evaluation, $n^*$ (1-based; 0
        before any). With one evaluation per epoch, the best epoch.
      bad_evaluations: $b$, evaluations in a row without improvement (int32).
      should_stop: a bool array, set once $b$ exceeds ``patience``; the state is frozen from
        then on.
      evaluations: calls of ``update`` so far, up to and including the one that set
        ``should_stop`` (int32).
    """

    best_value: jax.Array
    best_params: optax.Params
    best_step: jax.Array
    bad_evaluations: jax.Array
    should_stop: jax.Array
    evaluations: jax.Array


class EarlyStopping(NamedTuple):
    """The pair of pure functions ``early_stopping`` returns.

    Attributes:
      init: ``init(params) -> EarlyStoppingState``.
      update: ``update(state, value, params) -> EarlyStoppingState``.
    """

    init: Callable[[optax.Params], EarlyStoppingState]
    update: Callable[[EarlyStoppingState, ArrayLike, optax.Params], EarlyStoppingState]


def early_stopping(
    patience: int, *, mode: Literal["min", "max"] = "min", min_delta: Hyperparameter = 0.0
) -> EarlyStopping:
    r"""Early stopping on a validation metric that keeps a copy of the best params.

    After evaluation number $n$ (1-based) with value $v_n$ measured at the params
    $\theta_n$:

    $$
    \text{improved}_n = \begin{cases}
      v_n < v^* - \delta & \text{mode "min" (a loss, an error)} \\
      v_n > v^* + \delta & \text{mode "max" (an accuracy)}
    \end{cases}
    $$

    $$
    \text{if improved: } v^* \leftarrow v_n,\ \theta^* \leftarrow \theta_n,\
    n^* \leftarrow n,\ b \leftarrow 0; \quad \text{else } b \leftarrow b + 1; \qquad
    \text{stop} \leftarrow b > \text{patience}
    $$

    with $v^*$ starting at $+\infty$ ($-\infty$ for "max"), so the first finite value
    improves. A NaN compares false: it never improves, it counts as a bad evaluation.
    Once ``should_stop`` is set the state is frozen: later calls return it unchanged, so
    a ``lax.scan`` that keeps calling ``update`` still reports the best weights of the
    run up to the stop. Train on, then evaluate (and export) ``state.best_params``.

    References:
      Goodfellow, Bengio & Courville (2016), *Deep Learning*, section 7.8,
      Algorithm 7.1; Prechelt (1998), "Early stopping - but when?".

    Args:
      patience: an int $\ge 0$ (required): stop once more than ``patience`` evaluations
        in a row failed to improve; ``patience=0`` stops at the first one that does not.
      mode: ``"min"`` for a loss or an error, ``"max"`` for an accuracy (default
        ``"min"``).
      min_delta: $\delta \ge 0$ (default 0): an improvement must beat the best value by
        more than this (a tie never improves). A number, an array or a schedule of the
        number of evaluations so far.

    Returns:
      ``EarlyStopping(init, update)``: ``init(params) -> EarlyStoppingState`` and
      ``update(state, value, params) -> EarlyStoppingState``, called after each
      evaluation with the scalar ``value`` measured at ``params``. Both are pure and
      jittable; ``state.should_stop`` is a bool array, ``state.best_params`` a copy of
      the params at the best evaluation (never an alias: donation is safe) and
      ``state.best_step`` the evaluation it came from.

    Raises:
      ValueError: ``patience`` is negative, ``mode`` is not ``"min"`` or
        ``"max"``, ``min_delta`` is negative; in ``update``, a ``value`` that is not a
        scalar or ``params`` whose tree does not match the state's (naming the key path).
      TypeError: ``min_delta`` is not a number, an array or a schedule, or ``patience``
        not an int.

    Differences from PyTorch and optax:
      Neither has it (optax has ``contrib.reduce_on_plateau`` for the rate only).
      Keras' ``EarlyStopping`` stops when the streak *reaches* ``patience`` and restores
      the weights only with ``restore_best_weights=True``; PyTorch Lightning's stops at
      ``wait_count >= patience`` and keeps no weights (a checkpoint callback does). Here
      the streak must *exceed* ``patience``, the textbook's reading, and the best weights
      are always kept, in a state that jits, scans and checkpoints.

    Examples:
      >>> stopper = optjx.early_stopping(patience=5, mode="max")
      >>> stop = stopper.init(params)
      >>> for epoch in range(100):
      ...     params, opt_state = train_one_epoch(params, opt_state)
      ...     stop = stopper.update(stop, val_accuracy(params), params)
      ...     if stop.should_stop:
      ...         break
      >>> params = stop.best_params          # the weights of epoch int(stop.best_step)
    """
    check_int("patience", patience, 0)
    if mode not in ("min", "max"):
        raise ValueError(f'mode must be "min" or "max", got {mode!r}')
    hypers = _hyper.Hyperparameters(min_delta=(min_delta, _hyper.NONNEGATIVE))
    worst = jnp.inf if mode == "min" else -jnp.inf

    def init(params) -> EarlyStoppingState:
        return EarlyStoppingState(
            best_value=_tree.default_float(worst),
            best_params=copy_params(params),
            best_step=_state.zero_count(),
            bad_evaluations=_state.zero_count(),
            should_stop=jnp.asarray(False),
            evaluations=_state.zero_count(),
        )

    def update(state: EarlyStoppingState, value: ArrayLike, params) -> EarlyStoppingState:
        _tree.check_matching(params, state.best_params, what="params", against="best_params")
        _check_value(value)
        value = jnp.asarray(value).astype(state.best_value.dtype)
        delta = jnp.asarray(hypers.at(state.evaluations).min_delta).astype(value.dtype)
        if mode == "min":
            improved = value < state.best_value - delta
        else:
            improved = value > state.best_value + delta
        improved = improved & ~state.should_stop  # frozen after the stop
        evaluations = _state.next_count(state.evaluations)
        bad = jnp.where(improved, 0, _state.next_count(state.bad_evaluations))
        bad = jnp.where(state.should_stop, state.bad_evaluations, bad).astype(jnp.int32)
        return EarlyStoppingState(
            best_value=jnp.where(improved, value, state.best_value),
            best_params=select_tree(improved, params, state.best_params),  # fresh buffers
            best_step=jnp.where(improved, evaluations, state.best_step),
            bad_evaluations=bad,
            should_stop=state.should_stop | (bad > patience),
            evaluations=jnp.where(state.should_stop, state.evaluations, evaluations),
        )

    return EarlyStopping(init, update)


def _check_value(value) -> None:
    """The monitored value: a real number or a real scalar array, named in the error."""
    dtype = getattr(value, "dtype", None)
    if dtype is None and isinstance(value, (int, float)) and not isinstance(value, bool):
        return
    if dtype is None or not (
        jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    ):
        shown = (
            repr(value) if isinstance(value, (str, bytes, list, tuple, type(None))) else type(value)
        )
        raise TypeError(
            "early_stopping's update(state, value, params): value must be the monitored "
            f"metric as a real number or a real scalar array (e.g. float(val_loss)), got {shown}"
        )
    if jnp.ndim(value) != 0:
        raise ValueError(
            f"early_stopping's update(state, value, params): value must be a scalar, got shape "
            f"{jnp.shape(value)} (reduce the metric first, e.g. jnp.mean)"
        )
