"""The GAN family, unconditional (``'gan'``) and class-conditional (``'cgan'``).

Networks ``g`` (generator) and ``d`` (discriminator). The conditional variant
feeds labels to a label-embedding generator and a projection discriminator
(Miyato & Koyama 2018) and draws samples class by class.

Randomness. Discriminator update k of a step draws its latents
z_k ~ N(0, I) from ``fold_in(fold_in(key, k), 0)`` and WGAN-GP's ε from
``fold_in(fold_in(key, k), 1)`` (``key``: the step's key, see
:func:`regan_jax.steps.step_key`). Latents are drawn for the global batch
(:func:`regan_jax.steps.local_draw`); WGAN-GP's ε is the exception (see
:func:`gan_step`).

Batches. With ``loss.d_steps`` = n discriminator updates per generator
update, a step consumes n·B rows (:func:`rows_per_step`) and update k uses
rows ``k, k + n, k + 2n, ...`` (a strided split commutes with the contiguous
per-device split, so it is the same on any number of devices).
"""

import functools
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax import lax

from regan_jax import losses, steps
from regan_jax import models as models_lib
from regan_jax._names import choose
from regan_jax.families.base import Family

# Purposes of the sub-keys of discriminator update k: fold_in(fold_in(key, k), purpose).
_LATENT, _GP = 0, 1


def make_models(
    model_cfg: ml_collections.ConfigDict, data_spec, conditional: bool = False
) -> dict[str, nn.Module]:
    """``{'g': Generator, 'd': Discriminator}`` of ``config.model`` for ``data_spec``.

    Raises:
      ValueError: see :func:`regan_jax.models.trunk_and_body`; a conditional
        model on data with fewer than 2 classes.
    """
    trunk, body, spec = models_lib.trunk_and_body(model_cfg, data_spec, model_cfg.spectral_norm)
    num_classes = 0
    if conditional:
        if spec.num_classes < 2:
            raise ValueError(
                f"model_type 'cgan' needs labelled data with >= 2 classes, got "
                f"num_classes = {spec.num_classes}"
            )
        num_classes = spec.num_classes
    output = choose("g_output", model_cfg.g_output, models_lib.GENERATOR_OUTPUTS)
    return {
        "g": models_lib.Generator(body, model_cfg.latent_dim, num_classes, output),
        "d": models_lib.Discriminator(trunk, spec.shape, num_classes, model_cfg.spectral_norm),
    }


def init_gan_state(
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, optax.GradientTransformation],
    key: jax.Array,
    example_batch: Mapping[str, Any],
) -> steps.TrainState:
    """A fresh GAN/cGAN state: networks initialised from ``key``, step 0.

    ``key`` is split into the parameter key (``g`` gets ``fold_in(k, 0)``,
    ``d`` ``fold_in(k, 1)``) and the run's base key. The models check the
    example's shapes (and labels for a conditional model). Jitted (one compile
    per models/optimizers, instead of one per eager op); vmappable over ``key``.
    """
    steps.check_networks(models, optimizers, ("g", "d"))
    labels = jnp.asarray(example_batch["label"])[:1] if models["g"].num_classes else None
    run_key, params, model_state = _init_gan(
        steps.hashable(models), key, jnp.asarray(example_batch["image"])[:1], labels
    )
    return steps.init_train_state(run_key, params, model_state, optimizers)


@functools.partial(jax.jit, static_argnums=0)
def _init_gan(models, key, x, labels):
    """``(run key, params, model state)``: one program per model, whatever the optimizers."""
    models = dict(models)
    g, d = models["g"], models["d"]
    init_key, run_key = jax.random.split(key)
    g_params = g.init(jax.random.fold_in(init_key, 0), jnp.zeros((1, g.latent_dim)), labels)[
        "params"
    ]
    d_params, d_state = steps.split_variables(d.init(jax.random.fold_in(init_key, 1), x, labels))
    return run_key, {"g": g_params, "d": d_params}, {"d": d_state} if d_state else {}


def check_loss_config(loss_cfg: ml_collections.ConfigDict) -> None:
    """Validates ``config.loss``: names through the losses registries, d_steps >= 1, gp_weight >= 0.

    Raises:
      ValueError: naming the ``config.loss`` key and its value.
    """
    for key, lookup in (
        ("kind", losses.gan_loss),
        ("gradient_penalty", losses.gradient_penalty_fn),
    ):
        try:
            lookup(loss_cfg[key])
        except ValueError as e:
            raise ValueError(f"config.loss.{key}: {e}") from None
    if loss_cfg.d_steps < 1:
        raise ValueError(f"config.loss.d_steps must be >= 1, got {loss_cfg.d_steps}")
    if loss_cfg.gp_weight < 0:
        raise ValueError(f"config.loss.gp_weight must be >= 0, got {loss_cfg.gp_weight}")


