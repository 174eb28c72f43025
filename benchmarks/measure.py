"""The measurements of ``benchmarks/run.py``: step and compile time, optimizer memory,
achieved bandwidth, and ZeRO-1 state bytes per device. Each section takes the cases and
the settings and returns rows (plain dicts) for ``report.py``; progress goes to stderr.
"""

from __future__ import annotations

import sys
import time

import _harness as H
import jax
import numpy as np
from report import fmt_time

from optjx import parallel


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def warm_up(cases) -> None:
    """Compile every step once on a tiny tree, so JAX's own first-use caches (jnp helpers
    jitted inside the library) do not count against whichever library compiles first."""
    tiny = H.make_tree(16, 2)
    for case in cases:
        for make in (case.optjx_make, case.optax_make):
            init, step = make()
            params, state = init(H.copy_tree(tiny))
            H.compile_step(step, params, state, tiny)


def _identity(params, state, grads):
    del grads
    return params, state


def step_section(cases, cfg) -> list[dict]:
    rows = []
    for leaves in cfg["leaves"]:
        params = H.make_tree(cfg["total"], leaves, seed=leaves)
        grads = H.scaled(params, 1e-3)
        for case in cases:
            t0 = time.perf_counter()
            makes = {"optjx": case.optjx_make, "optax": case.optax_make}
            wall = {"optjx": [], "optax": []}
            lower = {"optjx": [], "optax": []}
            cpu = {"optjx": [], "optax": []}
            runners = {}
            # Compile pairs in alternating order until compile_reps pairs or the time budget
            # (a 1000-leaf step takes tens of seconds to compile on a small CPU).
            rep = 0
            while rep < cfg["compile_reps"] and (
                rep == 0 or time.perf_counter() - t0 < cfg["compile_budget_s"]
            ):
                for lib in ("optjx", "optax") if rep % 2 == 0 else ("optax", "optjx"):
                    init, step = makes[lib]()
                    if lib not in runners:
                        r = runners[lib] = H.Runner(init, step, params, grads)
                        lo, co, cc = r.lower_s, r.compile_s, r.compile_cpu_s
                    else:
                        r = runners[lib]
                        _, lo, co, cc = H.compile_step(step, r.params, r.state, r.grads)
                    wall[lib].append(lo + co)
                    lower[lib].append(lo)
                    cpu[lib].append(cc)
                rep += 1
            # The dispatch floor: the same arrays in and out of a jitted call that computes
            # nothing (outputs alias the donated inputs).
            floor = H.Runner(case.optjx_make()[0], _identity, params, grads)
            trio = [runners["optjx"], runners["optax"], floor]
            inner = H.calibrate(trio, cfg["target_s"])
            ours, theirs, base = H.interleaved(trio, cfg["reps"], inner)
            med = {k: float(np.median(v)) for k, v in wall.items()}
            med_cpu = {k: float(np.median(v)) for k, v in cpu.items()}
            rows.append(
                dict(
                    name=case.name,
                    label=case.label,
                    leaves=leaves,
                    params=H.count_params(params),
                    step_optjx_s=ours["median"],
                    step_optax_s=theirs["median"],
                    step_ratio=ours["median"] / theirs["median"],
                    step_min_ratio=ours["min"] / theirs["min"],
                    step_cpu_ratio=ours["cpu"] / theirs["cpu"],
                    step_optjx_min_s=ours["min"],
                    step_optax_min_s=theirs["min"],
                    step_optjx_cpu_s=ours["cpu"],
                    step_optax_cpu_s=theirs["cpu"],
                    dispatch_floor_s=base["median"],
                    compile_optjx_s=med["optjx"],
                    compile_optax_s=med["optax"],
                    compile_ratio=med["optjx"] / med["optax"],
                    compile_cpu_ratio=med_cpu["optjx"] / med_cpu["optax"],
                    compile_optjx_cpu_s=med_cpu["optjx"],
                    compile_optax_cpu_s=med_cpu["optax"],
                    lower_optjx_s=float(np.median(lower["optjx"])),
                    lower_optax_s=float(np.median(lower["optax"])),
                    steps_per_sample=inner,
                    reps=cfg["reps"],
                    compile_reps=rep,
                )
            )
            x = rows[-1]
            log(
                f"  step {case.name:>12} x{leaves:<5} step {fmt_time(x['step_optjx_s']):>9} / "
                f"{fmt_time(x['step_optax_s']):>9} = {x['step_ratio']:4.2f} (cpu {x['step_cpu_ratio']:4.2f})"
                f"  compile {fmt_time(x['compile_optjx_s']):>9} / {fmt_time(x['compile_optax_s']):>9}"
                f" = {x['compile_ratio']:4.2f} (cpu {x['compile_cpu_ratio']:4.2f})"
                f"  [{time.perf_counter() - t0:.0f} s]"
            )
            del runners, trio, floor
    return rows


