"""The protocol-v2 generalisation scores of a run: copying, memorisation, FD∞, D overfitting.

What :func:`regan_jax.evaluation.evaluate` adds when it is given the run's
training set (``train``, a :class:`~regan_jax.evaluation.Reference` of the
training images in the same feature space as the held-out reference):

=======================  ====================================================
key                      value
=======================  ====================================================
``copying_pixels``       ``metrics.copying_statistic`` (Meehan et al. 2020's
                         C_T) in pixel space: ≪ 0 copies, ≈ 0 does not;
                         ``min(10, m // 40)`` cells for ``m`` samples, so
                         a cell averages twice the 20 samples it needs
``copying_features``     the same in the feature network's space
``memorisation_pixels``  ``metrics.memorisation_ratio`` (q = 5: its null is
                         0.05) in pixel space
``memorisation_features`` the same in feature space
``fd_inf``               ``metrics.frechet_distance_infinity`` of the samples
                         against the held-out split
``fd_inf_train``         the same against the training set: a model that
                         fits its training set better than the distribution
                         has ``fd_inf_train < fd_inf``
``fd_inf_gap``           ``fd_inf - fd_inf_train``, the train-vs-held-out gap
                         at equal N: > 0, samples closer to the training set
``r_t``, ``r_v``         ``metrics.discriminator_overfitting`` (Karras et
                         al. 2020) from D's logits, for a family with a
                         discriminator (``critic_fn``)
=======================  ====================================================

With a ``latent_map`` (the generator's or decoder's ``z -> x``) the
evaluator adds the smoothness scores of :mod:`regan_jax.evaluation.smoothness`
(:data:`SMOOTHNESS_METRICS`): ``ppl`` (perceptual path length in the
feature classifier's space, ``min(m, 1000)`` pairs), ``jacobian_fro`` and
``jacobian_log_cond`` (exact, at 256 latents).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from regan_jax import metrics
from regan_jax.evaluation import smoothness

GENERALISATION_METRICS = (
    "copying_pixels",
    "copying_features",
    "memorisation_pixels",
    "memorisation_features",
    "fd_inf",
    "fd_inf_train",
    "fd_inf_gap",
)
CRITIC_METRICS = ("r_t", "r_v")
SMOOTHNESS_METRICS = ("ppl", "jacobian_fro", "jacobian_log_cond")
PPL_PAIRS = 1000
JACOBIAN_LATENTS = 256


def _flat(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, np.float32).reshape(images.shape[0], -1)


def generalisation_scores(
    train, held_out, samples: np.ndarray, fake_features: np.ndarray, key: jax.Array
) -> dict[str, Any]:
    """The copying, memorisation, FD∞ and FD∞-gap keys of the module table.

    Args:
      train, held_out: references (``images``, ``features``) of the training
        set and the held-out split.
      samples: the generated images ``[m, H, W, C]``.
      fake_features: their features ``[m, D]``.
      key: PRNG key of FD∞'s subsets.
    """
    key_held, key_train = jax.random.split(key)
    pixels = (_flat(train.images), _flat(held_out.images), _flat(samples))
    features = (train.features, held_out.features, fake_features)
    cells = max(
        1,
        min(
            metrics.generalisation.COPYING_CELLS,
            len(samples) // (2 * metrics.generalisation.COPYING_MIN_GENERATED),
        ),
    )
    fd_inf = metrics.frechet_distance_infinity(held_out.features, fake_features, key=key_held)
    fd_inf_train = metrics.frechet_distance_infinity(train.features, fake_features, key=key_train)
    return {
        "copying_pixels": metrics.copying_statistic(*pixels, num_cells=cells),
        "copying_features": metrics.copying_statistic(*features, num_cells=cells),
        "memorisation_pixels": metrics.memorisation_ratio(*pixels),
        "memorisation_features": metrics.memorisation_ratio(*features),
        "fd_inf": fd_inf["fd_inf"],
        "fd_inf_train": fd_inf_train["fd_inf"],
        "fd_inf_gap": fd_inf["fd_inf"] - fd_inf_train["fd_inf"],
    }


def critic_scores(
    critic_fn: Callable, train, held_out, samples: np.ndarray, sample_labels: np.ndarray | None
) -> dict[str, float]:
    """``r_t`` and ``r_v`` from ``critic_fn(images, labels or None) -> logits [N]``.

    A class-conditional D is given each image's own label (the real labels,
    the labels the samples were conditioned on).
    """
    conditional = sample_labels is not None
    logits = [
        np.asarray(critic_fn(ref.images, ref.labels if conditional else None))
        for ref in (train, held_out)
    ]
    logits.append(np.asarray(critic_fn(samples, sample_labels)))
    return metrics.discriminator_overfitting(*logits)


def smoothness_scores(
    latent_map, embed: Callable, num_samples: int, key: jax.Array
) -> dict[str, float]:
    """``ppl``, ``jacobian_fro`` and ``jacobian_log_cond`` of ``latent_map = (K, z -> x)``."""
    latent_dim, generate = latent_map
    key_ppl, key_z = jax.random.split(key)
    z = jax.random.normal(key_z, (JACOBIAN_LATENTS, latent_dim))
    return {
        "ppl": smoothness.perceptual_path_length(
            generate, embed, key_ppl, min(num_samples, PPL_PAIRS), latent_dim
        ),
        **smoothness.jacobian_scores(generate, z),
    }