def _strided_split(x: jax.Array, parts: int) -> jax.Array:
    """``[parts·B, ...] -> [parts, B, ...]`` with part k = rows ``k::parts``."""
    if x.shape[0] % parts:
        raise ValueError(
            f"a GAN batch with d_steps = {parts} needs a multiple of {parts} "
            f"rows (d_steps batches), got {x.shape[0]}"
        )
    x = x.reshape((x.shape[0] // parts, parts) + x.shape[1:])
    return jnp.swapaxes(x, 0, 1)


def _d_variables(params, model_state):
    return {"params": params, **model_state}


def gan_step(
    state: steps.TrainState,
    batch: Mapping[str, jax.Array],
    key: jax.Array | None = None,
    *,
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, optax.GradientTransformation],
    loss_cfg: ml_collections.ConfigDict,
    penalty_cfgs: Mapping[str, ml_collections.ConfigDict] | None = None,
    axis_name: str | None = None,
) -> tuple[steps.TrainState, steps.Metrics]:
    """One generator update after ``loss_cfg.d_steps`` discriminator updates.

    With n = d_steps, real sub-batches x_k (k < n), latents z_k ~ N(0, I) and
    fakes x̃_k = G(z_k, y_k) (a cGAN conditions fakes on the real labels y_k):

    .. math::
        θ_D ← \\mathrm{opt}_D\\big(∇_{θ_D}[L_D(D(x_k), D(x̃_k)) + λ\\,\\mathrm{GP}]\\big)
        \\quad k = 0..n-1, \\qquad
        θ_G ← \\mathrm{opt}_G\\big(∇_{θ_G} L_G(D(G(z_{n-1}, y_{n-1})))\\big)

    D sees ``concat(x_k, x̃_k)`` in one call (spectral-norm statistics
    updated); the generator update reuses the last fakes and their forward
    pass (``jax.vjp``), under the updated D (statistics frozen). WGAN-GP's
    ε is drawn per device (``fold_in(key, axis_index)``): ``losses`` draws it
    for the rows it is given, so only that loss depends on the device count.

    Args:
      state: a :class:`TrainState` from :func:`init_gan_state`.
      batch: ``{'image': [n·B, ...], 'label': [n·B]}`` (labels used by cGANs).
      key: the step's key; None = ``fold_in(state.key, state.step)``.
      models, optimizers: ``{'g', 'd'}``.
      loss_cfg: ``config.loss`` (``kind``, ``gradient_penalty``, ``gp_weight``,
        ``d_steps``).
      penalty_cfgs: ``{net: config.penalty.<net>}`` to log ``penalty_<net>``.
      axis_name: the device axis to ``pmean`` over, or None.

    Returns:
      ``(state, metrics)`` with scalar metrics ``d_loss`` (adversarial part,
      last D update), ``gp`` (unweighted), ``g_loss``, ``d_real``/``d_fake``
      (mean logits) and ``penalty_<net>``.
    """
    g, d = models["g"], models["d"]
    steps.check_batch(batch, d.data_shape, labelled=g.num_classes > 0)
    key = steps.step_key(state, key)
    objective = losses.gan_loss(loss_cfg.kind)
    penalty = losses.gradient_penalty_fn(loss_cfg.gradient_penalty)
    n = loss_cfg.d_steps
    reals = _strided_split(batch["image"], n)
    labels = _strided_split(batch["label"], n) if g.num_classes else None
    rows = reals.shape[1]

    def labels_at(k):
        return None if labels is None else labels[k]

    def purpose_key(k, purpose):
        return jax.random.fold_in(jax.random.fold_in(key, k), purpose)

    def generate_fn(k):
        z = steps.local_draw(
            jax.random.normal, purpose_key(k, _LATENT), (rows, g.latent_dim), axis_name
        )
        return lambda g_params: g.apply({"params": g_params}, z, labels_at(k))

    def d_update(k, carry, fake):
        d_params, d_opt, d_state, finite = carry
        real, y = reals[k], labels_at(k)
        gp_key = purpose_key(k, _GP)
        if axis_name is not None:
            gp_key = jax.random.fold_in(gp_key, lax.axis_index(axis_name))
        both_labels = None if y is None else jnp.concatenate([y, y])

        def loss_fn(p):
            logits, new_d_state = d.apply(
                _d_variables(p, d_state),
                jnp.concatenate([real, fake]),
                both_labels,
                update_stats=True,
                mutable=list(d_state),
            )
            real_logits, fake_logits = jnp.split(logits, 2)
            adversarial = objective.d(real_logits, fake_logits)
            gp = penalty(lambda x: d.apply(_d_variables(p, new_d_state), x, y), real, fake, gp_key)
            return adversarial + loss_cfg.gp_weight * gp, (
                new_d_state,
                {
                    "d_loss": adversarial,
                    "gp": gp,
                    "d_real": jnp.mean(real_logits),
                    "d_fake": jnp.mean(fake_logits),
                },
            )

        grads, (d_state, metrics) = jax.grad(loss_fn, has_aux=True)(d_params)
        grads, d_state, metrics = steps.pmean((grads, d_state, metrics), axis_name)
        d_params, d_opt = steps.apply_update(optimizers["d"], grads, d_opt, d_params)
        finite = finite & jnp.isfinite(metrics["d_loss"]) & jnp.isfinite(metrics["gp"])
        return (d_params, d_opt, d_state, finite), metrics

    g_params = state.params["g"]
    carry = (
        state.params["d"],
        state.opt_state["d"],
        state.model_state.get("d", {}),
        jnp.ones((), bool),
    )
    # Updates 0..n-2 need the fakes only; the last one keeps G's forward for G's gradient.
    if n > 1:  # (a zero-trip loop would still be traced and compiled)
        carry = lax.fori_loop(
            0, n - 1, lambda k, c: d_update(k, c, generate_fn(k)(g_params))[0], carry
        )
    fake, g_vjp = jax.vjp(generate_fn(n - 1), g_params)
    (d_params, d_opt, d_state, finite), metrics = d_update(n - 1, carry, fake)

    def g_loss_fn(x):
        return objective.g(d.apply(_d_variables(d_params, d_state), x, labels_at(n - 1)))

    g_loss, fake_grad = jax.value_and_grad(g_loss_fn)(fake)
    (g_grads,) = g_vjp(fake_grad)
    g_grads, g_loss = steps.pmean((g_grads, g_loss), axis_name)
    g_params, g_opt = steps.apply_update(optimizers["g"], g_grads, state.opt_state["g"], g_params)

    new = state.replace(
        step=state.step + 1,
        params={"g": g_params, "d": d_params},
        opt_state={"g": g_opt, "d": d_opt},
        model_state={"d": d_state} if d_state else {},
    )
    metrics = {
        **metrics,
        "g_loss": g_loss,
        **steps.penalty_metrics(new.params, new.opt_state, penalty_cfgs),
    }
    return steps.freeze_if_diverged(state, new, finite & jnp.isfinite(g_loss)), metrics


def rows_per_step(config: ml_collections.ConfigDict) -> int:
    """Rows a step consumes: ``d_steps`` discriminator batches of ``data.batch_size``."""
    return config.loss.d_steps * config.data.batch_size


def make_step(
    config: ml_collections.ConfigDict,
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, optax.GradientTransformation],
) -> Callable:
    """:func:`gan_step` with the networks, optimizers, loss and penalty configs bound."""
    return functools.partial(
        gan_step,
        models=models,
        optimizers=optimizers,
        loss_cfg=config.loss,
        penalty_cfgs=dict(config.penalty),
    )


