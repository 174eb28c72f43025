"""Optional stages switched off by ``None`` (DESIGN.md, convention 1), for the aliases of
``torch.optim``'s newer optimizers: an explicit 0 keeps its stage, so the state's structure
never depends on a value."""

from __future__ import annotations

import optax

from optjx.transforms.weight_decay import add_decayed_weights


def decay(weight_decay, mask=None) -> optax.GradientTransformation | None:
    """``add_decayed_weights``, or no stage for ``None`` (validated by the stage itself)."""
    return None if weight_decay is None else add_decayed_weights(weight_decay, mask=mask)
