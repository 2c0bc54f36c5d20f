"""What the training loop asks of the evaluation: in-training scores and the final summary.

:func:`run_hooks` builds, once per program, the reference its runs are
scored against (the mixture itself, or the held-out split in a feature
network's space) and returns :class:`RunHooks`, two functions the loop calls.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from regan_jax import data, sweep
from regan_jax.evaluation import evaluator, inception, members


class RunHooks(NamedTuple):
    """What the loop asks of the evaluation.

    Both take a whole group: ``params`` / ``state`` stacked on a member axis
    (:mod:`regan_jax.sweep`) when ``keys`` holds several keys, a single run's
    otherwise, and one key per member (the key the member's own evaluation
    gets); a group's members are sampled by one vmapped program and their
    features extracted in one pass (:mod:`regan_jax.evaluation.members`).

    ``cheap(params, keys, model_state=None, scored=None) -> [dict]``: per
    member, the in-training scores logged to metrics.jsonl (``fd`` for
    images, the mode metrics for 2-D data; empty where no feature space
    applies; with ``config.eval.protocol_v2`` also ``r_t`` and ``r_v`` where
    the family has a discriminator ``d``), ``{}`` for a member not ``scored``
    (default all); ``final(state, configs, keys, diverged) -> [dict]``: per
    member (its config, key and divergence flag), the summary's scores and
    weight statistics (``sparsity_<net>``,
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
    # Jitted once: a jit per member and call would compile D at every evaluation.
    d_apply = jax.jit(program.models["d"].apply) if "d" in program.models else None

    def sample_fn(params):
        return lambda key, n: evaluator.as_sample_fn_output(program.sample(params, key, n))

    group_sample = members.vmap_sampler(program.sample)

    def sample_scores(params, keys, scored, *, num_samples, cheap, critic_fns, latent_maps):
        """``evaluate`` of each scored member: alone for a single run, else as one group."""
        if len(keys) > 1:
            return members.evaluate_members(
                group_sample,
                params,
                keys,
                reference,
                num_samples=num_samples,
                batch_size=config.eval.batch_size,
                cheap=cheap,
                scored=scored,
                train=train,
                critic_fns=critic_fns,
                latent_maps=latent_maps,
            )
        if not scored[0]:
            return [None]
        return [
            evaluator.evaluate(
                sample_fn(params),
                keys[0],
                reference,
                num_samples=num_samples,
                batch_size=config.eval.batch_size,
                cheap=cheap,
                train=train,
                critic_fn=critic_fns[0],
                latent_map=latent_maps[0],
            )
        ]

    def critics_of(params_of, model_state):
        """Each member's D-logit function (:func:`critic`) from the group's stacked state."""
        size = len(params_of)
        return [
            critic(program, p, _member(model_state, k, size), config.eval.batch_size, d_apply)
            for k, p in enumerate(params_of)
        ]

    def cheap(params, keys, model_state=None, scored=None):
        size = len(keys)
        scored = [True] * size if scored is None else list(scored)
        params_of = [_member(params, k, size) for k in range(size)]
        outs = [
            {}
            if family_scores is None or not scored[k]
            else family_scores(params_of[k], keys[k], cheap=True)
            for k in range(size)
        ]
        if reference is None:
            return outs
        critics = [None] * size if train is None else critics_of(params_of, model_state or {})
        scores = sample_scores(
            params,
            keys,
            scored,
            num_samples=config.eval.fd_samples,
            cheap=True,
            critic_fns=critics,
            latent_maps=[None] * size,
        )
        for out, member_scores in zip(outs, scores, strict=True):
            out.update(
                {
                    k: v
                    for k, v in (member_scores or {}).items()
                    if k not in ("num_samples", "nonfinite_samples")
                }
            )
        return outs

    def final(state, member_configs, keys, diverged):
        size = len(member_configs)
        params_of = [_member(state.params, k, size) for k in range(size)]
        outs = []
        for k, member_config in enumerate(member_configs):
            initial = (
                program.init(jax.random.key(member_config.seed)).params
                if config.eval.protocol_v2
                else None
            )
            out = evaluator.weight_summary(params_of[k], initial)
            if train is not None:
                out["train_size"] = int(train.images.shape[0])
            outs.append(out)
        scored = [not d for d in diverged]
        if reference is not None and any(scored):
            scores = sample_scores(
                state.params,
                keys,
                scored,
                num_samples=config.eval.num_samples,
                cheap=False,
                critic_fns=critics_of(params_of, state.model_state),
                latent_maps=[latent_map(program, p) for p in params_of],
            )
            for out, member_scores in zip(outs, scores, strict=True):
                out.update(member_scores or {})
        for k in range(size):
            if not scored[k]:
                continue
            if program.family.score_fn is not None and test is not None:
                score = program.family.score_fn(config, program.models, params_of[k], keys[k])
                held_out = evaluator.mean_scores(score, test.images, config.eval.batch_size)
                outs[k].update(held_out)
                if config.eval.protocol_v2 and "elbo" in held_out:
                    outs[k].update(
                        evaluator.elbo_gap(
                            score,
                            program.source.images,
                            held_out["elbo"],
                            len(test.images),
                            jax.random.fold_in(keys[k], 3),
                            config.eval.batch_size,
                        )
                    )
            if family_scores is not None:
                outs[k].update(family_scores(params_of[k], keys[k]))
        return outs

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


def _member(tree, index: int, size: int):
    """Member ``index`` of a group's stacked ``tree`` (``size`` > 1), or the single run's own."""
    return sweep.member(tree, index) if size > 1 and jax.tree.leaves(tree) else tree


def critic(program, params, model_state, batch_size: int, apply=None):
    """``(images, labels or None) -> D's logits [N]`` of a family with a discriminator ``d``.

    ``apply``: ``program.models['d'].apply``, jitted (default: jitted here).
    """
    if not program.family.adversarial or "d" not in program.models:
        return None
    variables = {"params": params["d"], **model_state.get("d", {})}
    apply = jax.jit(program.models["d"].apply) if apply is None else apply

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


@dataclasses.dataclass(frozen=True)
class _DecodedImage:
    """A decoder's image map ``(variables, z) -> images``, equal for every member of a program."""

    decoder: Any
    bernoulli: bool

    def __call__(self, variables, z):
        out = self.decoder.apply(variables, z)
        return 2 * jax.nn.sigmoid(out) - 1 if self.bernoulli else out


def latent_map(program, params):
    """``(K, z -> images)`` of an unconditional generator ``g`` or a VAE's ``decoder``, or None.

    The decoder's image map is its sampler's without the final clip (whose
    derivative is 0 outside [-1, 1]): ``2 sigmoid(logits) - 1`` for a
    Bernoulli likelihood, the Gaussian mean otherwise. ``z -> images`` is a
    ``jax.tree_util.Partial`` with the network's parameters its argument,
    its function the same for every member of ``program``: a group's
    smoothness programs compile once (:mod:`regan_jax.evaluation.smoothness`).
    """
    models = program.models
    if "g" in models and not program.family.conditional:
        g = models["g"]
        return g.latent_dim, jax.tree_util.Partial(g.apply, {"params": params["g"]})
    if "decoder" in models:
        decoder = models["decoder"]
        bernoulli = program.config.model.likelihood == "bernoulli"
        return decoder.latent_dim, jax.tree_util.Partial(
            _DecodedImage(decoder, bernoulli), {"params": params["decoder"]}
        )
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
