"""Sample-quality and diversity metrics for generative models, and weight statistics.

Feature-space metrics take ``[N, D]`` feature arrays (from an evaluation
network): the Fréchet distance (FD / FID), the kernel distance (KID), and
precision / recall / density / coverage (PRDC). Mixture metrics take 2-D
points and the mixture's centres; classifier metrics take predicted labels or
class probabilities. :func:`weight_stats` measures the trained weights
themselves (sparsity and norms).

Pairwise work is done in row blocks (``block_size`` rows against a whole set),
so no ``N x N`` distance matrix is ever held at once.

Modules: ``distances`` (FD, FD∞, intra-class FD, KID, PRDC), ``generalisation``
(copying C_T, memorisation ratio, discriminator overfitting r_t / r_v), ``modes`` (mode
coverage and class-prediction metrics), ``weights`` (weight statistics); the
private ``_kernels`` (jitted device kernels) and ``_checks`` (input checks).
"""

from regan_jax.metrics.distances import (
    feature_stats,
    frechet_distance,
    frechet_distance_from_stats,
    frechet_distance_infinity,
    intra_class_frechet_distance,
    kid,
    prdc,
)
from regan_jax.metrics.generalisation import (
    copying_statistic,
    discriminator_overfitting,
    mann_whitney_z,
    memorisation_ratio,
    nearest_neighbour_distances,
    split_statistics,
)
from regan_jax.metrics.modes import (
    class_histogram_kl,
    conditional_accuracy,
    inception_score,
    mode_metrics,
    modes_covered,
    stacked_modes,
)
from regan_jax.metrics.weights import weight_stats

__all__ = [
    "class_histogram_kl",
    "conditional_accuracy",
    "copying_statistic",
    "discriminator_overfitting",
    "feature_stats",
    "frechet_distance",
    "frechet_distance_from_stats",
    "frechet_distance_infinity",
    "inception_score",
    "intra_class_frechet_distance",
    "kid",
    "mann_whitney_z",
    "memorisation_ratio",
    "mode_metrics",
    "modes_covered",
    "nearest_neighbour_distances",
    "prdc",
    "split_statistics",
    "stacked_modes",
    "weight_stats",
]
