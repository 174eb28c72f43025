"""Shared pieces of the optjx examples: data, models, plotting.

Each example is a script you can copy; this module only holds what every one of them
would otherwise repeat. The optimizers are not here: each example writes its own out.
Nothing here is part of the optjx library.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

# Every figure is saved at this resolution without tight bounding boxes, so a figure of
# ``figsize=(w, h)`` inches is exactly ``w*DPI x h*DPI`` pixels (the tests check sizes).
DPI = 100


# --------------------------------------------------------------------------- data


def load_digits(test_fraction: float = 0.2, seed: int = 0):
    """scikit-learn's 8x8 digits (1797 images, shipped with the package, no download).

    Returns ``(x_train, y_train, x_test, y_test)``: images as float32 in ``[0, 1]`` of
    shape ``(n, 8, 8, 1)``, labels as int32. The split is stratified and seeded, so
    every run sees the same held-out images.
    """
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    digits = _load()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    labels = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return x_train, y_train, x_test, y_test


def batch_indices(n: int, batch_size: int, steps: int, seed: int) -> np.ndarray:
    """``(steps, batch_size)`` indices: a fresh seeded permutation every epoch."""
    rng = np.random.default_rng(seed)
    per_epoch = n // batch_size
    epochs = -(-steps // per_epoch)
    batches = [
        rng.permutation(n)[: per_epoch * batch_size].reshape(per_epoch, batch_size)
        for _ in range(epochs)
    ]
    return np.concatenate(batches)[:steps].astype(np.int32)


# --------------------------------------------------------------------------- models


def models():
    """The two Flax Linen models (imported lazily so ``--help`` stays instant)."""
    import flax.linen as nn

    class MLP(nn.Module):
        """64 pixels -> ``hidden`` ReLU units -> 10 logits."""

        hidden: int = 64

        @nn.compact
        def __call__(self, x):
            x = x.reshape(x.shape[0], -1)
            x = nn.relu(nn.Dense(self.hidden)(x))
            return nn.Dense(10)(x)

    class CNN(nn.Module):
        """Two 3x3 convolutions with GroupNorm (batch-independent, unlike BatchNorm:
        evaluation needs no running statistics and small batches are harmless)."""

        @nn.compact
        def __call__(self, x):
            x = nn.Conv(8, (3, 3))(x)
            x = nn.relu(nn.GroupNorm(num_groups=4)(x))
            x = nn.Conv(16, (3, 3), strides=(2, 2))(x)  # 8x8 -> 4x4
            x = nn.relu(nn.GroupNorm(num_groups=4)(x))
            x = x.reshape(x.shape[0], -1)
            return nn.Dense(10)(x)

    return MLP, CNN


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy with integer labels."""
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))


def accuracy(logits, labels):
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


# --------------------------------------------------------------------------- scripts


def parser(description: str) -> argparse.ArgumentParser:
    """The flags every example shares: ``--quick``, ``--out`` and ``--seed``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a few seconds: fewer steps, same plots")
    p.add_argument("--out", default=".", help="directory for the PNG files (default: .)")
    p.add_argument("--seed", type=int, default=0)
    return p


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, out_dir: str, filename: str) -> str:
    """Save ``fig`` as ``out_dir/filename`` at :data:`DPI` and close it."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, filename)
    fig.savefig(path, dpi=DPI)
    fig.clear()
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"wrote {path}")
    return path


def timed(fn, *args):
    """``(result, seconds)`` of ``fn(*args)``, waiting for JAX to finish."""
    start = time.perf_counter()
    result = jax.block_until_ready(fn(*args))
    return result, time.perf_counter() - start


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain-text table with aligned columns."""
    cells = [header, *rows]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])
