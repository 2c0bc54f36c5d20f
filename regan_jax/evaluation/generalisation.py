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

What these scores compute from the training and held-out sets alone (the
k-means cells, the held-out distances) and the smoothness programs are the
same for every member of a sweep group: :func:`shared` computes them once
per group, and :func:`generalisation_scores` / :func:`smoothness_scores`
take them as ``shared`` (bit for bit the scores computed without it). The
cells and distances are also the same for every run of an experiment (its
training set and held-out split): :func:`cached_split_statistics` keeps the
last :data:`SPLIT_CACHE_SIZE` of them in the process, keyed by the points'
contents, so a study worker that scores run after run on one dataset fits
them once (Fashion-MNIST: k-means on 60,000 x 784 pixels and 10,000 x
60,000 float64 distances, about 80 s of a run's final evaluation).
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Callable
from typing import Any, NamedTuple

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
# Pixels and features of one experiment's training and held-out sets (Fashion-MNIST's
# pixels: about 440 MiB of float64 points and distances).
SPLIT_CACHE_SIZE = 2
_SPLIT_CACHE: collections.OrderedDict = collections.OrderedDict()


class Shared(NamedTuple):
    """What every member's generalisation and smoothness scores share (:func:`shared`)."""

    num_samples: int  # the generated set's size the cells were chosen for
    pixels: metrics.generalisation.SplitStatistics
    features: metrics.generalisation.SplitStatistics
    embed: Callable | None  # the feature classifier's traceable map, or None
    programs: smoothness.Programs | None  # compiled once for every member's latent map


def _flat(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, np.float32).reshape(images.shape[0], -1)


def _digest(*arrays) -> str:
    """A digest of the arrays' dtypes, shapes and contents."""
    digest = hashlib.blake2b(digest_size=20)
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def _read_only(splits: metrics.generalisation.SplitStatistics):
    for array in (
        splits.train,
        splits.held_out,
        splits.held_out_cells,
        splits.nearest_train,
        *splits.cell_distances,
    ):
        array.setflags(write=False)
    return splits


def cached_split_statistics(train, held_out, num_cells: int):
    """``metrics.split_statistics(train, held_out, num_cells=num_cells)``, remembered by content.

    The last :data:`SPLIT_CACHE_SIZE` results are kept in the process, keyed
    by a digest of the points (dtype, shape, bytes) and ``num_cells``; a hit
    returns the very statistics a fresh call would compute (the same
    function of the same points), their arrays read-only.
    """
    key = (_digest(train, held_out), num_cells)
    if key in _SPLIT_CACHE:
        _SPLIT_CACHE.move_to_end(key)
        return _SPLIT_CACHE[key]
    splits = _read_only(metrics.split_statistics(train, held_out, num_cells=num_cells))
    _SPLIT_CACHE[key] = splits
    while len(_SPLIT_CACHE) > SPLIT_CACHE_SIZE:
        _SPLIT_CACHE.popitem(last=False)
    return splits


def clear_split_cache() -> None:
    """Forgets every :func:`cached_split_statistics` result (benchmarks time the fits)."""
    _SPLIT_CACHE.clear()


def copying_cells(num_samples: int) -> int:
    """The copying statistic's k-means cells for ``num_samples`` generated samples."""
    return max(
        1,
        min(
            metrics.generalisation.COPYING_CELLS,
            num_samples // (2 * metrics.generalisation.COPYING_MIN_GENERATED),
        ),
    )


def shared(train, held_out, num_samples: int, feature_net: Any = None) -> Shared:
    """The member-independent part of the scores of ``num_samples`` generated samples.

    Args:
      train, held_out: as :func:`generalisation_scores`'s.
      num_samples: each member's number of samples.
      feature_net: the reference's feature network; with a ``feature_map``
        the smoothness programs are built too.
    """
    cells = copying_cells(num_samples)
    embed = feature_net.feature_map() if hasattr(feature_net, "feature_map") else None
    return Shared(
        num_samples=num_samples,
        pixels=cached_split_statistics(_flat(train.images), _flat(held_out.images), cells),
        features=cached_split_statistics(train.features, held_out.features, cells),
        embed=embed,
        programs=None if embed is None else smoothness.programs(embed),
    )


def generalisation_scores(
    train,
    held_out,
    samples: np.ndarray,
    fake_features: np.ndarray,
    key: jax.Array,
    *,
    shared: Shared | None = None,
) -> dict[str, Any]:
    """The copying, memorisation, FD∞ and FD∞-gap keys of the module table.

    Args:
      train, held_out: references (``images``, ``features``) of the training
        set and the held-out split.
      samples: the generated images ``[m, H, W, C]``.
      fake_features: their features ``[m, D]``.
      key: PRNG key of FD∞'s subsets.
      shared: :func:`shared` of ``train``, ``held_out`` and ``m``, if already computed.
    """
    key_held, key_train = jax.random.split(key)
    cells = copying_cells(len(samples))
    if shared is not None and shared.num_samples != len(samples):
        raise ValueError(
            f"shared was computed for {shared.num_samples} samples; got {len(samples)}"
        )
    pixels = (_flat(train.images), _flat(held_out.images), _flat(samples))
    features = (train.features, held_out.features, fake_features)
    # Once per space for both scores (memorisation reads its held-out distances from them).
    split_pixels, split_features = (
        (cached_split_statistics(*pixels[:2], cells), cached_split_statistics(*features[:2], cells))
        if shared is None
        else (shared.pixels, shared.features)
    )
    fd_inf = metrics.frechet_distance_infinity(held_out.features, fake_features, key=key_held)
    fd_inf_train = metrics.frechet_distance_infinity(train.features, fake_features, key=key_train)
    return {
        "copying_pixels": metrics.copying_statistic(*pixels, num_cells=cells, splits=split_pixels),
        "copying_features": metrics.copying_statistic(
            *features, num_cells=cells, splits=split_features
        ),
        "memorisation_pixels": metrics.memorisation_ratio(*pixels, splits=split_pixels),
        "memorisation_features": metrics.memorisation_ratio(*features, splits=split_features),
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
    latent_map, embed: Callable, num_samples: int, key: jax.Array, *, shared: Shared | None = None
) -> dict[str, float]:
    """``ppl``, ``jacobian_fro`` and ``jacobian_log_cond`` of ``latent_map = (K, z -> x)``.

    ``shared``: from :func:`shared` (``embed`` is then its own); its programs
    are used where ``z -> x`` is a ``jax.tree_util.Partial`` (its parameters
    an argument of the compiled program, not a constant of it).
    """
    latent_dim, generate = latent_map
    key_ppl, key_z = jax.random.split(key)
    z = jax.random.normal(key_z, (JACOBIAN_LATENTS, latent_dim))
    programs = None
    if (
        shared is not None
        and shared.programs is not None
        and isinstance(generate, jax.tree_util.Partial)
    ):
        embed, programs = shared.embed, shared.programs
    return {
        "ppl": smoothness.perceptual_path_length(
            generate, embed, key_ppl, min(num_samples, PPL_PAIRS), latent_dim, programs=programs
        ),
        **smoothness.jacobian_scores(generate, z, programs=programs),
    }
