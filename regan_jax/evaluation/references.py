"""Null references: what noise and real data score, computed by the evaluator that scores runs.

A figure's null bands say where a metric stands for samples that carry no
structure (``noise``, ``shuffled``) and for samples of the data itself
(``real``). :func:`null_scores` draws them with :func:`null_samples` and
passes them to :func:`regan_jax.evaluation.evaluate` as a ``sample_fn``, so
they are scored by exactly the code that scores runs.

=============  ==================================  =====================================
kind           2-D mixture                         images (stacked digits included)
=============  ==================================  =====================================
``noise``      uniform in ``Mixture.support()``    uniform pixels in [-1, 1]
``shuffled``   --                                  held-out real images, each image's
                                                   pixel positions permuted (its own
                                                   permutation; channels kept together)
``real``       draws from the true mixture         held-out real images that are not in
                                                   the reference
``memoriser``  --                                  training images plus N(0, 0.05²) pixel
                                                   noise, clipped (with a training set
                                                   only: :func:`memoriser_samples`)
=============  ==================================  =====================================

**With the run's training set** (``train``, protocol v2), every null is
also given the generalisation scores of
:mod:`regan_jax.evaluation.generalisation`, and a ``memoriser`` joins
them: it must be flagged as copying (C_T ≪ 0, memorisation ratio ≈ 1, the
largest FD∞ gap) where held-out ``real`` images are not (C_T ≈ 0,
memorisation ≈ its null 0.05, FD∞ gap ≈ 0).

**The held-out split, in two halves.** A reference holds the held-out
(test) split. Scoring real images against features of those same images
would be in-sample, so the images' nulls use the split in two fixed
halves (:func:`null_halves`): the rows, ordered by class (stable), are
dealt alternately to the reference the nulls are scored against
(:func:`null_reference`) and to the pool ``real`` and ``shuffled``
samples come from, so the two halves hold every class in equal shares
(within one image). Dealing the rows in stored order does not: digits'
held-out split alternates classes unevenly (even rows: 9 threes and 25
nines of 149, odd rows: 23 and 6), which made the halves two different
distributions -- KID(real) 33 against 1.0 ± 4.8 for random halves
(``docs/metrics.md``). Runs are scored against the whole split; scoring a
run against :func:`null_reference` instead makes it exactly comparable.

**FD depends on the sample count** (it is biased upward by finite
samples), so a null is comparable with runs only at the sample count they
were scored at: :func:`null_scores` takes ``num_samples``. ``real`` samples
are drawn without replacement, at most the pool (half the held-out split);
why this makes the ``real`` band a slightly pessimistic floor:
``docs/metrics.md``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from regan_jax.evaluation import evaluator

NULL_KINDS = ("noise", "shuffled", "real")
MIXTURE_NULL_KINDS = ("noise", "real")
MEMORISER = "memoriser"
MEMORISER_NOISE = 0.05
# Each kind's key is fold_in(key, index): the memoriser after the three, whose keys stay.
_KEY_INDEX = {kind: i for i, kind in enumerate((*NULL_KINDS, MEMORISER))}


def null_kinds(reference: evaluator.Reference) -> tuple[str, ...]:
    """The null kinds of ``reference``: all three for images, no ``shuffled`` for mixtures."""
    return MIXTURE_NULL_KINDS if reference.mixture is not None else NULL_KINDS


def _check_kind(reference: evaluator.Reference, kind: str) -> None:
    if kind not in null_kinds(reference):
        raise ValueError(
            f"null kind {kind!r} does not apply to {reference.dataset!r}; "
            f"expected one of {list(null_kinds(reference))}"
        )


def null_halves(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the nulls' reference half and of their pool (module docstring), each sorted.

    The rows are ordered by label (stable: stored order within a class) and
    dealt alternately, first to the reference: each class's two shares
    differ by at most one row, and the halves hold ``ceil(N / 2)`` and
    ``floor(N / 2)`` rows.
    """
    order = np.argsort(np.asarray(labels), kind="stable")
    return np.sort(order[0::2]), np.sort(order[1::2])


