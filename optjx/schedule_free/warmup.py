r"""The schedule-free warm-up and the checks of its arguments.

Shared by ``optjx.schedule_free`` and the aliases in ``optjx.schedule_free.aliases``:
the built-in linear warm-up of the learning rate (the reference's ``warmup_steps``), which
the schedule-free stage owns because the one warmed-up rate feeds both the ``z`` step and
the averaging weights, and the range of the interpolation momentum.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from optjx import _hyper, _tree
from optjx._hyper import check_int

# beta = 0 makes y = z, so x cannot be recovered from (y, z); beta = 1 makes y = x and
# z unused. The reference forbids both; the limits are documented, not accepted.
OPEN_UNIT = _hyper.Range(low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)


def has_no_warmup(warmup_steps) -> bool:
    """Whether the warm-up (and the step counter it reads) is dropped.

    Args:
      warmup_steps: the factory's ``warmup_steps``.

    Returns:
      ``True`` only for the Python int 0; an array, whatever its value, keeps the stage
      (so ``optax.inject_hyperparams`` sees one state structure).
    """
    return isinstance(warmup_steps, int) and warmup_steps == 0


def _is_traced_int_scalar(value) -> bool:
    return (
        isinstance(value, jax.core.Tracer)
        and np.ndim(value) == 0
        and jnp.issubdtype(value.dtype, jnp.integer)
    )


def warmup_factor(count, warmup_steps):
    r"""The factor of the learning rate at $k$ = ``count`` applied updates.

    $$
    \text{factor}_k = \min\Big(1, \frac{k + 1}{n}\Big), \qquad n = \text{warmup\_steps}
    $$

    the reference's linear warm-up: the first update already takes $1/n$ of the rate and
    update $n$ the full rate; 1 for $n = 0$.

    Args:
      count: the number of updates already applied (an int32 scalar).
      warmup_steps: $n \ge 0$, a Python int or an integer scalar array (as
        ``optax.inject_hyperparams`` injects it).

    Returns:
      The Python float 1.0 for a Python 0, else a float scalar array.
    """
    if has_no_warmup(warmup_steps):
        return 1.0
    steps = jnp.asarray(warmup_steps, jnp.int32)
    ramp = _tree.default_float(jnp.minimum(count + 1, steps)) / _tree.default_float(
        jnp.maximum(steps, 1)
    )
    return jnp.where(steps > 0, ramp, 1.0)


def check_warmup(warmup_steps, learning_rate) -> None:
    """Validate ``warmup_steps`` against the learning rate.

    Args:
      warmup_steps: an int ``>= 0`` or an integer scalar array (as injected by
        ``optax.inject_hyperparams``); a traced array is not range-checked.
      learning_rate: the factory's learning rate; a schedule requires ``warmup_steps=0``.

    Returns:
      ``None``.

    Raises:
      TypeError: ``warmup_steps`` not an int or an integer scalar array.
      ValueError: ``warmup_steps`` negative, or positive while ``learning_rate`` is a
        schedule (put the warm-up inside the schedule).
    """
    if not _is_traced_int_scalar(warmup_steps):  # a traced one cannot be range-checked
        check_int("warmup_steps", warmup_steps, 0, array_ok=True)
    if callable(learning_rate) and not has_no_warmup(warmup_steps):
        raise ValueError(
            f"warmup_steps must be 0 when learning_rate is a schedule, got {warmup_steps}: "
            "the schedule replaces the built-in warm-up, so put the warm-up inside it"
        )
