"""Test setup: 8 virtual CPU devices and strict dtype promotion, before JAX starts."""

import os

# Must be set before JAX initialises its backends: every multi-device test relies on it.
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
    os.environ["XLA_FLAGS"] = (_flags + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def strict_promotion():
    """Strict dtype promotion: a silent bf16 -> float32 or float32 -> float64 promotion in
    optjx becomes an error in the test instead of a slow or wrong step in users' code.
    (Not global: optax and flax themselves rely on standard promotion.)"""
    with jax.numpy_dtype_promotion("strict"):
        yield


@pytest.fixture
def x64():
    """Run a test with float64 enabled (for NumPy and torch references), then restore."""
    with jax.enable_x64(True):
        yield
