"""Evaluation: feature classifiers (shipped weights), pytorch-fid's Inception-v3, the evaluator.

``load_classifier(name)`` gives a dataset's trained feature classifier
(``features``, ``logits``, ``predict``); ``load_inception(path)`` the FID
network from a user-supplied weights file; ``make_reference`` and
``evaluate`` the summary metrics of a generator (``evaluate_members``: a
vmapped group's members, sampled and featured as one program); ``null_scores``
what noise, held-out real data and (with the training set) a memoriser score
by the same code (the figures' null bands);
``weight_summary`` the per-network sparsity and norm; ``run_hooks`` what the
training loop asks (in-training scores, the final summary). A family with
its own scores keeps them in a module here (:mod:`regan_jax.evaluation.cyclegan`:
the cycle GAN's held-out translation scores and its null references).
"""

from regan_jax.evaluation.classifier import (
    CLASSIFIER_SPECS,
    ClassifierCNN,
    ClassifierSpec,
    FeatureClassifier,
    PerChannelClassifier,
    load_classifier,
)
from regan_jax.evaluation.evaluator import (
    Reference,
    as_sample_fn_output,
    count_nonfinite,
    draw_samples,
    elbo_gap,
    evaluate,
    make_reference,
    mean_elbo,
    mean_scores,
    metric_names,
    score_samples,
    weight_summary,
)
from regan_jax.evaluation.hooks import RunHooks, config_reference, run_hooks, training_reference
from regan_jax.evaluation.inception import (
    FIDInceptionV3,
    InceptionFeatures,
    load_inception,
    resize_bilinear,
)
from regan_jax.evaluation.members import draw_members, evaluate_members, vmap_sampler
from regan_jax.evaluation.references import (
    MEMORISER,
    MEMORISER_NOISE,
    MIXTURE_NULL_KINDS,
    NULL_KINDS,
    at_noise_level,
    memoriser_samples,
    null_halves,
    null_kinds,
    null_reference,
    null_samples,
    null_scores,
)

__all__ = [
    "CLASSIFIER_SPECS",
    "ClassifierCNN",
    "ClassifierSpec",
    "FIDInceptionV3",
    "FeatureClassifier",
    "as_sample_fn_output",
    "InceptionFeatures",
    "PerChannelClassifier",
    "Reference",
    "count_nonfinite",
    "draw_members",
    "draw_samples",
    "elbo_gap",
    "evaluate",
    "evaluate_members",
    "load_classifier",
    "load_inception",
    "make_reference",
    "mean_elbo",
    "mean_scores",
    "metric_names",
    "resize_bilinear",
    "score_samples",
    "vmap_sampler",
    "RunHooks",
    "run_hooks",
    "weight_summary",
    "config_reference",
    "training_reference",
    "MEMORISER",
    "MEMORISER_NOISE",
    "memoriser_samples",
    "MIXTURE_NULL_KINDS",
    "NULL_KINDS",
    "at_noise_level",
    "null_halves",
    "null_kinds",
    "null_reference",
    "null_samples",
    "null_scores",
]
