"""One registry of every public optjx transformation, for the invariants in tests/invariants.

``ENTRIES``: each :class:`Entry` is one configuration of one public factory: the
defaults, and one or more that exercise its flags (nesterov, centered, amsgrad, decoupled
decay, threshold 4, grad_averaging, reset_state, masks, dtypes, schedule-valued
hyperparameters, ...). An entry says what driving it needs (params, the ``value=`` extra
argument) and which properties its algorithm has (parameter step or descent direction,
sign symmetry, linearity in the gradient, scale invariance, per-leaf state).

``TUNED``: per public name, one optimizer with hyperparameters tuned for the convergence
invariant (a building block inside the smallest chain that makes it an optimizer).
``INVALID``: per public name, each hyperparameter with values that must raise
``ValueError`` naming it. ``tests/test_registry_complete.py`` fails when a public name
that builds a transformation is missing from these tables.

Adding an optimizer: two or more ``Entry`` lines, a ``TUNED`` line, an ``INVALID`` line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

import optjx
from optjx import schedules

NAN = float("nan")


# --------------------------------------------------------------------------- entries


@dataclasses.dataclass(frozen=True)
class Entry:
    """One configuration of one public optjx factory.

    Attributes:
      name: the public name in ``optjx``; ``build`` calls ``optjx.<name>``.
      config: a short label of the configuration.
      kwargs: keyword arguments of ``optjx.<name>`` (``build(**overrides)`` replaces some:
        the bad-input invariant passes invalid values this way).
      inner: for wrappers, a function returning a fresh inner optimizer (first argument).
      before: functions returning stages chained before it (``reduce_on_plateau`` scales
        an optimizer's updates).
      needs_params: ``update`` needs the params (raises ``ValueError`` without them).
      needs_value: ``update`` needs the ``value=`` extra argument (``reduce_on_plateau``).
      descent: the update is a step to add to the params (it goes against the gradient);
        ``False`` for building blocks, which give descent directions (along it).
      sign_symmetric: ``u(-g; -w) = -u(g; w)`` bit for bit (every algorithm here is odd
        in the gradient and the params together).
      linear: the update is linear in the gradient elementwise, so complex params are
        exactly two real parts (see the convergence invariant).
      leaf_state: the state holds per-leaf moments or copies, so a gradient tree that does
        not match it can be detected. A stateless transformation (only a step count)
        accepts any tree: there is nothing to match against.
      copies_params: ``init`` keeps a copy of the params' values (lookahead, polyak
        averaging), so on ``jax.ShapeDtypeStruct`` it runs only under ``jax.eval_shape``.
      scale_invariant: keyword overrides (``eps=0``) under which ``u(c g) = u(g)`` for
        every ``c > 0``; ``None`` when no setting of the algorithm has that property.
    """

    name: str
    config: str
    kwargs: dict = dataclasses.field(default_factory=dict)
    inner: Callable[[], optax.GradientTransformation] | None = None
    before: tuple = ()
    needs_params: bool = False
    needs_value: bool = False
    descent: bool = True
    sign_symmetric: bool = True
    linear: bool = False
    leaf_state: bool = True
    copies_params: bool = False
    scale_invariant: dict | None = None

    @property
    def id(self) -> str:
        return f"{self.name}-{self.config}"

    @property
    def scheduled(self) -> bool:
        """Some hyperparameter of this configuration is an optjx schedule."""
        return any(
            callable(v) and getattr(v, "__module__", "") == schedules.__name__
            for v in self.kwargs.values()
        )

    @property
    def fixes_state_dtype(self) -> bool:
        """The configuration sets a state dtype (``accumulator_dtype``, ``mu_dtype``, ...)."""
        return any(k.endswith("_dtype") for k in self.kwargs)

    def build(self, **overrides) -> optax.GradientTransformation:
        factory = getattr(optjx, self.name)
        kwargs = {**self.kwargs, **overrides}
        tx = factory(self.inner(), **kwargs) if self.inner else factory(**kwargs)
        return optax.chain(*(make() for make in self.before), tx) if self.before else tx


def _not_biases(params):
    """A mask that works on any tree: decay every leaf but those under the key ``"b"``."""
    return jax.tree_util.tree_map_with_path(
        lambda path, p: not path or getattr(path[-1], "key", None) != "b", params
    )


def _adam():
    return optjx.adam(1e-2)


def _sgd():
    return optjx.sgd(0.1)


def _rms():
    return optjx.scale_by_rms(0.99)


def _momentum(mu):
    return lambda: optjx.sgd(0.1, momentum=mu)


_ramp = schedules.linear  # a schedule for hyperparameters of every kind
_cosine = schedules.cosine
E = Entry
DIRECTION = {"descent": False}  # a building block: gives a descent direction, not a step
EPS0 = {"scale_invariant": {"eps": 0.0}}
NO_LEAF_STATE = {"leaf_state": False}
PARAMS = {"needs_params": True}
LINEAR = {"linear": True}
COPIES = {"needs_params": True, "copies_params": True}

# fmt: off
ENTRIES: list[Entry] = [
    # ------------------------------------------------------------------------ aliases
    E("sgd", "plain", dict(learning_rate=0.1), **LINEAR, **NO_LEAF_STATE),
    E("sgd", "nesterov-weight-decay-lr-schedule",
      dict(learning_rate=_cosine(0.1, 20), momentum=0.9, nesterov=True, weight_decay=1e-2),
      **LINEAR, **PARAMS),
    E("sgd", "dampening-momentum-schedule",
      dict(learning_rate=0.05, momentum=_ramp(0.5, 0.9, 10), dampening=0.3), **LINEAR),
    E("rmsprop", "plain", dict(learning_rate=0.01), **EPS0),
    E("rmsprop", "centered-momentum-nesterov-weight-decay",
      dict(learning_rate=0.01, decay=0.99, centered=True, momentum=0.9, nesterov=True,
           weight_decay=1e-2), **PARAMS),
    E("rmsprop", "eps-root-decay-schedule",
      dict(learning_rate=0.01, decay=_ramp(0.5, 0.9, 10), eps=0.0, eps_root=1e-6)),
    E("adagrad", "plain", dict(learning_rate=0.1), **EPS0),
    E("adagrad", "initial-accumulator-weight-decay",
      dict(learning_rate=0.1, initial_accumulator_value=0.1, eps=1e-8, weight_decay=1e-2),
      **PARAMS),
    E("adam", "plain", dict(learning_rate=1e-2), **EPS0),
    E("adam", "amsgrad-weight-decay-eps-root-cosine",
      dict(learning_rate=_cosine(1e-2, 20), amsgrad=True, eps_root=1e-8, weight_decay=1e-2),
      **PARAMS),
    E("adamw", "plain", dict(learning_rate=1e-2), **PARAMS),
    E("adamw", "amsgrad-mask-b1-schedule",
      dict(learning_rate=1e-2, b1=_ramp(0.8, 0.9, 10), amsgrad=True, weight_decay=0.1,
           mask=_not_biases), **PARAMS),
    E("adadelta", "plain"),
    E("adadelta", "weight-decay-rho-schedule",
      dict(learning_rate=0.5, rho=_ramp(0.5, 0.95, 10), weight_decay=1e-2), **PARAMS),
    E("radam", "plain", dict(learning_rate=1e-2)),
    E("radam", "threshold-4-decoupled-weight-decay",
      dict(learning_rate=1e-2, b2=0.99, threshold=4.0, weight_decay=1e-2,
           decoupled_weight_decay=True), **PARAMS),
    E("radam", "coupled-weight-decay", dict(learning_rate=1e-2, b2=0.99, weight_decay=1e-2),
      **PARAMS),
    E("novograd", "plain", dict(learning_rate=1e-2), **EPS0),
    E("novograd", "grad-averaging-weight-decay",
      dict(learning_rate=1e-2, grad_averaging=True, weight_decay=1e-3), **PARAMS),
    E("delta_bar_delta", "jacobs",
      dict(initial_learning_rate=0.05, kappa=1e-3, phi=0.1, gamma=0.7)),
    E("delta_bar_delta", "kappa-schedule-no-average",
      dict(initial_learning_rate=0.01, kappa=_ramp(1e-3, 1e-2, 10), phi=0.5, gamma=0.0)),
    # ---------------------------------------------------------------- building blocks
    E("scale", "negative-constant", dict(step_size=-0.1), **LINEAR, **NO_LEAF_STATE),
    E("scale", "schedule", dict(step_size=_ramp(-0.1, -0.01, 10)), **LINEAR, **NO_LEAF_STATE),
    E("scale_by_learning_rate", "plain", dict(learning_rate=0.1), **LINEAR, **NO_LEAF_STATE),
    E("scale_by_learning_rate", "no-flip-cosine",
      dict(learning_rate=_cosine(0.1, 10), flip_sign=False), **DIRECTION, **LINEAR, **NO_LEAF_STATE),
    E("trace", "heavy-ball", dict(decay=0.9), **DIRECTION, **LINEAR),
    E("trace", "nesterov", dict(decay=0.9, nesterov=True), **DIRECTION, **LINEAR),
    E("trace", "dampening-schedule-f32-buffer",
      dict(decay=_ramp(0.5, 0.9, 10), dampening=0.5, accumulator_dtype=jnp.float32),
      **DIRECTION, **LINEAR),
    E("ema", "plain", dict(decay=0.9), **DIRECTION, **LINEAR),
    E("ema", "debias-schedule-f32",
      dict(decay=_ramp(0.5, 0.9, 10), debias=True, accumulator_dtype=jnp.float32),
      **DIRECTION, **LINEAR),
    E("bias_correction", "constant", dict(decay=0.9), **DIRECTION, **LINEAR, **NO_LEAF_STATE),
    E("bias_correction", "schedule", dict(decay=_ramp(0.5, 0.99, 10)),
      **DIRECTION, **LINEAR, **NO_LEAF_STATE),
    E("scale_by_rms", "plain", **DIRECTION, **EPS0),
    E("scale_by_rms", "centered-initial-scale-eps-root",
      dict(decay=0.99, centered=True, initial_scale=1.0, eps_root=1e-8), **DIRECTION),
    E("scale_by_adagrad", "plain", **DIRECTION, **EPS0),
    E("scale_by_adagrad", "initial-accumulator-eps-root",
      dict(initial_accumulator_value=0.1, eps=0.0, eps_root=1e-8), **DIRECTION),
    E("scale_by_adam", "plain", **DIRECTION, **EPS0),
    E("scale_by_adam", "amsgrad-f32-moments-b2-schedule",
      dict(b2=_ramp(0.9, 0.999, 10), amsgrad=True, mu_dtype=jnp.float32,
           nu_dtype=jnp.float32), **DIRECTION),
    E("scale_by_adadelta", "plain", **DIRECTION),
    E("scale_by_adadelta", "rho-eps", dict(rho=0.95, eps=1e-4), **DIRECTION),
    E("scale_by_radam", "plain", **DIRECTION),
    E("scale_by_radam", "threshold-4", dict(b1=0.9, b2=0.99, threshold=4.0), **DIRECTION),
    E("scale_by_novograd", "plain", **DIRECTION, **EPS0),
    E("scale_by_novograd", "grad-averaging-weight-decay",
      dict(b1=0.9, b2=0.99, grad_averaging=True, weight_decay=1e-2), **DIRECTION, **PARAMS),
    E("scale_by_delta_bar_delta", "jacobs",
      dict(initial_learning_rate=0.05, kappa=1e-3, phi=0.1, gamma=0.7), **DIRECTION),
    E("scale_by_delta_bar_delta", "phi-schedule",
      dict(initial_learning_rate=0.01, kappa=1e-2, phi=_ramp(0.1, 0.5, 10), gamma=0.5),
      **DIRECTION),
    E("add_decayed_weights", "constant", dict(weight_decay=1e-2),
      **DIRECTION, **PARAMS, **LINEAR, **NO_LEAF_STATE),
    E("add_decayed_weights", "mask-schedule",
      dict(weight_decay=_ramp(1e-2, 1e-3, 10), mask=_not_biases),
      **DIRECTION, **PARAMS, **LINEAR, **NO_LEAF_STATE),
    E("clip", "constant", dict(max_delta=0.5), **DIRECTION, **NO_LEAF_STATE),
    E("clip", "schedule", dict(max_delta=_ramp(1.0, 0.1, 10)), **DIRECTION, **NO_LEAF_STATE),
    E("clip_by_global_norm", "constant", dict(max_norm=1.0), **DIRECTION, **NO_LEAF_STATE),
    E("clip_by_global_norm", "schedule", dict(max_norm=_ramp(2.0, 0.5, 10)),
      **DIRECTION, **NO_LEAF_STATE),
    # ----------------------------------------------------------------------- wrappers
    E("lookahead", "adam", dict(sync_period=2, slow_step_size=0.5), inner=_adam, **COPIES),
    E("lookahead", "sgd-reset-state-alpha-schedule",
      dict(sync_period=3, slow_step_size=_ramp(0.5, 0.8, 10), reset_state=True),
      inner=_momentum(0.9), **COPIES, **LINEAR),
    E("lookahead", "plain-sgd-every-step-alpha-1", dict(sync_period=1, slow_step_size=1.0),
      inner=_sgd, **COPIES, **LINEAR),
    E("polyak_averaging", "uniform-adam", inner=_adam, **COPIES),
    E("polyak_averaging", "ema-plain-sgd", dict(decay=0.9), inner=_sgd, **COPIES, **LINEAR),
    E("apply_if_finite", "adam", dict(max_consecutive_errors=3), inner=_adam),
    E("apply_if_finite", "sgd-momentum-limit-1", dict(max_consecutive_errors=1),
      inner=_momentum(0.9), **LINEAR),
    E("reduce_on_plateau", "after-sgd-momentum", dict(factor=0.5, patience=0),
      before=(_momentum(0.9),), needs_value=True, **LINEAR),
    E("reduce_on_plateau", "standalone-cooldown-min-scale",
      dict(factor=0.5, patience=1, cooldown=1, min_scale=0.1),
      needs_value=True, **DIRECTION, **LINEAR, **NO_LEAF_STATE),
    E("accumulate_gradients", "adam-every-2", dict(every_k=2), inner=_adam),
    E("accumulate_gradients", "sgd-every-3-f32-sum",
      dict(every_k=3, accumulator_dtype=jnp.float32), inner=_momentum(0.9), **LINEAR),
    # ------------------------------------------------------------------ schedule-free
    E("sgd_schedule_free", "plain", dict(learning_rate=0.1), **COPIES, **LINEAR),
    E("sgd_schedule_free", "warmup-weight-decay-r",
      dict(learning_rate=0.1, momentum=0.8, warmup_steps=3, weight_decay=1e-2, r=0.75),
      **COPIES, **LINEAR),
    E("sgd_schedule_free", "cosine-momentum-schedule",
      dict(learning_rate=_cosine(0.1, 20), momentum=_ramp(0.5, 0.9, 10)), **COPIES, **LINEAR),
    E("adamw_schedule_free", "plain", dict(learning_rate=1e-2), **COPIES, **EPS0),
    E("adamw_schedule_free", "paper-warmup-weight-decay-r",
      dict(learning_rate=1e-2, warmup_steps=3, weight_decay=1e-2, r=0.75, variant="paper"),
      **COPIES),
    E("adamw_schedule_free", "cosine-b2-schedule",
      dict(learning_rate=_cosine(1e-2, 20), b2=_ramp(0.9, 0.999, 10)), **COPIES),
    E("radam_schedule_free", "plain", dict(learning_rate=1e-2), **COPIES),
    E("radam_schedule_free", "sgd-phase-weight-decay-r-b2-0.99",
      dict(learning_rate=1e-2, b2=0.99, weight_decay=1e-2, r=0.5, silent_sgd_phase=False),
      **COPIES),
    E("schedule_free", "rms-warmup-decay-at-y",
      dict(learning_rate=1e-2, warmup_steps=3, weight_decay_at_y=1e-2), inner=_rms, **COPIES),
    E("schedule_free", "identity-cosine-r", dict(learning_rate=_cosine(0.1, 20), r=0.75),
      inner=optax.identity, **COPIES, **LINEAR),
]
# fmt: on

BY_ID: dict[str, Entry] = {e.id: e for e in ENTRIES}
assert len(BY_ID) == len(ENTRIES), "registry ids must be unique"
NAMES: list[str] = list(dict.fromkeys(e.name for e in ENTRIES))


def first(name: str) -> Entry:
    """The first configuration of a public name."""
    return next(e for e in ENTRIES if e.name == name)


# Public names covered outside the registry, with the reason (checked by the meta-test).
COVERED_ELSEWHERE = {
    "chain": "optax's own combinator, re-exported unchanged; every alias in the registry is "
    "a chain of optjx stages, so chain runs through every invariant",
    "cross_replica_mean": "needs a mapped axis name bound by pmap or shard_map: invariant 9 "
    "runs it first in a chain around every registry entry under pmap, and "
    "tests/parallel/test_cross_replica_mean.py covers it under shard_map",
}

# Public callables that do not build a transformation (checked by the meta-test).
NOT_TRANSFORMS = {
    "apply_updates": "applies updates to params (optax's, re-exported)",
    "global_norm": "a function of a tree (the norm that clip_by_global_norm uses)",
    "slow_params": "accessor: reads lookahead's slow weights from a state",
    "averaged_params": "accessor: reads polyak_averaging's average from a state",
    "schedule_free_eval_params": "accessor: the evaluation weights x of a schedule-free state",
    "schedule_free_train_params": "accessor: the training params y from x (the inverse)",
    "schedules": "module of schedules count -> value (invariant 10 covers every one)",
    "parallel": "module: cross_replica_mean (above) and sharding helpers",
}


# ------------------------------------------------------------ tuned for convergence


@dataclasses.dataclass(frozen=True)
class Tuned:
    """Hyperparameters tuned per problem for the convergence invariant."""

    quadratic: Callable[[], optax.GradientTransformation]
    rosenbrock: Callable[[], optax.GradientTransformation]


QUADRATIC_STEPS = 1_000  # every optimizer gets this many steps on the quadratic,
ROSENBROCK_STEPS = 10_000  # and this many on the Rosenbrock function


def _lr(block, lr):
    """A building block made an optimizer: ``chain(block(), scale_by_learning_rate(lr))``."""
    return lambda: optax.chain(block(), optjx.scale_by_learning_rate(lr))


def _q(lr, steps=QUADRATIC_STEPS):
    """A learning rate decayed to 0 over the quadratic run (cosine)."""
    return schedules.cosine(lr, steps)


def _r(lr, steps=ROSENBROCK_STEPS):
    """A learning rate decayed to 0 over the Rosenbrock run (cosine)."""
    return schedules.cosine(lr, steps)


TUNED: dict[str, Tuned] = {
    "sgd": Tuned(lambda: optjx.sgd(0.1), lambda: optjx.sgd(1.5e-3, momentum=0.9)),
    "rmsprop": Tuned(
        lambda: optjx.rmsprop(_q(0.05)),
        lambda: optjx.rmsprop(_r(3e-3), decay=0.99, momentum=0.9),
    ),
    "adagrad": Tuned(lambda: optjx.adagrad(0.5), lambda: optjx.adagrad(0.5)),
    "adam": Tuned(lambda: optjx.adam(_q(0.1)), lambda: optjx.adam(_r(0.01), b2=0.99)),
    "adamw": Tuned(
        lambda: optjx.adamw(_q(0.1), weight_decay=1e-4),
        lambda: optjx.adamw(_r(0.01), b2=0.99, weight_decay=1e-4),
    ),
    "adadelta": Tuned(
        lambda: optjx.adadelta(10.0), lambda: optjx.adadelta(_r(0.1), rho=0.9, eps=1e-5)
    ),
    "radam": Tuned(lambda: optjx.radam(_q(0.1)), lambda: optjx.radam(_r(1e-3), b2=0.99)),
    "novograd": Tuned(
        lambda: optjx.novograd(_q(0.1), grad_averaging=True),
        lambda: optjx.novograd(_r(0.02), grad_averaging=True),
    ),
    "delta_bar_delta": Tuned(
        lambda: optjx.delta_bar_delta(0.01, kappa=1e-3, phi=0.3, gamma=0.7),
        lambda: optjx.delta_bar_delta(1e-3, kappa=1e-4, phi=0.3, gamma=0.7),
    ),
    "scale": Tuned(
        lambda: optjx.scale(-0.1), lambda: optax.chain(optjx.trace(0.9), optjx.scale(-1.5e-3))
    ),
    "scale_by_learning_rate": Tuned(
        lambda: optjx.scale_by_learning_rate(0.1),
        lambda: optax.chain(optjx.trace(0.9), optjx.scale_by_learning_rate(1.5e-3)),
    ),
    "trace": Tuned(_lr(lambda: optjx.trace(0.5), 0.05), _lr(lambda: optjx.trace(0.9), 1.5e-3)),
    "ema": Tuned(
        _lr(lambda: optjx.ema(0.5, debias=True), 0.05),
        _lr(lambda: optjx.ema(0.9, debias=True), 3e-3),
    ),
    "bias_correction": Tuned(
        lambda: optax.chain(
            optjx.ema(0.5), optjx.bias_correction(0.5), optjx.scale_by_learning_rate(0.05)
        ),
        lambda: optax.chain(
            optjx.ema(0.9), optjx.bias_correction(0.9), optjx.scale_by_learning_rate(3e-3)
        ),
    ),
    "scale_by_rms": Tuned(
        _lr(optjx.scale_by_rms, _q(0.05)),
        lambda: optax.chain(
            optjx.scale_by_rms(0.99), optjx.trace(0.9), optjx.scale_by_learning_rate(_r(3e-3))
        ),
    ),
    "scale_by_adagrad": Tuned(_lr(optjx.scale_by_adagrad, 0.5), _lr(optjx.scale_by_adagrad, 0.5)),
    "scale_by_adam": Tuned(
        _lr(optjx.scale_by_adam, _q(0.1)), _lr(lambda: optjx.scale_by_adam(b2=0.99), _r(0.01))
    ),
    "scale_by_adadelta": Tuned(
        _lr(optjx.scale_by_adadelta, 10.0),
        _lr(lambda: optjx.scale_by_adadelta(0.9, eps=1e-5), _r(0.1)),
    ),
    "scale_by_radam": Tuned(
        _lr(optjx.scale_by_radam, _q(0.1)), _lr(lambda: optjx.scale_by_radam(b2=0.99), _r(1e-3))
    ),
    "scale_by_novograd": Tuned(
        _lr(lambda: optjx.scale_by_novograd(grad_averaging=True), _q(0.1)),
        _lr(lambda: optjx.scale_by_novograd(grad_averaging=True), _r(0.02)),
    ),
    "scale_by_delta_bar_delta": Tuned(
        lambda: optax.chain(
            optjx.scale_by_delta_bar_delta(0.01, kappa=1e-3, phi=0.3, gamma=0.7), optjx.scale(-1.0)
        ),
        lambda: optax.chain(
            optjx.scale_by_delta_bar_delta(1e-3, kappa=1e-4, phi=0.3, gamma=0.7), optjx.scale(-1.0)
        ),
    ),
    "add_decayed_weights": Tuned(
        lambda: optax.chain(optjx.add_decayed_weights(1e-4), optjx.scale_by_learning_rate(0.1)),
        lambda: optax.chain(
            optjx.add_decayed_weights(1e-5), optjx.trace(0.9), optjx.scale_by_learning_rate(1.5e-3)
        ),
    ),
    "clip": Tuned(
        _lr(lambda: optjx.clip(1.0), 0.1),
        lambda: optax.chain(optjx.clip(1.0), optjx.trace(0.9), optjx.scale_by_learning_rate(1e-3)),
    ),
    "clip_by_global_norm": Tuned(
        _lr(lambda: optjx.clip_by_global_norm(1.0), 0.1),
        lambda: optax.chain(
            optjx.clip_by_global_norm(10.0), optjx.trace(0.9), optjx.scale_by_learning_rate(1.5e-3)
        ),
    ),
    "lookahead": Tuned(
        lambda: optjx.lookahead(optjx.adam(_q(0.1)), sync_period=5, slow_step_size=0.5),
        lambda: optjx.lookahead(optjx.adam(_r(0.02), b2=0.99), sync_period=5, slow_step_size=0.5),
    ),
    "polyak_averaging": Tuned(
        lambda: optjx.polyak_averaging(optjx.adam(_q(0.1))),
        lambda: optjx.polyak_averaging(optjx.adam(_r(0.01), b2=0.99), decay=0.9),
    ),
    "apply_if_finite": Tuned(
        lambda: optjx.apply_if_finite(optjx.adam(_q(0.1)), max_consecutive_errors=2),
        lambda: optjx.apply_if_finite(optjx.adam(_r(0.01), b2=0.99), max_consecutive_errors=2),
    ),
    "reduce_on_plateau": Tuned(
        lambda: optax.chain(optjx.adam(0.1), optjx.reduce_on_plateau(factor=0.5, patience=20)),
        lambda: optax.chain(
            optjx.adam(0.01, b2=0.99), optjx.reduce_on_plateau(factor=0.5, patience=100)
        ),
    ),
    "accumulate_gradients": Tuned(
        # The inner optimizer steps once per two calls: its schedule spans half the run.
        lambda: optjx.accumulate_gradients(optjx.adam(_q(0.1, QUADRATIC_STEPS // 2)), 2),
        lambda: optjx.accumulate_gradients(optjx.adam(_r(0.01, ROSENBROCK_STEPS // 2), b2=0.99), 2),
    ),
    "sgd_schedule_free": Tuned(
        lambda: optjx.sgd_schedule_free(0.1),
        lambda: optjx.sgd_schedule_free(2e-3, warmup_steps=100, r=1.0),
    ),
    "adamw_schedule_free": Tuned(
        lambda: optjx.adamw_schedule_free(0.1),
        lambda: optjx.adamw_schedule_free(5e-3, b2=0.99, warmup_steps=100),
    ),
    "radam_schedule_free": Tuned(
        lambda: optjx.radam_schedule_free(0.1),
        lambda: optjx.radam_schedule_free(5e-3, b2=0.99),
    ),
    "schedule_free": Tuned(
        lambda: optjx.schedule_free(optjx.scale_by_rms(0.99), learning_rate=0.05),
        lambda: optjx.schedule_free(
            optjx.scale_by_rms(0.99), learning_rate=5e-3, warmup_steps=100
        ),
    ),
}


# -------------------------------------------------------------------- bad input
# -------------------------------------------------------------------- bad input

# Public name -> hyperparameter -> values that must raise ValueError naming it. Every
# float hyperparameter is also checked with NaN. ``scale`` takes any real number.
_LR = {"learning_rate": [-0.1, NAN]}
_DECAY = [-0.1, 1.0, NAN]
_NONNEG = [-1e-3, NAN]
_ADAM = {"b1": _DECAY, "b2": _DECAY, "eps": _NONNEG, "eps_root": _NONNEG}
_OPEN = [0.0, 1.0, NAN]  # schedule-free momentum: in (0, 1)
_SF = {"r": _NONNEG, "weight_lr_power": _NONNEG, "warmup_steps": [-1, 1.5, True]}
_DBD = {"initial_learning_rate": _NONNEG, "kappa": _NONNEG, "phi": [-0.1, 1.5, NAN],
        "gamma": _DECAY}  # fmt: skip
INVALID: dict[str, dict[str, list]] = {
    "sgd": {**_LR, "momentum": _NONNEG, "dampening": _NONNEG, "weight_decay": _NONNEG},
    "rmsprop": {**_LR, "decay": _DECAY, "eps": _NONNEG, "eps_root": _NONNEG,
                "momentum": _NONNEG, "weight_decay": _NONNEG, "initial_scale": _NONNEG},
    "adagrad": {**_LR, "initial_accumulator_value": _NONNEG, "eps": _NONNEG,
                "weight_decay": _NONNEG},
    "adam": {**_LR, **_ADAM, "weight_decay": _NONNEG},
    "adamw": {**_LR, **_ADAM, "weight_decay": _NONNEG},
    "adadelta": {**_LR, "rho": _DECAY, "eps": _NONNEG, "weight_decay": _NONNEG},
    "radam": {**_LR, "b1": _DECAY, "b2": _DECAY, "eps": _NONNEG, "threshold": [3.9, NAN],
              "weight_decay": _NONNEG},
    "novograd": {**_LR, "b1": _DECAY, "b2": _DECAY, "eps": _NONNEG, "weight_decay": _NONNEG},
    "delta_bar_delta": _DBD,
    "scale": {},
    "scale_by_learning_rate": _LR,
    "trace": {"decay": _NONNEG, "dampening": _NONNEG},
    "ema": {"decay": _DECAY},
    "bias_correction": {"decay": _DECAY},
    "scale_by_rms": {"decay": _DECAY, "eps": _NONNEG, "eps_root": _NONNEG,
                     "initial_scale": _NONNEG},
    "scale_by_adagrad": {"initial_accumulator_value": _NONNEG, "eps": _NONNEG,
                         "eps_root": _NONNEG},
    "scale_by_adam": _ADAM,
    "scale_by_adadelta": {"rho": _DECAY, "eps": _NONNEG},
    "scale_by_radam": {"b1": _DECAY, "b2": _DECAY, "eps": _NONNEG, "threshold": [3.9, NAN]},
    "scale_by_novograd": {"b1": _DECAY, "b2": _DECAY, "eps": _NONNEG, "weight_decay": _NONNEG},
    "scale_by_delta_bar_delta": _DBD,
    "add_decayed_weights": {"weight_decay": _NONNEG},
    "clip": {"max_delta": _NONNEG},
    "clip_by_global_norm": {"max_norm": [0.0, -1.0, NAN]},
    "lookahead": {"sync_period": [0, 1.5, True], "slow_step_size": [-0.1, 1.5, NAN]},
    "polyak_averaging": {"decay": _DECAY},
    "apply_if_finite": {"max_consecutive_errors": [0, 2.0]},
    "reduce_on_plateau": {"factor": [0.0, 1.5, NAN], "patience": [-1, 1.5], "rtol": _NONNEG,
                          "cooldown": [-1], "min_scale": _NONNEG},
    "accumulate_gradients": {"every_k": [0, 2.5]},
    "sgd_schedule_free": {**_LR, **_SF, "momentum": _OPEN, "weight_decay": _NONNEG},
    "adamw_schedule_free": {**_LR, **_SF, "b1": _OPEN, "b2": _DECAY, "eps": _NONNEG,
                            "weight_decay": _NONNEG, "variant": ["adam"]},
    "radam_schedule_free": {**_LR, "r": _NONNEG, "weight_lr_power": _NONNEG, "b1": _OPEN,
                            "b2": _DECAY, "eps": _NONNEG, "weight_decay": _NONNEG},
    "schedule_free": {**_LR, **_SF, "momentum": _OPEN, "weight_decay_at_y": _NONNEG},
}  # fmt: skip

# Flag combinations that must raise ValueError naming the flag.
INVALID_COMBINATIONS: dict[str, tuple[Callable[[], Any], str]] = {
    "sgd nesterov without momentum": (lambda: optjx.sgd(0.1, nesterov=True), "nesterov"),
    "rmsprop nesterov without momentum": (lambda: optjx.rmsprop(0.1, nesterov=True), "nesterov"),
    "trace nesterov with dampening": (
        lambda: optjx.trace(0.9, nesterov=True, dampening=0.5),
        "dampening",
    ),
    "trace nesterov without momentum": (lambda: optjx.trace(0.0, nesterov=True), "nesterov"),
}
