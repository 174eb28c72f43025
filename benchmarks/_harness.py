"""Measurement helpers for ``benchmarks/run.py``: trees, step and compile timing, machine.

Everything here is library-agnostic: a benchmark case hands over an ``init`` and a pure
``step(params, state, grads) -> (params, state)`` per library, and the helpers jit, time
and count them the same way for optjx and optax.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Step = Callable  # (params, state, grads) -> (params, state)
Init = Callable  # params -> (params, state)


# ----------------------------------------------------------------------------- trees


def make_tree(total: int, leaves: int, *, seed: int = 0, dtype=jnp.float32):
    """``leaves`` float32 vectors holding ``total`` parameters in all (equal sizes)."""
    size = max(1, total // leaves)
    rng = np.random.default_rng(seed)
    width = len(str(leaves - 1))
    return {
        f"layer_{i:0{width}d}": jnp.asarray(rng.standard_normal(size, dtype=np.float32), dtype)
        for i in range(leaves)
    }


def scaled(tree, factor: float):
    """A tree of the same shapes, used as fixed gradients (never donated)."""
    return jax.tree.map(lambda x: x * factor, tree)


def copy_tree(tree):
    """Fresh buffers: a step donates its params, so each library gets its own copy."""
    return jax.tree.map(jnp.copy, tree)


def count_params(tree) -> int:
    return sum(int(np.prod(np.shape(x))) for x in jax.tree.leaves(tree))


# ----------------------------------------------------------------------------- timing


def compile_step(step: Step, params, state, grads):
    """Trace, lower and compile ``step`` from scratch, donating params and state.

    Returns ``(executable, lower_seconds, compile_seconds, cpu_seconds)``: wall time of
    trace + lower, wall time of the XLA compilation, and this process's CPU time for both
    (less sensitive to other processes on a shared machine). A new ``jax.jit`` of a new
    closure each call, so neither the trace cache nor the executable cache is hit.
    """

    def fresh(p, s, g):
        return step(p, s, g)

    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), (params, state, grads)
    )
    c0, t0 = time.process_time(), time.perf_counter()
    lowered = jax.jit(fresh, donate_argnums=(0, 1)).lower(*abstract)
    t1 = time.perf_counter()
    executable = lowered.compile()
    t2, c1 = time.perf_counter(), time.process_time()
    return executable, t1 - t0, t2 - t1, c1 - c0


class Runner:
    """One library's compiled step and its current (donated, carried) params and state."""

    def __init__(self, init: Init, step: Step, params, grads):
        self.params, self.state = init(copy_tree(params))
        self.grads = grads
        self.executable, self.lower_s, self.compile_s, self.compile_cpu_s = compile_step(
            step, self.params, self.state, grads
        )
        self.cpu_per_step: list[float] = []

    def run(self, n: int) -> float:
        """Wall seconds per step over ``n`` back-to-back steps, ended by ``block_until_ready``.

        The process CPU time per step is appended to ``cpu_per_step``.
        """
        c0, t0 = time.process_time(), time.perf_counter()
        p, s = self.params, self.state
        for _ in range(n):
            p, s = self.executable(p, s, self.grads)
        jax.block_until_ready((p, s))
        self.params, self.state = p, s
        t1, c1 = time.perf_counter(), time.process_time()
        self.cpu_per_step.append((c1 - c0) / n)
        return (t1 - t0) / n


def calibrate(runners: Sequence[Runner], target_s: float) -> int:
    """Steps per sample so the slowest runner's sample lasts about ``target_s``.

    On a CPU a step of millions of parameters already lasts milliseconds (one step per
    sample); on a GPU it lasts microseconds and dispatch would dominate one step alone.
    """
    for r in runners:  # warm-up: first calls page in buffers and thread pools
        r.run(1)
    slowest = max(r.run(1) for r in runners)
    return max(1, min(1000, math.ceil(target_s / max(slowest, 1e-7))))


def interleaved(runners: Sequence[Runner], reps: int, inner: int) -> list[dict]:
    """Per runner: median and min wall seconds per step, and median CPU seconds per step.

    Samples are taken in turn (the order rotated each round), so slow spells of a shared
    machine fall on every runner alike. The median is the headline; the minimum is the
    least disturbed sample; CPU time excludes time spent waiting for a core.
    """
    samples: list[list[float]] = [[] for _ in runners]
    for r in runners:
        r.cpu_per_step.clear()
    k = len(runners)
    for rep in range(reps):
        for j in range(k):
            i = (rep + j) % k
            samples[i].append(runners[i].run(inner))
    return [
        dict(median=statistics.median(s), min=min(s), cpu=statistics.median(r.cpu_per_step))
        for s, r in zip(samples, runners, strict=True)
    ]


# ----------------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    import optax

    try:
        import optjx

        optjx_version = optjx.__version__
    except Exception:  # noqa: BLE001 - report, do not fail, if the version is unknown
        optjx_version = "unknown"
    devices = jax.devices()
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": getattr(jax.lib, "__version__", None) or _jaxlib_version(),
        "optax": optax.__version__,
        "optjx": optjx_version,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind,
    }


def _jaxlib_version():
    try:
        import jaxlib

        return jaxlib.__version__
    except Exception:  # noqa: BLE001
        return None
