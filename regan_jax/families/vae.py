"""The VAE family (``'vae'``): networks ``encoder`` and ``decoder``, trained on the negative ELBO.

Samples are the decoder's mean at z ~ N(0, I) -- for the Bernoulli
likelihood of pixels mapped to [0, 1] that is ``2 σ(logits) - 1``. The
held-out scores (:func:`score_fn`) are the ELBO and its reconstruction term
per example, one z draw each.
"""

import functools
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from regan_jax import losses, steps
from regan_jax import models as models_lib
from regan_jax._names import choose
from regan_jax.families.base import Family


def make_models(model_cfg: ml_collections.ConfigDict, data_spec) -> dict[str, nn.Module]:
    """``{'encoder': Encoder, 'decoder': Decoder}`` of ``config.model`` for ``data_spec``.

    Raises:
      ValueError: spectral normalisation asked for (a discriminator baseline),
        an unknown likelihood, ``gaussian_std`` <= 0, or see
        :func:`regan_jax.models.trunk_and_body`.
    """
    if model_cfg.spectral_norm:
        raise ValueError(
            "spectral_norm is a discriminator baseline; it is not available for model_type 'vae'"
        )
    choose("likelihood", model_cfg.likelihood, losses.LIKELIHOODS)
    if model_cfg.likelihood == "gaussian" and not model_cfg.gaussian_std > 0:
        raise ValueError(f"gaussian_std must be > 0, got {model_cfg.gaussian_std}")
    trunk, body, spec = models_lib.trunk_and_body(model_cfg, data_spec)
    return {
        "encoder": models_lib.Encoder(trunk, spec.shape, model_cfg.latent_dim),
        "decoder": models_lib.Decoder(body, model_cfg.latent_dim),
    }


def init_vae_state(
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, optax.GradientTransformation],
    key: jax.Array,
    example_batch: Mapping[str, Any],
) -> steps.TrainState:
    """A fresh VAE state: ``encoder`` from ``fold_in(k, 0)``, ``decoder`` from ``fold_in(k, 1)``."""
    steps.check_networks(models, optimizers, ("encoder", "decoder"))
    run_key, params = _init_vae(
        steps.hashable(models), key, jnp.asarray(example_batch["image"])[:1]
    )
    return steps.init_train_state(run_key, params, {}, optimizers)


@functools.partial(jax.jit, static_argnums=0)
def _init_vae(models, key, x):
    """``(run key, params)``: one program per model, whatever the optimizers."""
    models = dict(models)
    encoder, decoder = models["encoder"], models["decoder"]
    init_key, run_key = jax.random.split(key)
    params = {
        "encoder": encoder.init(jax.random.fold_in(init_key, 0), x)["params"],
        "decoder": decoder.init(
            jax.random.fold_in(init_key, 1), jnp.zeros((1, decoder.latent_dim))
        )["params"],
    }
    return run_key, params


def negative_elbo(
    models: Mapping[str, nn.Module],
    params,
    x: jax.Array,
    eps: jax.Array,
    likelihood: str,
    gaussian_std: float,
):
    """The reparameterised forward pass: ``(-ELBO, {'recon', 'kl'})`` of ``x`` with noise ``eps``.

    .. math::
        z = μ(x) + e^{ℓ(x)/2} ⊙ ε,\\qquad
        -\\mathrm{ELBO}(x; z) = -\\log p(x|z) + \\mathrm{KL}(q(z|x)\\,‖\\,N(0, I))

    (batch means; see :func:`regan_jax.losses.negative_elbo`). The one
    forward pass of both the training step and the held-out scores.
    """
    mean, logvar = models["encoder"].apply({"params": params["encoder"]}, x)
    z = mean + jnp.exp(0.5 * logvar) * eps
    recon_out = models["decoder"].apply({"params": params["decoder"]}, z)
    return losses.negative_elbo(x, recon_out, mean, logvar, likelihood, gaussian_std)


