r"""Polyak averaging (``polyak_averaging``) of the iterates, and ``averaged_params``."""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import optax

from optjx import _hyper, _state, _tree
from optjx._find import fill_from, find_unique
from optjx._tree import copy_params
from optjx.typing import Hyperparameter


class PolyakState(NamedTuple):
    """The update count, the average of the iterates and the inner state."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    average: optax.Params
    inner_state: optax.OptState


def polyak_averaging(
    inner: optax.GradientTransformation, *, decay: Optional[Hyperparameter] = None
) -> optax.GradientTransformationExtraArgs:
    r"""Keep the average of the params that ``inner``'s updates produce.

    With $w_0$ the initial params and $w_t = w_{t-1} + u_t$ the params after the $t$-th
    update:

    $$
    \text{uniform } (\texttt{decay=None}):\quad
    \bar w_t = \frac{1}{t} \sum_{i=1}^{t} w_i = \bar w_{t-1} + \frac{1}{t} (w_t - \bar w_{t-1})
    $$

    $$
    \text{exponential}:\quad
    \bar w_0 = w_0, \qquad \bar w_t = \beta_k \bar w_{t-1} + (1 - \beta_k) w_t
    $$

    with $\beta$ evaluated at $k = t - 1$. The uniform average does not include $w_0$. The
    updates pass through unchanged; ``averaged_params(state)`` reads the average.

    References:
      Polyak & Juditsky (1992), "Acceleration of stochastic approximation by averaging";
      Ruppert (1988). The exponential form is the weight EMA of deep-learning practice.

    Args:
      inner: the optimizer whose iterates are averaged.
      decay: ``None`` (default) for the uniform average of all iterates since ``init``;
        otherwise $\beta \in [0, 1)$ (a number, an array or a schedule) for the exponential
        average started from the initial params, usually the better choice when the early
        iterates are poor.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` with a ``PolyakState``; its ``update``
      needs ``params``. The average has the params' dtypes.

    Differences from PyTorch and optax:
      optax has no averaging wrapper over a whole optimizer (its ``ema`` averages updates,
      not iterates). ``torch.optim.swa_utils.AveragedModel`` keeps the same uniform
      average, started from the first averaged model, outside the optimizer.

    Examples:
      >>> tx = optjx.polyak_averaging(optjx.sgd(0.1, 0.9), decay=0.999)
      >>> averaged = optjx.averaged_params(opt_state)
    """
    hypers = _hyper.Hyperparameters(**({} if decay is None else {"decay": (decay, _hyper.DECAY)}))
    _state.require_transformation("polyak_averaging", inner)
    inner = optax.with_extra_args_support(inner)

    def init_fn(params):
        return PolyakState(
            count=_state.zero_count(),
            average=copy_params(params),
            inner_state=inner.init(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        _tree.require_params(params, "polyak_averaging")
        _tree.check_matching(updates, state.average, against="the average")
        _tree.check_matching(params, state.average, what="params", against="the average")
        updates, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
        if decay is None:
            # Weight 1/t on the newest iterate: the incremental form of the mean.
            newest = 1.0 / _tree.default_float(_state.next_count(state.count))
            keep = 1.0 - newest
        else:
            decay_now = hypers.at(state.count).decay
            keep = _tree.default_float(decay_now)
            newest = _tree.default_float(1.0 - decay_now)  # before rounding, as in ema

        at = _hyper.per_dtype(keep=keep, newest=newest)

        def averaged(a, p, u):
            iterate = p.astype(a.dtype) + u.astype(a.dtype)
            k = at(a.dtype)
            return k.keep * a + k.newest * iterate

        average = jax.tree.map(averaged, state.average, params, updates)
        return updates, _state.advance(state, average=average, inner_state=inner_state)

    return _state.transformation(init_fn, update_fn, extra_args=True)


def averaged_params(state: optax.OptState, params: optax.Params | None = None) -> optax.Params:
    r"""The averaged params of the one ``polyak_averaging`` state inside ``state``.

    Args:
      state: the averaging state itself or any optimizer state that contains it (chains,
        ``optax.masked``, ``optax.multi_transform``, other wrappers).
      params: the params you hold (optional): leaves the wrapper does not own (masked
        out, integer leaves) come from them, so the result is a complete tree.

    Returns:
      A tree shaped like the params.

    Raises:
      ValueError: ``state`` holds no averaging state, or more than one.
    """
    found = find_unique(state, (PolyakState,), "averaged_params", "polyak_averaging")
    return fill_from(found.average, params)
