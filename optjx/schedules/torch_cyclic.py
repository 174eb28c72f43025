r"""``CyclicLR`` (Smith 2017): the rate goes up and down between two bounds, and the
momentum (or Adam's $\beta_1$) the other way; ``cyclic_momentum`` is the momentum twin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import jax.numpy as jnp

from optjx import _hyper, _tree
from optjx.schedules import _checks as C
from optjx.schedules import _torch as T
from optjx.schedules._checks import public
from optjx.schedules._torch import TorchSchedule
from optjx.typing import Schedule

_MODES = ("triangular", "triangular2", "exp_range")
_SCALE_MODES = ("cycle", "iterations")


def _cycle(
    step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode
) -> Callable[[object], tuple[jnp.ndarray, jnp.ndarray]]:
    """Validate the shared arguments; return ``count -> (height, scale)``: the position
    in the triangle (0 at the bounds' start, 1 at the peak) and the amplitude factor."""
    up = C.steps("step_size_up", step_size_up)
    down = up if step_size_down is None else C.step("step_size_down", step_size_down)
    C.value("gamma", gamma, _hyper.NONNEGATIVE)
    if scale_fn is None:
        T.choice("mode", mode, _MODES)
        scale_mode = "iterations" if mode == "exp_range" else "cycle"
        scale_fn = {
            "triangular": lambda x: jnp.ones_like(x),
            "triangular2": lambda x: 1.0 / 2.0 ** (x - 1.0),
            "exp_range": lambda x: gamma**x,
        }[mode]
    else:
        T.function("scale_fn", scale_fn)
        T.choice("scale_mode", scale_mode, _SCALE_MODES)
    total = up + down
    ratio = up / total

    def at(count):
        k = C.as_float(count)
        cycles_done = C.floor_div(k, total)
        x = (k - cycles_done * float(total)) / float(total)
        height = jnp.where(x <= ratio, x / ratio, (x - 1.0) / (ratio - 1.0) if down else 0.0)
        argument = cycles_done + 1.0 if scale_mode == "cycle" else k
        return height, _tree.default_float(scale_fn(argument))

    return at


@public
def cyclic_lr(
    base_lr: float,
    max_lr: float,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: Literal["triangular", "triangular2", "exp_range"] = "triangular",
    gamma: float = 1.0,
    scale_fn: Callable | None = None,
    scale_mode: Literal["cycle", "iterations"] = "cycle",
    cycle_momentum: bool = True,
    base_momentum: float = 0.8,
    max_momentum: float = 0.9,
) -> TorchSchedule:
    r"""``torch.optim.lr_scheduler.CyclicLR``: the rate between ``base_lr`` and
    ``max_lr`` in triangles of ``step_size_up + step_size_down`` steps.

    $$
    c = 1 + \Big\lfloor \frac{k}{u + d} \Big\rfloor,\quad
    x = \frac{k}{u + d} - (c - 1),\quad
    h = \begin{cases} x\,\frac{u + d}{u} & x \le \frac{u}{u + d} \\
    (1 - x)\,\frac{u + d}{d} & \text{else} \end{cases},\quad
    \eta_k = \eta_{lo} + (\eta_{hi} - \eta_{lo})\, h\, s
    $$

    with $s$ the scale of ``mode`` or ``scale_fn``. ``cyclic_momentum``, with the
    same arguments, gives torch's momentum sequence $m_{hi} - (m_{hi} - m_{lo})\,h\,s$.

    References:
      Smith (2017), "Cyclical learning rates for training neural networks", section
      3.1 (triangular, triangular2, exp_range).

    Args:
      base_lr: $\eta_{lo}$, the lower rate, finite, $\ge 0$ (required).
      max_lr: $\eta_{hi}$, the upper rate, finite, $\ge 0$ (required).
      step_size_up: $u$, an int $\ge 1$ (default 2000): steps from the lower to the
        upper rate.
      step_size_down: $d$, an int $\ge 0$, or ``None`` (default: $u$).
      mode: ``"triangular"`` ($s = 1$), ``"triangular2"`` ($s = 2^{1-c}$, halved each
        cycle) or ``"exp_range"`` ($s = \gamma^k$); ignored when ``scale_fn`` is given.
      gamma: $\gamma \ge 0$ (default 1), for ``"exp_range"``.
      scale_fn: a jittable function giving $s$, or ``None`` (default): it receives the
        cycle number $c$ (1, 2, ...) or the count $k$, as a float array.
      scale_mode: ``"cycle"`` (default) or ``"iterations"``: what ``scale_fn`` receives.
      cycle_momentum: whether torch cycles the momentum (default ``True``).
      base_momentum: $m_{lo}$ (default 0.8), the momentum at the upper rate.
      max_momentum: $m_{hi}$ (default 0.9), the momentum at the lower rate.

    Returns:
      A ``TorchSchedule`` (``base_lr`` is $\eta_{lo}$): the jittable schedule
      ``count -> rate``, values at JAX's default float precision.

    Raises:
      TypeError: a value argument is not a real number, a step size is not an int,
        ``scale_fn`` is not a function, or ``cycle_momentum`` is not a bool.
      ValueError: a value is out of range, a step size is out of range, or
        ``mode`` / ``scale_mode`` is not one of the names.

    Differences from PyTorch and optax:
      Golden-tested to 1e-12 against torch's ``step()`` for the three modes and a
      custom ``scale_fn``. torch also accepts one ``base_lr`` per parameter group
      (here: one schedule per group in ``optjx.param_groups``). ``scale_fn`` must be
      jittable. optax has no counterpart.

    Examples:
      >>> S = optjx.schedules
      >>> kw = dict(base_lr=0.01, max_lr=0.1, step_size_up=500, mode="triangular2")
      >>> tx = optjx.sgd(S.cyclic_lr(**kw), momentum=S.cyclic_momentum(**kw))
    """
    T.rate("base_lr", base_lr)
    T.rate("max_lr", max_lr)
    T.flag("cycle_momentum", cycle_momentum)
    C.value("base_momentum", base_momentum, _hyper.NONNEGATIVE)
    C.value("max_momentum", max_momentum, _hyper.NONNEGATIVE)
    at = _cycle(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode)

    def value(count):
        height, scale = at(count)
        return base_lr + (max_lr - base_lr) * height * scale

    return T.TorchSchedule("CyclicLR", base_lr, value=value)


@public
def cyclic_momentum(
    base_lr: float,
    max_lr: float,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: Literal["triangular", "triangular2", "exp_range"] = "triangular",
    gamma: float = 1.0,
    scale_fn: Callable | None = None,
    scale_mode: Literal["cycle", "iterations"] = "cycle",
    cycle_momentum: bool = True,
    base_momentum: float = 0.8,
    max_momentum: float = 0.9,
) -> Schedule:
    r"""The momentum (SGD's ``momentum``, Adam's ``b1``) that ``CyclicLR`` sets: down
    while the rate goes up, and back.

    $$
    m_k = m_{hi} - (m_{hi} - m_{lo})\, h\, s
    $$

    with $h$ and $s$ as in ``cyclic_lr``, which takes the same arguments: pass one
    set of keyword arguments to both.

    Args:
      base_lr: $\eta_{lo}$, the lower rate, finite, $\ge 0$ (required).
      max_lr: $\eta_{hi}$, the upper rate, finite, $\ge 0$ (required).
      step_size_up: $u$, an int $\ge 1$ (default 2000): steps from the lower to the
        upper rate.
      step_size_down: $d$, an int $\ge 0$, or ``None`` (default: $u$).
      mode: ``"triangular"`` ($s = 1$), ``"triangular2"`` ($s = 2^{1-c}$, halved each
        cycle) or ``"exp_range"`` ($s = \gamma^k$); ignored when ``scale_fn`` is given.
      gamma: $\gamma \ge 0$ (default 1), for ``"exp_range"``.
      scale_fn: a jittable function giving $s$, or ``None`` (default): it receives the
        cycle number $c$ (1, 2, ...) or the count $k$, as a float array.
      scale_mode: ``"cycle"`` (default) or ``"iterations"``: what ``scale_fn`` receives.
      cycle_momentum: whether torch cycles the momentum (default ``True``).
      base_momentum: $m_{lo}$ (default 0.8), the momentum at the upper rate.
      max_momentum: $m_{hi}$ (default 0.9), the momentum at the lower rate.

    Returns:
      A schedule: a jittable function ``count -> momentum``, values at JAX's default
      float precision.

    Raises:
      TypeError: as ``cyclic_lr``.
      ValueError: as ``cyclic_lr``, or ``cycle_momentum=False`` (torch then leaves
        the momentum alone: pass the optimizer's momentum as a number instead).

    Differences from PyTorch and optax:
      torch writes it into ``param_groups`` (``momentum``, or ``betas[0]`` when the
      optimizer has ``betas``); here it is a schedule for ``optjx.sgd(momentum=)`` or
      ``optjx.adam(b1=)``. Golden-tested to 1e-12 with SGD and Adam.

    Examples:
      >>> m = optjx.schedules.cyclic_momentum(0.01, 0.1, step_size_up=10)
      >>> round(float(m(0)), 6), round(float(m(10)), 6)
      (0.9, 0.8)
    """
    T.rate("base_lr", base_lr)
    T.rate("max_lr", max_lr)
    if not T.flag("cycle_momentum", cycle_momentum):
        raise ValueError(
            "cycle_momentum=False: torch leaves the momentum as the optimizer has it; "
            "pass that number instead of cyclic_momentum(...)"
        )
    C.value("base_momentum", base_momentum, _hyper.NONNEGATIVE)
    C.value("max_momentum", max_momentum, _hyper.NONNEGATIVE)
    at = _cycle(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode)

    def momentum(count):
        height, scale = at(count)
        return max_momentum - (max_momentum - base_momentum) * height * scale

    return public(momentum)
