"""Every schedule in ``optjx.schedules``, plotted over 1000 steps.

    python examples/schedules.py [--quick] [--out DIR]

A schedule is a function ``count -> value`` evaluated at the number of updates already
applied (0 on the first update). Any float hyperparameter of any optjx optimizer takes
one: ``optjx.sgd(optjx.schedules.cosine(0.1, 1000), momentum=optjx.schedules.linear(0.5,
0.9, 1000))``. Writes ``schedules.png`` and ``schedules_torch.png`` (the counterparts of
``torch.optim.lr_scheduler``); the script fails if ``optjx.schedules`` has a schedule it
does not draw, so the pictures stay complete.
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


def torch_examples():
    """The ``torch.optim.lr_scheduler`` counterparts, one panel each (base rate 0.1)."""
    one_cycle = dict(max_lr=0.1, total_steps=STEPS, three_phase=False)
    cyclic = dict(base_lr=0.02, max_lr=0.1, step_size_up=150, mode="triangular2")
    warm_up = S.linear_lr(0.1, start_factor=0.1, total_iters=100)
    return {
        "constant_lr": [
            ("constant_lr(0.1, factor=1/3, total_iters=300)", S.constant_lr(0.1, 1 / 3, 300))
        ],
        "linear_lr": [
            ("linear_lr(0.1, 0.1, 1.0, total_iters=500)", S.linear_lr(0.1, 0.1, 1.0, 500))
        ],
        "polynomial_lr": [
            ("polynomial_lr(0.1, total_iters=800, power=2)", S.polynomial_lr(0.1, 800, 2.0))
        ],
        "exponential_lr": [("exponential_lr(0.1, gamma=0.997)", S.exponential_lr(0.1, 0.997))],
        "step_lr": [("step_lr(0.1, step_size=250, gamma=0.5)", S.step_lr(0.1, 250, 0.5))],
        "multi_step_lr": [
            (
                "multi_step_lr(0.1, [300, 600, 800], gamma=0.3)",
                S.multi_step_lr(0.1, [300, 600, 800], 0.3),
            )
        ],
        "lambda_lr": [
            (
                "lambda_lr(0.1, k -> 1 / sqrt(1 + k / 50))",
                S.lambda_lr(0.1, lambda k: 1 / jnp.sqrt(1 + k / 50)),
            )
        ],
        "multiplicative_lr": [
            (
                "multiplicative_lr(0.1, k -> 0.999 or 0.5\n    every 400)",
                S.multiplicative_lr(0.1, lambda k: jnp.where(k % 400 == 0, 0.5, 0.999)),
            )
        ],
        "cosine_annealing_lr": [
            ("cosine_annealing_lr(0.1, T_max=400)  (rises)", S.cosine_annealing_lr(0.1, 400)),
            (
                "cosine_annealing_lr(0.1, 400, 0.01,\n    after_t_max='hold')",
                S.cosine_annealing_lr(0.1, 400, 0.01, after_t_max="hold"),
            ),
        ],
        "cosine_annealing_warm_restarts": [
            (
                "cosine_annealing_warm_restarts(0.1,\n    T_0=100, T_mult=2)",
                S.cosine_annealing_warm_restarts(0.1, 100, 2),
            )
        ],
        "cyclic_lr": [("cyclic_lr(0.02, 0.1, 150, 'triangular2')", S.cyclic_lr(**cyclic))],
        "cyclic_momentum": [("cyclic_momentum(same arguments)", S.cyclic_momentum(**cyclic))],
        "one_cycle_lr": [
            ("one_cycle_lr(0.1, total_steps=1000)", S.one_cycle_lr(**one_cycle)),
            (
                "one_cycle_lr(..., three_phase=True,\n    anneal_strategy='linear')",
                S.one_cycle_lr(**{**one_cycle, "three_phase": True, "anneal_strategy": "linear"}),
            ),
        ],
        "one_cycle_momentum": [
            ("one_cycle_momentum(same arguments)", S.one_cycle_momentum(**one_cycle))
        ],
        "swa_lr": [
            (
                "sequential_lr([cosine_annealing_lr(0.1, 600),\n    swa_lr(0.1, swa_lr=0.05)], [600])",
                S.sequential_lr(
                    [S.cosine_annealing_lr(0.1, 600), S.swa_lr(0.1, 0.05, anneal_epochs=100)], [600]
                ),
            )
        ],
        "sequential_lr": [
            (
                "sequential_lr([linear_lr(0.1, 0.1, 1, 100),\n    cosine_annealing_lr(0.1, 900)], [100])",
                S.sequential_lr([warm_up, S.cosine_annealing_lr(0.1, 900)], [100]),
            )
        ],
        "chained_scheduler": [
            (
                "chained_scheduler([linear_lr(0.1, 0.1, 1, 100),\n    exponential_lr(0.1, 0.998)])",
                S.chained_scheduler([warm_up, S.exponential_lr(0.1, 0.998)]),
            )
        ],
    }


def draw(plt, panels, title, ylim):
    """One figure, four panels a row; ``ylim=None``: each panel its own range."""
    count = jnp.arange(STEPS, dtype=jnp.int32)
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(16, 3.6 * rows), sharex=True, sharey=ylim is not None
    )
    axes = axes.ravel()
    for ax, (name, lines) in zip(axes, panels.items(), strict=False):  # spare axes stay empty
        for i, (label, schedule) in enumerate(lines):
            values = np.asarray(schedule(count))
            assert values.shape == (STEPS,) and np.all(np.isfinite(values)), label
            ax.plot(np.arange(STEPS), values, color=f"C{i}", lw=1.5, label=label)
        ax.set_title(name)
        if ylim is not None:
            ax.set_ylim(*ylim)  # room above the curves for the legend
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    for ax in axes[len(panels) :]:
        ax.axis("off")
    for ax in axes[-cols:]:
        ax.set_xlabel("updates applied (count)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


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
    torch_panels = torch_examples()
    missing = sorted(set(public_schedules()) - set(panels) - set(torch_panels))
    if missing:
        raise SystemExit(f"optjx.schedules has schedules this script does not draw: {missing}")

    plt = pyplot()
    fig = draw(plt, panels, f"optjx.schedules over {STEPS} steps", (0, 0.145))
    save(fig, args.out, "schedules.png")
    fig = draw(plt, torch_panels, f"torch.optim.lr_scheduler in optjx over {STEPS} steps", None)
    save(fig, args.out, "schedules_torch.png")
    print(f"{len(panels) + len(torch_panels)} schedules: {', '.join([*panels, *torch_panels])}")


if __name__ == "__main__":
    main()
