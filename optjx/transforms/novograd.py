r"""NovoGrad's direction (``scale_by_novograd``): one second moment per layer (leaf).

$\lVert g \rVert^2$ is accumulated in at least float32 (bf16 and f16 gradients too), and
$v$ is stored in float32 (float64 for a float64 leaf).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optjx import _hyper, _state, _tree
from optjx.typing import Hyperparameter


class ScaleByNovogradState(NamedTuple):
    """Step count, the first moment per weight and the second moment per layer (a scalar)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    mu: optax.Updates
    nu: optax.Updates


def scale_by_novograd(
    b1: Hyperparameter = 0.95,
    b2: Hyperparameter = 0.98,
    *,
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter | None = None,
    grad_averaging: bool = False,
) -> optax.GradientTransformation:
    r"""NovoGrad's direction $m_t$ (chain a learning rate after it: $w \leftarrow w - \eta m_t$).

    $$
    v^l_1 = \lVert g^l_1\rVert^2, \qquad
    v^l_t = \beta_2 v^l_{t-1} + (1 - \beta_2) \lVert g^l_t\rVert^2 \quad (t > 1)
    $$

    $$
    m^l_t = \beta_1 m^l_{t-1} + \Big( c\, \frac{g^l_t}{\sqrt{v^l_t + \epsilon}} + d\, w^l_t \Big),
    \qquad m^l_0 = 0, \qquad u^l_t = m^l_t
    $$

    for each layer $l$ (a leaf of the params tree), with $c = 1$ (the paper) or
    $c = 1 - \beta_1$ (``grad_averaging=True``). The state is one moment per weight plus one
    scalar per layer.

    References:
      Ginsburg et al. (2019), "Stochastic gradient methods with layer-wise adaptive
      moments for training of deep networks", Algorithm 1.

    Args:
      b1: $\beta_1 \in [0, 1)$ (default 0.95, the paper's).
      b2: $\beta_2 \in [0, 1)$ (default 0.98, the paper's).
      eps: $\epsilon \ge 0$, added under the root (default 1e-8).
      weight_decay: $d \ge 0$, added to the normalised gradient inside the momentum
        (default ``None``: no decay term). Unless it is ``None``, ``update`` needs the
        params.
      grad_averaging: multiply the normalised gradient by $1 - \beta_1$ (default
        ``False``). NVIDIA's implementations (OpenSeq2Seq, apex ``FusedNovoGrad``) scale the
        weight-decay term too; the two agree when ``weight_decay=0``.

    Returns:
      An ``optax.GradientTransformation`` with a ``ScaleByNovogradState``.

    Differences from PyTorch and optax:
      Not in PyTorch. ``optax.scale_by_novograd`` puts ``eps`` outside the root
      ($g / (\sqrt{v} + \epsilon)$), has no ``grad_averaging``, defaults to
      ``b1=0.9, b2=0.25``, stores $v$ in the leaf's dtype, and chooses the first step with
      a ``lax.cond`` over the whole tree; optjx selects two scalars per leaf instead, which
      compiles faster and works under ``shard_map``.

    Examples:
      >>> tx = optjx.chain(optjx.scale_by_novograd(weight_decay=1e-3),
      ...                  optjx.scale_by_learning_rate(1e-2))
    """
    hypers = _hyper.Hyperparameters(
        b1=(b1, _hyper.DECAY),
        b2=(b2, _hyper.DECAY),
        eps=(eps, _hyper.NONNEGATIVE),
        weight_decay=(0.0 if weight_decay is None else weight_decay, _hyper.NONNEGATIVE),
    )
    decays = weight_decay is not None

    def init_fn(params):
        _tree.require_real(params, "scale_by_novograd")
        return ScaleByNovogradState(
            count=_state.zero_count(),
            mu=_tree.zeros_like(params),
            nu=jax.tree.map(lambda p: jnp.zeros([], _tree.accumulator_dtype(p.dtype)), params),
        )

    def update_fn(updates, state, params=None):
        _tree.check_matching(updates, state.mu)
        if decays:
            _tree.require_params(params, "scale_by_novograd with a weight_decay")
            _tree.check_matching(params, state.mu, what="params")
        h = hypers.at(state.count)
        beta1, beta2, eps_t, decay = h.b1, h.b2, h.eps, h.weight_decay

        # v_1 = ||g_1||^2 on the first step, the EMA afterwards: two scalar selects,
        # never a lax.cond over the tree (compile time, shard_map).
        first = state.count == 0
        # 1 - beta is taken before rounding to the float type, as torch does: rounding
        # 0.9999 to float32 first would change 1 - beta by 1.7e-4.
        keep = jnp.where(first, 0.0, _tree.default_float(beta2))
        mix = jnp.where(first, 1.0, _tree.default_float(1.0 - beta2))
        gain = _tree.default_float(1.0 - beta1) if grad_averaging else 1.0

        at = _hyper.per_dtype(keep=keep, mix=mix, eps=eps_t, gain=gain, decay=decay, b1=beta1)

        def second_moment(g, v):
            # In v's dtype (the accumulator dtype of the leaf, float32 at least): the
            # gradient is cast to it first, as every moment update casts to its state.
            squared_norm = _tree.sum_of_squares(g.astype(v.dtype), v.dtype)
            return at(v.dtype).keep * v + at(v.dtype).mix * squared_norm

        def first_moment(g, m, v, p):
            normalise = 1.0 / jnp.sqrt(v + at(v.dtype).eps)
            if grad_averaging:
                normalise = normalise * at(normalise.dtype).gain
            term = g.astype(m.dtype) * normalise.astype(m.dtype)
            if p is not None:
                term = term + at(m.dtype).decay * p.astype(m.dtype)
            return at(m.dtype).b1 * m + term

        nu = jax.tree.map(second_moment, updates, state.nu)
        if decays:
            mu = jax.tree.map(first_moment, updates, state.mu, nu, params)
        else:
            mu = jax.tree.map(lambda g, m, v: first_moment(g, m, v, None), updates, state.mu, nu)
        out = jax.tree.map(lambda g, m: m.astype(g.dtype), updates, mu)
        return out, ScaleByNovogradState(count=_state.next_count(state.count), mu=mu, nu=nu)

    return _state.transformation(init_fn, update_fn)
