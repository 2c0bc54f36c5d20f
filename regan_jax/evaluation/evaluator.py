"""The evaluator: draws samples from a model and computes every metric that applies.

A :class:`Reference` holds what samples are compared with — the real split's
features and labels in a feature network's space, or a 2-D mixture — and is
built once per run by :func:`make_reference`. :func:`evaluate` then draws
``num_samples`` samples with ``sample_fn`` and returns the flat, JSON-ready
dict that becomes ``summary.json`` (or, with ``cheap=True``, the in-training
FD). Which metrics apply (keys of the result):

=================  ===========================================================
reference          metrics
=================  ===========================================================
image dataset      ``fd``, ``kid``, ``precision``, ``recall``, ``density``,
                   ``coverage`` in the feature network's space; with a class
                   classifier also ``modes`` (classes predicted at least
                   once), ``class_kl`` (predicted-class histogram vs
                   uniform) and ``inception_score`` (its IS analogue); for
                   class-conditional samples also ``cond_accuracy`` and
                   ``intra_fd`` (mean per-class FD)
``stacked_digits`` the six feature metrics on the three channels' digits
                   features concatenated, ``modes`` (of 1,000, each channel
                   classified by the digits classifier) and ``class_kl`` (the
                   mode histogram's KL to uniform)
2-D mixture        ``modes``, ``robust_modes``, ``hq_fraction``,
                   ``noise_hq_fraction``, ``reverse_kl``, ``at_noise_level``
                   (``metrics.mode_metrics``: the published protocol plus
                   binomial tests against uniform noise in
                   ``Mixture.support()``)
cheap              ``fd`` (images), the mixture metrics (2-D)
``train`` given    the generalisation scores (images, not ``cheap``):
                   ``copying_pixels``, ``copying_features``,
                   ``memorisation_pixels``, ``memorisation_features``,
                   ``fd_inf``, ``fd_inf_train``, ``fd_inf_gap``, and with a
                   ``critic_fn`` ``r_t``, ``r_v``, with a ``latent_map``
                   ``ppl``, ``jacobian_fro``, ``jacobian_log_cond``
                   (:mod:`regan_jax.evaluation.generalisation`)
=================  ===========================================================

Always: ``num_samples`` and ``nonfinite_samples`` (samples with a NaN/inf
entry). If any sample is non-finite, every sample metric is ``None``: a
score is never averaged over NaN, and dropping the bad samples would flatter
a model that emits them. With ``elbo_fn`` (VAEs) also ``elbo``, the mean
per-example ELBO of the reference images. Non-finite scores are reported
as ``None`` (a mixture run with no sample near a mode gets ``reverse_kl =
log M``, not inf, so it is not dropped). What noise and held-out real data
score, by this same code, is :mod:`regan_jax.evaluation.references`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tqdm.auto

from regan_jax import data, metrics
from regan_jax.evaluation import classifier as classifier_lib
from regan_jax.evaluation import generalisation

FEATURE_METRICS = ("fd", "kid", "precision", "recall", "density", "coverage")
CLASS_METRICS = ("modes", "class_kl", "inception_score")
CONDITIONAL_METRICS = ("cond_accuracy", "intra_fd")
STACKED_METRICS = ("modes", "class_kl")
MIXTURE_METRICS = (
    "modes",
    "robust_modes",
    "hq_fraction",
    "noise_hq_fraction",
    "reverse_kl",
    "at_noise_level",
)
STACKED_DATASET = "stacked_digits"

Classifier = classifier_lib.FeatureClassifier | classifier_lib.PerChannelClassifier


@dataclasses.dataclass(frozen=True)
class Reference:
    """What generated samples are compared with.

    Attributes:
        dataset: dataset name.
        sample_shape: one sample's shape, ``(H, W, C)`` or ``(2,)``.
        images: real images ``[N, H, W, C]`` (None for mixtures).
        labels: their int labels ``[N]`` (None for mixtures).
        num_classes: number of classes (modes for mixtures, 1,000 for stacked digits).
        features: the real images' features ``[N, D]`` (None for mixtures).
        feature_net: the network that gave them: anything with
            ``features(images, *, progress) -> [N, D]`` (a ``FeatureClassifier``,
            ``PerChannelClassifier`` or ``InceptionFeatures``).
        classifier: the class classifier (``FeatureClassifier``, or the per-channel
            digits classifier for stacked digits), None if the dataset has none.
        mixture: the 2-D mixture (None for image datasets).
    """

    dataset: str
    sample_shape: tuple[int, ...]
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    num_classes: int = 0
    features: np.ndarray | None = None
    feature_net: Any = None
    classifier: Classifier | None = None
    mixture: data.Mixture | None = None


def default_classifier(dataset: str) -> Classifier | None:
    """The shipped class classifier of ``dataset`` (per channel for stacked digits), or None."""
    if dataset == STACKED_DATASET:
        return classifier_lib.PerChannelClassifier(classifier_lib.load_classifier("digits"))
    if dataset in classifier_lib.CLASSIFIER_SPECS:
        return classifier_lib.load_classifier(dataset)
    return None


def make_reference(
    dataset: str,
    *,
    split: str = "test",
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    feature_net: Any = None,
    data_options: Mapping[str, Any] | None = None,
    mixture: data.Mixture | None = None,
    progress: bool | None = None,
) -> Reference:
    """Builds the reference of ``dataset``: real features, or the mixture.

    The default reference is the test split: the feature classifiers were
    trained on the train split, whose features are in-sample and would make
    even a perfect generator look worse than held-out real images.

    Args:
        dataset: a dataset name (``regan_jax.data``), a mixture included.
        split: the split loaded when ``images`` is not given.
        images: real images to use instead of loading ``split`` (with ``labels``).
        labels: their labels.
        feature_net: feature network (e.g. ``load_inception(path)``); default the
            dataset's shipped classifier.
        data_options: keyword options of ``data.load`` / ``data.mixture``.
        mixture: the 2-D mixture itself (e.g. a run's training source), instead
            of building it from ``data_options``.
        progress: progress bar while extracting the real features (None: only
            on a terminal).

    Raises:
        ValueError: ``images`` without ``labels`` (or the reverse), or an image
            dataset with neither a shipped classifier nor ``feature_net``.
    """
    options = dict(data_options or {})
    if dataset in data.MIXTURES:
        source = data.mixture(dataset, **options) if mixture is None else mixture
        return Reference(
            dataset=dataset, sample_shape=(2,), num_classes=source.num_modes, mixture=source
        )
    if (images is None) != (labels is None):
        raise ValueError("make_reference needs both images and labels, or neither")
    clf = default_classifier(dataset)
    if images is None:
        split_data = data.load(dataset, split, **options)
        images, labels, num_classes = split_data.images, split_data.labels, split_data.num_classes
    else:
        num_classes = 1000 if dataset == STACKED_DATASET else int(np.max(labels)) + 1
        if isinstance(clf, classifier_lib.FeatureClassifier):
            num_classes = clf.spec.num_classes
    feature_net = clf if feature_net is None else feature_net
    if feature_net is None:
        raise ValueError(
            f"dataset {dataset!r} has no shipped feature classifier (those: "
            f"{sorted(classifier_lib.CLASSIFIER_SPECS)} and {STACKED_DATASET!r}); pass "
            "feature_net=regan_jax.evaluation.load_inception(path)"
        )
    images = np.asarray(images, np.float32)
    return Reference(
        dataset=dataset,
        sample_shape=tuple(images.shape[1:]),
        images=images,
        labels=np.asarray(labels, np.int32),
        num_classes=int(num_classes),
        features=np.asarray(feature_net.features(images, progress=progress)),
        feature_net=feature_net,
        classifier=clf,
    )


def metric_names(
    reference: Reference,
    *,
    conditional: bool = False,
    cheap: bool = False,
    train: bool = False,
    critic: bool = False,
    latent_map: bool = False,
) -> tuple[str, ...]:
    """The sample-metric keys :func:`evaluate` reports for ``reference``
    (``train``, ``critic``, ``latent_map``: given a training reference, a
    ``critic_fn``, a ``latent_map``)."""
    if reference.mixture is not None:
        return MIXTURE_METRICS
    if cheap:  # D's logits are cheap: r_t / r_v are logged during training too
        return ("fd",) + (generalisation.CRITIC_METRICS if train and critic else ())
    extra = (
        (generalisation.GENERALISATION_METRICS if train else ())
        + (generalisation.CRITIC_METRICS if train and critic else ())
        + (generalisation.SMOOTHNESS_METRICS if train and latent_map else ())
    )
    if isinstance(reference.classifier, classifier_lib.PerChannelClassifier):
        return FEATURE_METRICS + STACKED_METRICS + extra
    if reference.classifier is None:
        return FEATURE_METRICS + extra
    return FEATURE_METRICS + CLASS_METRICS + (CONDITIONAL_METRICS if conditional else ()) + extra


def draw_samples(
    sample_fn: Callable[[jax.Array, int], Any],
    key: jax.Array,
    num_samples: int,
    sample_shape: tuple[int, ...],
    *,
    batch_size: int = 500,
    progress: bool | None = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``num_samples`` samples from ``sample_fn(fold_in(key, i), n_i)``, batch ``i`` of ``n_i``.

    ``sample_fn`` returns samples ``[n, *sample_shape]``, or ``(samples,
    labels [n])`` for a class-conditional model (the labels it conditioned on).

    Args:
        sample_fn: ``(key, n) -> samples`` or ``-> (samples, labels)``.
        key: PRNG key; batch ``i`` uses ``fold_in(key, i)``.
        num_samples: total samples drawn.
        sample_shape: one sample's shape, ``(H, W, C)`` or ``(2,)``.
        batch_size: samples per call (the last call may get fewer).
        progress: progress bar over the batches: True shows it, False hides
            it, None shows it only on a terminal.

    Returns:
        ``(samples as float32 numpy, labels as int32 numpy or None)``.

    Raises:
        ValueError: bad ``num_samples``/``batch_size``, or a batch of the wrong
            shape, size or label count.
    """
    if num_samples < 1 or batch_size < 1:
        raise ValueError(
            f"num_samples and batch_size must be >= 1, got {num_samples}, {batch_size}"
        )
    samples, labels = [], []
    starts = range(0, num_samples, batch_size)
    bar = tqdm.auto.tqdm(
        starts, desc="sampling", leave=False, disable=None if progress is None else not progress
    )
    for i, start in enumerate(bar):
        n = min(batch_size, num_samples - start)
        out = sample_fn(jax.random.fold_in(key, i), n)
        x, y = out if isinstance(out, tuple) else (out, None)
        x = np.asarray(x, np.float32)
        if x.shape != (n, *sample_shape):
            raise ValueError(
                f"sample_fn(key, {n}) returned samples of shape {x.shape}, "
                f"expected {(n, *sample_shape)}"
            )
        if y is not None and np.shape(y) != (n,):
            raise ValueError(
                f"sample_fn(key, {n}) returned labels of shape {np.shape(y)}, expected ({n},)"
            )
        samples.append(x)
        labels.append(y)
    has_labels = [y is not None for y in labels]
    if any(has_labels) and not all(has_labels):
        raise ValueError("sample_fn returned labels for some batches only")
    return np.concatenate(samples), (
        np.concatenate(labels).astype(np.int32) if all(has_labels) else None
    )


def as_sample_fn_output(out):
    """A family sampler's ``(x, labels or None)`` as :func:`evaluate`'s ``sample_fn`` returns it:
    ``x`` for an unconditional sampler, ``(x, labels)`` for a conditional one."""
    x, labels = out
    return x if labels is None else (x, labels)


def count_nonfinite(samples: np.ndarray) -> int:
    """Number of samples with at least one NaN or infinite entry."""
    flat = samples.reshape(samples.shape[0], -1)
    return int(np.sum(~np.all(np.isfinite(flat), axis=1)))


def _softmax(logits: Any) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _sample_scores(
    reference: Reference,
    samples: np.ndarray,
    labels: np.ndarray | None,
    key: jax.Array,
    *,
    cheap: bool,
    k: int,
    progress: bool | None,
    train: Reference | None = None,
    critic_fn: Callable | None = None,
    latent_map: tuple[int, Callable] | None = None,
    fake: np.ndarray | None = None,
    logits: np.ndarray | None = None,
    shared: generalisation.Shared | None = None,
) -> dict[str, Any]:
    # fake, logits: the samples' features and class logits when already computed
    # (a sweep group's members share one feature pass, evaluation.members);
    # shared: what every member's generalisation and smoothness scores share.
    if reference.mixture is not None:
        mixture = reference.mixture
        return metrics.mode_metrics(
            samples, mixture.centres, mixture.sigma, support=mixture.support()
        )
    if fake is None:
        fake = np.asarray(reference.feature_net.features(samples, progress=progress))
    scores: dict[str, Any] = {"fd": metrics.frechet_distance(reference.features, fake)}
    if train is not None and critic_fn is not None:
        scores.update(generalisation.critic_scores(critic_fn, train, reference, samples, labels))
    if cheap:
        return scores
    scores["kid"] = metrics.kid(reference.features, fake, key=key)
    scores.update(metrics.prdc(reference.features, fake, k))
    clf = reference.classifier
    if isinstance(clf, classifier_lib.PerChannelClassifier):
        scores.update(metrics.stacked_modes(np.asarray(clf.predict(samples))))
    elif clf is not None:
        probs = _softmax(clf.logits(samples) if logits is None else logits)
        scores["modes"] = metrics.modes_covered(probs, reference.num_classes)
        scores["class_kl"] = metrics.class_histogram_kl(probs, reference.num_classes)
        scores["inception_score"] = metrics.inception_score(probs, num_splits=min(10, len(probs)))
        if labels is not None:
            scores["cond_accuracy"] = metrics.conditional_accuracy(np.argmax(probs, axis=1), labels)
            scores["intra_fd"] = metrics.intra_class_frechet_distance(
                reference.features, reference.labels, fake, labels, reference.num_classes
            )
    if train is not None:
        scores.update(
            generalisation.generalisation_scores(
                train, reference, samples, fake, jax.random.fold_in(key, 1), shared=shared
            )
        )
        if latent_map is not None:
            scores.update(
                generalisation.smoothness_scores(
                    latent_map,
                    reference.feature_net.feature_map(),
                    len(samples),
                    jax.random.fold_in(key, 2),
                    shared=shared,
                )
            )
    return scores


def mean_scores(
    score_fn: Callable[[jax.Array], Mapping[str, jax.Array]],
    images: np.ndarray,
    batch_size: int = 500,
) -> dict[str, float]:
    """Means over ``images`` of per-example scores ``score_fn(batch) -> {name: [B]}``.

    NaN stays NaN.

    The scores are averaged in float64 on the host. A model family's held-out
    scores (the VAE's ELBO and reconstruction term) come through here.

    Raises:
        ValueError: a score that is not one value per image.
    """
    names = []

    def columns(x):
        out = score_fn(x)
        names[:] = sorted(out)
        return jnp.stack([out[name] for name in names], axis=1)

    try:
        values = np.asarray(classifier_lib.batched_apply(columns, images, batch_size), np.float64)
    except TypeError as e:  # jnp.stack of scores that are not one value per example.
        raise ValueError(f"score_fn must return one value per image for every score: {e}") from None
    if values.shape != (images.shape[0], len(names)):
        raise ValueError(
            f"score_fn must return one value per image, got shape {values.shape[1:]} per image"
        )
    return {name: float(np.mean(values[:, j])) for j, name in enumerate(names)}


def mean_elbo(
    elbo_fn: Callable[[jax.Array], jax.Array], images: np.ndarray, batch_size: int = 500
) -> float:
    """Mean over ``images`` of ``elbo_fn(batch) -> per-example ELBO [B]`` (:func:`mean_scores`)."""
    return mean_scores(lambda x: {"elbo": elbo_fn(x)}, images, batch_size)["elbo"]


def training_rows(num_train: int, num: int, key: jax.Array) -> np.ndarray:
    """The rows of a training set of ``num_train`` images scored at a held-out split's N = ``num``.

    Every row in order where there are no more than ``num``; otherwise
    ``num`` distinct rows drawn with ``key``, sorted.
    """
    if num_train <= num:
        return np.arange(num_train)
    return np.sort(np.asarray(jax.random.permutation(key, num_train)[:num]))


def elbo_gap(
    score_fn: Callable[[jax.Array], Mapping[str, jax.Array]],
    train_images: np.ndarray,
    held_out_elbo: float,
    num: int,
    key: jax.Array,
    batch_size: int = 500,
) -> dict[str, float]:
    """The ELBO of a VAE's own training images and its gap to the held-out ELBO.

    .. math::
        \\mathrm{elbo\\_train} = \\frac1n \\sum_{i \\in R} \\widehat{\\mathrm{ELBO}}(x_i),
        \\qquad \\mathrm{elbo\\_gap} = \\mathrm{elbo\\_train} - \\mathrm{held\\_out\\_elbo}

    with the held-out score's estimator ``score_fn`` (its ``'elbo'``, one z
    per example) on the rows ``R`` of :func:`training_rows` (``n = |R|``: the
    held-out N, or the whole training set where it is smaller; the mean of
    the per-example estimate is unbiased at any N, so equal N only matches
    the two means' Monte-Carlo variances). Given the held-out score's own
    ``score_fn`` (its key), example ``i`` of a batch draws the same noise in
    both scores (common random numbers): on the held-out images themselves
    the gap is exactly 0. ``elbo_gap > 0``: the VAE fits its training set
    better than held-out data.

    Args:
      score_fn: ``images [B, ...] -> {'elbo': [B], ...}`` (``Family.score_fn``).
      train_images: the run's training images (the ``config.data.train_size``
        subset where one is set).
      held_out_elbo: the held-out mean ELBO (:func:`mean_scores` of ``score_fn``).
      num: the held-out split's size.
      key: PRNG key of the rows, where there are more than ``num``.
      batch_size: images per ``score_fn`` call.

    Returns:
      ``{'elbo_train': float, 'elbo_gap': float}`` (NaN stays NaN).
    """
    rows = training_rows(train_images.shape[0], num, key)
    train = mean_scores(score_fn, train_images[rows], batch_size)["elbo"]
    return {"elbo_train": train, "elbo_gap": train - held_out_elbo}


def _json_ready(value: Any) -> Any:
    """Python scalars; non-finite floats become None."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def evaluate(
    sample_fn: Callable[[jax.Array, int], Any],
    key: jax.Array,
    reference: Reference,
    *,
    num_samples: int,
    batch_size: int = 500,
    cheap: bool = False,
    elbo_fn: Callable[[jax.Array], jax.Array] | None = None,
    k: int = 5,
    progress: bool | None = None,
    train: Reference | None = None,
    critic_fn: Callable | None = None,
    latent_map: tuple[int, Callable] | None = None,
) -> dict[str, Any]:
    """Draws ``num_samples`` samples and computes every metric that applies (module docstring).

    Args:
        sample_fn: ``(key, n) -> samples [n, *sample_shape]`` (images in [-1, 1]
            or 2-D points), or ``-> (samples, labels [n])`` for class-conditional
            models.
        key: PRNG key; batch ``i`` is drawn with ``fold_in(split(key)[0], i)``,
            KID's subsets use ``split(key)[1]``.
        reference: from :func:`make_reference`.
        num_samples: samples drawn (the study uses 10,000).
        batch_size: samples per ``sample_fn`` call.
        cheap: only the cheap metrics (``fd`` for images): for periodic
            evaluation during training on a few thousand samples.
        elbo_fn: ``images [B, H, W, C] -> ELBO [B]`` of a VAE; adds ``elbo``,
            the mean over the reference images (not with ``cheap``).
        k: neighbourhood size of precision/recall/density/coverage.
        progress: progress bars while sampling and extracting features: True
            shows them, False hides them, None shows them only on a terminal.
        train: the run's training set as a reference in ``reference``'s
            feature space (:func:`make_reference` with its images): adds the
            generalisation scores (not with ``cheap``).
        critic_fn: ``(images, labels or None) -> D's logits [N]``: with
            ``train``, adds ``r_t`` and ``r_v`` (also with ``cheap``).
        latent_map: ``(K, z [N, K] -> images)``, the generator's map: with
            ``train`` and a feature classifier (``feature_map``), adds ``ppl``,
            ``jacobian_fro`` and ``jacobian_log_cond``.

    Returns:
        Flat dict of Python ints/floats/bools/None: ``num_samples``,
        ``nonfinite_samples`` and the metrics of :func:`metric_names`
        (``elbo`` too with ``elbo_fn``).
    """
    sample_key, metric_key = jax.random.split(key)
    samples, labels = draw_samples(
        sample_fn,
        sample_key,
        num_samples,
        reference.sample_shape,
        batch_size=batch_size,
        progress=progress,
    )
    return score_samples(
        reference,
        samples,
        labels,
        metric_key,
        batch_size=batch_size,
        cheap=cheap,
        elbo_fn=elbo_fn,
        k=k,
        progress=progress,
        train=train,
        critic_fn=critic_fn,
        latent_map=latent_map,
    )


def score_samples(
    reference: Reference,
    samples: np.ndarray,
    labels: np.ndarray | None,
    key: jax.Array,
    *,
    batch_size: int = 500,
    cheap: bool = False,
    elbo_fn: Callable[[jax.Array], jax.Array] | None = None,
    k: int = 5,
    progress: bool | None = None,
    train: Reference | None = None,
    critic_fn: Callable | None = None,
    latent_map: tuple[int, Callable] | None = None,
    features: np.ndarray | None = None,
    logits: np.ndarray | None = None,
    shared: generalisation.Shared | None = None,
) -> dict[str, Any]:
    """:func:`evaluate`'s result for samples already drawn (``key``: its ``split(key)[1]``).

    ``features`` / ``logits``: the samples' features in ``reference``'s
    space and the class classifier's logits, if already computed (they are
    then not recomputed); ``shared``: with ``train``,
    :func:`~regan_jax.evaluation.generalisation.shared` of ``train``,
    ``reference`` and ``len(samples)``, if already computed (a sweep group's
    members share it; the scores are the same bit for bit); the other
    arguments are :func:`evaluate`'s.
    """
    num_samples = len(samples)
    nonfinite = count_nonfinite(samples)
    if not hasattr(reference.feature_net, "feature_map"):
        latent_map = None  # Inception or per-channel features: no traceable map
    names = metric_names(
        reference,
        conditional=labels is not None,
        cheap=cheap,
        train=train is not None,
        critic=critic_fn is not None,
        latent_map=latent_map is not None,
    )
    if nonfinite:
        warnings.warn(
            f"{nonfinite} of {num_samples} samples are not finite; sample metrics "
            "are reported as None",
            RuntimeWarning,
            stacklevel=2,
        )
        scores = dict.fromkeys(names)
    else:
        scores = _sample_scores(
            reference,
            samples,
            labels,
            key,
            cheap=cheap,
            k=k,
            progress=progress,
            train=train,
            critic_fn=critic_fn,
            latent_map=None if cheap else latent_map,
            fake=features,
            logits=logits,
            shared=shared,
        )
    result = {"num_samples": num_samples, "nonfinite_samples": nonfinite, **scores}
    if elbo_fn is not None and not cheap:
        if reference.images is None:
            raise ValueError(f"elbo_fn needs reference images; {reference.dataset!r} has none")
        result["elbo"] = mean_elbo(elbo_fn, reference.images, batch_size)
    return {name: _json_ready(value) for name, value in result.items()}


def weight_summary(
    params_by_net: Mapping[str, Any], initial_by_net: Mapping[str, Any] | None = None
) -> dict[str, float]:
    """Per network, over its kernels (``penalties.kernel_mask``), from ``metrics.weight_stats``.

    ``sparsity_<net>`` = #{w = 0} / #w, ``norm_<net>`` = sqrt(Σ w²) and
    ``filter_sparsity_<net>`` = the fraction of output units (kernel columns)
    that are entirely 0 (what group L1 produces); with the initial
    parameters ``initial_by_net`` also ``near_zero_<net>`` = #{|w| < 1e-3 ×
    the layer's initial RMS} / #w (``near_zero_of_initial``).
    """
    stats = jax.device_get(_weight_stats(params_by_net, initial_by_net))
    return {
        f"{name}_{net}": float(value)
        for net, by_name in stats.items()
        for name, value in by_name.items()
    }


@jax.jit
def _weight_stats(params_by_net, initial_by_net):
    # Jitted: eagerly, weight_stats dispatches a few dozen small ops per network,
    # about a second per run on a busy 2-core CPU -- minutes over a sweep.
    out = {}
    for net, params in params_by_net.items():
        initial = None if initial_by_net is None else initial_by_net[net]
        stats = metrics.weight_stats(params, initial=initial)
        out[net] = {
            "sparsity": stats["sparsity"],
            "norm": stats["l2"],
            "filter_sparsity": stats["zero_filter_fraction"],
        }
        if initial is not None:
            out[net]["near_zero"] = stats["near_zero_of_initial"]
    return out