def null_reference(reference: evaluator.Reference) -> evaluator.Reference:
    """The reference the nulls are scored against: a mixture as it is, images' first half.

    The other half (:func:`null_halves`) is the pool of the ``real`` and
    ``shuffled`` nulls. The features are sliced, not recomputed.
    """
    if reference.mixture is not None:
        return reference
    rows, _ = null_halves(reference.labels)
    return dataclasses.replace(
        reference,
        images=reference.images[rows],
        labels=reference.labels[rows],
        features=reference.features[rows],
    )


def _null_pool(reference: evaluator.Reference) -> np.ndarray:
    """The held-out images no null is scored against: the second half of :func:`null_halves`."""
    return reference.images[null_halves(reference.labels)[1]]


@jax.jit
def _permute_pixels(key: jax.Array, images: jax.Array) -> jax.Array:
    """Each image's pixel positions permuted by its own permutation, channels kept together."""
    n, h, w, c = images.shape
    order = jax.vmap(lambda k: jax.random.permutation(k, h * w))(jax.random.split(key, n))
    flat = images.reshape(n, h * w, c)
    return jnp.take_along_axis(flat, order[:, :, None], axis=1).reshape(images.shape)


def null_samples(reference: evaluator.Reference, kind: str, key: jax.Array, n: int) -> np.ndarray:
    """``n`` samples of the null ``kind`` (module docstring), float32 ``[n, *sample_shape]``.

    ``functools.partial(null_samples, reference, kind)`` is a ``sample_fn``
    of :func:`regan_jax.evaluation.evaluate`.

    Args:
        reference: from ``make_reference`` (the whole held-out split for images).
        kind: one of :func:`null_kinds` of ``reference``.
        key: PRNG key.
        n: number of samples.

    Raises:
        ValueError: an unknown kind, ``shuffled`` for a mixture, ``n < 1``, or
            more ``real`` images than the pool (half the held-out split) holds.
    """
    _check_kind(reference, kind)
    if n < 1:
        raise ValueError(f"null_samples needs n >= 1; got {n}")
    if reference.mixture is not None:
        if kind == "real":
            return np.asarray(reference.mixture.sample(key, n))
        low, high = reference.mixture.support()
        return np.asarray(jax.random.uniform(key, (n, 2), jnp.float32, low, high))
    if kind == "noise":
        return np.asarray(
            jax.random.uniform(key, (n, *reference.sample_shape), jnp.float32, -1.0, 1.0)
        )
    pool = _null_pool(reference)
    if kind == "real":
        if n > len(pool):
            raise ValueError(
                f"the 'real' null of {reference.dataset!r} has {len(pool)} held-out "
                f"images (half the reference split) and draws without replacement; "
                f"asked for {n}"
            )
        return pool[np.asarray(jax.random.choice(key, len(pool), (n,), replace=False))]
    # 'shuffled': every image gets its own permutation, so the sources may repeat
    # (with replacement beyond the pool's size) without repeating a sample.
    pick_key, permute_key = jax.random.split(key)
    rows = np.asarray(jax.random.choice(pick_key, len(pool), (n,), replace=n > len(pool)))
    return np.asarray(_permute_pixels(permute_key, jnp.asarray(pool[rows])))


def memoriser_samples(
    train_images: np.ndarray, key: jax.Array, n: int, noise: float = MEMORISER_NOISE
) -> np.ndarray:
    """``n`` training images plus N(0, ``noise``²) pixel noise, clipped to [-1, 1]: a memoriser.

    The images are drawn without replacement up to the training set's size,
    with replacement beyond it; ``functools.partial(memoriser_samples,
    train.images)`` is a ``sample_fn`` of :func:`regan_jax.evaluation.evaluate`.

    Raises:
        ValueError: ``n < 1`` or no training images.
    """
    if n < 1 or len(train_images) < 1:
        raise ValueError(
            f"memoriser_samples needs n >= 1 and training images; got n={n}, "
            f"{len(train_images)} images"
        )
    pick_key, noise_key = jax.random.split(key)
    count = len(train_images)
    rows = np.asarray(jax.random.choice(pick_key, count, (n,), replace=n > count))
    x = np.asarray(train_images[rows], np.float32)
    return np.clip(x + noise * np.asarray(jax.random.normal(noise_key, x.shape)), -1.0, 1.0)


