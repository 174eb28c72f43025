"""The classic optimizer pictures, drawn by optjx on two-dimensional problems.

    python examples/paths_2d.py [--quick] [--out DIR]

One PNG per figure:

* ``paths_momentum.png``: gradient descent and heavy-ball momentum on an ill-conditioned
  quadratic, over its level sets. GD zigzags across the narrow direction and crawls
  along the long one; momentum builds speed along the valley.
* ``paths_noise.png``: SGD and momentum 0.8 when noise is injected into ``b`` of
  ``f(w) = 1/2 w'Aw - b'w``. The momentum buffer averages the noisy gradients: its
  path turns far less from step to step. At the same long-run step size the cloud it
  ends in around the minimum is no smaller; only a smaller rate shrinks that.
* ``paths_adaptive.png``: SGD, RMSprop and Adam on a badly scaled problem. A step size
  safe for the steep coordinate is far too small for the flat one; the per-coordinate
  preconditioners move both at the same pace.
* ``paths_radam.png``: RAdam and Adam in their first steps on a noisy problem. Adam's
  first steps have full length in directions set by noise (its second-moment estimate
  rests on a handful of samples); RAdam takes plain momentum steps while ``rho_t <= 5``,
  then lets the adaptive step in gradually (its rectification ``r_t``).
* ``paths_lookahead.png``: Lookahead's fast and slow weights in the Rosenbrock valley.
  The fast weights (the params) zigzag across the valley; every ``k`` steps the slow
  weights move halfway towards them and the fast weights restart from there. On this
  noise-free valley that halving makes Lookahead slower than its inner optimizer (the
  loss panel shows it): its use is to damp an aggressive or noisy inner optimizer.

Every trajectory is one ``lax.scan`` over an optjx optimizer's ``update``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from _common import parser, pyplot, save

import optjx

FIGSIZE = (11, 4.5)


def trajectory(tx, grad_fn, w0, steps, read_state=None, seeds=None):
    """Iterates ``w_0 .. w_steps`` of ``tx`` on ``grad_fn(w, t)``, as an array
    ``(steps + 1, 2)``; with ``read_state`` also ``read_state(state)`` after every step.

    With ``seeds`` (an int), ``grad_fn(w, t, seed)`` is noisy and the runs for seeds
    ``0 .. seeds-1`` go side by side in one compiled ``vmap``: ``(seeds, steps + 1, 2)``.
    """

    def run(seed):
        def step(carry, t):
            w, state = carry
            g = grad_fn(w, t) if seeds is None else grad_fn(w, t, seed)
            updates, state = tx.update(g, state, w)
            w = optjx.apply_updates(w, updates)
            return (w, state), (w, read_state(state) if read_state else w)

        w = jnp.asarray(w0, jnp.float32)
        path, extra = jax.lax.scan(step, (w, tx.init(w)), jnp.arange(steps))[1]
        return jnp.concatenate([w[None], path]), jnp.concatenate([w[None], extra])

    if seeds is None:
        path, extra = jax.jit(run)(0)
    else:
        path, extra = jax.jit(jax.vmap(run))(jnp.arange(seeds))
    path, extra = np.asarray(path), np.asarray(extra)
    return (path, extra) if read_state else path


def contours(ax, f, xlim, ylim, levels, log=False):
    x, y = np.meshgrid(np.linspace(*xlim, 300), np.linspace(*ylim, 300))
    z = f(np.stack([x, y], axis=-1))
    if log:
        levels = np.logspace(np.log10(max(z.min(), 1e-3)), np.log10(z.max()), levels)
    ax.contour(x, y, z, levels=levels, colors="0.75", linewidths=0.7)
    ax.set(xlim=xlim, ylim=ylim, xlabel="$w_1$", ylabel="$w_2$")


def draw(ax, path, color, label, **kw):
    ax.plot(path[:, 0], path[:, 1], "o-", color=color, ms=2.5, lw=1, label=label, **kw)


def quadratic(h):
    """``f(w) = 1/2 sum h_i w_i^2`` and its gradient."""
    h = np.asarray(h, np.float32)
    return (lambda w: 0.5 * np.sum(h * np.asarray(w) ** 2, axis=-1)), (
        lambda w, t: jnp.asarray(h) * w
    )


def paths_and_loss(out, name, title, f, grad, w0, steps, runs, *, window, levels):
    """Each run's path over the level sets of ``f`` (left) and its loss (right), one PNG."""
    plt = pyplot()
    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=FIGSIZE, width_ratios=[1.6, 1])
    contours(ax, f, *window, levels=levels)
    for label, tx, color in runs:
        path = trajectory(tx, grad, w0, steps)
        draw(ax, path, color, label)
        ax_loss.plot(f(path), color=color, label=label)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    ax_loss.set(yscale="log", xlabel="step", ylabel="f(w)", title="loss")
    ax_loss.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, out, name)


