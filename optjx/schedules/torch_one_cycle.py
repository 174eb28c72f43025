r"""``OneCycleLR`` (Smith & Topin 2019): one rise of the rate and one fall, the
momentum (or Adam's $\beta_1$) the other way; ``one_cycle_momentum`` is the momentum twin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import jax.numpy as jnp

from optjx import _hyper
from optjx.schedules import _checks as C
from optjx.schedules import _torch as T
from optjx.schedules._checks import public
from optjx.schedules._torch import TorchSchedule
from optjx.typing import Schedule

# Each phase: (its last step, start rate, end rate, start momentum, end momentum), rates
# and momenta named by the keys of ``_Bounds``.
_TWO_PHASES = (
    ("up", "initial", "max", "max_m", "base_m"),
    ("last", "max", "min", "base_m", "max_m"),
)
_THREE_PHASES = (
    ("up", "initial", "max", "max_m", "base_m"),
    ("down", "max", "initial", "base_m", "max_m"),
    ("last", "initial", "min", "max_m", "max_m"),
)


def _one_cycle(args: dict, momentum: bool) -> tuple[Callable, Any]:
    """Validate torch's arguments; return ``(count -> value, initial rate)`` for the rate
    (``momentum=False``) or the momentum."""
    T.rate("max_lr", args["max_lr"])
    total = args["total_steps"]
    if total is not None:
        total = C.steps("total_steps", total)
    elif args["epochs"] is not None and args["steps_per_epoch"] is not None:
        total = C.steps("epochs", args["epochs"]) * C.steps(
            "steps_per_epoch", args["steps_per_epoch"]
        )
    else:
        raise ValueError("give total_steps, or epochs and steps_per_epoch")
    pct = args["pct_start"]
    if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not 0.0 <= pct <= 1.0:
        raise ValueError(f"pct_start must be a number in [0, 1], got {pct!r}")
    strategy = T.choice("anneal_strategy", args["anneal_strategy"], ("cos", "linear"))
    C.value("div_factor", args["div_factor"], _hyper.POSITIVE)
    C.value("final_div_factor", args["final_div_factor"], _hyper.POSITIVE)
    three = T.flag("three_phase", args["three_phase"])
    cycles = T.flag("cycle_momentum", args["cycle_momentum"])
    C.value("base_momentum", args["base_momentum"], _hyper.NONNEGATIVE)
    C.value("max_momentum", args["max_momentum"], _hyper.NONNEGATIVE)
    if momentum and not cycles:
        raise ValueError(
            "cycle_momentum=False: torch leaves the momentum as the optimizer has it; "
            "pass that number instead of one_cycle_momentum(...)"
        )
    initial = args["max_lr"] / args["div_factor"]
    bounds = {
        "initial": initial,
        "max": args["max_lr"],
        "min": initial / args["final_div_factor"],
        "max_m": args["max_momentum"],
        "base_m": args["base_momentum"],
    }
    # torch's phase ends, in the same float arithmetic.
    ends = {"up": float(pct * total) - 1, "down": float(2 * pct * total) - 2, "last": total - 1}
    phases = _THREE_PHASES if three else _TWO_PHASES
    first = 3 if momentum else 1

    def value(count):
        # Held at the final value from the last step on. torch computes one more step,
        # past the end of its last phase (the rate bounces up), then raises.
        k = jnp.minimum(C.as_float(count), float(total - 1))
        out, start = [], 0.0
        for phase in phases:
            end = ends[phase[0]]
            # torch divides by zero in a phase of no length; give its start value.
            pct_done = (k - start) / (end - start if end != start else 1.0)
            out.append(
                (end, T.anneal(strategy, bounds[phase[first]], bounds[phase[first + 1]], pct_done))
            )
            start = end
        result = out[-1][1]
        for end, phase_value in reversed(out[:-1]):
            result = jnp.where(k <= end, phase_value, result)
        return result

    return value, initial


def _arguments(local: dict) -> dict:
    return {name: local[name] for name in _NAMES}


_NAMES = (
    "max_lr total_steps epochs steps_per_epoch pct_start anneal_strategy cycle_momentum "
    "base_momentum max_momentum div_factor final_div_factor three_phase"
).split()


@public
def one_cycle_lr(
    max_lr: float,
    total_steps: int | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    pct_start: float = 0.3,
    anneal_strategy: Literal["cos", "linear"] = "cos",
    cycle_momentum: bool = True,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> TorchSchedule:
    r"""``torch.optim.lr_scheduler.OneCycleLR``: from ``max_lr / div_factor`` up to
    ``max_lr``, then down to ``max_lr / (div_factor * final_div_factor)``.

    With $N$ total steps and $p$ = ``pct_start``, the phases end at steps
    $e_1 = pN - 1$, then ($\texttt{three\_phase}$) $e_2 = 2pN - 2$, and $N - 1$; within
    a phase from $e_{i-1}$ to $e_i$ ($e_0 = 0$) the rate anneals from its start $a$ to
    its end $b$ with $t = (k - e_{i-1})/(e_i - e_{i-1})$:

    $$
    \eta_k = b + \tfrac12(a - b)\big(1 + \cos \pi t\big) \ \ (\texttt{"cos"}) \quad
    \text{or} \quad a + (b - a)\,t \ \ (\texttt{"linear"})
    $$

    Two phases: initial $\to$ max $\to$ min. Three: initial $\to$ max $\to$ initial
    $\to$ min. ``one_cycle_momentum`` (same arguments) gives the momentum: max
    $\to$ base $\to$ max (three phases: then held at max).

    References:
      Smith & Topin (2019), "Super-convergence: very fast training of neural networks
      using large learning rates"; Smith (2018), "A disciplined approach to neural
      network hyper-parameters: part 1" (the cyclical momentum).

    Args:
      max_lr: the peak rate, finite, $\ge 0$ (required).
      total_steps: $N$, an int $\ge 1$, or ``None`` (default): then
        ``epochs * steps_per_epoch``.
      epochs: an int $\ge 1$, used when ``total_steps`` is ``None``.
      steps_per_epoch: an int $\ge 1$, used when ``total_steps`` is ``None``.
      pct_start: $p \in [0, 1]$ (default 0.3): the share of the steps spent rising.
      anneal_strategy: ``"cos"`` (default) or ``"linear"``.
      cycle_momentum: whether torch cycles the momentum (default ``True``).
      base_momentum: the momentum at the peak rate (default 0.85).
      max_momentum: the momentum at the low rates (default 0.95).
      div_factor: $> 0$ (default 25): the initial rate is ``max_lr / div_factor``.
      final_div_factor: $> 0$ (default 1e4): the final rate is the initial one divided
        by it.
      three_phase: the three-phase schedule (default ``False``).

    Returns:
      A ``TorchSchedule`` (``base_lr`` is ``max_lr / div_factor``, torch's
      ``initial_lr``): the jittable schedule ``count -> rate``, values at JAX's default
      float precision.

    Raises:
      TypeError: a value argument is not a real number, a step count is not an int, or a
        flag is not a bool.
      ValueError: a value or a step count is out of range, neither ``total_steps`` nor ``epochs`` and
        ``steps_per_epoch`` are given, or ``anneal_strategy`` is not one of the two.

    Differences from PyTorch and optax:
      Golden-tested to 1e-12 against torch (cos and linear, two and three phases).
      From step ``total_steps - 1`` on, optjx holds the final rate; torch computes one
      more step, past the end of its last phase (the rate rises again), then raises. optax's ``cosine_onecycle_schedule`` differs
      from torch (its phase ends are $pN$ and $N$, not $pN - 1$ and $N - 1$) and cycles
      no momentum.

    Examples:
      >>> S = optjx.schedules
      >>> tx = optjx.sgd(S.one_cycle_lr(0.1, total_steps=1000),
      ...                momentum=S.one_cycle_momentum(0.1, total_steps=1000))
      >>> tx = optjx.adam(S.one_cycle_lr(1e-3, epochs=10, steps_per_epoch=100),
      ...                 b1=S.one_cycle_momentum(1e-3, epochs=10, steps_per_epoch=100))
    """
    value, initial = _one_cycle(_arguments(locals()), momentum=False)
    return T.TorchSchedule("OneCycleLR", initial, value=value)


@public
def one_cycle_momentum(
    max_lr: float,
    total_steps: int | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    pct_start: float = 0.3,
    anneal_strategy: Literal["cos", "linear"] = "cos",
    cycle_momentum: bool = True,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> Schedule:
    r"""The momentum (SGD's ``momentum``, Adam's ``b1``) that ``OneCycleLR`` sets: from
    ``max_momentum`` down to ``base_momentum`` while the rate rises, and back.

    The phases of ``one_cycle_lr``, which takes the same arguments (pass one set
    of keyword arguments to both), annealed the same way between max $\to$ base $\to$
    max (three phases: max $\to$ base $\to$ max, then held at max).

    Args:
      max_lr: as ``one_cycle_lr`` (it fixes nothing here but is checked).
      total_steps: as ``one_cycle_lr``.
      epochs: as ``one_cycle_lr``.
      steps_per_epoch: as ``one_cycle_lr``.
      pct_start: as ``one_cycle_lr``.
      anneal_strategy: as ``one_cycle_lr``.
      cycle_momentum: must be ``True`` (default).
      base_momentum: the momentum at the peak rate (default 0.85).
      max_momentum: the momentum at the low rates (default 0.95).
      div_factor: as ``one_cycle_lr``.
      final_div_factor: as ``one_cycle_lr``.
      three_phase: as ``one_cycle_lr``.

    Returns:
      A schedule: a jittable function ``count -> momentum``, values at JAX's default
      float precision.

    Raises:
      TypeError: as ``one_cycle_lr``.
      ValueError: as ``one_cycle_lr``, or ``cycle_momentum=False`` (torch then
        leaves the momentum alone: pass the optimizer's momentum as a number).

    Differences from PyTorch and optax:
      torch writes it into ``param_groups`` (``momentum``, or ``betas[0]`` when the
      optimizer has ``betas``); here it is a schedule for ``optjx.sgd(momentum=)`` or
      ``optjx.adam(b1=)``. Golden-tested to 1e-12 with SGD and Adam.

    Examples:
      >>> m = optjx.schedules.one_cycle_momentum(0.1, total_steps=100)
      >>> round(float(m(0)), 6), round(float(m(29)), 6)
      (0.95, 0.85)
    """
    value, _ = _one_cycle(_arguments(locals()), momentum=True)
    return public(value)
