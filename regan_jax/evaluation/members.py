"""A vmapped sweep group's members evaluated together: one sampling program, one feature pass.

:func:`evaluate_members` gives member ``k`` of a group whose parameters are
stacked on a leading member axis (:mod:`regan_jax.sweep`) what
:func:`regan_jax.evaluation.evaluate` gives it alone with its own key
``keys[k]``: batch ``i`` of every member is drawn by one call of the
sampler vmapped over the member axis (member ``k``'s key
``fold_in(split(keys[k])[0], i)``, as :func:`~regan_jax.evaluation.draw_samples`
folds it), and the features (and class logits) of all members' samples come
from one pass of the feature network over the ``K·N`` images. The
statistics that follow the features (FD, KID, PRDC, the class and
generalisation scores) stay per member
(:func:`~regan_jax.evaluation.score_samples`), but what they compute from
the references alone (the generalisation scores' k-means cells and
held-out distances, the smoothness programs) is computed once per group
(:func:`regan_jax.evaluation.generalisation.shared`), bit for bit what each
member would compute. Batched kernels may round
differently from the member's own, so a member's scores equal its single
evaluation up to float reassociation (tested within 1e-6 relative).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from regan_jax import xla
from regan_jax.evaluation import classifier as classifier_lib
from regan_jax.evaluation import evaluator, generalisation


def vmap_sampler(sample: Callable) -> Callable:
    """``sample(params, key, n) -> (x, labels or None)`` over a member axis of params and keys.

    Returns ``(stacked params, keys [K], n) -> (x [K, n, ...], labels [K, n] or None)``,
    jitted with ``n`` static.
    """
    return xla.jit(jax.vmap(sample, in_axes=(0, 0, None)), static_argnums=2)


def draw_members(
    sample: Callable,
    params: Any,
    keys: jax.Array,
    num_samples: int,
    sample_shape: tuple[int, ...],
    *,
    batch_size: int = 500,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Every member's :func:`~regan_jax.evaluation.draw_samples` with its key, in one program per batch.

    Args:
      sample: from :func:`vmap_sampler`.
      params: the members' parameters stacked on a leading axis of size K.
      keys: ``[K]`` keys; batch ``i`` of member ``k`` uses ``fold_in(keys[k], i)``.
      num_samples: samples per member.
      sample_shape: one sample's shape.
      batch_size: samples per member and call.

    Returns:
      ``(samples [K, N, *sample_shape] float32, labels [K, N] int32 or None)`` (numpy).

    Raises:
      ValueError: bad ``num_samples`` / ``batch_size``, or a batch of the wrong shape.
    """
    if num_samples < 1 or batch_size < 1:
        raise ValueError(
            f"num_samples and batch_size must be >= 1, got {num_samples}, {batch_size}"
        )
    size = keys.shape[0]
    fold_in = jax.vmap(jax.random.fold_in, in_axes=(0, None))
    samples, labels = [], []
    for i, start in enumerate(range(0, num_samples, batch_size)):
        n = min(batch_size, num_samples - start)
        x, y = sample(params, fold_in(keys, i), n)
        x = np.asarray(x, np.float32)
        if x.shape != (size, n, *sample_shape):
            raise ValueError(
                f"the vmapped sampler returned samples of shape {x.shape}, "
                f"expected {(size, n, *sample_shape)}"
            )
        samples.append(x)
        labels.append(None if y is None else np.asarray(y, np.int32))
    return np.concatenate(samples, axis=1), (
        None if labels[0] is None else np.concatenate(labels, axis=1)
    )


def _outputs(reference: evaluator.Reference, samples: np.ndarray, cheap: bool):
    """Features ``[K, N, D]`` (and class logits ``[K, N, C]``, or None) of every member's samples.

    One pass of the feature network over the ``K·N`` images; the logits only
    where :func:`~regan_jax.evaluation.evaluate` takes them from a class
    classifier (not ``cheap``, not per channel).
    """
    size, n = samples.shape[:2]
    flat = samples.reshape(size * n, *samples.shape[2:])
    clf = reference.classifier
    if cheap or not isinstance(clf, classifier_lib.FeatureClassifier):
        features, logits = reference.feature_net.features(flat), None
    elif clf is reference.feature_net:  # the shipped classifier: both from one pass
        features, logits = clf.features_and_logits(flat)
    else:
        features, logits = reference.feature_net.features(flat), clf.logits(flat)
    return np.asarray(features).reshape(size, n, -1), (
        None if logits is None else np.asarray(logits).reshape(size, n, -1)
    )


def evaluate_members(
    sample: Callable,
    params: Any,
    keys: Sequence[jax.Array],
    reference: evaluator.Reference,
    *,
    num_samples: int,
    batch_size: int = 500,
    cheap: bool = False,
    scored: Sequence[bool] | None = None,
    train: evaluator.Reference | None = None,
    critic_fns: Sequence[Callable | None] | None = None,
    latent_maps: Sequence[tuple[int, Callable] | None] | None = None,
) -> list[dict[str, Any] | None]:
    """Each member's :func:`~regan_jax.evaluation.evaluate` with ``keys[k]``, sampled as one group.

    Args:
      sample: from :func:`vmap_sampler` (the family's sampler).
      params: the members' parameters stacked on a leading axis.
      keys: one key per member (what ``evaluate`` would get).
      reference: from :func:`~regan_jax.evaluation.make_reference`.
      num_samples, batch_size, cheap, train: as :func:`~regan_jax.evaluation.evaluate`.
      scored: which members to score (default all); the others get None
        (their samples are drawn with the group's but never scored).
      critic_fns, latent_maps: per member, ``evaluate``'s ``critic_fn`` and
        ``latent_map`` (default None for all).

    Returns:
      Per member, ``evaluate``'s dict, or None where not ``scored``.
    """
    size = len(keys)
    scored = [True] * size if scored is None else list(scored)
    critic_fns = [None] * size if critic_fns is None else list(critic_fns)
    latent_maps = [None] * size if latent_maps is None else list(latent_maps)
    sample_keys, metric_keys = zip(*(jax.random.split(key) for key in keys), strict=True)
    samples, labels = draw_members(
        sample,
        params,
        jnp.stack(sample_keys),
        num_samples,
        reference.sample_shape,
        batch_size=batch_size,
    )
    # Members with a non-finite sample get no sample metrics: not in the feature pass.
    featured = [k for k in range(size) if scored[k] and not evaluator.count_nonfinite(samples[k])]
    features = logits = None
    if reference.mixture is None and featured:
        features, logits = _outputs(reference, samples[featured], cheap)
    shared = (
        generalisation.shared(train, reference, num_samples, reference.feature_net)
        if train is not None and features is not None and not cheap
        else None
    )
    out: list[dict[str, Any] | None] = [None] * size
    for k in range(size):
        if not scored[k]:
            continue
        at = featured.index(k) if features is not None and k in featured else None
        out[k] = evaluator.score_samples(
            reference,
            samples[k],
            None if labels is None else labels[k],
            metric_keys[k],
            batch_size=batch_size,
            cheap=cheap,
            train=train,
            critic_fn=critic_fns[k],
            latent_map=latent_maps[k],
            features=None if at is None else features[at],
            logits=None if at is None or logits is None else logits[at],
            shared=shared,
        )
    return out
