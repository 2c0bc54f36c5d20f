"""What the training loop asks of the evaluation: in-training scores and the final summary.

:func:`run_hooks` builds, once per program, the reference its runs are
scored against (the mixture itself, or the held-out split in a feature
network's space) and returns :class:`RunHooks`, two functions the loop calls.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from regan_jax import data
from regan_jax.evaluation import evaluator, inception


class RunHooks(NamedTuple):
    """What the loop asks of the evaluation.

    ``cheap(params, key, model_state=None) -> dict``: the in-training scores
    logged to metrics.jsonl (``fd`` for images, the mode metrics for 2-D
    data; empty where no feature space applies; with
    ``config.eval.protocol_v2`` also ``r_t`` and ``r_v`` where the family has
    a discriminator ``d``); ``final(state, config, key, diverged) ->
    dict``: the summary's scores and weight statistics (``sparsity_<net>``,
    ``norm_<net>`` and the unit-level ``filter_sparsity_<net>``) plus the
    family's held-out scores (the VAE's ``elbo`` and ``recon``; a
    translation family's own evaluation, ``Family.make_evaluator``, which
    also gives ``cheap`` its ``fd``). A diverged
    run gets weight statistics only: scores of its frozen pre-divergence
    parameters would not describe the run.

    With ``config.eval.protocol_v2`` the summary also holds, for an image
    dataset scored against its held-out split, ``train_size`` (the training
    images the run saw), the generalisation scores of
    :mod:`regan_jax.evaluation.generalisation` against the run's own
    training set (``r_t`` and ``r_v`` too where the family has a
    discriminator ``d``; ``ppl``, ``jacobian_fro`` and ``jacobian_log_cond``
    where it has an unconditional generator ``g`` or a ``decoder``), the
    VAE's ``elbo_train`` and ``elbo_gap`` (:func:`regan_jax.evaluation.elbo_gap`:
    the held-out ELBO's estimator, noise and N on the run's training images),
    and per network ``near_zero_<net>``
    (:func:`regan_jax.evaluation.weight_summary` with the initial parameters).
    """

    cheap: Callable
    final: Callable


def run_hooks(program) -> RunHooks:
    """The evaluation of ``program``'s runs (a :class:`regan_jax.program.Program`).

    Sample metrics need a feature space: the mixture itself, a shipped
    feature classifier (digits, stacked_digits, fashion_mnist) or Inception
    weights named by ``config.eval.inception_weights``; without one the
    summary holds the weight statistics (and the family's scores) only.
    """
    config = program.config
    test = program.test  # Loaded once by the program, for the sampler too.
    reference = config_reference(config, program.source, test)
    make_family_scores = program.family.make_evaluator
    family_scores = (
        None
        if make_family_scores is None or test is None
        else make_family_scores(config, program.models, test)
    )
    train = (
        training_reference(reference, program.source)
        if config.eval.protocol_v2 and make_family_scores is None
        else None
    )

    def sample_fn(params):
        return lambda key, n: evaluator.as_sample_fn_output(program.sample(params, key, n))

    def cheap(params, key, model_state=None):
        out = {} if family_scores is None else family_scores(params, key, cheap=True)
        if reference is None:
            return out
        scores = evaluator.evaluate(
            sample_fn(params),
            key,
            reference,
            num_samples=config.eval.fd_samples,
            batch_size=config.eval.batch_size,
            cheap=True,
            train=train,
            critic_fn=(
                None
                if train is None
                else critic(program, params, model_state or {}, config.eval.batch_size)
            ),
        )
        out.update(
            {k: v for k, v in scores.items() if k not in ("num_samples", "nonfinite_samples")}
        )
        return out

    def final(state, member_config, key, diverged):
        initial = (
            program.init(jax.random.key(member_config.seed)).params
            if config.eval.protocol_v2
            else None
        )
        out = evaluator.weight_summary(state.params, initial)
        if train is not None:
            out["train_size"] = int(train.images.shape[0])
        if diverged:
            return out
        if reference is not None:
            out.update(
                evaluator.evaluate(
                    sample_fn(state.params),
                    key,
                    reference,
                    num_samples=member_config.eval.num_samples,
                    batch_size=member_config.eval.batch_size,
                    train=train,
                    critic_fn=critic(
                        program, state.params, state.model_state, member_config.eval.batch_size
                    ),
                    latent_map=latent_map(program, state.params),
                )
            )
        if program.family.score_fn is not None and test is not None:
            score = program.family.score_fn(config, program.models, state.params, key)
            held_out = evaluator.mean_scores(score, test.images, config.eval.batch_size)
            out.update(held_out)
            if config.eval.protocol_v2 and "elbo" in held_out:
                out.update(
                    evaluator.elbo_gap(
                        score,
                        program.source.images,
                        held_out["elbo"],
                        len(test.images),
                        jax.random.fold_in(key, 3),
                        config.eval.batch_size,
                    )
                )
        if family_scores is not None:
            out.update(family_scores(state.params, key))
        return out

    return RunHooks(cheap, final)


def training_reference(reference, source):
    """The run's training set in ``reference``'s feature space, or None (no image reference)."""
    if reference is None or reference.mixture is not None:
        return None
    return evaluator.make_reference(
        reference.dataset,
        images=source.images,
        labels=source.labels,
        feature_net=reference.feature_net,
    )


def critic(program, params, model_state, batch_size: int):
    """``(images, labels or None) -> D's logits [N]`` of a family with a discriminator ``d``."""
    if not program.family.adversarial or "d" not in program.models:
        return None
    variables = {"params": params["d"], **model_state.get("d", {})}
    apply = jax.jit(program.models["d"].apply)

    def logits(images, labels):
        return np.concatenate(
            [
                np.asarray(
                    apply(
                        variables,
                        images[i : i + batch_size],
                        None if labels is None else labels[i : i + batch_size],
                    )
                )
                for i in range(0, len(images), batch_size)
            ]
        )

    return logits


def latent_map(program, params):
    """``(K, z -> images)`` of an unconditional generator ``g`` or a VAE's ``decoder``, or None.

    The decoder's image map is its sampler's without the final clip (whose
    derivative is 0 outside [-1, 1]): ``2 sigmoid(logits) - 1`` for a
    Bernoulli likelihood, the Gaussian mean otherwise.
    """
    models = program.models
    if "g" in models and not program.family.conditional:
        g = models["g"]
        return g.latent_dim, lambda z: g.apply({"params": params["g"]}, z)
    if "decoder" in models:
        decoder = models["decoder"]
        bernoulli = program.config.model.likelihood == "bernoulli"

        def decode(z):
            out = decoder.apply({"params": params["decoder"]}, z)
            return 2 * jax.nn.sigmoid(out) - 1 if bernoulli else out

        return decoder.latent_dim, decode
    return None


def config_reference(config, source=None, test=None) -> Any:
    """The reference a run of ``config`` is scored against, or None if it has no feature space.

    ``source`` is the run's training data (a mixture is its own reference)
    and ``test`` its held-out split; both are loaded from ``config.data``
    when not given (the study's null references use this).
    """
    if config.data.name in data.MIXTURES:
        source = data.from_config(config.data) if source is None else source
        return evaluator.make_reference(config.data.name, mixture=source)
    test = data.from_config(config.data, "test") if test is None else test
    feature_net = (
        inception.load_inception(config.eval.inception_weights)
        if config.eval.inception_weights
        else None
    )
    if feature_net is None and evaluator.default_classifier(config.data.name) is None:
        return None
    return evaluator.make_reference(
        config.data.name, images=test.images, labels=test.labels, feature_net=feature_net
    )
