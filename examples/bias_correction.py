"""Exponential moving averages with and without bias correction (``optjx.ema``).

    python examples/bias_correction.py [--quick] [--out DIR]

A temperature example: a year of noisy daily temperatures averaged with
``v_t = beta v_{t-1} + (1 - beta) theta_t`` from ``v_0 = 0``. The average of the last
``~1/(1 - beta)`` days is smooth but, started at zero, it spends its first days far below
the data: ``v_t`` carries the weight ``1 - beta**t`` instead of 1. Dividing by that
(``optjx.ema(beta, debias=True)``, Adam's correction) fixes the start and changes nothing
later. Larger ``beta`` averages more days: smoother, but later to follow a trend.

The series is fed to the transformation as if it were a gradient: ``ema`` is the same
building block Adam and RMSprop use for their moments. Writes ``bias_correction.png``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from _common import parser, pyplot, save

import optjx

BETAS = (0.5, 0.9, 0.98)


def average(series, beta, debias):
    """``optjx.ema`` run over a 1-D series: the value it returns after each element."""
    tx = optjx.ema(beta, debias=debias)

    def step(state, value):
        out, state = tx.update(value, state)
        return state, out

    return jax.lax.scan(step, tx.init(series[0]), series)[1]


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    days = 120 if args.quick else 365
    rng = np.random.default_rng(args.seed)
    t = np.arange(1, days + 1)
    # Degrees Fahrenheit: winter start near 40 F, summer peak around
    # day 200, weather noise of 5 degrees.
    temperature = (
        58 - 20 * np.cos(2 * np.pi * (t - 20) / 365) + 5 * rng.standard_normal(days)
    ).astype(np.float32)

    series = jnp.asarray(temperature)
    run = jax.jit(average, static_argnums=(1, 2))
    curves = {(b, d): np.asarray(run(series, b, d)) for b in BETAS for d in (False, True)}

    # Check against the closed form: the raw average is the corrected one times 1 - beta**t.
    for b in BETAS:
        np.testing.assert_allclose(
            curves[b, False], curves[b, True] * (1 - b**t), rtol=1e-4, atol=1e-4
        )
        first = np.abs(curves[b, False][:5] - temperature[:5]).mean()
        first_c = np.abs(curves[b, True][:5] - temperature[:5]).mean()
        print(
            f"beta {b}: averages ~{1 / (1 - b):.0f} days; first 5 days off the data by "
            f"{first:.1f} F raw, {first_c:.1f} F corrected"
        )

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), width_ratios=[1.6, 1])
    for ax, last in zip(axes, (days, 40), strict=True):
        ax.plot(t[:last], temperature[:last], ".", color="0.6", ms=4, label="daily temperature")
        for i, b in enumerate(BETAS):
            color = f"C{i}"
            ax.plot(
                t[:last], curves[b, False][:last], "--", color=color, lw=1.2, label=f"beta {b}, raw"
            )
            ax.plot(
                t[:last],
                curves[b, True][:last],
                "-",
                color=color,
                lw=1.5,
                label=f"beta {b}, bias-corrected",
            )
        ax.set(xlabel="day", ylabel="degrees Fahrenheit")
        ax.grid(alpha=0.3)
    axes[0].set_title("EMA of a noisy temperature series (optjx.ema)")
    axes[1].set_title("first 40 days: raw averages start near 0")
    axes[0].legend(fontsize=8, ncol=2, loc="lower center")
    fig.tight_layout()
    save(fig, args.out, "bias_correction.png")


if __name__ == "__main__":
    main()
