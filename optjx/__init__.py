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
from optjx import typing as typing
from optjx.full_batch._common import StopReason as StopReason
from optjx.full_batch._common import stop_reason as stop_reason
from optjx.full_batch.bfgs import BfgsState as BfgsState
from optjx.full_batch.bfgs import bfgs as bfgs
from optjx.full_batch.conjugate_gradient import ConjugateGradientState as ConjugateGradientState
from optjx.full_batch.conjugate_gradient import conjugate_gradient as conjugate_gradient
from optjx.full_batch.gauss_newton import GaussNewtonState as GaussNewtonState
from optjx.full_batch.gauss_newton import gauss_newton as gauss_newton
from optjx.full_batch.lbfgs import LbfgsState as LbfgsState
from optjx.full_batch.lbfgs import lbfgs as lbfgs
from optjx.full_batch.lbfgs_b import LbfgsBState as LbfgsBState
from optjx.full_batch.lbfgs_b import lbfgs_b as lbfgs_b
from optjx.full_batch.levenberg_marquardt import LevenbergMarquardtState as LevenbergMarquardtState
from optjx.full_batch.levenberg_marquardt import levenberg_marquardt as levenberg_marquardt
from optjx.full_batch.line_search import LineSearchResult as LineSearchResult
from optjx.full_batch.line_search import strong_wolfe as strong_wolfe
from optjx.full_batch.minimize import MinimizeInfo as MinimizeInfo
from optjx.full_batch.minimize import minimize as minimize
from optjx.full_batch.more_thuente import MoreThuenteResult as MoreThuenteResult
from optjx.full_batch.more_thuente import more_thuente as more_thuente
from optjx.full_batch.newton_cg import NewtonCgState as NewtonCgState
from optjx.full_batch.newton_cg import newton_cg as newton_cg
from optjx.full_batch.trust_region import TrustRegionNewtonState as TrustRegionNewtonState
from optjx.full_batch.trust_region import trust_region_newton as trust_region_newton
from optjx.optimizers.adafactor import adafactor as adafactor
from optjx.optimizers.adam import adam as adam
from optjx.optimizers.adam import adamw as adamw
from optjx.optimizers.adam import novograd as novograd
from optjx.optimizers.adam import radam as radam
from optjx.optimizers.adam_variants import adamax as adamax
from optjx.optimizers.adam_variants import nadam as nadam
from optjx.optimizers.adaptive import adadelta as adadelta
from optjx.optimizers.adaptive import adagrad as adagrad
from optjx.optimizers.adaptive import rmsprop as rmsprop
from optjx.optimizers.averaged import asgd as asgd
from optjx.optimizers.delta_bar_delta import delta_bar_delta as delta_bar_delta
from optjx.optimizers.muon import muon as muon
from optjx.optimizers.sgd import sgd as sgd
from optjx.optimizers.sign_based import rprop as rprop
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
from optjx.schedule_free.radam import radam_schedule_free as radam_schedule_free
from optjx.schedule_free.wrapper import schedule_free as schedule_free
from optjx.training.batch_stats import recompute_batch_stats as recompute_batch_stats
from optjx.training.batch_stats import (
    recompute_batch_stats_nnx as recompute_batch_stats_nnx,
)
from optjx.training.early_stopping import EarlyStopping as EarlyStopping
from optjx.training.early_stopping import EarlyStoppingState as EarlyStoppingState
from optjx.training.early_stopping import early_stopping as early_stopping
from optjx.training.param_groups import group_of as group_of
from optjx.training.param_groups import param_groups as param_groups
from optjx.training.torch_state import from_torch_state as from_torch_state
from optjx.training.torch_state import to_torch_state as to_torch_state
from optjx.transforms.adadelta import ScaleByAdadeltaState as ScaleByAdadeltaState
from optjx.transforms.adadelta import scale_by_adadelta as scale_by_adadelta
from optjx.transforms.adafactor import FactoredMoment as FactoredMoment
from optjx.transforms.adafactor import ScaleByAdafactorState as ScaleByAdafactorState
from optjx.transforms.adafactor import scale_by_adafactor as scale_by_adafactor
from optjx.transforms.adagrad import ScaleByAdagradState as ScaleByAdagradState
from optjx.transforms.adagrad import scale_by_adagrad as scale_by_adagrad
from optjx.transforms.adam import ScaleByAdamState as ScaleByAdamState
from optjx.transforms.adam import scale_by_adam as scale_by_adam
from optjx.transforms.adamax import ScaleByAdamaxState as ScaleByAdamaxState
from optjx.transforms.adamax import scale_by_adamax as scale_by_adamax
from optjx.transforms.bias_correction import bias_correction as bias_correction
from optjx.transforms.clipping import clip as clip
from optjx.transforms.clipping import clip_by_global_norm as clip_by_global_norm
from optjx.transforms.clipping import global_norm as global_norm
from optjx.transforms.delta_bar_delta import ScaleByDeltaBarDeltaState as ScaleByDeltaBarDeltaState
from optjx.transforms.delta_bar_delta import scale_by_delta_bar_delta as scale_by_delta_bar_delta
from optjx.transforms.ema import EmaState as EmaState
from optjx.transforms.ema import ema as ema
from optjx.transforms.muon import ScaleByMuonState as ScaleByMuonState
from optjx.transforms.muon import scale_by_muon as scale_by_muon
from optjx.transforms.nadam import ScaleByNadamState as ScaleByNadamState
from optjx.transforms.nadam import scale_by_nadam as scale_by_nadam
from optjx.transforms.newton_schulz import (
    orthogonalize_by_newton_schulz as orthogonalize_by_newton_schulz,
)
from optjx.transforms.novograd import ScaleByNovogradState as ScaleByNovogradState
from optjx.transforms.novograd import scale_by_novograd as scale_by_novograd
from optjx.transforms.radam import ScaleByRadamState as ScaleByRadamState
from optjx.transforms.radam import scale_by_radam as scale_by_radam
from optjx.transforms.rms import ScaleByRmsState as ScaleByRmsState
from optjx.transforms.rms import scale_by_rms as scale_by_rms
from optjx.transforms.rprop import ScaleByRpropState as ScaleByRpropState
from optjx.transforms.rprop import scale_by_rprop as scale_by_rprop
from optjx.transforms.scale import scale as scale
from optjx.transforms.scale import scale_by_learning_rate as scale_by_learning_rate
from optjx.transforms.trace import TraceState as TraceState
from optjx.transforms.trace import trace as trace
from optjx.transforms.weight_decay import add_decayed_weights as add_decayed_weights
from optjx.wrappers.accumulate import AccumulateGradientsState as AccumulateGradientsState
from optjx.wrappers.accumulate import accumulate_gradients as accumulate_gradients
from optjx.wrappers.apply_if_finite import ApplyIfFiniteState as ApplyIfFiniteState
from optjx.wrappers.apply_if_finite import apply_if_finite as apply_if_finite
from optjx.wrappers.block_coordinate import BlockCoordinateState as BlockCoordinateState
from optjx.wrappers.block_coordinate import block_coordinate as block_coordinate
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

