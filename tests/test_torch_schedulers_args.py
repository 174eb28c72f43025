"""Every torch-named schedule rejects a bad argument at construction: ``ValueError`` for
a bad value, ``TypeError`` for a bad type, the message naming the argument."""

from __future__ import annotations

import jax.numpy as jnp
import pytest

from optjx import schedules as S

LR = 0.1


def _multiplicative(k):
    return jnp.where(k % 4 == 0, 1.1, 0.9)


# (factory call, exception, the argument its message names)
INVALID = [
    (lambda: S.constant_lr(-0.1), ValueError, "lr"),
    (lambda: S.constant_lr("0.1"), TypeError, "lr"),
    (lambda: S.constant_lr(LR, factor=1.5), ValueError, "factor"),
    (lambda: S.constant_lr(LR, total_iters=0), ValueError, "total_iters"),
    (lambda: S.linear_lr(LR, start_factor=0.0), ValueError, "start_factor"),
    (lambda: S.linear_lr(LR, end_factor=2.0), ValueError, "end_factor"),
    (lambda: S.linear_lr(LR, total_iters=2.5), ValueError, "total_iters"),
    (lambda: S.polynomial_lr(LR, power=-1.0), ValueError, "power"),
    (lambda: S.polynomial_lr(LR, total_iters=0), ValueError, "total_iters"),
    (lambda: S.exponential_lr(LR, gamma=-0.5), ValueError, "gamma"),
    (lambda: S.exponential_lr(LR, gamma=float("nan")), ValueError, "gamma"),
    (lambda: S.exponential_lr(LR, gamma=None), TypeError, "gamma"),
    (lambda: S.step_lr(LR, step_size=0), ValueError, "step_size"),
    (lambda: S.step_lr(LR, 3, gamma=-1.0), ValueError, "gamma"),
    (lambda: S.multi_step_lr(LR, [-1]), ValueError, "milestones"),
    (lambda: S.multi_step_lr(LR, 3), TypeError, "milestones"),
    (lambda: S.lambda_lr(LR, 0.5), TypeError, "lr_lambda"),
    (lambda: S.multiplicative_lr(LR, None), TypeError, "lr_lambda"),
    (lambda: S.multiplicative_lr(LR, _multiplicative, total_iters=-1), ValueError, "total_iters"),
    (lambda: S.cosine_annealing_lr(LR, T_max=0), ValueError, "T_max"),
    (lambda: S.cosine_annealing_lr(LR, 10, eta_min=-1.0), ValueError, "eta_min"),
    (lambda: S.cosine_annealing_lr(LR, 10, after_t_max="restart"), ValueError, "after_t_max"),
    (lambda: S.cosine_annealing_warm_restarts(LR, T_0=0), ValueError, "T_0"),
    (lambda: S.cosine_annealing_warm_restarts(LR, 5, T_mult=0), ValueError, "T_mult"),
    (lambda: S.cosine_annealing_warm_restarts(LR, 5, T_mult=1.5), ValueError, "T_mult"),
    (lambda: S.cosine_annealing_warm_restarts(LR, 5, eta_min=float("inf")), ValueError, "eta_min"),
    (lambda: S.cyclic_lr(-0.01, 0.1), ValueError, "base_lr"),
    (lambda: S.cyclic_lr(0.01, float("nan")), ValueError, "max_lr"),
    (lambda: S.cyclic_lr(0.01, 0.1, step_size_up=0), ValueError, "step_size_up"),
    (lambda: S.cyclic_lr(0.01, 0.1, step_size_down=-1), ValueError, "step_size_down"),
    (lambda: S.cyclic_lr(0.01, 0.1, mode="sine"), ValueError, "mode"),
    (lambda: S.cyclic_lr(0.01, 0.1, gamma=-1.0), ValueError, "gamma"),
    (lambda: S.cyclic_lr(0.01, 0.1, scale_fn=3), TypeError, "scale_fn"),
    (lambda: S.cyclic_lr(0.01, 0.1, scale_fn=jnp.sqrt, scale_mode="x"), ValueError, "scale_mode"),
    (lambda: S.cyclic_lr(0.01, 0.1, cycle_momentum="yes"), TypeError, "cycle_momentum"),
    (lambda: S.cyclic_momentum(0.01, 0.1, cycle_momentum=False), ValueError, "cycle_momentum"),
    (lambda: S.cyclic_momentum(0.01, 0.1, base_momentum=-0.1), ValueError, "base_momentum"),
    (lambda: S.one_cycle_lr(-1.0, 10), ValueError, "max_lr"),
    (lambda: S.one_cycle_lr(0.1), ValueError, "total_steps"),
    (lambda: S.one_cycle_lr(0.1, total_steps=0), ValueError, "total_steps"),
    (lambda: S.one_cycle_lr(0.1, epochs=0, steps_per_epoch=3), ValueError, "epochs"),
    (lambda: S.one_cycle_lr(0.1, epochs=2, steps_per_epoch=0), ValueError, "steps_per_epoch"),
    (lambda: S.one_cycle_lr(0.1, 10, pct_start=1.5), ValueError, "pct_start"),
    (lambda: S.one_cycle_lr(0.1, 10, anneal_strategy="exp"), ValueError, "anneal_strategy"),
    (lambda: S.one_cycle_lr(0.1, 10, div_factor=0.0), ValueError, "div_factor"),
    (lambda: S.one_cycle_lr(0.1, 10, final_div_factor=-1.0), ValueError, "final_div_factor"),
    (lambda: S.one_cycle_lr(0.1, 10, three_phase=1), TypeError, "three_phase"),
    (lambda: S.one_cycle_momentum(0.1, 10, cycle_momentum=False), ValueError, "cycle_momentum"),
    (lambda: S.one_cycle_momentum(0.1, 10, max_momentum=float("inf")), ValueError, "max_momentum"),
    (lambda: S.swa_lr(float("nan"), 0.05), ValueError, "lr"),
    (lambda: S.swa_lr(LR, swa_lr=-0.05), ValueError, "swa_lr"),
    (lambda: S.swa_lr(LR, 0.05, anneal_epochs=-1), ValueError, "anneal_epochs"),
    (lambda: S.swa_lr(LR, 0.05, anneal_strategy="exp"), ValueError, "anneal_strategy"),
    (lambda: S.sequential_lr([], []), ValueError, "schedulers"),
    (lambda: S.sequential_lr([S.cosine(LR, 10)], []), TypeError, "schedulers"),
    (lambda: S.sequential_lr(S.step_lr(LR, 3), []), TypeError, "schedulers"),
    (lambda: S.sequential_lr([S.step_lr(LR, 3)] * 2, []), ValueError, "milestones"),
    (lambda: S.sequential_lr([S.step_lr(LR, 3)] * 3, [5, 3]), ValueError, "milestones"),
    (lambda: S.sequential_lr([S.step_lr(LR, 3)] * 2, [0]), ValueError, "milestones"),
    (lambda: S.chained_scheduler([]), ValueError, "schedulers"),
    (lambda: S.chained_scheduler([lambda k: 0.1]), TypeError, "schedulers"),
    (lambda: S.chained_scheduler([S.step_lr(LR, 3), S.step_lr(0.2, 3)]), ValueError, "schedulers"),
]


@pytest.mark.parametrize("index", range(len(INVALID)))
def test_bad_arguments_raise_naming_them(index):
    make, error, name = INVALID[index]
    with pytest.raises(error, match=rf"\b{name}\b"):
        make()
