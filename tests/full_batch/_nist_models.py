"""The 27 NIST StRD nonlinear regression models, written once for NumPy and JAX.

Each model is ``f(b, x, xp)`` with ``b`` the parameter vector, ``x`` the predictor (a
``(2, m)`` array for Nelson, the one problem with two predictors) and ``xp`` the array
module (``numpy`` in the golden generator, ``jax.numpy`` in the tests). The residual is
``y - f(b, x)``, except Nelson's, whose response is ``log(y)`` (NIST's model line).
Each formula is the "Model:" line of NIST's ``<Name>.dat``.
"""

from __future__ import annotations

import math

PI = 3.141592653589793238462643383279  # Roszman1's own constant, as NIST writes it


def _exp_decay(b, x, xp):  # Misra1a, BoxBOD
    return b[0] * (1 - xp.exp(-b[1] * x))


def _chwirut(b, x, xp):
    return xp.exp(-b[0] * x) / (b[1] + b[2] * x)


def _lanczos(b, x, xp):
    return b[0] * xp.exp(-b[1] * x) + b[2] * xp.exp(-b[3] * x) + b[4] * xp.exp(-b[5] * x)


def _gauss(b, x, xp):
    return (b[0] * xp.exp(-b[1] * x) + b[2] * xp.exp(-((x - b[3]) ** 2) / b[4] ** 2)
            + b[5] * xp.exp(-((x - b[6]) ** 2) / b[7] ** 2))  # fmt: skip


def _rational_3_3(b, x, xp):  # Hahn1, Thurber
    return (b[0] + b[1] * x + b[2] * x**2 + b[3] * x**3) / (
        1 + b[4] * x + b[5] * x**2 + b[6] * x**3
    )


MODELS = {
    "Misra1a": _exp_decay,
    "Chwirut2": _chwirut,
    "Chwirut1": _chwirut,
    "Lanczos3": _lanczos,
    "Gauss1": _gauss,
    "Gauss2": _gauss,
    "DanWood": lambda b, x, xp: b[0] * x ** b[1],
    "Misra1b": lambda b, x, xp: b[0] * (1 - (1 + b[1] * x / 2) ** (-2)),
    "Kirby2": lambda b, x, xp: (b[0] + b[1] * x + b[2] * x**2) / (1 + b[3] * x + b[4] * x**2),
    "Hahn1": _rational_3_3,
    "Nelson": lambda b, x, xp: b[0] - b[1] * x[0] * xp.exp(-b[2] * x[1]),
    "MGH17": lambda b, x, xp: b[0] + b[1] * xp.exp(-x * b[3]) + b[2] * xp.exp(-x * b[4]),
    "Lanczos1": _lanczos,
    "Lanczos2": _lanczos,
    "Gauss3": _gauss,
    "Misra1c": lambda b, x, xp: b[0] * (1 - (1 + 2 * b[1] * x) ** (-0.5)),
    "Misra1d": lambda b, x, xp: b[0] * b[1] * x * ((1 + b[1] * x) ** (-1)),
    "Roszman1": lambda b, x, xp: b[0] - b[1] * x - xp.arctan(b[2] / (x - b[3])) / PI,
    "ENSO": lambda b, x, xp: (
        b[0]
        + b[1] * xp.cos(2 * math.pi * x / 12)
        + b[2] * xp.sin(2 * math.pi * x / 12)
        + b[4] * xp.cos(2 * math.pi * x / b[3])
        + b[5] * xp.sin(2 * math.pi * x / b[3])
        + b[7] * xp.cos(2 * math.pi * x / b[6])
        + b[8] * xp.sin(2 * math.pi * x / b[6])
    ),  # fmt: skip
    "MGH09": lambda b, x, xp: b[0] * (x**2 + x * b[1]) / (x**2 + x * b[2] + b[3]),
    "Thurber": _rational_3_3,
    "BoxBOD": _exp_decay,
    "Rat42": lambda b, x, xp: b[0] / (1 + xp.exp(b[1] - b[2] * x)),
    "MGH10": lambda b, x, xp: b[0] * xp.exp(b[1] / (x + b[2])),
    "Eckerle4": lambda b, x, xp: (b[0] / b[1]) * xp.exp(-0.5 * ((x - b[2]) / b[1]) ** 2),
    "Rat43": lambda b, x, xp: b[0] / ((1 + xp.exp(b[1] - b[2] * x)) ** (1 / b[3])),
    "Bennett5": lambda b, x, xp: b[0] * (b[1] + x) ** (-1 / b[2]),
}


def residuals(name: str, b, x, y, xp):
    """NIST's residual ``response - model`` (Nelson's response is ``log(y)``)."""
    response = xp.log(y) if name == "Nelson" else y
    return response - MODELS[name](b, x, xp)