def make_sampler(
    config: ml_collections.ConfigDict, models: Mapping[str, nn.Module], spec, test=None
):
    """``sample(params, key, n, labels=None) -> (G(z), labels or None)``, z ~ N(0, I).

    Conditional: ``G(z, y)`` with y cycling through the classes,
    ``y_i = i mod C`` (a grid with C columns shows one class per column; a
    batch whose size is a multiple of C is balanced), or the given integer
    ``labels [n]`` (e.g. one class throughout; the latents are the same
    either way). An unconditional generator refuses labels.
    """
    del config, test  # Samples from the generator alone.
    g = models["g"]
    conditional = g.num_classes > 0

    def sample(params, key, n, labels=None):
        z = jax.random.normal(key, (n, g.latent_dim))
        if labels is None and conditional:
            labels = jnp.arange(n, dtype=jnp.int32) % spec.num_classes
        return g.apply({"params": params["g"]}, z, labels), labels

    return sample


def validate(config: ml_collections.ConfigDict) -> None:
    """The GAN-specific fields: ``config.loss`` (:func:`check_loss_config`)."""
    check_loss_config(config.loss)


def updates_per_step(config: ml_collections.ConfigDict, network: str) -> int:
    """``loss.d_steps`` discriminator updates per generator update."""
    return config.loss.d_steps if network == "d" else 1


def _family(name: str, conditional: bool) -> Family:
    return Family(
        name=name,
        networks=("g", "d"),
        adversarial=True,
        conditional=conditional,
        make_models=functools.partial(make_models, conditional=conditional),
        init_state=init_gan_state,
        make_step=make_step,
        make_sampler=make_sampler,
        rows_per_step=rows_per_step,
        validate=validate,
        updates_per_step=updates_per_step,
    )


GAN = _family("gan", conditional=False)
CGAN = _family("cgan", conditional=True)
