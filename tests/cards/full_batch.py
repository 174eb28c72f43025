"""Cards of the full-batch methods carded so far: the Newton methods (``optjx/full_batch``).

They are loss-driven (``loss_driven=True``): the invariants harness drives them with the
gradient of its standard loss and ``update(..., value=, value_fn=)``, so their
Hessian-vector products differentiate that loss forward-over-reverse. Not sign symmetric:
the standard loss is not an odd function of the params.
"""

from __future__ import annotations

import optjx

from ._card import Card, Tuned
from ._card import config as C
from ._shared import NAN, NONNEG, PARAMS, ramp

LOSS_DRIVEN = {**PARAMS, "sign_symmetric": False}
ITERATIONS = {"max_iter": [0, 1.5, True]}

# fmt: off
CARDS = [
    Card(
        "newton_cg",
        (
            C("defaults", {}, **LOSS_DRIVEN),
            C("max-iter-3-max-eval-8-xtol-schedule",
              dict(max_iter=3, max_eval=8, xtol=ramp(1e-5, 1e-7, 10)), **LOSS_DRIVEN),
        ),
        Tuned(lambda: optjx.newton_cg(), lambda: optjx.newton_cg()),
        {**ITERATIONS, "max_eval": [0, 2.5], "xtol": NONNEG},
        loss_driven=True,
    ),
    Card(
        "trust_region_newton",
        (
            C("defaults", {}, **LOSS_DRIVEN),
            C("small-radius-eta-schedule",
              dict(max_iter=3, initial_trust_radius=0.1, max_trust_radius=0.5,
                   eta=ramp(0.1, 0.2, 10), tolerance_grad=1e-6), **LOSS_DRIVEN),
        ),
        Tuned(lambda: optjx.trust_region_newton(), lambda: optjx.trust_region_newton()),
        {**ITERATIONS, "initial_trust_radius": [0.0, -1.0, NAN, 2000.0],
         "max_trust_radius": [0.0, -1.0, NAN, 0.5], "eta": [-0.1, 0.25, NAN],
         "tolerance_grad": NONNEG},
        loss_driven=True,
    ),
]
# fmt: on