def momentum_figure(out, quick):
    f, grad = quadratic([1.0, 20.0])
    steps = 40
    w0 = [-9.0, 2.0]
    runs = [
        ("gradient descent, lr 0.09", optjx.sgd(0.09), "C0"),
        ("heavy ball, lr 0.09, momentum 0.5", optjx.sgd(0.09, momentum=0.5), "C3"),
    ]
    paths_and_loss(
        out,
        "paths_momentum.png",
        r"$f = \frac{1}{2}(w_1^2 + 20 w_2^2)$, condition number 20",
        f,
        grad,
        w0,
        steps,
        runs,
        window=((-10, 2), (-3, 3)),
        levels=[0.5, 2, 5, 10, 20, 40, 60],
    )


def noise_figure(out, quick):
    a = np.array([[2.0, 0.8], [0.8, 1.0]], np.float32)
    b = np.array([1.0, -1.0], np.float32)
    w_star = np.linalg.solve(a, b)
    sigma, steps, seeds = 0.7, 150, 8 if quick else 32

    def f(w):
        w = np.asarray(w)
        return 0.5 * np.einsum("...i,ij,...j->...", w, a, w) - w @ b

    def noisy_grad(w, t, seed):
        # Noise in b: each step sees A w - (b + xi_t); both methods see the same xi_t.
        key = jax.random.fold_in(jax.random.key(seed), t)
        xi = sigma * jax.random.normal(key, (2,))
        return jnp.asarray(a) @ w - (jnp.asarray(b) + xi)

    def turning(path):
        """Angle between consecutive steps, in degrees."""
        d = np.diff(path, axis=-2)
        cos = np.sum(d[..., 1:, :] * d[..., :-1, :], -1) / (
            np.linalg.norm(d[..., 1:, :], axis=-1) * np.linalg.norm(d[..., :-1, :], axis=-1) + 1e-12
        )
        return np.degrees(np.arccos(np.clip(cos, -1, 1)))

    # Dampening = momentum makes the buffer an exponential average of the gradients
    # (b = 0.8 b + 0.2 g), so both methods move at the same long-run speed (lr times the
    # mean gradient): the comparison is about what momentum does with the noise.
    runs = [
        ("SGD, lr 0.1", optjx.sgd(0.1), "C0"),
        ("momentum 0.8, dampening 0.8, lr 0.1", optjx.sgd(0.1, momentum=0.8, dampening=0.8), "C3"),
    ]
    plt = pyplot()
    fig, (ax, ax_loss, ax_turn) = plt.subplots(1, 3, figsize=(14, 4.5), width_ratios=[1.4, 1, 1])
    contours(ax, f, (-3.5, 3.5), (-4, 2.5), levels=np.linspace(f(w_star) + 0.1, 12, 10))
    w0 = np.array([-3.0, 2.0])
    for label, tx, color in runs:
        paths = trajectory(tx, noisy_grad, w0, steps, seeds=seeds)
        draw(ax, paths[0], color, label, alpha=0.8)
        gap = f(paths) - f(w_star)
        ax_loss.plot(gap.mean(axis=0), color=color, lw=1, label=label)
        angle = turning(paths).mean(axis=0)
        ax_turn.plot(np.arange(2, steps + 1), angle, color=color, lw=1, label=label)
        print(
            f"  {label:40s} mean turn {angle.mean():5.1f} deg, "
            f"f - f* over the last 50 steps {gap[:, -50:].mean():.4f}"
        )
    ax.plot(*w_star, "k*", ms=12, label="minimum")
    ax.set_title(
        rf"$\frac{{1}}{{2}}w^\top A w - (b + \xi_t)^\top w$, $\xi_t \sim N(0, {sigma}^2 I)$"
    )
    ax.legend(loc="lower left", fontsize=8)
    ax_loss.set(
        yscale="log", xlabel="step", ylabel="$f(w) - f^*$", title=f"mean over {seeds} noise seeds"
    )
    ax_turn.set(
        xlabel="step", ylabel="degrees", ylim=(0, 180), title="angle between consecutive steps"
    )
    for a_ in (ax_loss, ax_turn):
        a_.grid(alpha=0.3)
    ax_turn.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out, "paths_noise.png")


