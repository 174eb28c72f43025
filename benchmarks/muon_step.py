"""Muon on trees of matrices: ``optjx.muon`` against ``optax.contrib.muon``.

``benchmarks/run.py`` times float32 vectors, which Muon does not orthogonalise (optax's
sends them to its Adam fallback, optjx's refuses them), so Muon gets its own trees: square
float32 matrices, 262,144 parameters in all (1 x 512x512, 16 x 128x128, 256 x 32x32;
Newton-Schulz costs ~30 n^3 flops per n x n matrix, so 4M parameters would take seconds
per step on a small CPU). Same settings on both sides: learning rate 1e-3, momentum 0.95,
Nesterov, 5 Newton-Schulz steps with the same coefficients, no weight decay, float32
iteration (``ns_dtype=jnp.float32``; optjx's default bfloat16 is timed too, as a third
contender). Not the same algorithm: optjx is ``torch.optim.Muon`` (eps 1e-7 added to the
Frobenius norm, the ``sqrt(max(1, A/B))`` scale); optax's (eps 1e-8, no shape scale) is
the nearest twin.

Step and compile time as in ``run.py`` (``_harness``: donated params and state, samples
taken in turn, fresh compilations in alternating order), and the optimizer state in bytes
per parameter.

    python benchmarks/muon_step.py [--reps 15] [--compile-reps 3] [--leaves 1,16,256]
"""

from __future__ import annotations

import argparse
import statistics

import _cases
import _harness as H
import jax
import jax.numpy as jnp
import numpy as np
import optax

import optjx

TOTAL = 512 * 512
CONTENDERS = {
    "optjx.muon float32": lambda: optjx.muon(1e-3, weight_decay=None, ns_dtype=jnp.float32),
    "optax.contrib.muon": lambda: optax.contrib.muon(1e-3),
    "optjx.muon bfloat16": lambda: optjx.muon(1e-3, weight_decay=None),
}


def matrices(leaves: int, seed: int):
    """``leaves`` square float32 matrices holding ``TOTAL`` parameters in all."""
    side = int(round((TOTAL // leaves) ** 0.5))
    rng = np.random.default_rng(seed)
    return {
        f"w{i:03d}": jnp.asarray(rng.standard_normal((side, side), dtype=np.float32))
        for i in range(leaves)
    }


def plain(make):
    """``(init, step)`` of the transformation ``make()`` builds (``_cases.plain``)."""
    return _cases.plain(make)()


def bytes_per_parameter(make, params) -> float:
    state = jax.eval_shape(make().init, params)
    size = sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(state))
    return size / H.count_params(params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--compile-reps", type=int, default=3)
    parser.add_argument("--leaves", default="1,16,256")
    args = parser.parse_args()
    print(f"jax {jax.__version__}, optax {optax.__version__}, {H.cpu_model()}")
    print(
        "| contender | leaves | matrix | step | ratio | cpu ratio | compile | ratio | bytes/param |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for leaves in (int(x) for x in args.leaves.split(",")):
        params = matrices(leaves, seed=leaves)
        grads = H.scaled(params, 1e-3)
        side = next(iter(params.values())).shape[0]
        runners = {k: H.Runner(*plain(m), params, grads) for k, m in CONTENDERS.items()}
        compiles = {k: [r.lower_s + r.compile_s] for k, r in runners.items()}
        names = list(CONTENDERS)
        for rep in range(1, args.compile_reps):
            for k in names if rep % 2 else names[::-1]:
                r = runners[k]
                _, lo, co, _ = H.compile_step(plain(CONTENDERS[k])[1], r.params, r.state, r.grads)
                compiles[k].append(lo + co)
        trio = list(runners.values())
        inner = H.calibrate(trio, 0.01)
        timed = dict(zip(names, H.interleaved(trio, args.reps, inner), strict=True))
        ref = timed["optax.contrib.muon"]
        ref_compile = statistics.median(compiles["optax.contrib.muon"])
        for k in names:
            t, c = timed[k], statistics.median(compiles[k])
            print(
                f"| {k} | {leaves} | {side}x{side} | {1e3 * t['median']:.2f} ms "
                f"| {t['median'] / ref['median']:.2f} | {t['cpu'] / ref['cpu']:.2f} "
                f"| {1e3 * c:.0f} ms | {c / ref_compile:.2f} "
                f"| {bytes_per_parameter(CONTENDERS[k], params):.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