def null_scores(
    reference: evaluator.Reference,
    key: jax.Array,
    num_samples: int,
    kinds: Sequence[str] | None = None,
    *,
    k: int = 5,
    progress: bool | None = False,
    train: evaluator.Reference | None = None,
) -> dict[str, dict[str, Any]]:
    """The evaluator's scores of each null: ``{kind: evaluate(...)}``.

    Each null's samples come from :func:`null_samples` (the ``memoriser``'s
    from :func:`memoriser_samples`) as ``evaluate``'s ``sample_fn``, in a
    single batch (so ``real`` images are drawn without replacement across
    the whole set), scored against :func:`null_reference`. Kind ``kind``
    uses ``fold_in(key, i)``, ``i`` its index in ``(*NULL_KINDS,
    'memoriser')``, whichever other kinds are asked for.

    Args:
        reference: from ``make_reference`` (the whole held-out split for images).
        key: PRNG key.
        num_samples: samples per null -- the count the runs were scored at
            (FD depends on it; module docstring).
        kinds: the nulls to score; default :func:`null_kinds` of ``reference``,
            and ``'memoriser'`` with ``train``.
        k: the neighbourhood size of precision/recall/density/coverage.
        progress: progress bars (as ``evaluate``).
        train: the runs' training set in ``reference``'s feature space
            (:func:`regan_jax.evaluation.hooks.training_reference`): adds
            the generalisation scores to every null, and the memoriser.

    Returns:
        One ``evaluate`` result per kind.

    Raises:
        ValueError: a kind that does not apply (the memoriser without ``train``).
    """
    if kinds is None:
        kinds = null_kinds(reference) + (() if train is None else (MEMORISER,))
    kinds = tuple(kinds)
    for kind in kinds:
        if kind == MEMORISER and train is None:
            raise ValueError("the 'memoriser' null needs the training set (train=...)")
        if kind != MEMORISER:
            _check_kind(reference, kind)
    target = null_reference(reference)
    return {
        kind: evaluator.evaluate(
            functools.partial(memoriser_samples, train.images)
            if kind == MEMORISER
            else functools.partial(null_samples, reference, kind),
            jax.random.fold_in(key, _KEY_INDEX[kind]),
            target,
            num_samples=num_samples,
            batch_size=num_samples,
            k=k,
            progress=progress,
            train=train,
        )
        for kind in kinds
    }


def at_noise_level(scores: Mapping[str, Any], null: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether an image run's FD is no better than structureless images'.

    .. math::
      \\mathrm{FD}_\\mathrm{run} \\ge \\min(\\mathrm{FD}_\\mathrm{shuffled},
        \\mathrm{FD}_\\mathrm{noise})

    over the nulls present in ``null``. Shuffled images keep the real pixel
    histogram and noise keeps nothing; a run that does not beat the better
    of the two has learned nothing of the structure the feature space sees.
    A run whose FD is None (non-finite samples) is at noise level. The
    threshold is a point value, with no error bar: compare at the same
    ``num_samples`` (module docstring). For a mixture run (scores without
    ``fd``) the binomial test's flag ``at_noise_level`` of
    ``metrics.mode_metrics`` is returned (None, from non-finite samples,
    counts as at noise level), and ``null`` is not used.

    Args:
        scores: a run's ``evaluate`` result.
        null: :func:`null_scores` of the same reference, with ``noise`` or
            ``shuffled`` (or both).

    Raises:
        ValueError: image scores without ``fd``, or ``null`` with neither
            ``noise`` nor ``shuffled``.
    """
    if "fd" not in scores:
        if "at_noise_level" in scores:
            return scores["at_noise_level"] is not False
        raise ValueError(
            f"at_noise_level needs image scores with 'fd' (or mixture scores with "
            f"'at_noise_level'); got keys {sorted(scores)}"
        )
    floors = [null[kind]["fd"] for kind in ("shuffled", "noise") if kind in null]
    if not floors:
        raise ValueError(f"at_noise_level needs the 'shuffled' or 'noise' null; got {sorted(null)}")
    return scores["fd"] is None or scores["fd"] >= min(floors)