def memory_section(cases) -> list[dict]:
    """Bytes the optimizer adds beyond the params, per parameter (abstract: nothing allocated)."""
    params = H.make_tree(1_000_000, 10)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    n, base = H.count_params(params), parallel.bytes_per_device(params)
    rows = []
    for case in cases:
        out = {}
        for lib, make in (("optjx", case.optjx_make), ("optax", case.optax_make)):
            init, _ = make()
            carried, state = jax.eval_shape(init, abstract)
            out[lib] = (
                parallel.bytes_per_device(carried) - base + parallel.bytes_per_device(state)
            ) / n
        rows.append(
            dict(
                name=case.name,
                label=case.label,
                bytes_per_param_optjx=out["optjx"],
                bytes_per_param_optax=out["optax"],
                ratio=out["optjx"] / out["optax"] if out["optax"] else None,
            )
        )
    return rows


def bandwidth_section(cases, cfg) -> list[dict]:
    size = cfg["big"]
    params = H.make_tree(size, 1, seed=7)
    grads = H.scaled(params, 1e-3)
    itemsize = 4
    copy_bytes = 2 * size * itemsize

    def copy_init(p):
        return p, ()

    def copy_step(p, s, g):
        del g
        # A real read and write of every element (x * 1 + 0 would be simplified away).
        return jax.tree.map(lambda x: x * 0.5 + 0.25, p), s

    rows = []
    for case in cases:
        copy = H.Runner(copy_init, copy_step, params, grads)
        ours = H.Runner(*case.optjx_make(), params, grads)
        theirs = H.Runner(*case.optax_make(), params, grads)
        trio = [copy, ours, theirs]
        inner = H.calibrate(trio, cfg["target_s"])
        t_copy, t_ours, t_theirs = (
            x["median"] for x in H.interleaved(trio, cfg["big_reps"], inner)
        )
        algo_bytes = case.arrays * size * itemsize
        copy_bw = copy_bytes / t_copy
        rows.append(
            dict(
                name=case.name,
                label=case.label,
                params=size,
                arrays=case.arrays,
                bytes_per_step=algo_bytes,
                copy_s=t_copy,
                copy_gbps=copy_bw / 1e9,
                step_optjx_s=t_ours,
                step_optax_s=t_theirs,
                step_ratio=t_ours / t_theirs,
                fraction_optjx=algo_bytes / t_ours / copy_bw,
                fraction_optax=algo_bytes / t_theirs / copy_bw,
            )
        )
        log(
            f"  bandwidth {case.name:>12} copy {copy_bw / 1e9:6.1f} GB/s  "
            f"optjx {rows[-1]['fraction_optjx']:.2f}  optax {rows[-1]['fraction_optax']:.2f}"
        )
        del copy, ours, theirs, trio
    return rows


def zero_section(cases) -> dict | None:
    """Per-device optimizer-state bytes for a ~10M-parameter model on 8 devices."""
    from jax.sharding import Mesh

    devices = jax.devices("cpu")
    if len(devices) < 8:
        log("  zero: fewer than 8 host devices; skipped")
        return None
    mesh = Mesh(np.array(devices[:8]), ("data",))
    # A small transformer-like tree: 4 blocks of 1536x768 + 768x1536 matrices (plus odd-sized
    # biases and norms, which a ZeRO split cannot divide by 8 and keeps replicated).
    shapes = {"embed": (5000, 256), "proj": (256, 768)}
    for b in range(4):
        shapes[f"block{b}/w_in"] = (768, 1536)
        shapes[f"block{b}/b_in"] = (1536,)
        shapes[f"block{b}/w_out"] = (1536, 768)
        shapes[f"block{b}/b_out"] = (768,)
        shapes[f"block{b}/norm"] = (7,)  # deliberately indivisible
    abstract = {k: jax.ShapeDtypeStruct(v, np.float32) for k, v in shapes.items()}
    n = sum(int(np.prod(v)) for v in shapes.values())
    rows = []
    for case in cases:
        init, _ = case.optjx_make()
        _, state = jax.eval_shape(init, abstract)
        shardings = parallel.state_shardings(state, mesh, "data")
        full = parallel.bytes_per_device(state)
        per_device = parallel.bytes_per_device(state, shardings)
        rows.append(
            dict(
                name=case.name,
                label=case.label,
                params=n,
                devices=8,
                replicated_bytes_per_device=full,
                sharded_bytes_per_device=per_device,
                ratio=per_device / full if full else None,
            )
        )
    return {"params": n, "devices": 8, "rows": rows}
