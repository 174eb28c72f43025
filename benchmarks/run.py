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

import sys
import time
from pathlib import Path

import cli

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    args = cli.parse_args(argv, description=__doc__)
    if args.report:
        import report

        print(report.report(report.read(args.report)))
        return 0
    cli.request_host_devices(args)  # before JAX starts
    sys.path.insert(0, str(HERE.parent))  # run from a source tree without installing

    import _cases
    import _harness as H
    import measure
    import report

    cfg = cli.settings(args)
    wanted = _cases.select(args.only)
    cases = [c for c in wanted if c.available()]
    skipped = [c.name for c in wanted if not c.available()]
    started = time.perf_counter()
    results = dict(
        command=" ".join(
            ["python", "benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        machine=H.machine_info(),
        config=dict(cfg, sections=args.sections),
        skipped=skipped,
        notes={c.name: c.note for c in cases if c.note},
    )
    measure.log(f"devices: {results['machine']['devices']}")
    if cases and ("step" in args.sections or "bandwidth" in args.sections):
        measure.warm_up(cases)
    if "step" in args.sections and cases:
        results["step"] = measure.step_section(cases, cfg)
    if "memory" in args.sections and cases:
        results["memory"] = measure.memory_section(cases)
    if "bandwidth" in args.sections and cases:
        results["bandwidth"] = measure.bandwidth_section(cases, cfg)
    if "zero" in args.sections and cases:
        results["zero"] = measure.zero_section(cases)
    results["goals"] = report.goals(results)
    results["seconds"] = time.perf_counter() - started
    print(report.report(results))
    print(f"\n({results['seconds']:.0f} s)")
    report.write(results, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
