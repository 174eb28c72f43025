"""Full-batch problems: L-BFGS and nonlinear CG against Adam and GD; L-BFGS-B beside scipy.

    python examples/full_batch.py [--quick] [--out DIR]

On a full batch, L-BFGS and conjugate gradients need far fewer evaluations than gradient
descent (Nocedal & Wright 2006, chapters 5 and 7). Three experiments, in float64; in (a)
and (b) every optimizer runs from its initial point to a budget of loss-and-gradient
evaluations:

(a) scikit-learn's digits (the training split, 1437 images, full batch): L2-regularised
    multinomial logistic regression (convex) and an MLP 64 -> 32 tanh -> 10, minimised by
    ``optjx.lbfgs`` (strong Wolfe), ``optjx.conjugate_gradient`` (Polak-Ribiere+), Adam
    and gradient descent. Writes ``full_batch_digits.png``: loss against evaluations and
    against wall time.
(b) compressed sensing (Candès, Romberg & Tao 2006): a sparse signal of length 256 with 8
    spikes is recovered from 80 random Fourier measurements (40 frequencies, real and
    imaginary parts) by minimising ``0.5 |A x - b|^2 + lam sum(sqrt(x^2 + eps^2) - eps)``,
    a smooth stand-in for the l1 norm. L-BFGS, gradient descent (step ``1/L``, ``L`` the
    gradient's Lipschitz constant) and Adam; writes ``full_batch_sparse.png``: the
    objective against evaluations and the three reconstructions.
(c) non-negative least squares with bounds: three held-out digits, each reconstructed as a
    non-negative combination of 50 training digits (5 of each class, the columns of
    ``A``), ``min 0.5 |A x - b|^2`` subject to ``x >= 0``, solved by ``optjx.lbfgs_b``
    and by ``scipy.optimize.minimize(method="L-BFGS-B")`` (scipy 1.17.1, its loss a jitted
    ``jax.value_and_grad`` as a user would write it) from the same start. Prints, per
    digit, both iteration and evaluation counts, the final values, the largest difference
    between their iterates and whether the same weights end at 0; writes
    ``full_batch_nnls.png``: both objectives against evaluations, the gap between the
    iterates, and the reconstructions. The code is in ``_nnls.py`` (it needs scipy).

Evaluations are counted honestly: one call of ``jax.value_and_grad(loss)`` is one
evaluation. Adam and gradient descent make one per step. L-BFGS and CG report theirs in
the state (``state.func_evals``): the caller's gradient at the start of each update plus
every point the line search tried. Wall time excludes compilation (each update function is
compiled, and run once, before the clock starts); the loss recorded after each L-BFGS/CG
update is a separate, untimed evaluation for the plot only.

The full-batch methods are called as the README shows: ``update(grads, state, params,
value=value, value_fn=loss)``, ``loss`` a function of the params alone.
"""

from __future__ import annotations

import time

import jax

jax.config.update("jax_enable_x64", True)  # full-batch methods are run to high accuracy

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from _common import load_digits, parser, pyplot, save, table  # noqa: E402
from _nnls import nnls_experiment, plot_nnls  # noqa: E402  (part (c), with scipy)
from tqdm import tqdm  # noqa: E402

import optjx  # noqa: E402

# After this stop reason another L-BFGS/CG update would not move.
CONVERGED = optjx.StopReason.CONVERGED.name
CHUNK = 10  # Adam/GD steps per compiled call (a lax.scan)
COLORS = {"L-BFGS": "C0", "CG": "C2", "Adam": "C1", "GD": "C3"}


# --------------------------------------------------------------------------- runners


def run_full_batch(name, tx, params, loss, budget):
    """L-BFGS or CG until ``budget`` evaluations are used or a tolerance is met.

    Returns a dict of curves (evaluations, loss, seconds after each update) and the params.
    """
    loss_jit = jax.jit(loss)

    @jax.jit
    def step(params, state):
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = tx.update(grads, state, params, value=value, value_fn=loss)
        return optax.apply_updates(params, updates), state

    state = tx.init(params)
    jax.block_until_ready(step(params, state))  # compile (and discard) before timing
    evals, losses, seconds = [0], [float(loss_jit(params))], [0.0]
    bar = tqdm(total=budget, desc=name, unit="eval", ncols=90, leave=False)
    reason = "NOT_STARTED"
    while evals[-1] < budget and reason != CONVERGED:
        start = time.perf_counter()
        params, state = jax.block_until_ready(step(params, state))
        seconds.append(seconds[-1] + time.perf_counter() - start)
        evals.append(int(state.func_evals))  # the optimizer's own count, the caller's included
        losses.append(float(loss_jit(params)))  # for the plot: not timed, not counted
        reason = optjx.stop_reason(state)
        bar.update(min(evals[-1], budget) - bar.n)
        bar.set_postfix(loss=f"{losses[-1]:.3e}", stop=reason)
    bar.close()
    curves = {"evals": np.array(evals), "loss": np.array(losses), "seconds": np.array(seconds)}
    return curves, params, (step, state)


