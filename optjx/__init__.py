"""optjx: optimizers for JAX, as composable optax gradient transformations."""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from optax import EmptyState as EmptyState
from optax import GradientTransformation as GradientTransformation
from optax import GradientTransformationExtraArgs as GradientTransformationExtraArgs
from optax import apply_updates as apply_updates
from optax import chain as chain

from optjx import parallel as parallel
from optjx import schedules as schedules
from optjx.full_batch._common import stop_reason as stop_reason
from optjx.full_batch.bfgs import BfgsState as BfgsState
from optjx.full_batch.bfgs import bfgs as bfgs
from optjx.full_batch.conjugate_gradient import ConjugateGradientState as ConjugateGradientState
from optjx.full_batch.conjugate_gradient import conjugate_gradient as conjugate_gradient
from optjx.full_batch.lbfgs import LbfgsState as LbfgsState
from optjx.full_batch.lbfgs import lbfgs as lbfgs
from optjx.full_batch.line_search import LineSearchResult as LineSearchResult
from optjx.full_batch.line_search import strong_wolfe as strong_wolfe
from optjx.full_batch.more_thuente import MoreThuenteResult as MoreThuenteResult
from optjx.full_batch.more_thuente import more_thuente as more_thuente
from optjx.full_batch.newton_cg import NewtonCgState as NewtonCgState
from optjx.full_batch.newton_cg import newton_cg as newton_cg
from optjx.full_batch.trust_region import TrustRegionNewtonState as TrustRegionNewtonState
from optjx.full_batch.trust_region import trust_region_newton as trust_region_newton
from optjx.optimizers.adam import adam as adam
from optjx.optimizers.adam import adamw as adamw
from optjx.optimizers.adam import novograd as novograd
from optjx.optimizers.adam import radam as radam
from optjx.optimizers.adaptive import adadelta as adadelta
from optjx.optimizers.adaptive import adagrad as adagrad
from optjx.optimizers.adaptive import rmsprop as rmsprop
from optjx.optimizers.delta_bar_delta import delta_bar_delta as delta_bar_delta
from optjx.optimizers.sgd import sgd as sgd
from optjx.parallel import cross_replica_mean as cross_replica_mean
from optjx.schedule_free.accessors import (
    schedule_free_eval_params as schedule_free_eval_params,
)
from optjx.schedule_free.accessors import (
    schedule_free_train_params as schedule_free_train_params,
)
from optjx.schedule_free.aliases import adamw_schedule_free as adamw_schedule_free
from optjx.schedule_free.aliases import sgd_schedule_free as sgd_schedule_free
from optjx.schedule_free.core import ScheduleFreeState as ScheduleFreeState
from optjx.schedule_free.core import schedule_free as schedule_free
from optjx.schedule_free.radam import radam_schedule_free as radam_schedule_free
from optjx.training.early_stopping import EarlyStopping as EarlyStopping
from optjx.training.early_stopping import EarlyStoppingState as EarlyStoppingState
from optjx.training.early_stopping import early_stopping as early_stopping
from optjx.training.param_groups import group_of as group_of
from optjx.training.param_groups import param_groups as param_groups
from optjx.transforms.adadelta import ScaleByAdadeltaState as ScaleByAdadeltaState
from optjx.transforms.adadelta import scale_by_adadelta as scale_by_adadelta
from optjx.transforms.adagrad import ScaleByAdagradState as ScaleByAdagradState
from optjx.transforms.adagrad import scale_by_adagrad as scale_by_adagrad
from optjx.transforms.adam import ScaleByAdamState as ScaleByAdamState
from optjx.transforms.adam import scale_by_adam as scale_by_adam
from optjx.transforms.bias_correction import bias_correction as bias_correction
from optjx.transforms.clipping import clip as clip
from optjx.transforms.clipping import clip_by_global_norm as clip_by_global_norm
from optjx.transforms.clipping import global_norm as global_norm
from optjx.transforms.delta_bar_delta import ScaleByDeltaBarDeltaState as ScaleByDeltaBarDeltaState
from optjx.transforms.delta_bar_delta import scale_by_delta_bar_delta as scale_by_delta_bar_delta
from optjx.transforms.ema import EmaState as EmaState
from optjx.transforms.ema import ema as ema
from optjx.transforms.novograd import ScaleByNovogradState as ScaleByNovogradState
from optjx.transforms.novograd import scale_by_novograd as scale_by_novograd
from optjx.transforms.radam import ScaleByRadamState as ScaleByRadamState
from optjx.transforms.radam import scale_by_radam as scale_by_radam
from optjx.transforms.rms import ScaleByRmsState as ScaleByRmsState
from optjx.transforms.rms import scale_by_rms as scale_by_rms
from optjx.transforms.scale import scale as scale
from optjx.transforms.scale import scale_by_learning_rate as scale_by_learning_rate
from optjx.transforms.trace import TraceState as TraceState
from optjx.transforms.trace import trace as trace
from optjx.transforms.weight_decay import add_decayed_weights as add_decayed_weights
from optjx.wrappers.accumulate import AccumulateGradientsState as AccumulateGradientsState
from optjx.wrappers.accumulate import accumulate_gradients as accumulate_gradients
from optjx.wrappers.apply_if_finite import ApplyIfFiniteState as ApplyIfFiniteState
from optjx.wrappers.apply_if_finite import apply_if_finite as apply_if_finite
from optjx.wrappers.lookahead import LookaheadState as LookaheadState
from optjx.wrappers.lookahead import lookahead as lookahead
from optjx.wrappers.lookahead import slow_params as slow_params
from optjx.wrappers.monitor import MonitorState as MonitorState
from optjx.wrappers.monitor import diagnostics as diagnostics
from optjx.wrappers.monitor import monitor as monitor
from optjx.wrappers.polyak import PolyakState as PolyakState
from optjx.wrappers.polyak import averaged_params as averaged_params
from optjx.wrappers.polyak import polyak_averaging as polyak_averaging
from optjx.wrappers.reduce_on_plateau import ReduceOnPlateauState as ReduceOnPlateauState
from optjx.wrappers.reduce_on_plateau import reduce_on_plateau as reduce_on_plateau

try:
    __version__ = _version("optjx")
except _PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
