r"""Schedules: functions ``count -> value``, jittable, evaluated at the number of updates
already applied (0 on the first update).

Any float hyperparameter of any optjx transform accepts one of these (or any function
of the same shape): learning rates, momentum (raised from 0.5 to 0.9 during training,
Goodfellow et al. 2016, section 8.3.2: ``linear(0.5, 0.9, 1000)``), betas, weight decay.

Values are computed at JAX's default float precision (float64 when x64 is enabled).
The count is converted to a float first, so counts past ``2**31`` stay finite, and step
arguments (``transition_steps``, ``transition_begin``, boundaries) may be any int that
fits int64. A float argument of the wrong type raises ``TypeError`` naming it; a NaN,
an infinity or a value out of range raises ``ValueError`` naming it.

PyTorch's epoch schedulers step once per epoch: wrap a schedule written in epochs in
``per_epoch`` (see the porting table in the README).

Every ``torch.optim.lr_scheduler`` class has a counterpart named after it in snake case
(``one_cycle_lr``, ``cosine_annealing_warm_restarts``, ...), with torch's argument names
and the optimizer's base rate as the first argument. Each returns a
``TorchSchedule``, a schedule that also carries its base rate and factor, so that
``sequential_lr`` and ``chained_scheduler`` compose them as torch does.
"""

from optjx.schedules._torch import TorchSchedule as TorchSchedule
from optjx.schedules.compose import join as join
from optjx.schedules.compose import per_epoch as per_epoch
from optjx.schedules.compose import piecewise_constant as piecewise_constant
from optjx.schedules.compose import warmup as warmup
from optjx.schedules.decay import constant as constant
from optjx.schedules.decay import cosine as cosine
from optjx.schedules.decay import linear as linear
from optjx.schedules.decay import polynomial as polynomial
from optjx.schedules.rates import exponential as exponential
from optjx.schedules.rates import inverse_sqrt as inverse_sqrt
from optjx.schedules.rates import inverse_time as inverse_time
from optjx.schedules.torch_compose import chained_scheduler as chained_scheduler
from optjx.schedules.torch_compose import sequential_lr as sequential_lr
from optjx.schedules.torch_cosine import cosine_annealing_lr as cosine_annealing_lr
from optjx.schedules.torch_cosine import (
    cosine_annealing_warm_restarts as cosine_annealing_warm_restarts,
)
from optjx.schedules.torch_cyclic import cyclic_lr as cyclic_lr
from optjx.schedules.torch_cyclic import cyclic_momentum as cyclic_momentum
from optjx.schedules.torch_factors import constant_lr as constant_lr
from optjx.schedules.torch_factors import linear_lr as linear_lr
from optjx.schedules.torch_factors import polynomial_lr as polynomial_lr
from optjx.schedules.torch_lambda import lambda_lr as lambda_lr
from optjx.schedules.torch_lambda import multiplicative_lr as multiplicative_lr
from optjx.schedules.torch_one_cycle import one_cycle_lr as one_cycle_lr
from optjx.schedules.torch_one_cycle import one_cycle_momentum as one_cycle_momentum
from optjx.schedules.torch_steps import exponential_lr as exponential_lr
from optjx.schedules.torch_steps import multi_step_lr as multi_step_lr
from optjx.schedules.torch_steps import step_lr as step_lr
from optjx.schedules.torch_swa import swa_lr as swa_lr
