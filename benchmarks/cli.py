"""Command line of ``benchmarks/run.py``: the arguments, the settings they select, and the
host devices the ZeRO section needs (requested before JAX starts). Nothing here runs at
import: ``run.py`` calls it from ``main()``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECTIONS = ("step", "memory", "bandwidth", "zero")


def parse_args(argv=None, description: str | None = None):
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
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


def request_host_devices(args) -> None:
    """The ZeRO section needs 8 devices. On a CPU that means virtual host devices, which
    must be requested before JAX starts; on a GPU machine the host platform gets them and
    the GPU is untouched. Done only when the section is requested."""
    if (
        args.report is None
        and "zero" in args.sections
        and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", "")
    ):
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
        ).strip()
