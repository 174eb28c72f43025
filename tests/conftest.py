"""Test setup: 8 virtual CPU devices, strict dtype promotion, and one compilation cache
shared by the session's processes, before JAX starts."""

import atexit
import os
import shutil
import tempfile

# Must be set before JAX initialises its backends: every multi-device test relies on it.
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
    os.environ["XLA_FLAGS"] = (_flags + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# One on-disk compilation cache for the session: pytest-xdist's workers inherit this
# variable from the process that sets it first, so a program that two tests build alike
# (the same optimizer rebuilt with the same hyperparameters, in two test files on two
# workers; inject_hyperparams rebuilding its inner optimizer at every eager call) is
# compiled once. The cache serves the executable XLA compiled, bit for bit; it is
# keyed by the program and the compile options, so nothing a test checks can differ.
if "OPTJX_TEST_COMPILATION_CACHE" not in os.environ:
    os.environ["OPTJX_TEST_COMPILATION_CACHE"] = tempfile.mkdtemp(prefix="optjx-jax-cache-")
    atexit.register(shutil.rmtree, os.environ["OPTJX_TEST_COMPILATION_CACHE"], True)

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_compilation_cache_dir", os.environ["OPTJX_TEST_COMPILATION_CACHE"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


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