def adaptive_figure(out, quick):
    f, grad = quadratic([0.02, 10.0])  # curvatures 500x apart
    steps, w0 = 120, [-9.0, 1.0]
    runs = [
        ("SGD, lr 0.15 (near 2/L)", optjx.sgd(0.15), "C0"),
        ("RMSprop, lr 0.1", optjx.rmsprop(0.1), "C2"),
        ("Adam, lr 0.1", optjx.adam(0.1), "C3"),
    ]
    paths_and_loss(
        out,
        "paths_adaptive.png",
        r"$f = \frac{1}{2}(0.02\, w_1^2 + 10\, w_2^2)$",
        f,
        grad,
        w0,
        steps,
        runs,
        window=((-10, 2), (-1.5, 1.5)),
        levels=[0.01, 0.05, 0.2, 0.5, 1, 2, 4, 8],
    )


def radam_figure(out, quick):
    scale, sigma, b2, lr = 0.1, 0.2, 0.99, 0.05
    f, _ = quadratic([scale, 4 * scale])
    steps = 60
    seeds = 4 if quick else 12
    w0 = np.array([-2.0, 1.0])

    def noisy_grad(w, t, seed):
        key = jax.random.fold_in(jax.random.key(seed), t)
        return jnp.asarray([scale, 4 * scale]) * w + sigma * jax.random.normal(key, (2,))

    runs = [("Adam", optjx.adam(lr, b2=b2), "C0"), ("RAdam", optjx.radam(lr, b2=b2), "C3")]
    plt = pyplot()
    fig, (ax, ax_step) = plt.subplots(1, 2, figsize=FIGSIZE, width_ratios=[1.3, 1])
    contours(ax, f, (-2.6, 0.6), (-0.6, 1.6), levels=np.linspace(0.02, 0.6, 8))
    lengths = {}
    for label, tx, color in runs:
        paths = trajectory(tx, noisy_grad, w0, steps, seeds=seeds)
        for seed, path in enumerate(paths):
            ax.plot(
                path[:, 0],
                path[:, 1],
                "-",
                color=color,
                lw=0.8,
                alpha=0.6,
                label=f"{label} ({seeds} noise seeds)" if seed == 0 else None,
            )
            ax.plot(path[1:7, 0], path[1:7, 1], "o", color=color, ms=3)
        lengths[label] = np.linalg.norm(np.diff(paths, axis=1), axis=-1).mean(axis=0)
        ax_step.plot(
            np.arange(1, steps + 1),
            lengths[label],
            "o-",
            ms=2.5,
            color=color,
            label=f"{label}: mean |step|",
        )
    ax.plot(*w0, "ks", ms=6, label="start")
    ax.set_title(f"first {steps} steps (dots: steps 1-6), lr {lr}, b2 {b2}, noisy gradients")
    ax.legend(loc="lower right", fontsize=8)

    # RAdam's switch, from the paper's formula (Liu et al. 2020, Algorithm 2).
    t = np.arange(1, steps + 1)
    rho_inf = 2 / (1 - b2) - 1
    rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
    r = np.where(
        rho > 5,
        np.sqrt(
            np.clip(
                (rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho), 0, None
            )
        ),
        np.nan,
    )
    ax_step.axvspan(
        0.5,
        t[rho <= 5][-1] + 0.5,
        color="C3",
        alpha=0.1,
        label=r"RAdam: $\rho_t \leq 5$, momentum step",
    )
    ax_r = ax_step.twinx()
    ax_r.plot(t, r, "--", color="C3", lw=1)
    ax_r.set_ylabel("RAdam rectification $r_t$ (dashed)", color="C3")
    ax_r.set_ylim(0, 1)
    ax_step.set(xlabel="step", ylabel="step length", title="how far each step goes")
    ax_step.legend(loc="upper right", fontsize=8)
    ax_step.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, out, "paths_radam.png")


