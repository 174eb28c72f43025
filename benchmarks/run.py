"""optjx against optax, and against this machine's memory bandwidth, in one process.

    python benchmarks/run.py                 # full run (a few minutes on a CPU)
    python benchmarks/run.py --quick         # reduced set, under a minute
    python benchmarks/run.py --only adam,novograd --sections step

Sections (``--sections``, default all):

* ``step``: jitted step time (params and state donated, warm-up excluded, median of
  interleaved repetitions) and compile time (trace + lower + compile, fresh each time)
  on trees of 1, 100 and 1000 float32 leaves holding 4M parameters in all.
* ``memory``: optimizer bytes per parameter (state, plus any second copy of the params
  the optimizer makes the user carry, as optax's ``LookaheadParams``).
* ``bandwidth``: one 16M-parameter leaf; the bytes each algorithm must read and write per
  step divided by its step time, as a fraction of a plain read+write copy of the same leaf
  timed in the same interleaving (the machine's practical limit).
* ``zero``: optimizer-state bytes per device for a ~10M-parameter model on 8 devices,
  replicated vs sharded with ``optjx.parallel.state_shardings`` (ZeRO stage 1). Computed
  from shard shapes (``jax.eval_shape``; nothing is allocated). Skipped when optjx has no
  ``parallel.state_shardings``.

Ratios are optjx / optax: below 1 means optjx is faster (or smaller). JAX picks the
device; the same command runs on a CPU or a GPU. Results go to ``benchmarks/results.json``
(``--output`` to change).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECTIONS = ("step", "memory", "bandwidth", "zero")


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="reduced set: fewer reps and sizes")
    p.add_argument("--only", default=None, help="comma-separated optimizers (e.g. adam,radam)")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated of {SECTIONS}")
    p.add_argument(
        "--leaves", default=None, help="comma-separated leaf counts (default 1,100,1000)"
    )
    p.add_argument("--reps", type=int, default=None, help="timed samples per step measurement")
    p.add_argument("--compile-reps", type=int, default=None, help="compilations timed per case")
    p.add_argument("--output", default=str(HERE / "results.json"), help="where to write the JSON")
    p.add_argument(
        "--report",
        metavar="JSON",
        default=None,
        help="print the tables of an earlier results file and exit (measures nothing)",
    )
    args = p.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    bad = [s for s in args.sections if s not in SECTIONS]
    if bad:
        p.error(f"unknown section(s) {bad}; choose from {SECTIONS}")
    return args


def settings(args) -> dict:
    if args.quick:
        cfg = dict(
            total=1_000_000,
            leaves=[1, 100],
            reps=5,
            compile_reps=1,
            compile_budget_s=0.0,
            big=4_000_000,
            big_reps=5,
            target_s=0.002,
        )
    else:
        cfg = dict(
            total=4_000_000,
            leaves=[1, 100, 1000],
            reps=15,
            compile_reps=3,
            compile_budget_s=20.0,
            big=16_000_000,
            big_reps=11,
            target_s=0.01,
        )
    if args.leaves:
        cfg["leaves"] = [int(x) for x in args.leaves.split(",")]
    if args.reps:
        cfg["reps"] = cfg["big_reps"] = args.reps
    if args.compile_reps:
        cfg["compile_reps"] = args.compile_reps
    return cfg


# The ZeRO section needs 8 devices. On a CPU that means virtual host devices, which must be
# requested before JAX starts; on a GPU machine the host platform gets them and the GPU is
# untouched. Done only when the section is requested.
_ARGS = parse_args(None if __name__ == "__main__" else [])
if (
    _ARGS.report is None
    and "zero" in _ARGS.sections
    and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", "")
):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()

sys.path.insert(0, str(HERE.parent))  # run from a source tree without installing
sys.path.insert(0, str(HERE))

import _cases  # noqa: E402
import _harness as H  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402


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
    n, base = H.count_params(params), H.tree_bytes(params)
    rows = []
    for case in cases:
        out = {}
        for lib, make in (("optjx", case.optjx_make), ("optax", case.optax_make)):
            init, _ = make()
            carried, state = jax.eval_shape(init, abstract)
            out[lib] = (H.tree_bytes(carried) - base + H.tree_bytes(state)) / n
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
    try:
        from optjx import parallel
    except ImportError:
        return None
    if not hasattr(parallel, "state_shardings"):
        return None
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
        full = H.tree_bytes(state)
        per_device = 0
        for leaf, sh in zip(jax.tree.leaves(state), jax.tree.leaves(shardings), strict=True):
            shard = sh.shard_shape(leaf.shape) if hasattr(sh, "shard_shape") else leaf.shape
            per_device += int(np.prod(shard)) * np.dtype(leaf.dtype).itemsize
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


# ----------------------------------------------------------------------------- report


def fmt_time(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} us"


def table(headers, rows) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]

    def line(r):
        padded = (
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        return "| " + " | ".join(padded) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in cells)])


def goals(results) -> list[dict]:
    out = []

    def goal(text, ok, detail):
        out.append(dict(goal=text, met=bool(ok), detail=detail))

    margin = 1.10
    for row in results.get("step", []):
        where = f"{row['name']} x{row['leaves']}"
        step = f"{row['step_ratio']:.2f} (cpu {row['step_cpu_ratio']:.2f})"
        comp = f"{row['compile_ratio']:.2f} (cpu {row['compile_cpu_ratio']:.2f})"
        goal(f"step <= 1.0x optax (+10%): {where}", row["step_ratio"] <= margin, step)
        goal(f"compile <= 1.0x optax (+10%): {where}", row["compile_ratio"] <= margin, comp)
        if row["name"] == "novograd" and row["leaves"] >= 1000:
            goal(f"novograd compile <= 0.6x optax: {where}", row["compile_ratio"] <= 0.6, comp)
        if row["name"] == "lookahead":
            goal(f"lookahead step <= 0.8x optax: {where}", row["step_ratio"] <= 0.8, step)
    for row in results.get("bandwidth", []):
        if row["name"] in ("sgd_momentum", "adam", "radam"):
            goal(
                f"one large leaf >= 0.7 of copy bandwidth: {row['name']}",
                row["fraction_optjx"] >= 0.7,
                f"{row['fraction_optjx']:.2f}",
            )
    return out


def report(results) -> str:
    parts = []
    m = results["machine"]
    devices = m["devices"]
    parts.append(
        f"machine: {m['cpu_model']} ({m['cpu_count']} cpus), backend {m['backend']} "
        f"({m['device_kind']}); timed on {devices[0]} of {len(devices)} device(s)"
    )
    parts.append(
        f"jax {m['jax']}, optax {m['optax']}, optjx {m['optjx']}; command: {results['command']}"
        + (f"; {results['date']}" if results.get("date") else "")
    )
    if results.get("step"):
        rows = [
            (
                r["label"],
                r["leaves"],
                fmt_time(r["step_optjx_s"]),
                fmt_time(r["step_optax_s"]),
                f"{r['step_ratio']:.2f}",
                f"{r['step_cpu_ratio']:.2f}",
                fmt_time(r["dispatch_floor_s"]),
                fmt_time(r["compile_optjx_s"]),
                fmt_time(r["compile_optax_s"]),
                f"{r['compile_ratio']:.2f}",
                f"{r['compile_cpu_ratio']:.2f}",
            )
            for r in results["step"]
        ]
        parts.append(
            f"\nStep and compile time ({results['config']['total']:,} float32 parameters per tree)\n"
            + table(
                [
                    "optimizer",
                    "leaves",
                    "step optjx",
                    "step optax",
                    "ratio",
                    "cpu ratio",
                    "floor",
                    "compile optjx",
                    "compile optax",
                    "ratio",
                    "cpu ratio",
                ],
                rows,
            )
        )
    if results.get("memory"):
        rows = [
            (
                r["label"],
                f"{r['bytes_per_param_optjx']:.2f}",
                f"{r['bytes_per_param_optax']:.2f}",
                "-" if r["ratio"] is None else f"{r['ratio']:.2f}",
            )
            for r in results["memory"]
        ]
        parts.append(
            "\nOptimizer memory, bytes per parameter (state + extra params copies)\n"
            + table(["optimizer", "optjx", "optax", "ratio"], rows)
        )
    if results.get("bandwidth"):
        bw = results["bandwidth"]
        rows = [
            (
                r["label"],
                r["arrays"],
                fmt_time(r["step_optjx_s"]),
                fmt_time(r["step_optax_s"]),
                f"{r['step_ratio']:.2f}",
                f"{r['copy_gbps']:.1f}",
                f"{r['fraction_optjx']:.2f}",
                f"{r['fraction_optax']:.2f}",
            )
            for r in bw
        ]
        parts.append(
            f"\nOne {bw[0]['params']:,}-parameter leaf: achieved bandwidth / copy bandwidth\n"
            + table(
                [
                    "optimizer",
                    "arrays r+w",
                    "step optjx",
                    "step optax",
                    "ratio",
                    "copy GB/s",
                    "optjx frac",
                    "optax frac",
                ],
                rows,
            )
        )
    z = results.get("zero")
    if z:
        rows = [
            (
                r["label"],
                f"{r['replicated_bytes_per_device'] / 2**20:.1f}",
                f"{r['sharded_bytes_per_device'] / 2**20:.1f}",
                f"{r['ratio']:.3f}",
            )
            for r in z["rows"]
        ]
        parts.append(
            f"\nZeRO-1: optjx state MiB per device, {z['params']:,} parameters on {z['devices']} devices\n"
            + table(["optimizer", "replicated", "sharded", "ratio"], rows)
        )
    g = results.get("goals", [])
    if g:
        missed = [x for x in g if not x["met"]]
        parts.append(f"\nGoals: {len(g) - len(missed)}/{len(g)} met")
        parts.extend(f"  MISSED {x['goal']} ({x['detail']})" for x in missed)
    if results.get("skipped"):
        parts.append(f"not yet in optjx (skipped): {', '.join(results['skipped'])}")
    return "\n".join(parts)


def main() -> int:
    args = _ARGS
    if args.report:
        print(report(json.loads(Path(args.report).read_text())))
        return 0
    cfg = settings(args)
    wanted = _cases.select(args.only)
    cases = [c for c in wanted if c.available()]
    skipped = [c.name for c in wanted if not c.available()]
    started = time.perf_counter()
    results = dict(
        command=" ".join(["python", "benchmarks/run.py", *sys.argv[1:]]),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        machine=H.machine_info(),
        config=dict(cfg, sections=args.sections),
        skipped=skipped,
        notes={c.name: c.note for c in cases if c.note},
    )
    log(f"devices: {results['machine']['devices']}")
    if cases and ("step" in args.sections or "bandwidth" in args.sections):
        warm_up(cases)
    if "step" in args.sections and cases:
        results["step"] = step_section(cases, cfg)
    if "memory" in args.sections and cases:
        results["memory"] = memory_section(cases)
    if "bandwidth" in args.sections and cases:
        results["bandwidth"] = bandwidth_section(cases, cfg)
    if "zero" in args.sections and cases:
        results["zero"] = zero_section(cases)
    results["goals"] = goals(results)
    results["seconds"] = time.perf_counter() - started
    print(report(results))
    print(f"\n({results['seconds']:.0f} s)")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
