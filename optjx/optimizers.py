"""The user-facing optimizers: each one a ``chain`` of optjx building blocks.

With PyTorch's hyperparameters each alias reproduces the ``torch.optim`` class of the
same name step for step (golden trajectories in ``tests/golden``), also under a
learning-rate schedule (PyTorch's ``lr`` set to the schedule's value before each step).
Every float hyperparameter takes a number, an array or a schedule ``count -> value``.
A weight decay or momentum given as the Python number ``0`` adds no stage (and no state);
an array never drops one, whatever its value, so ``optax.inject_hyperparams`` sees one
state structure eagerly and under ``jit``. The dtype arguments of optax's aliases
(``mu_dtype``, ``nu_dtype``, ``accumulator_dtype``) are accepted with optax's meaning.
"""

from __future__ import annotations

import optax

from optjx import _hyper
from optjx.transforms.adadelta import scale_by_adadelta
from optjx.transforms.adagrad import scale_by_adagrad
from optjx.transforms.adam import scale_by_adam
from optjx.transforms.delta_bar_delta import delta_bar_delta_transformation as _delta_bar_delta
from optjx.transforms.novograd import scale_by_novograd
from optjx.transforms.radam import scale_by_radam
from optjx.transforms.rms import scale_by_rms
from optjx.transforms.scale import scale_by_learning_rate
from optjx.transforms.trace import trace
from optjx.transforms.weight_decay import add_decayed_weights


def _chain(*stages) -> optax.GradientTransformation:
    """``optax.chain`` of the stages that are not ``None``."""
    return optax.chain(*(s for s in stages if s is not None))


def _decay(weight_decay, mask=None) -> optax.GradientTransformation | None:
    """``add_decayed_weights``, or nothing for a Python zero (an array always keeps it)."""
    _hyper.check_nonnegative("weight_decay", weight_decay)
    if _hyper.is_python_zero(weight_decay) and mask is None:
        return None
    return add_decayed_weights(weight_decay, mask=mask)


def _momentum(
    momentum, dampening=0.0, nesterov=False, accumulator_dtype=None
) -> optax.GradientTransformation | None:
    """``trace``, or nothing for a momentum of ``None`` (optax's default) or a Python zero."""
    if momentum is None:
        momentum = 0.0
    _hyper.check_nonnegative("momentum", momentum)
    _hyper.check_nonnegative("dampening", dampening)
    if _hyper.is_python_zero(momentum):
        if nesterov:
            raise ValueError("nesterov=True needs a momentum > 0, got momentum=0")
        return None
    return trace(
        momentum, dampening=dampening, nesterov=nesterov, accumulator_dtype=accumulator_dtype
    )


def sgd(
    learning_rate,
    momentum=0.0,
    *,
    dampening=0.0,
    nesterov=False,
    weight_decay=0.0,
    accumulator_dtype=None,
) -> optax.GradientTransformation:
    r"""Stochastic gradient descent with optional heavy-ball or Nesterov momentum.

    ``g <- g + wd*w; b <- mu b + (1 - tau) g (b_1 = g); w <- w - lr * (b or g + mu b)``:
    ``torch.optim.SGD`` exactly. Robbins & Monro (1951); Polyak (1964); Sutskever et al. (2013).
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _chain(
        _decay(weight_decay),
        _momentum(momentum, dampening, nesterov, accumulator_dtype),
        scale_by_learning_rate(learning_rate),
    )


def rmsprop(
    learning_rate,
    decay=0.9,
    *,
    eps=1e-8,
    eps_root=0.0,
    centered=False,
    momentum=0.0,
    nesterov=False,
    weight_decay=0.0,
    initial_scale=0.0,
    bias_correction=False,
) -> optax.GradientTransformation:
    r"""RMSProp (Tieleman & Hinton 2012), optionally centered and with momentum.

    ``torch.optim.RMSprop`` with ``alpha=decay``: ``g <- g + wd*w``; ``v <- a v + (1-a) g^2``;
    ``d = g / (sqrt(v - gbar^2 + eps_root) + eps)``; with momentum ``b <- mu b + d``;
    ``w <- w - lr * (b or d)``. ``nesterov`` (not in PyTorch) uses ``d + mu b``.
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _chain(
        _decay(weight_decay),
        scale_by_rms(
            decay,
            eps=eps,
            eps_root=eps_root,
            centered=centered,
            initial_scale=initial_scale,
            bias_correction=bias_correction,
        ),
        _momentum(momentum, 0.0, nesterov),
        scale_by_learning_rate(learning_rate),
    )


