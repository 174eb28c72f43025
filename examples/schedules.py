"""Every schedule in ``optjx.schedules``, plotted over 1000 steps.

    python examples/schedules.py [--quick] [--out DIR]

A schedule is a function ``count -> value`` evaluated at the number of updates already
applied (0 on the first update). Any float hyperparameter of any optjx optimizer takes
one: ``optjx.sgd(optjx.schedules.cosine(0.1, 1000), momentum=optjx.schedules.linear(0.5,
0.9, 1000))``. Writes ``schedules.png``; the script fails if ``optjx.schedules`` has a
schedule it does not draw, so the picture stays complete.
"""

from __future__ import annotations

import inspect

import jax.numpy as jnp
import numpy as np
from _common import parser, pyplot, save

import optjx
from optjx import schedules as S

STEPS = 1000


def examples():
    """``{schedule name: [(label, schedule), ...]}``, one panel per schedule."""
    return {
        "constant": [("constant(0.1)", S.constant(0.1))],
        "linear": [
            ("linear(0.1, 0.001, 800)  (Goodfellow 8.3.1)", S.linear(0.1, 0.001, 800)),
            ("linear(0.02, 0.08, 1000)", S.linear(0.02, 0.08, 1000)),
        ],
        "cosine": [
            ("cosine(0.1, 1000)", S.cosine(0.1, 1000)),
            ("cosine(0.1, 600, alpha=0.1)", S.cosine(0.1, 600, alpha=0.1)),
            (
                "cosine(0.1, 700, end_value=0.03,\n    exponent=2.0, transition_begin=200)",
                S.cosine(0.1, 700, end_value=0.03, exponent=2.0, transition_begin=200),
            ),
        ],
        "inverse_sqrt": [("inverse_sqrt(0.1)", S.inverse_sqrt(0.1))],
        "polynomial": [
            ("polynomial(0.1, 0.001, 2.0, 800)", S.polynomial(0.1, 0.001, 2.0, 800)),
            (
                "polynomial(0.1, 0.0, 0.5, 600,\n    transition_begin=200)",
                S.polynomial(0.1, 0.0, 0.5, 600, transition_begin=200),
            ),
        ],
        "inverse_time": [
            ("inverse_time(0.1, 1.0, 100)", S.inverse_time(0.1, 1.0, 100)),
            (
                "inverse_time(0.1, 1.0, 100, staircase=True)",
                S.inverse_time(0.1, 1.0, 100, staircase=True),
            ),
        ],
        "per_epoch": [
            (
                "per_epoch(piecewise_constant(0.1,\n    {3: 0.1, 6: 0.1}), 100)  (MultiStepLR)",
                S.per_epoch(S.piecewise_constant(0.1, {3: 0.1, 6: 0.1}), 100),
            ),
        ],
        "piecewise_constant": [
            (
                "piecewise_constant(0.1,\n    {300: 0.1, 600: 0.1, 900: 0.1})",
                S.piecewise_constant(0.1, {300: 0.1, 600: 0.1, 900: 0.1}),
            ),
        ],
        "exponential": [
            ("exponential(0.1, 0.5, 200)", S.exponential(0.1, 0.5, 200)),
            (
                "exponential(0.1, 0.5, 200, staircase=True)",
                S.exponential(0.1, 0.5, 200, staircase=True),
            ),
        ],
        "warmup": [
            ("warmup(cosine(0.1, 900), 100)", S.warmup(S.cosine(0.1, 900), 100)),
            ("warmup(0.1, 250, init_value=0.02)", S.warmup(0.1, 250, init_value=0.02)),
        ],
        "join": [
            (
                "join([linear(0, 0.1, 100), constant(0.1),\n      exponential(0.1, 0.1, 400)], [100, 500])",
                S.join(
                    [S.linear(0.0, 0.1, 100), S.constant(0.1), S.exponential(0.1, 0.1, 400)],
                    [100, 500],
                ),
            ),
        ],
    }


def public_schedules() -> list[str]:
    """The schedule factories ``optjx.schedules`` defines (not the helpers it imports)."""
    return sorted(
        name
        for name, obj in vars(optjx.schedules).items()
        if inspect.isfunction(obj)
        and not name.startswith("_")
        and obj.__module__ == optjx.schedules.__name__
    )


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    panels = examples()
    missing = sorted(set(public_schedules()) - set(panels))
    if missing:
        raise SystemExit(f"optjx.schedules has schedules this script does not draw: {missing}")

    count = jnp.arange(STEPS, dtype=jnp.int32)
    plt = pyplot()
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(16, 3.6 * rows), sharex=True, sharey=True)
    axes = axes.ravel()
    for ax, (name, lines) in zip(axes, panels.items(), strict=False):  # spare axes stay empty
        for i, (label, schedule) in enumerate(lines):
            values = np.asarray(schedule(count))
            assert values.shape == (STEPS,) and np.all(np.isfinite(values)), label
            ax.plot(np.arange(STEPS), values, color=f"C{i}", lw=1.5, label=label)
        ax.set_title(name)
        ax.set_ylim(0, 0.145)  # room above the curves for the legend
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    for ax in axes[len(panels) :]:
        ax.axis("off")
    for ax in axes[-cols:]:
        ax.set_xlabel("updates applied (count)")
    fig.suptitle(f"optjx.schedules over {STEPS} steps")
    fig.tight_layout()
    save(fig, args.out, "schedules.png")
    print(f"{len(panels)} schedules: {', '.join(panels)}")


if __name__ == "__main__":
    main()
