"""Known convergence rates on a quadratic f(x) = x^T A x / 2, eigenvalues of A in [mu, L].

* Gradient descent with step 1/L: ||x_{k+1}|| <= (1 - mu/L) ||x_k|| at every step, and
  the bound is attained asymptotically (the mu-eigendirection decays exactly that fast).
* Heavy ball (Polyak 1964) with lr = 4 / (sqrt(L) + sqrt(mu))^2 and
  momentum = ((sqrt(kappa) - 1) / (sqrt(kappa) + 1))^2 converges at the rate
  (sqrt(kappa) - 1) / (sqrt(kappa) + 1), kappa = L / mu.

The minimiser is 0, so the error is x itself and float64 resolves it to any size.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optjx

MU, L = 1.0, 100.0
KAPPA = L / MU


def _quadratic(n=8, seed=0):
    """A = Q diag(eigenvalues) Q^T with a random rotation Q and eigenvalues spanning [MU, L]."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    eigenvalues = np.linspace(MU, L, n)
    return q @ np.diag(eigenvalues) @ q.T, rng.normal(size=n)


def _error_norms(optimizer, steps):
    a, x0 = _quadratic()
    a = jnp.asarray(a)

    def one_step(carry, _):
        x, state = carry
        updates, state = optimizer.update(a @ x, state, x)
        x = optjx.apply_updates(x, updates)
        return (x, state), jnp.linalg.norm(x)

    x0 = jnp.asarray(x0)
    run = jax.jit(lambda x: jax.lax.scan(one_step, (x, optimizer.init(x)), length=steps)[1])
    return np.concatenate([[np.linalg.norm(x0)], np.asarray(run(x0))])


def test_gradient_descent_contracts_by_one_minus_mu_over_l(x64):
    bound = 1.0 - MU / L
    errors = _error_norms(optjx.sgd(1.0 / L), 1000)
    ratios = errors[1:] / errors[:-1]
    assert np.all(ratios <= bound * (1 + 1e-12)), ratios.max()
    # The bound is tight: the slowest direction decays at exactly 1 - mu/L.
    measured = (errors[1000] / errors[500]) ** (1 / 500)
    np.testing.assert_allclose(measured, bound, rtol=1e-6)


@pytest.mark.parametrize("form", ["pytorch", "velocity"])
def test_heavy_ball_with_polyak_tuning(x64, form):
    lr = 4.0 / (np.sqrt(L) + np.sqrt(MU)) ** 2
    rate = (np.sqrt(KAPPA) - 1) / (np.sqrt(KAPPA) + 1)
    momentum = rate**2
    if form == "pytorch":
        optimizer = optjx.sgd(lr, momentum=momentum)
    else:  # v = a v - lr g; x += v
        optimizer = optjx.chain(optjx.scale_by_learning_rate(lr), optjx.trace(momentum))
    steps = 800
    errors = _error_norms(optimizer, steps)
    # With the optimal tuning the extreme eigendirections have a double root of modulus
    # `rate`, so their error is ~ k * rate^k: divide that polynomial factor out.
    half = steps // 2
    measured = (errors[steps] / errors[half]) ** (1 / half) / (steps / half) ** (1 / half)
    np.testing.assert_allclose(measured, rate, rtol=1e-4)
    # Far faster than gradient descent's 1 - 1/kappa = 0.99.
    assert measured < 0.83 < 1 - 1 / KAPPA