def run_first_order(name, tx, params, loss, budget):
    """Adam or GD for ``budget`` steps: one evaluation per step, ``CHUNK`` steps per call."""

    def one_step(carry, _):
        params, state = carry
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = tx.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), value

    chunk = jax.jit(lambda carry: jax.lax.scan(one_step, carry, length=CHUNK))
    carry = (params, tx.init(params))
    jax.block_until_ready(chunk(carry))  # compile before timing
    losses, seconds, elapsed = [], [0.0], 0.0
    bar = tqdm(total=budget, desc=name, unit="eval", ncols=90, leave=False)
    for _ in range(-(-budget // CHUNK)):
        start = time.perf_counter()
        carry, values = jax.block_until_ready(chunk(carry))
        dt = time.perf_counter() - start
        seconds.extend(elapsed + dt * np.arange(1, CHUNK + 1) / CHUNK)
        elapsed += dt
        losses.extend(np.asarray(values))  # the loss at the params each step started from
        bar.update(CHUNK)
        bar.set_postfix(loss=f"{losses[-1]:.3e}")
    bar.close()
    params = carry[0]
    losses.append(float(jax.jit(loss)(params)))  # the last iterate, for the plot
    n = len(losses)
    curves = {"evals": np.arange(n), "loss": np.array(losses), "seconds": np.array(seconds[:n])}
    return curves, params


def run_all(optimizers, params, loss, budget):
    """Every optimizer of ``optimizers`` ({name: (tx, full_batch)}) from ``params``."""
    curves, finals, polish = {}, {}, None
    for name, (tx, full_batch) in optimizers.items():
        if full_batch:
            curves[name], finals[name], resume = run_full_batch(name, tx, params, loss, budget)
            if name == "L-BFGS":
                polish = (resume, finals[name])
        else:
            curves[name], finals[name] = run_first_order(name, tx, params, loss, budget)
    return curves, finals, polish


def minimum(polish, loss, curves, updates=100):
    """``f*`` for a convex problem: continue the L-BFGS run (already compiled) to convergence."""
    (step, state), params = polish
    for _ in range(updates):
        if state.stop_reason == optjx.StopReason.CONVERGED:
            break
        params, state = step(params, state)
    best = min(float(jax.jit(loss)(params)), *(float(c["loss"].min()) for c in curves.values()))
    return best


# --------------------------------------------------------------------------- (a) digits


def digits_problems(seed):
    x_train, y_train, x_test, y_test = load_digits(seed=seed)
    x = jnp.asarray(x_train.reshape(len(x_train), -1), jnp.float64)
    y = jnp.asarray(y_train)
    x_test = jnp.asarray(x_test.reshape(len(x_test), -1), jnp.float64)
    decay = 1e-3  # L2, so that the logistic loss has a unique minimiser

    def cross_entropy(logits, labels):
        log_probs = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))

    def logistic_logits(p, x):
        return x @ p["w"] + p["b"]

    def mlp_logits(p, x):
        return jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]

    def l2(p):
        return 0.5 * decay * sum(jnp.sum(v**2) for k, v in p.items() if k.startswith("w"))

    # The loss as a function of the params only: what value_fn must be.
    def logistic_loss(p):
        return cross_entropy(logistic_logits(p, x), y) + l2(p)

    def mlp_loss(p):
        return cross_entropy(mlp_logits(p, x), y) + l2(p)

    k1, k2 = jax.random.split(jax.random.key(seed))
    logistic_params = {"w": jnp.zeros((64, 10)), "b": jnp.zeros(10)}
    mlp_params = {
        "w1": jax.random.normal(k1, (64, 32)) / 8.0,  # LeCun normal: std 1/sqrt(fan_in)
        "b1": jnp.zeros(32),
        "w2": jax.random.normal(k2, (32, 10)) / np.sqrt(32),
        "b2": jnp.zeros(10),
    }
    # Gradient descent's textbook step 1/L for the logistic loss: the softmax
    # cross-entropy's Hessian is at most 1/2 (X~^T X~ / n) (X~ with a column of ones)
    # plus the L2 term.
    x_bias = jnp.concatenate([x, jnp.ones((len(x), 1))], axis=1)
    lipschitz = 0.5 * float(jnp.linalg.eigvalsh(x_bias.T @ x_bias / len(x)).max()) + decay
    test = (x_test, jnp.asarray(y_test))
    return {
        "logistic regression": (logistic_loss, logistic_params, logistic_logits, 1 / lipschitz),
        "MLP 64-32-10 (tanh)": (mlp_loss, mlp_params, mlp_logits, 0.5),
    }, test


