"""Adafactor's factored state against Adam's full moments, on one 4096x4096 float32 matrix.

Bytes per parameter of the optimizer state (every array leaf of ``init``'s result), from
``jax.eval_shape``: nothing is allocated, so it runs in a second on any machine.

    python benchmarks/adafactor_memory.py [--rows 4096] [--cols 4096]
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
import optax

import optjx

CANDIDATES = {
    "optjx.adafactor": lambda: optjx.adafactor(1e-3),
    "optax.adafactor": lambda: optax.adafactor(1e-3),
    "optjx.adam": lambda: optjx.adam(1e-3),
    "optax.adam": lambda: optax.adam(1e-3),
}


def state_bytes(make, params) -> int:
    """Bytes of every array in the optimizer state built on ``params``."""
    state = jax.eval_shape(make().init, params)
    return sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(state))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--cols", type=int, default=4096)
    args = parser.parse_args()
    params = {"w": jax.ShapeDtypeStruct((args.rows, args.cols), np.float32)}
    n = args.rows * args.cols
    print(f"One {args.rows}x{args.cols} float32 matrix ({n:,} parameters): optimizer state")
    print("| optimizer       | state bytes | bytes per parameter |")
    print("|-----------------|-------------|---------------------|")
    for name, make in CANDIDATES.items():
        size = state_bytes(make, params)
        print(f"| {name:<15} | {size:>11,} | {size / n:>19.5f} |")


if __name__ == "__main__":
    main()
