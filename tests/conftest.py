"""Test setup: 8 virtual CPU devices, XLA:CPU's faster-compiling emitters, one LLVM
module per program and LLVM at -O0, strict dtype promotion, and one compilation cache
shared by the session's processes, before JAX starts."""

import atexit
import gc
import importlib.util
import mmap
import os
import shutil
import sys
import tempfile
from pathlib import Path

# Must be set before JAX initialises its backends: every multi-device test relies on it.
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
    _flags = (_flags + " --xla_force_host_platform_device_count=8").strip()


def _jaxlib_knows(flag: str) -> bool:
    """Whether the installed jaxlib parses ``flag`` (XLA aborts the process on an unknown
    flag in XLA_FLAGS), read from its shared libraries without importing it."""
    spec = importlib.util.find_spec("jaxlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for path in Path(folder).glob("*.so"):
            with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                if m.find(flag.encode()) >= 0:
                    return True
    return False


# XLA:CPU's older elemental emitters instead of its MLIR fusion emitters: the same
# programs compile in about half the CPU time (a full-batch update on one leaf, CPU
# seconds: bfgs 2.4 -> 1.2, lbfgs_b 3.8 -> 2.4), and compilation is most of this suite's
# time. Both are XLA
# configurations; results differ by rounding only (they contract multiply-adds
# differently: of the 1,135 numbers of the float64 L-BFGS-B golden replays, 190 move, by
# 5e-13 relative at most but in Rosenbrock's valley, which amplifies it to 1.7e-10), inside
# every tolerance here, each justified against its reference. The quickstart, the
# README's main job, runs as users run it, with XLA's defaults; the other example scripts
# compile with these settings (tests/integration/test_examples.py).
#
# And one LLVM module per program where XLA splits it into 32 to compile the parts on
# several threads: with both cores busy running the two workers, the split only adds work
# (three test files, single process: 106 -> 97 CPU s, two runs each). It changes
# rounding in few programs: the 2,490 arrays of 6 steps of every registry entry, of the
# transcendental functions and of the L-BFGS-B golden replays are bit-identical; one
# MINPACK path (Lanczos3/start2) ends one evaluation earlier, on a path MINPACK itself
# takes from a start moved by 1e-16 (tests/full_batch/test_least_squares.py).
#
# And LLVM at -O0 (XLA's backend optimisation level; XLA fuses the same kernels, its HLO
# passes do not read it): the suite's programs are small and run for a few steps, so
# what LLVM's optimisations save at run time they cost many times over at compile time
# (an lbfgs_b update compiles in 0.7 CPU s instead of 1.2; the suite, back to back on
# one machine: 625 CPU s against 834, 5 min 45 s against 7 min 35 s). No multiply-add is
# contracted at -O0, so results differ by rounding only, as under the settings above: of
# the 2,490 arrays checked, 1,252 move in their last bits (XLA's tanh by up to 10 ulp, as
# accurate as before: 4.6 against 4.3 ulp from the exact value in float32; its rsqrt by
# 1). Four tests had bounds tighter than what their reference spreads by itself; each
# bound is now that spread, measured (test_bfgs.py, test_minimize.py,
# test_inv_loss_driven.py, test_inv_least_squares.py).
#
# OPTJX_TEST_XLA_DEFAULTS=1 runs the whole suite with XLA's defaults.
_TEST_SETTINGS = {
    "xla_cpu_use_fusion_emitters": "false",
    "xla_cpu_parallel_codegen_split_count": "1",
    "xla_backend_optimization_level": "0",
}
for _name, _value in _TEST_SETTINGS.items():
    if (
        os.environ.get("OPTJX_TEST_XLA_DEFAULTS") != "1"
        and _name not in _flags
        and _jaxlib_knows(_name)
    ):
        _flags += f" --{_name}={_value}"
os.environ["XLA_FLAGS"] = _flags
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


def _exit_without_teardown() -> None:
    """End a pytest-xdist worker at once when it exits: its tests have run and reported
    (the controller has already told it to stop), and tearing down the interpreter,
    which frees the several thousand programs JAX compiled one by one, kept the session
    waiting several seconds at its end."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if os.environ.get("PYTEST_XDIST_WORKER"):
    # atexit runs last-registered first: this runs before JAX's own clean-up.
    atexit.register(_exit_without_teardown)


def pytest_collection_finish(session):
    """Python's full garbage collections scan every object alive, and a worker holds
    hundreds of thousands (the collected modules, torch, thousands of compiled programs):
    they cost each worker 8 to 11 s of CPU. What collection leaves alive (the modules,
    alive for the session anyway) is moved out of their reach (``gc.freeze``), and a full
    collection runs after every 100 collections of the middle generation instead of
    every 10 (each worker's full collections: 8 -> 3 and 11 -> 5 s). Cyclic garbage is
    still freed, later; nothing a test checks changes."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 100)


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
