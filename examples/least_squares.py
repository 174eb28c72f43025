"""Nonlinear least squares from NIST StRD by Levenberg-Marquardt and L-BFGS, and a ridge
strength tuned by gradient through the solution (implicit differentiation).

    python examples/least_squares.py [--quick] [--out DIR]

Everything in float64, every solve one call of ``optjx.minimize``.

(a) Two of NIST's nonlinear regressions of "higher difficulty" (data, starting points and
    certified values in ``examples/_nist_strd.py``, from
    https://www.itl.nist.gov/div898/strd/nls/): Thurber (a rational function, 7
    parameters, 37 points) and BoxBOD (an exponential approach to a plateau, 2
    parameters, 6 points), each from NIST's start 1 and start 2, by
    ``optjx.levenberg_marquardt`` (MINPACK's ``lmder``: ``fun`` returns the residuals) and
    by ``optjx.lbfgs`` with a strong-Wolfe search (``fun`` returns ``0.5 sum r^2``).
    L-BFGS because it is the general method for a smooth loss and sees only the sum of
    squares, where LM uses the residuals' Jacobian: that is the comparison. LM's default
    tolerances are MINPACK's, whose relative tests stop it at 4 to 5 correct digits on
    these two; the full run adds LM with ``ftol = xtol = 1e-15``. BoxBOD shows why NIST
    rates it hard: from start 1 LM ends, as MINPACK does, on the plateau
    ``b2 -> infinity`` (a flat model; the gradient vanishes there) and L-BFGS stalls (its
    line search finds no step along the same direction, update after update); from start
    2 LM reaches the certified values and L-BFGS ends on the plateau. Prints, per run,
    iterations, evaluations, the residual sum of squares, the largest relative error of a
    parameter against NIST's certified value and why it stopped.
(b) A ridge regression on scikit-learn's digits (100 training images, 10 per class,
    one-hot targets, squared loss, an unpenalised bias), its strength ``lambda`` tuned on
    400 validation images by gradient descent (``optjx.sgd``) on ``log lambda``. The inner
    problem is ``optjx.minimize(train_loss, params, optjx.bfgs(...), args=(log_lambda,),
    implicit_diff=True)``: its solution is differentiated by the implicit function theorem
    (conjugate gradients on Hessian-vector products), not by unrolling the solver. BFGS
    (650 parameters: its dense inverse Hessian is cheap) because the implicit gradient is
    only as exact as the inner solution, and on this problem BFGS stops closer to it than
    ``optjx.lbfgs`` (whose hypergradients came out 10 to 40 times further from the closed
    form when we tried both). Each outer step prints the implicit hypergradient next to
    the closed-form one (ridge's solution is a linear solve, differentiable directly) and
    their relative difference; then the test accuracy (the remaining 1297 images) at the
    first and the tuned ``lambda``.

Writes ``least_squares.png``: both NIST problems' data with the fits, the validation loss
against ``lambda`` with the path of the outer steps on it, and the hypergradients.
``--quick`` runs LM with its defaults and L-BFGS only, and 3 outer steps instead of 10.
"""

from __future__ import annotations

import time

import jax

jax.config.update("jax_enable_x64", True)  # certified values to 10 digits need float64

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import parser, pyplot, save, table  # noqa: E402
from _nist_strd import BOX_BOD, THURBER  # noqa: E402

import optjx  # noqa: E402

# --------------------------------------------------------------------------- (a) NIST


def thurber(b, x):
    return (b[0] + b[1] * x + b[2] * x**2 + b[3] * x**3) / (
        1 + b[4] * x + b[5] * x**2 + b[6] * x**3
    )


def box_bod(b, x):
    return b[0] * (1 - jnp.exp(-b[1] * x))


MODELS = {THURBER.name: thurber, BOX_BOD.name: box_bod}


def least_squares_functions(model):
    """The residuals (for LM) and half their sum of squares (for L-BFGS) of one model,
    built once per problem so that both starts reuse the compiled run."""

    def residuals(b, x, y):
        return y - model(b, x)

    def loss(b, x, y):
        return 0.5 * jnp.sum(residuals(b, x, y) ** 2)

    return residuals, loss


def nist_methods(quick):
    """name -> (method, does ``fun`` return the residuals, max_updates)."""
    methods = {
        # MINPACK's tolerances; max_iter=50 so that one update is usually the whole run
        # (minimize's evaluation count is then MINPACK's nfev).
        "LM": (optjx.levenberg_marquardt(max_iter=50), True, 20),
        # Tolerances below what these problems reach in float64: it runs until the line
        # search can make no more progress, for the most digits L-BFGS can give.
        "L-BFGS": (
            optjx.lbfgs(max_iter=50, history_size=20, line_search_fn="strong_wolfe",
                        tolerance_grad=1e-9, tolerance_change=1e-15),
            False,
            200,
        ),
    }  # fmt: skip
    if not quick:
        tight = optjx.levenberg_marquardt(max_iter=50, ftol=1e-15, xtol=1e-15)
        methods["LM, tol 1e-15"] = (tight, True, 20)
    return methods


