"""Part (c) of ``full_batch.py``: non-negative least squares, ``optjx.lbfgs_b`` beside scipy.

Three held-out digits of scikit-learn's digits, each reconstructed as a non-negative
combination of 50 training digits (5 of each class, the columns of ``A``):
``min 0.5 |A x - b|^2`` subject to ``x >= 0``. ``optjx.lbfgs_b`` and
``scipy.optimize.minimize(method="L-BFGS-B")`` (scipy 1.17.1, whose loss is a jitted
``jax.value_and_grad``, as a user would write it) start from ``x = 0``; each iterate of the
one is compared with the same iterate of the other. Imported by ``full_batch.py`` after it
turns float64 on.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy
import scipy.optimize
from _common import load_digits, pyplot, save, table

import optjx


def nnls_problem(seed, per_class=5, images=3):
    """``A``: ``per_class`` training digits of each class as columns; ``b``: held-out ones."""
    x_train, y_train, x_test, y_test = load_digits(seed=seed)
    columns = np.concatenate([np.flatnonzero(y_train == c)[:per_class] for c in range(10)])
    a = jnp.asarray(x_train[columns].reshape(len(columns), -1).T, jnp.float64)
    targets = jnp.asarray(x_test[:images].reshape(images, -1), jnp.float64)

    def loss(x, b):
        residual = a @ x - b
        return 0.5 * residual @ residual

    return loss, a, targets, y_test[:images]


def run_optjx(step, opt, x, b):
    """``optjx.lbfgs_b`` to convergence, one iteration per update: every iterate is seen."""
    state, run = opt.init(x), {"x": [], "value": [], "evals": []}
    while optjx.stop_reason(state) in ("NOT_STARTED", "MAX_ITER"):
        updates, state = step(x, state, b)
        x = optax.apply_updates(x, updates)
        run["x"].append(np.asarray(x))
        run["value"].append(float(state.value))
        run["evals"].append(int(state.func_evals))
    return run, state


def run_scipy(value_and_grad, x, b):
    """scipy's L-BFGS-B with its defaults and the bounds ``[0, inf)``; its iterates from
    ``callback``, its evaluations counted by hand."""
    run, calls = {"x": [], "value": [], "evals": []}, [0]

    def fun(v):
        calls[0] += 1
        value, grad = value_and_grad(jnp.asarray(v), b)
        return float(value), np.asarray(grad)

    def callback(intermediate_result):
        run["x"].append(intermediate_result.x.copy())
        run["value"].append(float(intermediate_result.fun))
        run["evals"].append(calls[0])

    bounds = scipy.optimize.Bounds(0.0, np.inf)
    result = scipy.optimize.minimize(fun, np.asarray(x), jac=True, method="L-BFGS-B",
                                     bounds=bounds, callback=callback)  # fmt: skip
    return run, result


def nnls_experiment(seed):
    loss, a, targets, labels = nnls_problem(seed)
    # max_iter=1 shows every iterate (any max_iter gives the same ones); b is an argument,
    # so the three digits share one compiled step.
    opt = optjx.lbfgs_b(lower=0.0, max_iter=1)
    step = jax.jit(lambda x, s, b: opt.update(None, s, x, value_fn=lambda v: loss(v, b)))
    value_and_grad = jax.jit(jax.value_and_grad(loss))
    x0 = jnp.zeros(a.shape[1])
    runs, rows = [], []
    for i, (b, label) in enumerate(zip(targets, labels, strict=True)):
        ours, state = run_optjx(step, opt, x0, b)
        theirs, result = run_scipy(value_and_grad, x0, b)
        n = min(len(ours["x"]), len(theirs["x"]))
        gap = np.max(np.abs(np.array(ours["x"][:n]) - np.array(theirs["x"][:n])), axis=1)
        zeros = ours["x"][-1] == 0, result.x == 0  # the active set: weights on the bound 0
        runs.append((ours, theirs, gap, a @ ours["x"][-1], np.asarray(a) @ result.x, b))
        rows.append([f"{i}: a {label}", f"{int(state.n_iter)} / {result.nit}",
                     f"{int(state.func_evals)} / {result.nfev}", f"{float(state.value):.15g}",
                     f"{result.fun:.15g}", f"{gap.max():.1e}",
                     f"{zeros[0].sum()} / {zeros[1].sum()}",
                     "yes" if np.array_equal(*zeros) else "no"])  # fmt: skip
    print(f"non-negative least squares: {len(targets)} held-out digits from {a.shape[1]} "
          f"training digits, x >= 0; optjx.lbfgs_b / scipy {scipy.__version__} L-BFGS-B")  # fmt: skip
    print()
    header = ["digit", "iterations", "evaluations", "final value (optjx)", "(scipy)",
              "max |x_optjx - x_scipy|", "weights at 0", "same active set"]  # fmt: skip
    print(table(rows, header))
    return runs, a.shape[1]


def plot_nnls(runs, columns, out):
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    tiles, gutter = [], np.full((8, 1), 0.25)  # light grey lines between the images
    for i, (ours, theirs, gap, x_ours, x_theirs, b) in enumerate(runs):
        f_star = min(ours["value"][-1], theirs["value"][-1])
        for run, style, name in [(ours, "-", "optjx"), (theirs, "x", "scipy")]:
            axes[0].plot(run["evals"], np.maximum(np.array(run["value"]) - f_star, 1e-16),
                         style, color=f"C{i}", label=f"digit {i}: {name}")  # fmt: skip
        axes[1].plot(np.arange(1, len(gap) + 1), np.maximum(gap, 1e-18), ".-", color=f"C{i}",
                     label=f"digit {i}")  # fmt: skip
        tiles.append(np.hstack([np.asarray(b).reshape(8, 8), gutter,
                                np.asarray(x_ours).reshape(8, 8), gutter,
                                np.asarray(x_theirs).reshape(8, 8)]))  # fmt: skip
    axes[0].set(yscale="log", xlabel="loss-and-gradient evaluations", ylabel="objective - min",
                title="0.5 |A x - b|^2 with x >= 0: line optjx, crosses scipy")  # fmt: skip
    axes[1].set(yscale="log", xlabel="iteration", ylabel="max_i |x_optjx - x_scipy|",
                title="the iterates, compared one by one")  # fmt: skip
    for ax in axes[:2]:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    rows = [np.vstack([t, np.full((1, t.shape[1]), 0.25)]) for t in tiles]
    axes[2].imshow(np.clip(np.vstack(rows)[:-1], 0, 1), cmap="gray_r", vmin=0, vmax=1)
    axes[2].set(xticks=[3.5, 12.5, 21.5], xticklabels=["held-out digit", "optjx", "scipy"],
                yticks=[], title="the digits and their reconstructions")  # fmt: skip
    fig.suptitle(f"Non-negative least squares: a digit as a non-negative combination of "
                 f"{columns} training digits, optjx.lbfgs_b beside scipy's L-BFGS-B")  # fmt: skip
    fig.tight_layout()
    save(fig, out, "full_batch_nnls.png")