def vae_step(
    state: steps.TrainState,
    batch: Mapping[str, jax.Array],
    key: jax.Array | None = None,
    *,
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, optax.GradientTransformation],
    likelihood: str,
    gaussian_std: float = 1.0,
    penalty_cfgs: Mapping[str, ml_collections.ConfigDict] | None = None,
    axis_name: str | None = None,
) -> tuple[steps.TrainState, steps.Metrics]:
    """One update of encoder and decoder on the negative ELBO (one sample of z).

    .. math::
        z = μ(x) + e^{ℓ(x)/2} ⊙ ε,\\ ε \\sim N(0, I);\\qquad
        θ ← \\mathrm{opt}\\big(∇_θ\\, {-\\mathrm{ELBO}}(x; z)\\big)

    each network with its own optimizer (see :func:`regan_jax.losses.negative_elbo`).

    Args:
      state: a :class:`TrainState` from :func:`init_vae_state`.
      batch: ``{'image': [B, ...]}``.
      key: the step's key; None = ``fold_in(state.key, state.step)``.
      models, optimizers: ``{'encoder', 'decoder'}``.
      likelihood, gaussian_std: ``config.model.likelihood`` / ``gaussian_std``.
      penalty_cfgs: ``{net: config.penalty.<net>}`` to log ``penalty_<net>``.
      axis_name: the device axis to ``pmean`` over, or None.

    Returns:
      ``(state, metrics)`` with ``loss`` (negative ELBO), ``recon``, ``kl``
      and ``penalty_<net>``.
    """
    encoder, decoder = models["encoder"], models["decoder"]
    steps.check_batch(batch, encoder.data_shape)
    key = steps.step_key(state, key)
    x = batch["image"]
    eps = steps.local_draw(jax.random.normal, key, (x.shape[0], decoder.latent_dim), axis_name)

    def loss_fn(params):
        return negative_elbo(models, params, x, eps, likelihood, gaussian_std)

    (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grads, loss, parts = steps.pmean((grads, loss, parts), axis_name)
    params, opt_state = {}, {}
    for net in ("encoder", "decoder"):
        params[net], opt_state[net] = steps.apply_update(
            optimizers[net], grads[net], state.opt_state[net], state.params[net]
        )
    new = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
    metrics = {"loss": loss, **parts, **steps.penalty_metrics(params, opt_state, penalty_cfgs)}
    return steps.freeze_if_diverged(state, new, jnp.isfinite(loss)), metrics


def rows_per_step(config: ml_collections.ConfigDict) -> int:
    """Rows a step consumes: one batch."""
    return config.data.batch_size


def make_step(
    config: ml_collections.ConfigDict,
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, optax.GradientTransformation],
) -> Callable:
    """:func:`vae_step` with the networks, optimizers, likelihood and penalty configs bound."""
    return functools.partial(
        vae_step,
        models=models,
        optimizers=optimizers,
        likelihood=config.model.likelihood,
        gaussian_std=config.model.gaussian_std,
        penalty_cfgs=dict(config.penalty),
    )


def make_sampler(
    config: ml_collections.ConfigDict, models: Mapping[str, nn.Module], spec, test=None
):
    """``sample(params, key, n) -> (decoder mean at z ~ N(0, I), None)``, in [-1, 1]."""
    del spec, test  # Unconditional; the decoder knows the data shape.
    decoder = models["decoder"]
    bernoulli = config.model.likelihood == "bernoulli"

    def sample(params, key, n):
        out = decoder.apply(
            {"params": params["decoder"]}, jax.random.normal(key, (n, decoder.latent_dim))
        )
        return (2 * jax.nn.sigmoid(out) - 1 if bernoulli else jnp.clip(out, -1, 1)), None

    return sample


def score_fn(
    config: ml_collections.ConfigDict, models: Mapping[str, nn.Module], params, key: jax.Array
) -> Callable:
    """Jitted ``images [B, ...] -> {'elbo': [B], 'recon': [B]}`` (nats per example).

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) ‖ p(z)), estimated with one
    z ~ q(z|x) per example (example i of a batch draws with
    ``split(key, B)[i]``); ``recon`` is the estimate's -log p(x|z) term.

    ``params`` and ``key`` are arguments of one program per model and image
    shape (:func:`_scores`), not constants of a program per run: a group's
    members and a study's runs share it (and the compilation cache finds it).
    """
    return functools.partial(
        _scores,
        models["encoder"],
        models["decoder"],
        config.model.likelihood,
        float(config.model.gaussian_std),
        params,
        key,
    )


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _scores(encoder, decoder, likelihood, gaussian_std, params, key, images):
    """:func:`score_fn`'s program; the modules (hashable, equal by their fields) are static."""
    models = {"encoder": encoder, "decoder": decoder}

    def per_example(x, example_key):
        eps = jax.random.normal(example_key, (1, decoder.latent_dim))
        loss, parts = negative_elbo(models, params, x[None], eps, likelihood, gaussian_std)
        return {"elbo": -loss, "recon": parts["recon"]}

    return jax.vmap(per_example)(images, jax.random.split(key, images.shape[0]))


def validate(config: ml_collections.ConfigDict) -> None:
    """Nothing beyond the model checks of :func:`make_models` (the loss section is unused)."""
    del config


VAE = Family(
    name="vae",
    networks=("encoder", "decoder"),
    adversarial=False,
    conditional=False,
    make_models=make_models,
    init_state=init_vae_state,
    make_step=make_step,
    make_sampler=make_sampler,
    rows_per_step=rows_per_step,
    validate=validate,
    score_fn=score_fn,
)