def lookahead_figure(out, quick):
    def rosenbrock(w):
        w = np.asarray(w)
        return (1 - w[..., 0]) ** 2 + 100 * (w[..., 1] - w[..., 0] ** 2) ** 2

    def grad(w, t):
        x, y = w[0], w[1]
        return jnp.stack([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])

    steps, k, w0 = 300, 5, np.array([-1.2, 1.6])
    inner = lambda: optjx.sgd(2.5e-3, momentum=0.9)  # noqa: E731
    fast, slow = trajectory(
        optjx.lookahead(inner(), sync_period=k, slow_step_size=0.5),
        grad,
        w0,
        steps,
        read_state=optjx.slow_params,
    )
    plain = trajectory(inner(), grad, w0, steps)
    syncs = np.arange(0, steps + 1, k)

    plt = pyplot()
    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=FIGSIZE, width_ratios=[1.6, 1])
    contours(ax, rosenbrock, (-1.6, 1.4), (-0.4, 2.2), levels=14, log=True)
    ax.plot(plain[:, 0], plain[:, 1], "-", color="0.5", lw=1, label="momentum SGD alone")
    ax.plot(fast[:, 0], fast[:, 1], "-", color="C0", lw=0.8, label="fast weights (params)")
    ax.plot(
        slow[syncs, 0],
        slow[syncs, 1],
        "o-",
        color="C3",
        ms=4,
        lw=1.5,
        label=f"slow weights (every k={k})",
    )
    ax.plot(1, 1, "k*", ms=12, label="minimum (1, 1)")
    ax.set_title("Lookahead(SGD lr 2.5e-3, momentum 0.9), alpha 0.5, on Rosenbrock")
    ax.legend(loc="lower right", fontsize=8)
    ax_loss.plot(rosenbrock(plain), color="0.5", label="momentum SGD alone")
    ax_loss.plot(rosenbrock(fast), color="C0", lw=0.8, label="Lookahead fast")
    ax_loss.plot(syncs, rosenbrock(slow[syncs]), "o-", ms=3, color="C3", label="Lookahead slow")
    ax_loss.set(yscale="log", xlabel="step", ylabel="f(w)", title="loss")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out, "paths_lookahead.png")


FIGURES = {
    "momentum": momentum_figure,
    "noise": noise_figure,
    "adaptive": adaptive_figure,
    "radam": radam_figure,
    "lookahead": lookahead_figure,
}


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--only", choices=list(FIGURES), nargs="*", help="draw only these figures")
    args = p.parse_args(argv)
    for name in args.only or FIGURES:
        FIGURES[name](args.out, args.quick)


if __name__ == "__main__":
    main()