def digits_experiment(quick, seed):
    problems, (x_test, y_test) = digits_problems(seed)
    budgets = {
        "logistic regression": 100 if quick else 500,
        "MLP 64-32-10 (tanh)": 150 if quick else 1500,
    }
    results, rows = {}, []
    for problem, (loss, params, logits, gd_rate) in problems.items():
        budget = budgets[problem]
        # Each optimizer written out: (transformation, is it a full-batch method).
        optimizers = {
            "L-BFGS": (
                optjx.lbfgs(max_iter=10, history_size=10, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-10, tolerance_change=1e-14),
                True,
            ),
            "CG": (
                optjx.conjugate_gradient(beta="polak_ribiere", max_iter=10,
                                         tolerance_grad=1e-10, tolerance_change=1e-14),
                True,
            ),
            "Adam": (optjx.adam(0.01), False),
            "GD": (optjx.sgd(gd_rate), False),
        }  # fmt: skip
        print(f"{problem}: {budget} evaluations (GD step {gd_rate:.3g})")
        curves, finals, polish = run_all(optimizers, params, loss, budget)
        f_star = minimum(polish, loss, curves) if problem == "logistic regression" else None
        results[problem] = (curves, f_star)
        for name, c in curves.items():
            acc = float(jnp.mean(jnp.argmax(logits(finals[name], x_test), -1) == y_test))
            rows.append([problem, name, str(c["evals"][-1]), f"{c['loss'][-1]:.6g}",
                         f"{acc:.4f}", f"{c['seconds'][-1]:.2f}"])  # fmt: skip
    print()
    print(table(rows, ["problem", "optimizer", "evaluations", "final loss", "test acc", "seconds"]))
    return results


def plot_digits(results, out):
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for row, (problem, (curves, f_star)) in zip(axes, results.items(), strict=True):
        # Convex: the distance to the minimum. The MLP: the loss itself, on log-log axes
        # (the initial point, at 0 evaluations, is left out) so that the tail is visible.
        convex = f_star is not None
        start = 0 if convex else 1
        for name, c in curves.items():
            y = np.maximum(c["loss"] - f_star, 1e-16) if convex else c["loss"]
            label = f"{name} ({c['evals'][-1]} evals)"
            row[0].plot(c["evals"][start:], y[start:], color=COLORS[name], label=label)
            row[1].plot(c["seconds"][start:], y[start:], color=COLORS[name], label=label)
        ylabel = "loss - min" if convex else "training loss"
        xscale = "linear" if convex else "log"
        row[0].set(yscale="log", xscale=xscale, xlabel="loss-and-gradient evaluations",
                   ylabel=ylabel, title=f"{problem}: per evaluation")  # fmt: skip
        row[1].set(yscale="log", xscale=xscale, xlabel="wall time (s, compilation excluded)",
                   ylabel=ylabel, title=f"{problem}: per second")  # fmt: skip
        for ax in row:
            ax.grid(alpha=0.3)
            ax.legend()
    fig.suptitle("Full-batch digits (1437 images, float64): L-BFGS, CG, Adam, GD")
    fig.tight_layout()
    save(fig, out, "full_batch_digits.png")


# --------------------------------------------------------------------------- (b) sparse