def nist_experiment(quick):
    methods = nist_methods(quick)
    rows, fits = [], {}
    for problem in (THURBER, BOX_BOD):
        residuals, loss = least_squares_functions(MODELS[problem.name])
        x, y = jnp.asarray(problem.x), jnp.asarray(problem.y)
        certified = np.asarray(problem.certified)
        for start in ("start1", "start2"):
            for name, (method, takes_residuals, max_updates) in methods.items():
                fun = residuals if takes_residuals else loss
                b, info = optjx.minimize(fun, jnp.asarray(getattr(problem, start)), method,
                                         args=(x, y), max_updates=max_updates)  # fmt: skip
                b = np.asarray(b)
                error = float(np.max(np.abs(b - certified) / np.abs(certified)))
                fits[problem.name, start, name] = (b, 2 * float(info.value), error)
                reason = optjx.StopReason(int(info.stop_reason)).name
                rows.append([problem.name, start.replace("start", "start "), name,
                             str(int(info.iterations)), str(int(info.evaluations)),
                             f"{2 * float(info.value):.10g}", f"{error:.1e}", reason])  # fmt: skip
        rows.append([problem.name, "certified", "NIST", "", "", f"{problem.certified_rss:.10g}",
                     "0", ""])  # fmt: skip
    print(table(rows, ["problem", "start", "method", "iterations", "evaluations",
                       "residual SS", "max rel. error", "stop"]))  # fmt: skip
    print("LM: iterations are Jacobian evaluations (each n forward-mode products) and")
    print("evaluations residual evaluations (MINPACK's njev and nfev); L-BFGS: loss-and-")
    print("gradient evaluations. max rel. error: max_i |b_i - certified_i| / |certified_i|.")
    return fits


def plot_nist(axes, fits):
    styles = {"LM": "-", "L-BFGS": "--", "LM, tol 1e-15": ":"}
    colors = {"start1": "C0", "start2": "C1"}
    for ax, problem in zip(axes, (THURBER, BOX_BOD), strict=True):
        model = MODELS[problem.name]
        grid = np.linspace(min(0.0, min(problem.x)), max(problem.x), 400)
        for start, dashes in (("start1", (1, 1)), ("start2", (3, 1))):
            ax.plot(grid, model(np.asarray(getattr(problem, start)), grid), color="0.6", lw=1,
                    dashes=dashes, label=f"NIST {start.replace('start', 'start ')}")  # fmt: skip
        ax.plot(grid, model(np.asarray(problem.certified), grid), color="k", lw=4, alpha=0.2,
                label="certified values")  # fmt: skip
        for (name, start, method), (b, _, error) in fits.items():
            if name == problem.name:
                ax.plot(grid, model(b, grid), styles[method], color=colors[start], lw=1.4,
                        label=f"{method} from {start.replace('start', 'start ')}: max rel. error {error:.0e}")  # fmt: skip
        ax.plot(problem.x, problem.y, "ko", ms=4, label="NIST data")
        low, high = min(problem.y), max(problem.y)
        ax.set_ylim(min(0.0, low) - 0.1 * (high - low), high + 0.1 * (high - low))
        ax.set(xlabel="x", ylabel="y")
        ax.set_title(f"NIST StRD {problem.name}: {problem.model}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")


# --------------------------------------------------------------------------- (b) ridge


