"""Statistics of the trained weights: sparsity and norms (what the penalties produce)."""
from typing import Any

import jax
import jax.numpy as jnp

from regan_jax.penalties.hyperparams import check_value
from regan_jax.penalties.masks import Mask, selected_leaves


def weight_stats(
    params: Any, mask: Mask = None, near_zero_tol: float = 1e-3
) -> dict[str, jax.Array]:
    """Sparsity and norms of the masked weights (pure jnp, jit-able).

    Returns a dict with ``sparsity`` (fraction of masked weights exactly 0),
    ``near_zero`` (fraction with |w| <= near_zero_tol), ``zero_filter_fraction``
    (fraction of groups along the last axis that are entirely 0), ``l1`` =
    Σ|w| and ``l2`` = sqrt(Σw²) over all masked weights, and per leaf
    ``l1/<path>``, ``l2/<path>``, ``sparsity/<path>``.

    Args:
      params: a network's parameters.
      mask: the leaves to measure, as for the penalties (default
        ``penalties.kernel_mask``: kernels only); one that selects nothing raises.
      near_zero_tol: the ``near_zero`` threshold, finite and >= 0.
    """
    check_value("near_zero_tol", near_zero_tol)
    leaves = selected_leaves(params, mask)
    size = sum(w.size for _, w in leaves)
    filters = sum(w.shape[-1] if w.ndim else 1 for _, w in leaves)
    zero_filters = 0
    stats = {}
    for path, w in leaves:
        stats[f"l1/{path}"] = jnp.sum(jnp.abs(w))
        stats[f"l2/{path}"] = jnp.sqrt(jnp.sum(jnp.square(w)))
        stats[f"sparsity/{path}"] = jnp.mean(w == 0)
        flat = w.reshape(-1, w.shape[-1]) if w.ndim else w.reshape(1, 1)
        zero_filters += jnp.sum(jnp.all(flat == 0, axis=0))
    stats["sparsity"] = sum(jnp.sum(w == 0) for _, w in leaves) / size
    stats["near_zero"] = sum(jnp.sum(jnp.abs(w) <= near_zero_tol) for _, w in leaves) / size
    stats["zero_filter_fraction"] = zero_filters / filters
    stats["l1"] = sum(stats[f"l1/{p}"] for p, _ in leaves)
    stats["l2"] = jnp.sqrt(sum(jnp.square(stats[f"l2/{p}"]) for p, _ in leaves))
    return stats
