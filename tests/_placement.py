"""Arrays placed as a run places them, so that a restored checkpoint reuses compiled code."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def uncommitted(tree):
    """``tree``'s arrays copied through host memory (bit for bit): uncommitted to a device.

    orbax restores arrays committed to their device, while the arrays a run makes from
    ``jnp`` values are not, and ``jax.jit`` compiles a program for each placement: a run
    continued from a restored checkpoint compiled every update a second time.
    """
    return jax.tree.map(lambda x: jnp.asarray(np.asarray(x)), tree)
