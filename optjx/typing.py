"""The types in optjx's public signatures, for annotating your own code.

```python
from optjx.typing import Hyperparameter, Schedule

def my_optimizer(learning_rate: Hyperparameter = 1e-3) -> optjx.GradientTransformation:
    ...

warm: Schedule = optjx.schedules.warmup(optjx.schedules.cosine(1e-3, 10_000), 500)
```

The protocol types (`GradientTransformation`, `GradientTransformationExtraArgs`,
`EmptyState`) are optax's, re-exported by `optjx`; optax ships no type information, so a
type checker sees them as `Any`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Union

import jax
import numpy as np
from jax.typing import ArrayLike

Schedule = Callable[[ArrayLike], jax.Array]
"""What every factory in `optjx.schedules` returns: a function of the number of updates
already applied (a Python int, or an integer NumPy or JAX array of any shape) to the value
at that count, a JAX array of the count's shape."""

Scalar = Union[float, int, np.floating, np.integer, np.ndarray, jax.Array]
"""A real number, or a NumPy or JAX array of real numbers (a scalar where a
hyperparameter is meant)."""

ScheduleLike = Callable[[jax.Array], Scalar]
"""What a hyperparameter and the schedule combinators (`warmup`, `join`, `per_epoch`)
accept as a schedule: any function of the int32 count (a JAX array) that returns a real
number or a scalar array. Every `Schedule` is one."""

Hyperparameter = Union[Scalar, ScheduleLike]
"""A float hyperparameter (learning rate, momentum, betas, eps, weight decay, ...): a
Python number, a NumPy or JAX scalar or array (a traced one too, so `jax.vmap` over it
works) or a `ScheduleLike` of the number of updates already applied. A concrete value
is checked at construction (`ValueError` naming the argument and its range); a value of
another type raises `TypeError` naming it."""

__all__ = ["Hyperparameter", "Scalar", "Schedule", "ScheduleLike"]
