"""What a card holds: the ``Card`` of one public optjx name, and the ``Entry`` (one
configuration) and ``Tuned`` records it is made of.

A card is the one place that says everything the test suite and the benchmarks need to
know about a public optimizer or building block; ``tests/registry.py``, the sharded and
Flax test lists and ``benchmarks/_cases.py`` are derived from the cards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import optax

import optjx
from optjx import schedules


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
      loss_driven: ``update`` calls the loss itself: it takes ``value=`` (the loss at the
        params) and ``value_fn=`` (the loss), and its gradient must be the loss's gradient.
        The invariants harness then drives it on its standard loss (see ``_harness.loss``).
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
      factory: builds the transformation instead of ``optjx.<name>`` (the harness's own
        tests use it for a probe that is not a public name).
    """

    name: str
    config: str
    kwargs: dict = dataclasses.field(default_factory=dict)
    inner: Callable[[], optax.GradientTransformation] | None = None
    before: tuple = ()
    needs_params: bool = False
    needs_value: bool = False
    loss_driven: bool = False
    descent: bool = True
    sign_symmetric: bool = True
    linear: bool = False
    leaf_state: bool = True
    copies_params: bool = False
    scale_invariant: dict | None = None
    factory: Callable[..., optax.GradientTransformation] | None = None

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
        factory = self.factory or getattr(optjx, self.name)
        kwargs = {**self.kwargs, **overrides}
        tx = factory(self.inner(), **kwargs) if self.inner else factory(**kwargs)
        return optax.chain(*(make() for make in self.before), tx) if self.before else tx


@dataclasses.dataclass(frozen=True)
class Config:
    """An ``Entry`` without its name: the card fills the name in."""

    config: str
    kwargs: dict
    flags: dict

    def entry(self, name: str, loss_driven: bool) -> Entry:
        return Entry(name, self.config, self.kwargs, loss_driven=loss_driven, **self.flags)


def config(label: str, kwargs: dict | None = None, **flags) -> Config:
    """One configuration of a card: its label, keyword arguments and ``Entry`` flags."""
    return Config(label, dict(kwargs or {}), flags)


@dataclasses.dataclass(frozen=True)
class Tuned:
    """Hyperparameters tuned per problem for the convergence invariant."""

    quadratic: Callable[[], optax.GradientTransformation]
    rosenbrock: Callable[[], optax.GradientTransformation]


@dataclasses.dataclass(frozen=True)
class Bench:
    """A benchmark case: optjx against optax (``benchmarks/_cases.py`` reads these).

    ``optjx`` and ``optax`` return a ``GradientTransformation`` on plain params, or an
    ``(init, step)`` pair where optax needs a different API (see ``benchmarks/_cases.py``).
    ``arrays``: parameter-sized float32 arrays read plus written per step.
    """

    name: str
    label: str
    arrays: int
    optjx: Callable
    optax: Callable
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Example:
    """The defaults the examples write out for this optimizer (``compare_optimizers.py``
    and ``quickstart.py``'s ``--optimizer`` choices): ``make(lr)`` and the peak rate.
    ``scheduled``: the examples decay the rate with a cosine schedule over the run."""

    make: Callable[[object], optax.GradientTransformation]
    learning_rate: float
    scheduled: bool = True


@dataclasses.dataclass(frozen=True)
class Card:
    """Everything the tests and benchmarks need to know about one public optjx name.

    Attributes:
      name: the public name in ``optjx``.
      configs: the defaults and one or more configurations exercising its flags
        (``registry.ENTRIES``, run through every invariant).
      tuned: hyperparameters that converge on the quadratic and Rosenbrock
        (``registry.TUNED``).
      invalid: each hyperparameter with values that must raise ``ValueError`` naming it
        (``TypeError`` for a non-int given to an integer argument; ``registry.INVALID``).
      loss_driven: ``update`` needs ``value=`` and ``value_fn=`` (full-batch methods).
      example: the defaults the examples write out, for an alias they show.
      sharded: test id -> optimizer, for ``tests/parallel/test_every_transform_sharded.py``.
      flax: test id -> (optimizer, accessor of the weights to evaluate or ``None``), for
        ``tests/integration/test_flax_training.py``.
      benchmark: the cases ``benchmarks/run.py`` compares with optax.
      twins: test id -> (optjx builder, optax builder) of the same algorithm with
        hyperparameters under which both compute the same trajectory (up to rounding), for
        ``tests/compat`` (optax's combinators, Flax, ``optax.tree``); only configurations
        whose semantics really match (optax puts eps elsewhere in some algorithms).
    """

    name: str
    configs: tuple[Config, ...]
    tuned: Tuned
    invalid: dict[str, list]
    loss_driven: bool = False
    example: Example | None = None
    sharded: dict[str, Callable] = dataclasses.field(default_factory=dict)
    flax: dict[str, tuple] = dataclasses.field(default_factory=dict)
    benchmark: tuple[Bench, ...] = ()
    twins: dict[str, tuple[Callable, Callable]] = dataclasses.field(default_factory=dict)

    @property
    def entries(self) -> list[Entry]:
        return [c.entry(self.name, self.loss_driven) for c in self.configs]
