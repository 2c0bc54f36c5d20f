"""Sample-quality and diversity metrics for generative models, and weight statistics.

Feature-space metrics take ``[N, D]`` feature arrays (from an evaluation
network): the Fréchet distance (FD / FID), the kernel distance (KID), and
precision / recall / density / coverage (PRDC). Mixture metrics take 2-D
points and the mixture's centres; classifier metrics take predicted labels or
class probabilities. :func:`weight_stats` measures the trained weights
themselves (sparsity and norms).

Pairwise work is done in row blocks (``block_size`` rows against a whole set),
so no ``N x N`` distance matrix is ever held at once.

Modules: ``distances`` (FD, intra-class FD, KID, PRDC), ``modes`` (mode
coverage and class-prediction metrics), ``weights`` (weight statistics); the
private ``_kernels`` (jitted device kernels) and ``_checks`` (input checks).
"""
from regan_jax.metrics.distances import (
    feature_stats, frechet_distance, frechet_distance_from_stats,
    intra_class_frechet_distance, kid, prdc)
from regan_jax.metrics.modes import (
    class_histogram_kl, conditional_accuracy, inception_score, mode_metrics, modes_covered,
    stacked_modes)
from regan_jax.metrics.weights import weight_stats

__all__ = [
    "class_histogram_kl",
    "conditional_accuracy",
    "feature_stats",
    "frechet_distance",
    "frechet_distance_from_stats",
    "inception_score",
    "intra_class_frechet_distance",
    "kid",
    "mode_metrics",
    "modes_covered",
    "prdc",
    "stacked_modes",
    "weight_stats",
]