def adagrad(
    learning_rate, *, initial_accumulator_value=0.0, eps=1e-10, weight_decay=0.0
) -> optax.GradientTransformation:
    r"""AdaGrad (Duchi et al. 2011): ``w <- w - lr * g / (sqrt(sum g^2) + eps)``.

    ``torch.optim.Adagrad`` with ``lr_decay=0``.
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _chain(
        _decay(weight_decay),
        scale_by_adagrad(initial_accumulator_value=initial_accumulator_value, eps=eps),
        scale_by_learning_rate(learning_rate),
    )


def adam(
    learning_rate,
    b1=0.9,
    b2=0.999,
    *,
    eps=1e-8,
    eps_root=0.0,
    amsgrad=False,
    weight_decay=0.0,
    mu_dtype=None,
    nu_dtype=None,
) -> optax.GradientTransformation:
    r"""Adam (Kingma & Ba 2015) with coupled L2 weight decay, as ``torch.optim.Adam``.

    ``g <- g + wd*w``, then ``w <- w - lr * m_hat / (sqrt(v_hat + eps_root) + eps)``.
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _chain(
        _decay(weight_decay),
        scale_by_adam(
            b1,
            b2,
            eps=eps,
            eps_root=eps_root,
            amsgrad=amsgrad,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        scale_by_learning_rate(learning_rate),
    )


def adamw(
    learning_rate,
    b1=0.9,
    b2=0.999,
    *,
    eps=1e-8,
    eps_root=0.0,
    amsgrad=False,
    weight_decay=0.01,
    mask=None,
    mu_dtype=None,
    nu_dtype=None,
) -> optax.GradientTransformation:
    r"""AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay.

    ``w <- w - lr * (m_hat / (sqrt(v_hat + eps_root) + eps) + wd * w)``, as
    ``torch.optim.AdamW``. ``mask`` restricts the decay (see ``add_decayed_weights``).
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _chain(
        scale_by_adam(
            b1,
            b2,
            eps=eps,
            eps_root=eps_root,
            amsgrad=amsgrad,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        _decay(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def adadelta(
    learning_rate=1.0, rho=0.9, *, eps=1e-6, weight_decay=0.0
) -> optax.GradientTransformation:
    r"""AdaDelta (Zeiler 2012), scaled by ``learning_rate`` as ``torch.optim.Adadelta``."""
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _chain(
        _decay(weight_decay),
        scale_by_adadelta(rho, eps=eps),
        scale_by_learning_rate(learning_rate),
    )


def radam(
    learning_rate,
    b1=0.9,
    b2=0.999,
    *,
    eps=1e-8,
    threshold=5.0,
    weight_decay=0.0,
    decoupled_weight_decay=False,
) -> optax.GradientTransformation:
    r"""RAdam (Liu et al. 2020, Algorithm 2), as ``torch.optim.RAdam``.

    ``w <- w - lr * (r_t m_hat sqrt(1 - b2^t) / (sqrt(v) + eps)  if rho_t > threshold,
    else m_hat)``; see ``scale_by_radam``. ``weight_decay`` is coupled L2
    (``g <- g + wd*w`` before the moments) or, with ``decoupled_weight_decay=True``,
    ``w <- w - lr*wd*w`` (PyTorch's flag of the same name). ``threshold=4, eps=0`` is the
    paper's algorithm line for line; the default 5 is PyTorch's.
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    rectified = scale_by_radam(b1, b2, eps=eps, threshold=threshold)
    if not decoupled_weight_decay:
        return _chain(_decay(weight_decay), rectified, scale_by_learning_rate(learning_rate))
    return _chain(rectified, _decay(weight_decay), scale_by_learning_rate(learning_rate))


def novograd(
    learning_rate, b1=0.95, b2=0.98, *, eps=1e-8, weight_decay=0.0, grad_averaging=False
) -> optax.GradientTransformation:
    r"""NovoGrad (Ginsburg et al. 2019, Algorithm 1): ``w <- w - lr * m_t``.

    ``v = b2 v + (1 - b2) ||g||^2`` per leaf (``v = ||g||^2`` first),
    ``m = b1 m + (c g / sqrt(v + eps) + wd*w)`` with ``c = 1``, or ``1 - b1`` with
    ``grad_averaging``; see ``scale_by_novograd``. Not in PyTorch;
    optax's has other defaults and ``eps`` outside the root.
    """
    _hyper.check_nonnegative("learning_rate", learning_rate)
    return _chain(
        scale_by_novograd(
            b1, b2, eps=eps, weight_decay=weight_decay, grad_averaging=grad_averaging
        ),
        scale_by_learning_rate(learning_rate),
    )


def delta_bar_delta(initial_learning_rate, *, kappa, phi, gamma) -> optax.GradientTransformation:
    r"""Delta-bar-delta (Jacobs 1988; Goodfellow et al. 2016, 8.5): ``w <- w - eps * g``.

    One learning rate per weight, grown by ``kappa`` while the gradient keeps the sign
    of its running average and cut by the fraction ``phi`` when it flips; see
    ``scale_by_delta_bar_delta``. Returns ``-eps * g`` directly (no learning-rate stage:
    the rates live in the state). Not in PyTorch or optax.
    """
    return _delta_bar_delta(initial_learning_rate, kappa, phi, gamma, descent=False)
