"""Shared data and models for the integration tests (Flax Linen, Flax NNX, examples)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

flax = pytest.importorskip("flax")
pytest.importorskip("sklearn")


@pytest.fixture(scope="session")
def digits():
    """All 1797 digits as ``(x, y)``: float32 pixels in [0, 1], shape (1797, 64), int32 labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return jnp.asarray(data.data / 16.0, jnp.float32), jnp.asarray(data.target, jnp.int32)


@pytest.fixture(scope="session")
def linen_mlp():
    """A Linen MLP 64 -> 32 -> 10 and its initial params (seed 0)."""
    import flax.linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(10)(nn.relu(nn.Dense(32)(x)))

    model = MLP()
    return model, model.init(jax.random.key(0), jnp.zeros((1, 64), jnp.float32))