def digits_split(seed, n_train=100, n_validation=400):
    """Flattened pixels in [0, 1] and one-hot targets: train, validation, test (the rest)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x, labels = digits.data / 16.0, digits.target
    x_train, x_rest, l_train, l_rest = train_test_split(
        x, labels, train_size=n_train, random_state=seed, stratify=labels
    )
    x_val, x_test, l_val, l_test = train_test_split(
        x_rest, l_rest, train_size=n_validation, random_state=seed, stratify=l_rest
    )
    one_hot = np.eye(10)
    return [(jnp.asarray(a), jnp.asarray(one_hot[b]), b)
            for a, b in ((x_train, l_train), (x_val, l_val), (x_test, l_test))]  # fmt: skip


def squared_error(params, x, targets):
    return 0.5 * jnp.mean(jnp.sum((x @ params["w"] + params["b"] - targets) ** 2, axis=1))


# Built once: minimize compiles once per function and method object.
INNER = optjx.bfgs(max_iter=100, tolerance_grad=5e-9)


def ridge_functions(train, validation):
    (x_train, t_train, _), (x_val, t_val, _) = train, validation

    def train_loss(params, log_lambda):
        penalty = 0.5 * jnp.exp(log_lambda) * jnp.sum(params["w"] ** 2)
        return squared_error(params, x_train, t_train) + penalty

    def validation_loss(log_lambda, start):
        """The validation loss at the ridge solution for ``lambda = exp(log_lambda)``,
        solved from ``start`` (the previous solution: a warm start)."""
        params, info = optjx.minimize(train_loss, start, INNER, args=(log_lambda,),
                                      max_updates=20, implicit_diff=True)  # fmt: skip
        return squared_error(params, x_val, t_val), (params, info)

    def closed_form(log_lambda):
        """The same validation loss with the solution of the normal equations
        ``(A^T A / n + lambda P) W = A^T T / n``, ``A = [X, 1]``, ``P`` the identity
        without the bias: JAX differentiates the linear solve directly."""
        a = jnp.concatenate([x_train, jnp.ones((len(x_train), 1))], axis=1)
        penalised = jnp.concatenate([jnp.ones(a.shape[1] - 1), jnp.zeros(1)])
        gram = a.T @ a / len(a) + jnp.exp(log_lambda) * jnp.diag(penalised)
        solution = jnp.linalg.solve(gram, a.T @ t_train / len(a))
        params = {"w": solution[:-1], "b": solution[-1]}
        return squared_error(params, x_val, t_val)

    return validation_loss, closed_form


def ridge_experiment(quick, seed):
    train, validation, test = digits_split(seed)
    validation_loss, closed_form = ridge_functions(train, validation)
    hyper_step = jax.jit(jax.value_and_grad(validation_loss, has_aux=True))
    closed_step = jax.jit(jax.value_and_grad(closed_form))
    # Near its minimum the validation loss curves by about 0.02 per unit of log lambda
    # squared: a step of 20 takes about half of the remaining distance each time.
    outer = optjx.sgd(20.0)
    log_lambda = jnp.asarray(0.0)
    outer_state = outer.init(log_lambda)
    params = {"w": jnp.zeros((64, 10)), "b": jnp.zeros(10)}
    steps = 3 if quick else 10
    rows, path = [], []
    for step in range(steps + 1):
        (value, (params, info)), hypergradient = hyper_step(log_lambda, params)
        reference_value, reference = closed_step(log_lambda)
        difference = abs(float(hypergradient - reference)) / abs(float(reference))
        path.append((float(log_lambda), float(value), float(hypergradient), float(reference)))
        rows.append([str(step), f"{float(jnp.exp(log_lambda)):.4g}", f"{float(value):.6f}",
                     f"{float(reference_value):.6f}", f"{float(hypergradient):+.6e}",
                     f"{float(reference):+.6e}", f"{difference:.1e}",
                     str(int(info.iterations)), optjx.StopReason(int(info.stop_reason)).name])  # fmt: skip
        if step == 0:
            first_params = params
        if step < steps:
            updates, outer_state = outer.update(hypergradient, outer_state, log_lambda)
            log_lambda = optjx.apply_updates(log_lambda, updates)
    print(table(rows, ["step", "lambda", "val loss", "(closed form)", "d val / d log lambda",
                       "(closed form)", "rel. diff", "inner iters", "inner stop"]))  # fmt: skip
    largest = max(abs(implicit - closed) for _, _, implicit, closed in path)
    print(f"largest |implicit - closed form|: {largest:.1e}")
    x_test, _, labels = test
    for name, p in (("lambda = 1 (step 0)", first_params), ("tuned lambda", params)):
        accuracy = float(np.mean(np.argmax(x_test @ p["w"] + p["b"], axis=1) == labels))
        print(f"test accuracy ({len(labels)} images), {name}: {accuracy:.4f}")
    grid = np.linspace(-8.0, 2.0, 121)
    curve = np.asarray(jax.jit(jax.vmap(closed_form))(jnp.asarray(grid)))
    return np.asarray(path), grid, curve


def plot_ridge(axes, path, grid, curve):
    lam = np.exp(path[:, 0])
    ax = axes[0]
    ax.plot(np.exp(grid), curve, color="0.5", label="validation loss (closed-form solution)")
    ax.plot(lam, path[:, 1], "-o", color="C3", ms=4, lw=1,
            label=f"gradient descent on log lambda, {len(path) - 1} steps")  # fmt: skip
    ax.plot(lam[:1], path[:1, 1], "s", color="k", ms=7, label="start")
    ax.set(xscale="log", xlabel="ridge strength lambda", ylabel="validation loss",
           title="ridge on digits (100 training, 400 validation images)")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[1]
    steps = np.arange(len(path))
    ax.plot(steps, path[:, 3], color="0.5", lw=3, alpha=0.6, label="closed form")
    ax.plot(steps, path[:, 2], "o", color="C3", ms=4, label="implicit (minimize, bfgs)")
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set(xlabel="outer step", ylabel="d validation loss / d log lambda",
           title="hypergradient at each outer step")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    start = time.perf_counter()
    print("(a) NIST StRD, higher difficulty: Thurber and BoxBOD from NIST's two starts\n")
    fits = nist_experiment(args.quick)
    print("\n(b) ridge strength tuned by the implicit hypergradient\n")
    path, grid, curve = ridge_experiment(args.quick, args.seed)
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    plot_nist(axes[0], fits)
    plot_ridge(axes[1], path, grid, curve)
    fig.tight_layout()
    save(fig, args.out, "least_squares.png")
    print(f"\ntotal {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
