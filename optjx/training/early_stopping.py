r"""Early stopping that remembers the best weights: pure, jittable, checkpointable.

Goodfellow, Bengio & Courville (2016), section 7.8, Algorithm 7.1: evaluate on the
validation set every so often, keep a copy of the parameters whenever the validation
error is the best so far, and stop after ``patience`` evaluations in a row without
improvement; return the best parameters, not the last ones. As the course notes put it:
"stop with whatever criterion, but remember the best weights on the validation set".

After evaluation number ``n`` (1-based) with value ``v_n``:

.. math::

   \text{improved}_n = \begin{cases}
     v_n < v^* - \delta & \text{mode "min" (losses)} \\
     v_n > v^* + \delta & \text{mode "max" (accuracies)}
   \end{cases}

   \text{if improved: } v^* \leftarrow v_n,\ \theta^* \leftarrow \theta_n,\ n^* \leftarrow n,\
   b \leftarrow 0; \quad \text{else } b \leftarrow b + 1; \qquad
   \text{stop} \leftarrow b > \text{patience}

with ``v^*`` starting at ``+inf`` (``-inf`` for "max"), so the first finite value
improves. NaN compares false, so a NaN never counts as an improvement (it counts as a bad
evaluation). Once ``should_stop`` is set the state is frozen: later calls return it
unchanged, so a ``lax.scan`` that keeps calling ``update`` still reports the best weights
of the run up to the stop.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx.wrappers._find import check_int, copy_params, select_tree


class EarlyStoppingState(NamedTuple):
    """What early stopping remembers; every field a JAX array (orbax saves it as is).

    ``evaluations``: calls of ``update`` so far; ``best_step``: the value of
    ``evaluations`` at the best evaluation (0 before any).
    """

    best_value: jax.Array
    best_params: optax.Params
    best_step: jax.Array
    bad_evaluations: jax.Array
    should_stop: jax.Array
    evaluations: jax.Array


class EarlyStopping(NamedTuple):
    """The pair of pure functions :func:`early_stopping` returns."""

    init: object
    update: object


def early_stopping(
    patience: int, *, mode: str = "min", min_delta: _hyper.Hyper = 0.0
) -> EarlyStopping:
    """Early stopping on a validation metric, keeping a copy of the best params.

    Args:
      patience: an int ``>= 0``: stop once more than ``patience`` evaluations in a row
        failed to improve (``patience=0`` stops at the first one that does not improve).
      mode: ``"min"`` for a loss or error, ``"max"`` for an accuracy.
      min_delta: ``>= 0``; an improvement must beat the best value by more than this
        (a tie never improves). A number, an array or a schedule of the evaluation count.

    Returns:
      ``EarlyStopping(init, update)``: ``init(params) -> EarlyStoppingState`` and
      ``update(state, value, params) -> EarlyStoppingState``, to call after each
      evaluation with the scalar ``value`` measured at ``params``. Both are pure and
      jittable; ``state.should_stop`` is a bool array, ``state.best_params`` a copy of the
      params at the best evaluation (never an alias: donation is safe).

    Differences: Keras' ``EarlyStopping`` stops when the streak *reaches* ``patience``
    and restores weights only with ``restore_best_weights=True``; PyTorch Lightning's
    stops at ``wait_count >= patience``. Here "more than ``patience``", as the issue's
    textbook reading, and the best weights are always kept.

    Example::

        stopper = optjx.early_stopping(patience=5, mode="max")
        stop_state = stopper.init(params)
        for epoch in range(100):
            params, opt_state = train_one_epoch(params, opt_state)
            stop_state = stopper.update(stop_state, accuracy(params), params)
            if stop_state.should_stop:
                break
        params = stop_state.best_params
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

    def update(state: EarlyStoppingState, value, params) -> EarlyStoppingState:
        _tree.check_matching(params, state.best_params, what="params", against="best_params")
        if jnp.ndim(value) != 0:
            raise ValueError(f"value must be a scalar, got shape {jnp.shape(value)}")
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
