"""Statistics of the trained weights: sparsity and norms (what the penalties produce)."""

from typing import Any

import jax
import jax.numpy as jnp

from regan_jax.penalties.hyperparams import check_value
from regan_jax.penalties.masks import Mask, selected_leaves

NEAR_ZERO_OF_INITIAL_RMS = 1e-3


def weight_stats(
    params: Any, mask: Mask = None, near_zero_tol: float = 1e-3, initial: Any = None
) -> dict[str, jax.Array]:
    """Sparsity and norms of the masked weights (pure jnp, jit-able).

    Returns a dict with ``sparsity`` (fraction of masked weights exactly 0),
    ``near_zero`` (fraction with |w| <= near_zero_tol), with ``initial`` also
    ``near_zero_of_initial``: the fraction of masked weights with

    .. math:: |w| < 10^{-3} \\cdot \\mathrm{RMS}(w^{(0)}_{\\text{leaf}}),

    each leaf against the root-mean-square of its own initial values (a
    scale-free "near zero": a subgradient L1 step hovers around 0 without
    reaching it, a proximal step reaches it exactly, and this counts both),
    ``zero_filter_fraction``
    (fraction of groups along the last axis that are entirely 0), ``l1`` =
    Σ|w| and ``l2`` = sqrt(Σw²) over all masked weights, and per leaf
    ``l1/<path>``, ``l2/<path>``, ``sparsity/<path>``.

    Args:
      params: a network's parameters.
      mask: the leaves to measure, as for the penalties (default
        ``penalties.kernel_mask``: kernels only); one that selects nothing raises.
      near_zero_tol: the ``near_zero`` threshold, finite and >= 0.
      initial: the same network's parameters at initialisation (same tree).
    """
    check_value("near_zero_tol", near_zero_tol)
    leaves = selected_leaves(params, mask)
    if initial is not None:
        scales = [jnp.sqrt(jnp.mean(jnp.square(w0))) for _, w0 in selected_leaves(initial, mask)]
        stats_near = sum(
            jnp.sum(jnp.abs(w) < NEAR_ZERO_OF_INITIAL_RMS * scale)
            for (_, w), scale in zip(leaves, scales, strict=True)
        )
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
    if initial is not None:
        stats["near_zero_of_initial"] = stats_near / size
    stats["zero_filter_fraction"] = zero_filters / filters
    stats["l1"] = sum(stats[f"l1/{p}"] for p, _ in leaves)
    stats["l2"] = jnp.sqrt(sum(jnp.square(stats[f"l2/{p}"]) for p, _ in leaves))
    return stats
