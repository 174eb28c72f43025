"""The report of ``benchmarks/run.py``: the goals, the tables printed from a results dict
(a fresh run or an earlier ``results.json``), and writing that JSON.
"""

from __future__ import annotations

import json
from pathlib import Path


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


def write(results, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(results, indent=1) + "\n")


def read(path) -> dict:
    return json.loads(Path(path).read_text())
