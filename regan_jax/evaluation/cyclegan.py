"""The cycle GAN's held-out scores, and the references scored by the same code.

Scores (:func:`make_evaluator`, on the held-out split, in the shipped
classifier's feature space of the base dataset; every score is ``None`` if a
translation is not finite). T is the unpaired dataset's known transform from
A to B (:mod:`regan_jax.data.unpaired`) and T⁻¹ its inverse:

====================== ================================================================
``fd``                 FD of G(A) against held-out B (the in-training FD too)
``content_accuracy``   classifier accuracy on G(a) against a's label
``fd_f``               FD of T⁻¹(F(B)) against T⁻¹(A) (F's outputs and the held-out
                       A images, both mapped back by the known inverse transform)
``content_accuracy_f`` classifier accuracy on T⁻¹(F(b)) against b's label
``cycle_error_a``      ‖F(G(a)) - a‖₁ (mean absolute error per pixel, [-1, 1] units)
``cycle_error_b``      ‖G(F(b)) - b‖₁
====================== ================================================================

A and B of the held-out split come from disjoint images, so no translation is
compared with its own source. :func:`null_scores` scores the references by
the same code: ``identity`` (G = F = identity: A's images themselves as B),
``noise`` (uniform pixels) and ``real`` (the true inverse T⁻¹: held-out real
images against other held-out real images, the floor).
"""

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from regan_jax import data, metrics
from regan_jax.data import unpaired
from regan_jax.evaluation import classifier as classifier_lib

SCORES = ("fd", "content_accuracy", "fd_f", "content_accuracy_f", "cycle_error_a", "cycle_error_b")
NULL_KINDS = ("identity", "noise", "real")


class HeldOut(NamedTuple):
    """The held-out split as the scores need it (features computed once).

    Attributes:
      a, b: the A and B images ``[M, H, W, C]``.
      label_a, label_b: their classes.
      classifier: the base dataset's shipped ``FeatureClassifier``.
      b_features: features of ``b``, the reference of G(A).
      a_plain_features: features of T⁻¹(a), the reference of T⁻¹(F(B)).
    """

    a: np.ndarray
    b: np.ndarray
    label_a: np.ndarray
    label_b: np.ndarray
    classifier: Any
    b_features: np.ndarray
    a_plain_features: np.ndarray


def held_out(dataset_name: str, test) -> HeldOut:
    """:class:`HeldOut` of an unpaired dataset's test split (an ``ArrayDataset``)."""
    clf = classifier_lib.load_classifier(unpaired.UNPAIRED[dataset_name].base)
    a, b = unpaired.split_domains(np.asarray(test.images, np.float32))
    label_a, label_b = unpaired.domain_labels(np.asarray(test.labels))
    return HeldOut(
        a,
        b,
        label_a,
        label_b,
        clf,
        np.asarray(clf.features(b)),
        np.asarray(clf.features(unpaired.invert(a))),
    )


def score_translations(
    held: HeldOut, g_fn: Callable, f_fn: Callable, cheap: bool = False
) -> dict[str, float | None]:
    """The family's held-out scores (module table) of translators ``g_fn``, ``f_fn``.

    Args:
      held: from :func:`held_out`.
      g_fn, f_fn: ``images [M, H, W, C] -> [M, H, W, C]``, A -> B and B -> A.
      cheap: ``fd`` only (the in-training score).

    Returns:
      ``{score: float}``; every score None when a translation is not finite.
    """
    clf = held.classifier
    fake_b = np.asarray(g_fn(held.a), np.float32)
    if cheap:
        if not np.all(np.isfinite(fake_b)):
            return {"fd": None}
        return {"fd": metrics.frechet_distance(held.b_features, clf.features(fake_b))}
    fake_a = np.asarray(f_fn(held.b), np.float32)
    rec_a, rec_b = np.asarray(f_fn(fake_b), np.float32), np.asarray(g_fn(fake_a), np.float32)
    if not all(np.all(np.isfinite(x)) for x in (fake_b, fake_a, rec_a, rec_b)):
        return dict.fromkeys(SCORES)
    fake_a_plain = unpaired.invert(fake_a)
    return {
        "fd": metrics.frechet_distance(held.b_features, clf.features(fake_b)),
        "content_accuracy": float(np.mean(np.asarray(clf.predict(fake_b)) == held.label_a)),
        "fd_f": metrics.frechet_distance(held.a_plain_features, clf.features(fake_a_plain)),
        "content_accuracy_f": float(np.mean(np.asarray(clf.predict(fake_a_plain)) == held.label_b)),
        "cycle_error_a": float(np.mean(np.abs(rec_a.astype(np.float64) - held.a))),
        "cycle_error_b": float(np.mean(np.abs(rec_b.astype(np.float64) - held.b))),
    }


@functools.partial(jax.jit, static_argnums=0)
def _apply(module, params, x):
    return module.apply({"params": params}, x)


def make_evaluator(config: ml_collections.ConfigDict, models: Mapping[str, nn.Module], test):
    """``evaluate(params, key, cheap=False) -> {score: float}`` on the held-out ``test`` split.

    The scores of :func:`score_translations` (deterministic: ``key`` is
    unused), translating in batches of ``config.eval.batch_size``.
    """
    held = held_out(config.data.name, test)
    batch = config.eval.batch_size

    def translator(net, params):
        return lambda x: classifier_lib.batched_apply(
            lambda chunk: _apply(models[net], params[net], chunk), np.asarray(x), batch
        )

    def evaluate(params, key, cheap=False):
        del key  # Translations of the whole split: nothing is drawn.
        return score_translations(held, translator("g", params), translator("f", params), cheap)

    return evaluate


def null_scores(
    config: ml_collections.ConfigDict, key: jax.Array, test=None
) -> dict[str, dict[str, float | None]]:
    """The references' scores ``{kind: scores}``, by :func:`score_translations` (module docstring).

    ``identity``: G = F = identity (the untranslated images); ``noise``:
    every translation uniform in [-1, 1] (call i draws with ``fold_in(key, i)``);
    ``real``: G = F = T⁻¹ = T, the true translation, so G(A) are held-out
    real B-domain images disjoint from the reference's (the floor).

    Args:
      config: a ``cyclegan`` config (its ``data`` names the unpaired dataset).
      key: the noise's key.
      test: the held-out split, if already loaded.
    """
    test = data.from_config(config.data, "test") if test is None else test
    held = held_out(config.data.name, test)
    calls = []

    def noise(x):
        calls.append(None)
        return jax.random.uniform(
            jax.random.fold_in(key, len(calls)), np.shape(x), jnp.float32, -1.0, 1.0
        )

    translators = {"identity": lambda x: x, "noise": noise, "real": unpaired.invert}
    return {
        kind: score_translations(held, translators[kind], translators[kind]) for kind in NULL_KINDS
    }


def study_nulls(config: ml_collections.ConfigDict, key: jax.Array) -> tuple[dict, int]:
    """:func:`null_scores` and the number of held-out rows they were scored on.

    The study's nulls (``Family.null_scores``).
    """
    test = data.from_config(config.data, "test")
    return null_scores(config, key, test), len(test.images)
