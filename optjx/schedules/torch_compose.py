r"""``SequentialLR`` and ``ChainedScheduler``: torch-named schedules composed in time
and by product."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp

from optjx import _hyper, _tree
from optjx.schedules import _checks as C
from optjx.schedules import _torch as T
from optjx.schedules._checks import public
from optjx.schedules._torch import TorchSchedule
from optjx.schedules.compose import _shifted


def _torch_schedules(schedulers) -> list[TorchSchedule]:
    if isinstance(schedulers, (str, bytes)) or not isinstance(schedulers, Sequence):
        raise TypeError(f"schedulers must be a list of torch-named schedules, got {schedulers!r}")
    pieces = list(schedulers)
    if not pieces:
        raise ValueError("schedulers must hold at least one schedule")
    for piece in pieces:
        if not isinstance(piece, T.TorchSchedule):
            raise TypeError(
                "schedulers must be torch-named schedules (optjx.schedules.step_lr, "
                f"cosine_annealing_lr, ...), which carry their base rate; got {piece!r}"
            )
    return pieces


def _since(count, start: int):
    """The count since ``start``, 0 before it (never negative, whatever the schedule)."""
    shifted = _shifted(count, start)
    return max(shifted, 0) if isinstance(shifted, int) else jnp.maximum(shifted, 0)


def _sequence(pieces: list[TorchSchedule], milestones: list[int]):
    def value(count):
        k = C.as_float(count)
        out = pieces[0](count)
        for i, (start, piece) in enumerate(zip(milestones, pieces[1:], strict=True)):
            since = _since(count, start)
            if piece.resume is None:
                rate = piece(since)
            else:
                # torch's SequentialLR hands MultiplicativeLR and SWALR the rate the
                # previous schedulers left: the sequence so far, one step before.
                previous = _sequence(pieces[: i + 1], milestones[:i])(start - 1)
                rate = piece.resume(previous, since)
            out = jnp.where(k >= float(start), _tree.default_float(rate), out)
        return out

    return value


@public
def sequential_lr(schedulers: Sequence[TorchSchedule], milestones: Sequence[int]) -> TorchSchedule:
    r"""``torch.optim.lr_scheduler.SequentialLR``: ``schedulers[i]`` from milestone
    ``milestones[i-1]`` on, restarted at its step 0.

    $$
    \eta_k = s_i(k - m_i) \quad \text{for } m_i \le k < m_{i+1}, \qquad m_0 = 0
    $$

    except that ``multiplicative_lr`` and ``swa_lr``, which in torch act on the
    optimizer's current rate, continue from the rate of the sequence at $m_i - 1$ (their
    ``resume``), as in torch.

    Args:
      schedulers: a non-empty list of torch-named schedules (required): the
        ``TorchSchedule`` objects of this module, sequences and chains included.
      milestones: ``len(schedulers) - 1`` ints $\ge 1$, strictly increasing (required).

    Returns:
      A ``TorchSchedule`` with the first schedule's ``base_lr``: the jittable
      schedule ``count -> rate``, values at JAX's default float precision.

    Raises:
      TypeError: ``schedulers`` is not a list of torch-named schedules, or a milestone
        is not an int.
      ValueError: ``schedulers`` is empty, or ``milestones`` has the wrong length, is
        not strictly increasing, or holds a number below 1.

    Differences from PyTorch and optax:
      Golden-tested to 1e-12 against torch (warm-up then cosine, a chain of three
      with ``MultiplicativeLR`` resuming, cosine then ``SWALR``). In torch every
      scheduler reads the one optimizer's base rate; here each schedule carries its
      own, so give them the same ``lr`` (as torch's ``OneCycleLR`` and ``CyclicLR``,
      which set their own, ``one_cycle_lr`` and ``cyclic_lr`` keep theirs).
      ``join`` composes any schedules, restarting each. optax:
      ``join_schedules``.

    Examples:
      >>> S = optjx.schedules
      >>> lr = S.sequential_lr([S.linear_lr(0.1, start_factor=0.01, total_iters=500),
      ...                       S.cosine_annealing_lr(0.1, T_max=9_500)], milestones=[500])
    """
    pieces = _torch_schedules(schedulers)
    milestones = C.increasing_steps("milestones", milestones, "schedulers", len(pieces), minimum=1)
    return T.TorchSchedule("SequentialLR", pieces[0].base_lr, value=_sequence(pieces, milestones))


def _same_base(pieces: list[TorchSchedule]):
    bases = [p.base_lr for p in pieces if _hyper.is_concrete(p.base_lr)]
    if any(not jnp.array_equal(jnp.asarray(b), jnp.asarray(bases[0])) for b in bases[1:]):
        raise ValueError(
            "schedulers must share one base rate (torch's schedulers share the optimizer's "
            f"lr), got base_lr values {bases}"
        )
    return pieces[0].base_lr


@public
def chained_scheduler(schedulers: Sequence[TorchSchedule]) -> TorchSchedule:
    r"""``torch.optim.lr_scheduler.ChainedScheduler``: the base rate times the product of
    every schedule's factor.

    $$
    \eta_k = \eta_0 \prod_i f_i(k), \qquad f_i(k) = s_i(k) / \eta_0
    $$

    Args:
      schedulers: a non-empty list of torch-named schedules with one base rate
        (required).

    Returns:
      A ``TorchSchedule`` with that ``base_lr``: the jittable schedule
      ``count -> rate``, values at JAX's default float precision.

    Raises:
      TypeError: ``schedulers`` is not a list of torch-named schedules.
      ValueError: ``schedulers`` is empty, or two concrete base rates differ.

    Differences from PyTorch and optax:
      torch steps each scheduler in turn on the optimizer's rate. For the schedulers
      that multiply it (``ConstantLR``, ``LinearLR``, ``ExponentialLR``, ``StepLR``,
      ``MultiStepLR``, ``PolynomialLR``, ``MultiplicativeLR``, and
      ``CosineAnnealingLR`` with ``eta_min=0`` up to ``T_max``) that is this product
      (golden-tested to 1e-12). Schedulers that *set* the rate (``LambdaLR``,
      ``CyclicLR``, ``OneCycleLR``, ``CosineAnnealingWarmRestarts``, ``SWALR``, and
      the cosine at its troughs) overwrite what the ones before them did in torch, so
      torch's result depends on the order; optjx multiplies their factors. optax: a
      function multiplying schedules.

    Examples:
      >>> S = optjx.schedules
      >>> lr = S.chained_scheduler([S.constant_lr(1.0, factor=0.1, total_iters=2),
      ...                           S.exponential_lr(1.0, gamma=0.9)])
      >>> round(float(lr(3)), 6)
      0.729
    """
    pieces = _torch_schedules(schedulers)
    base = _same_base(pieces)

    def scale(count):
        out = pieces[0].factor(count)
        for piece in pieces[1:]:
            out = out * piece.factor(count)
        return out

    return T.TorchSchedule("ChainedScheduler", base, factor=scale)
