"""Input validation shared by :mod:`regan_jax.metrics` (private).

Each helper returns its input in the canonical form or raises a
``ValueError`` that names the argument, the offending value and what was
expected. Checks on large arrays run as one small jitted reduction each, so
they cost one compile per shape instead of one per eager op; labels and
class probabilities (small) are checked on the host.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


@jax.jit
def _nonfinite_rows(x: jax.Array) -> jax.Array:
    return jnp.sum(~jnp.all(jnp.isfinite(x), axis=1))


def features(name: str, x) -> jax.Array:
    """Returns ``x`` as a finite float32 ``[N, D]`` array."""
    x = jnp.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a [N, D] feature array; got shape {x.shape}.")
    x = x.astype(jnp.float32)
    bad_rows = int(_nonfinite_rows(x))
    if bad_rows:
        raise ValueError(
            f"{name} has {bad_rows} of {x.shape[0]} rows containing NaN or Inf "
            "(a diverged generator?); refusing to average them into a score."
        )
    return x


def same_dim(a: jax.Array, b: jax.Array, names: str) -> None:
    """Raises unless two ``[N, D]`` arrays share ``D``."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{names} have different feature dimensions: {a.shape[1]} vs {b.shape[1]}."
        )


def labels(name: str, y, num_classes: int) -> np.ndarray:
    """Returns ``y`` as an int32 ``[N]`` host array with values in ``[0, num_classes)``."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty [N] label array; got shape {y.shape}.")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class labels; got dtype {y.dtype}.")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(
            f"{name} must lie in [0, {num_classes}); got values in [{y.min()}, {y.max()}]."
        )
    return y.astype(np.int32)


def probabilities(name: str, p) -> np.ndarray:
    """Returns ``p`` as a float32 ``[N, C]`` host array whose rows are distributions."""
    p = np.asarray(p, np.float32)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty [N, C] array of class probabilities; got shape {p.shape}."
        )
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} contains NaN or Inf.")
    sums = p.sum(axis=1)
    if np.any(p < 0) or np.any(np.abs(sums - 1) > 1e-3):
        raise ValueError(
            f"{name} rows must be probability vectors (>= 0, summing to 1); "
            f"row sums lie in [{sums.min()}, {sums.max()}]. "
            "Pass softmax outputs, not logits."
        )
    return p