def sparse_problem(seed, n=256, spikes=8, frequencies=40, lam=1e-3, eps=1e-4):
    """``A`` (random rows of the real Fourier basis), ``b = A x_true``, the smooth loss."""
    rng = np.random.default_rng(seed)
    x_true = np.zeros(n)
    support = rng.choice(n, spikes, replace=False)
    x_true[support] = rng.choice([-1.0, 1.0], spikes) * rng.uniform(0.5, 1.5, spikes)
    freqs = rng.choice(np.arange(1, n // 2), frequencies, replace=False)
    t = np.arange(n)
    angles = 2 * np.pi * np.outer(freqs, t) / n
    a = np.sqrt(2.0 / n) * np.concatenate([np.cos(angles), np.sin(angles)])  # orthonormal rows
    a, x_true = jnp.asarray(a), jnp.asarray(x_true)
    b = a @ x_true

    def loss(x):  # a function of the params only
        residual = a @ x - b
        return 0.5 * residual @ residual + lam * jnp.sum(jnp.sqrt(x**2 + eps**2) - eps)

    # |A| = 1 (orthonormal rows) and the penalty's curvature is at most lam / eps.
    lipschitz = 1.0 + lam / eps
    return loss, x_true, a, b, lipschitz


def sparse_experiment(quick, seed):
    loss, x_true, a, b, lipschitz = sparse_problem(seed)
    budget = 200 if quick else 2000
    optimizers = {
        "L-BFGS": (
            optjx.lbfgs(max_iter=10, history_size=10, line_search_fn="strong_wolfe",
                        tolerance_grad=1e-10, tolerance_change=1e-14),
            True,
        ),
        "Adam": (optjx.adam(0.01), False),
        "GD": (optjx.sgd(1 / lipschitz), False),
    }  # fmt: skip
    print(f"sparse recovery: {a.shape[0]} measurements of {a.shape[1]} unknowns, "
          f"{int(jnp.sum(x_true != 0))} spikes, {budget} evaluations (GD step 1/L = {1 / lipschitz:.3g})")  # fmt: skip
    curves, finals, polish = run_all(optimizers, jnp.zeros(a.shape[1]), loss, budget)
    f_star = minimum(polish, loss, curves)
    least_squares = a.T @ b  # the minimum-norm solution of A x = b: no sparsity prior
    error = lambda x: float(jnp.linalg.norm(x - x_true) / jnp.linalg.norm(x_true))  # noqa: E731
    rows = [[name, str(c["evals"][-1]), f"{c['loss'][-1]:.6g}", f"{c['loss'][-1] - f_star:.2e}",
             f"{error(finals[name]):.2e}", f"{c['seconds'][-1]:.2f}"]
            for name, c in curves.items()]  # fmt: skip
    rows.append(["min-norm least squares", "-", "-", "-", f"{error(least_squares):.2e}", "-"])
    print()
    print(
        table(
            rows, ["optimizer", "evaluations", "final loss", "loss - min", "rel. error", "seconds"]
        )
    )
    title = (f"A sparse signal ({a.shape[1]} samples, {int(jnp.sum(x_true != 0))} spikes) from "
             f"{a.shape[0]} random Fourier measurements; budget {budget} evaluations")  # fmt: skip
    return curves, f_star, finals, x_true, least_squares, error, title


def plot_sparse(curves, f_star, finals, x_true, least_squares, error, title, out):
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for name, c in curves.items():
        axes[0].plot(c["evals"], np.maximum(c["loss"] - f_star, 1e-16), color=COLORS[name],
                     label=f"{name} ({c['evals'][-1]} evals)")  # fmt: skip
    axes[0].set(yscale="log", xlabel="loss-and-gradient evaluations", ylabel="objective - min",
                title="objective (smoothed l1 + least squares)")  # fmt: skip
    axes[0].grid(alpha=0.3)
    axes[0].legend()
    t = np.arange(len(x_true))
    panels = [(axes[1], ["L-BFGS"]), (axes[2], ["GD", "Adam"])]
    for ax, names in panels:
        ax.plot(t, np.asarray(least_squares), color="0.7", lw=1,
                label=f"min-norm least squares ({error(least_squares):.2f})")  # fmt: skip
        markers, stems, base = ax.stem(t, np.asarray(x_true), linefmt="k-", markerfmt="ko",
                                       basefmt=" ", label="true signal")  # fmt: skip
        markers.set_markersize(4)
        stems.set_linewidth(1)
        for name in names:
            ax.plot(t, np.asarray(finals[name]), color=COLORS[name], lw=1.2,
                    label=f"{name}, {curves[name]['evals'][-1]} evals ({error(finals[name]):.2g})")  # fmt: skip
        ax.set(xlabel="index", title=f"reconstruction: {', '.join(names)} (relative error)")
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    save(fig, out, "full_batch_sparse.png")


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    start = time.perf_counter()
    plot_digits(digits_experiment(args.quick, args.seed), args.out)
    print()
    plot_sparse(*sparse_experiment(args.quick, args.seed), args.out)
    print()
    plot_nnls(*nnls_experiment(args.seed), args.out)
    print(f"\ntotal {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