__all__ = [
    "__version__",
    "accumulate_gradients",
    "AccumulateGradientsState",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "adamw_schedule_free",
    "add_decayed_weights",
    "apply_if_finite",
    "apply_updates",
    "ApplyIfFiniteState",
    "asgd",
    "averaged_params",
    "bfgs",
    "BfgsState",
    "bias_correction",
    "block_coordinate",
    "BlockCoordinateState",
    "chain",
    "clip",
    "clip_by_global_norm",
    "conjugate_gradient",
    "ConjugateGradientState",
    "cross_replica_mean",
    "delta_bar_delta",
    "diagnostics",
    "early_stopping",
    "EarlyStopping",
    "EarlyStoppingState",
    "ema",
    "EmaState",
    "EmptyState",
    "FactoredMoment",
    "from_torch_state",
    "gauss_newton",
    "GaussNewtonState",
    "global_norm",
    "GradientTransformation",
    "GradientTransformationExtraArgs",
    "group_of",
    "lbfgs",
    "lbfgs_b",
    "LbfgsBState",
    "LbfgsState",
    "levenberg_marquardt",
    "LevenbergMarquardtState",
    "LineSearchResult",
    "lookahead",
    "LookaheadState",
    "minimize",
    "MinimizeInfo",
    "monitor",
    "MonitorState",
    "more_thuente",
    "MoreThuenteResult",
    "muon",
    "nadam",
    "newton_cg",
    "NewtonCgState",
    "novograd",
    "orthogonalize_by_newton_schulz",
    "parallel",
    "param_groups",
    "polyak_averaging",
    "PolyakState",
    "radam",
    "radam_schedule_free",
    "recompute_batch_stats",
    "recompute_batch_stats_nnx",
    "reduce_on_plateau",
    "ReduceOnPlateauState",
    "rmsprop",
    "rprop",
    "scale",
    "scale_by_adadelta",
    "scale_by_adafactor",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_delta_bar_delta",
    "scale_by_learning_rate",
    "scale_by_muon",
    "scale_by_nadam",
    "scale_by_novograd",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_rprop",
    "ScaleByAdadeltaState",
    "ScaleByAdafactorState",
    "ScaleByAdagradState",
    "ScaleByAdamaxState",
    "ScaleByAdamState",
    "ScaleByDeltaBarDeltaState",
    "ScaleByMuonState",
    "ScaleByNadamState",
    "ScaleByNovogradState",
    "ScaleByRadamState",
    "ScaleByRmsState",
    "ScaleByRpropState",
    "schedule_free",
    "schedule_free_eval_params",
    "schedule_free_train_params",
    "ScheduleFreeState",
    "schedules",
    "sgd",
    "sgd_schedule_free",
    "slow_params",
    "stop_reason",
    "StopReason",
    "strong_wolfe",
    "to_torch_state",
    "trace",
    "TraceState",
    "trust_region_newton",
    "TrustRegionNewtonState",
    "typing",
]

try:
    __version__ = _version("optjx")
except _PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
