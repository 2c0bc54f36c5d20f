"""Train states and pure training steps for GANs, class-conditional GANs and VAEs.

A step is a top-level pure function ``(state, batch, key) -> (state, metrics)``
with its static parts (networks, optimizers, loss config) bound by
:func:`make_step` (or ``functools.partial``); jit it with the state donated,
or run it through ``parallel.shard_map_step`` / ``parallel.pmap_step`` /
``sweep.vmap_step``.

Randomness. ``key=None`` (the default) uses ``fold_in(state.key, state.step)``,
so a run resumed from a checkpoint draws exactly what the uninterrupted run
would have drawn. GAN discriminator update k draws its latents z_k ~ N(0, I)
from ``fold_in(fold_in(key, k), 0)`` and WGAN-GP's ε from
``fold_in(fold_in(key, k), 1)``; the VAE draws its ε ~ N(0, I) from ``key``.
Latents and the VAE's ε are drawn for the *global* batch and sliced for the
local rows with ``lax.axis_index`` (:func:`_local_draw`), so a step split
over D devices draws the same numbers as on one device (WGAN-GP's ε is the
exception, see :func:`gan_step`).

Data parallelism. With ``axis_name`` set, gradients, the extra model
collections and the metrics are ``lax.pmean``-ed over that axis; with equal
shards this is the single-device computation on the global batch.

Divergence. A non-finite loss or parameter produced by a step freezes the
state (one ``lax.cond`` between the old and new state; under ``vmap`` a
per-member select, so only that member freezes) and records ``diverged``, ``diverged_step`` (the value of
``step`` of the offending update) and ``diverged_reason`` (a code of
:data:`DIVERGENCE_REASONS`). A diverged state is returned unchanged by every
later step; nothing raises.

GAN batches. With ``loss.d_steps`` = n discriminator updates per generator
update, a batch holds n·B rows and update k uses rows ``k, k + n, k + 2n, ...``
(a strided split commutes with the contiguous per-device split, so it is the
same on any number of devices); :func:`examples_per_step` gives n·B.
"""
import functools
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax import lax

from regan_jax import losses, penalties
from regan_jax._names import check_name

MODEL_TYPES = ("gan", "cgan", "vae")
DIVERGENCE_REASONS = ("none", "nonfinite_loss", "nonfinite_params")
NOT_DIVERGED, NONFINITE_LOSS, NONFINITE_PARAMS = range(len(DIVERGENCE_REASONS))
# Purposes of the sub-keys of discriminator update k: fold_in(fold_in(key, k), purpose).
_LATENT, _GP = 0, 1

Metrics = dict[str, jax.Array]


@flax.struct.dataclass
class TrainState:
    """Everything a run (or one sweep member) needs to continue.

    Attributes:
      step: int32 scalar, completed steps (generator steps for GANs).
      key: typed base RNG key; step t uses ``fold_in(key, t)``.
      params: ``{network: params}``.
      opt_state: ``{network: optimizer state}`` (``inject_hyperparams`` states).
      model_state: ``{network: {collection: ...}}``, the variables other than
        ``params`` (e.g. spectral normalisation's ``batch_stats``); ``{}`` if none.
      diverged: bool scalar.
      diverged_step: int32, the ``step`` at which the run diverged, -1 if not.
      diverged_reason: int32 index into :data:`DIVERGENCE_REASONS`.
    """
    step: jax.Array
    key: jax.Array
    params: dict[str, Any]
    opt_state: dict[str, Any]
    model_state: dict[str, Any]
    diverged: jax.Array
    diverged_step: jax.Array
    diverged_reason: jax.Array


def divergence_reason(code: int) -> str:
    """The name of a ``diverged_reason`` code, e.g. ``1 -> 'nonfinite_loss'``."""
    code = int(code)
    if not 0 <= code < len(DIVERGENCE_REASONS):
        raise ValueError(f"divergence reason code {code} unknown; expected 0..."
                         f"{len(DIVERGENCE_REASONS) - 1}")
    return DIVERGENCE_REASONS[code]


def examples_per_step(loss_cfg: ml_collections.ConfigDict, batch_size: int) -> int:
    """Rows a GAN step consumes: ``d_steps`` discriminator batches of ``batch_size``."""
    return loss_cfg.d_steps * batch_size


# ----------------------------------------------------------------------------
# Initialisation
# ----------------------------------------------------------------------------

def _split_variables(variables) -> tuple[Any, dict]:
    variables = dict(variables)
    return variables.pop("params"), variables


def _new_state(key, params, model_state, optimizers) -> TrainState:
    return TrainState(
        step=jnp.zeros((), jnp.int32), key=key, params=params,
        opt_state={net: optimizers[net].init(p) for net, p in params.items()},
        model_state=model_state, diverged=jnp.zeros((), bool),
        diverged_step=jnp.full((), -1, jnp.int32),
        diverged_reason=jnp.full((), NOT_DIVERGED, jnp.int32))


def _check_networks(models, optimizers, expected):
    for what, mapping in (("models", models), ("optimizers", optimizers)):
        if set(mapping) != set(expected):
            raise ValueError(f"{what} has networks {sorted(mapping)}; expected {sorted(expected)}")


def _hashable(mapping: Mapping[str, Any]) -> tuple:
    """A mapping as sorted ``(name, value)`` pairs: a static argument of ``jax.jit``."""
    return tuple(sorted(mapping.items()))


def init_gan_state(models: Mapping[str, nn.Module],
                   optimizers: Mapping[str, optax.GradientTransformation],
                   key: jax.Array, example_batch: Mapping[str, Any]) -> TrainState:
    """A fresh GAN/cGAN state: networks initialised from ``key``, step 0.

    ``key`` is split into the parameter key (``g`` gets ``fold_in(k, 0)``,
    ``d`` ``fold_in(k, 1)``) and the run's base key. The models check the
    example's shapes (and labels for a conditional model). Jitted (one compile
    per models/optimizers, instead of one per eager op); vmappable over ``key``.
    """
    _check_networks(models, optimizers, ("g", "d"))
    labels = jnp.asarray(example_batch["label"])[:1] if models["g"].num_classes else None
    return _init_gan(_hashable(models), _hashable(optimizers), key,
                     jnp.asarray(example_batch["image"])[:1], labels)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _init_gan(models, optimizers, key, x, labels) -> TrainState:
    models, optimizers = dict(models), dict(optimizers)
    g, d = models["g"], models["d"]
    init_key, run_key = jax.random.split(key)
    g_params = g.init(jax.random.fold_in(init_key, 0), jnp.zeros((1, g.latent_dim)),
                      labels)["params"]
    d_params, d_state = _split_variables(d.init(jax.random.fold_in(init_key, 1), x, labels))
    return _new_state(run_key, {"g": g_params, "d": d_params},
                      {"d": d_state} if d_state else {}, optimizers)


def init_vae_state(models: Mapping[str, nn.Module],
                   optimizers: Mapping[str, optax.GradientTransformation],
                   key: jax.Array, example_batch: Mapping[str, Any]) -> TrainState:
    """A fresh VAE state: ``encoder`` from ``fold_in(k, 0)``, ``decoder`` from ``fold_in(k, 1)``."""
    _check_networks(models, optimizers, ("encoder", "decoder"))
    return _init_vae(_hashable(models), _hashable(optimizers), key,
                     jnp.asarray(example_batch["image"])[:1])


@functools.partial(jax.jit, static_argnums=(0, 1))
def _init_vae(models, optimizers, key, x) -> TrainState:
    models, optimizers = dict(models), dict(optimizers)
    encoder, decoder = models["encoder"], models["decoder"]
    init_key, run_key = jax.random.split(key)
    params = {"encoder": encoder.init(jax.random.fold_in(init_key, 0), x)["params"],
              "decoder": decoder.init(jax.random.fold_in(init_key, 1),
                                      jnp.zeros((1, decoder.latent_dim)))["params"]}
    return _new_state(run_key, params, {}, optimizers)


# ----------------------------------------------------------------------------
# Shared pieces
# ----------------------------------------------------------------------------

def _step_key(state: TrainState, key: jax.Array | None) -> jax.Array:
    return jax.random.fold_in(state.key, state.step) if key is None else key


def _pmean(tree, axis_name):
    return tree if axis_name is None else lax.pmean(tree, axis_name)


def _local_draw(sample: Callable, key: jax.Array, shape: tuple[int, ...],
                axis_name: str | None) -> jax.Array:
    """This device's rows of ``sample(key, (D·N, ...))``, N = ``shape[0]``, D devices.

    Drawing the global batch and slicing it (instead of one draw per device)
    makes the numbers independent of the device count. The global draw costs
    D times a local one; it is only used for small per-example arrays.
    """
    if axis_name is None:
        return sample(key, shape)
    rows = shape[0]
    full = sample(key, (rows * lax.axis_size(axis_name),) + tuple(shape[1:]))
    return lax.dynamic_slice_in_dim(full, lax.axis_index(axis_name) * rows, rows)


def _all_finite(tree) -> jax.Array:
    # One reduction over all leaves raveled together (XLA fuses the concatenation
    # into it) rather than one per leaf: each per-leaf reduction was a kernel of
    # its own for XLA:CPU to compile (see _finish and BENCHMARKS.md).
    return jnp.all(jnp.isfinite(jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])))


def _apply_update(optimizer, grads, opt_state, params):
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def _finish(old: TrainState, new: TrainState, loss_finite: jax.Array) -> TrainState:
    """``new``, or ``old`` frozen and marked if the update diverged (or ``old`` had).

    The new step counts as diverged if a loss was non-finite or any new
    parameter is; the reason prefers the loss (the usual cause of the params).
    """
    bad = ~(loss_finite & _all_finite(new.params))
    keep_old = old.diverged | bad
    # One conditional instead of a jnp.where per leaf: the same values, fewer
    # kernels to compile (with _all_finite's single reduction, the ring8 step's
    # XLA:CPU compile went from 2.8-3.4 s to 2.0-2.3 s); under vmap it becomes a
    # per-member select, so only a diverged member freezes.
    kept = lax.cond(keep_old, lambda o, n: o, lambda o, n: n, old, new)
    first = bad & ~old.diverged
    return kept.replace(
        diverged=keep_old,
        diverged_step=jnp.where(first, old.step, old.diverged_step),
        diverged_reason=jnp.where(
            first, jnp.where(loss_finite, NONFINITE_PARAMS, NONFINITE_LOSS),
            old.diverged_reason).astype(jnp.int32))


def _penalty_metrics(params, opt_state, penalty_cfgs) -> Metrics:
    """``penalty_<net>``: the value R(w) of each configured penalty (its current strengths)."""
    return {f"penalty_{net}": penalties.penalty_value(
                params[net], cfg, hyperparams=penalties.get_hyperparams(opt_state[net]),
                step=opt_state[net].count)
            for net, cfg in (penalty_cfgs or {}).items()}


# ----------------------------------------------------------------------------
# GAN / conditional GAN
# ----------------------------------------------------------------------------

def check_loss_config(loss_cfg: ml_collections.ConfigDict) -> None:
    """Validates ``config.loss`` (names through the losses registries, d_steps >= 1)."""
    losses.gan_loss(loss_cfg.kind)
    losses.gradient_penalty_fn(loss_cfg.gradient_penalty)
    if loss_cfg.d_steps < 1:
        raise ValueError(f"loss.d_steps must be >= 1, got {loss_cfg.d_steps}")
    if loss_cfg.gp_weight < 0:
        raise ValueError(f"loss.gp_weight must be >= 0, got {loss_cfg.gp_weight}")


def check_batch(batch: Mapping[str, Any], data_shape: tuple[int, ...],
                labelled: bool = False) -> None:
    """The batch holds ``image`` examples of ``data_shape`` (and ``label`` if ``labelled``).

    Raises:
      ValueError: a missing key or an example shape that is not ``data_shape``.
    """
    if "image" not in batch or (labelled and "label" not in batch):
        raise ValueError(f"batch has keys {sorted(batch)}; expected 'image'"
                         + (" and 'label' (conditional model)" if labelled else ""))
    shape = tuple(batch["image"].shape[1:])
    if shape != tuple(data_shape):
        raise ValueError(f"batch['image'] has examples of shape {shape}; the model expects "
                         f"{tuple(data_shape)}")


def _strided_split(x: jax.Array, parts: int) -> jax.Array:
    """``[parts·B, ...] -> [parts, B, ...]`` with part k = rows ``k::parts``."""
    if x.shape[0] % parts:
        raise ValueError(f"a GAN batch with d_steps = {parts} needs a multiple of {parts} "
                         f"rows (d_steps batches), got {x.shape[0]}")
    x = x.reshape((x.shape[0] // parts, parts) + x.shape[1:])
    return jnp.swapaxes(x, 0, 1)


def _d_variables(params, model_state):
    return {"params": params, **model_state}


def gan_step(state: TrainState, batch: Mapping[str, jax.Array], key: jax.Array | None = None,
             *, models: Mapping[str, nn.Module],
             optimizers: Mapping[str, optax.GradientTransformation],
             loss_cfg: ml_collections.ConfigDict,
             penalty_cfgs: Mapping[str, ml_collections.ConfigDict] | None = None,
             axis_name: str | None = None) -> tuple[TrainState, Metrics]:
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
    check_batch(batch, d.data_shape, labelled=g.num_classes > 0)
    key = _step_key(state, key)
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
        z = _local_draw(jax.random.normal, purpose_key(k, _LATENT), (rows, g.latent_dim),
                        axis_name)
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
                _d_variables(p, d_state), jnp.concatenate([real, fake]), both_labels,
                update_stats=True, mutable=list(d_state))
            real_logits, fake_logits = jnp.split(logits, 2)
            adversarial = objective.d(real_logits, fake_logits)
            gp = penalty(lambda x: d.apply(_d_variables(p, new_d_state), x, y), real, fake,
                         gp_key)
            return adversarial + loss_cfg.gp_weight * gp, (
                new_d_state, {"d_loss": adversarial, "gp": gp,
                              "d_real": jnp.mean(real_logits), "d_fake": jnp.mean(fake_logits)})

        grads, (d_state, metrics) = jax.grad(loss_fn, has_aux=True)(d_params)
        grads, d_state, metrics = _pmean((grads, d_state, metrics), axis_name)
        d_params, d_opt = _apply_update(optimizers["d"], grads, d_opt, d_params)
        finite = finite & jnp.isfinite(metrics["d_loss"]) & jnp.isfinite(metrics["gp"])
        return (d_params, d_opt, d_state, finite), metrics

    g_params = state.params["g"]
    carry = (state.params["d"], state.opt_state["d"], state.model_state.get("d", {}),
             jnp.ones((), bool))
    # Updates 0..n-2 need the fakes only; the last one keeps G's forward for G's gradient.
    if n > 1:  # (a zero-trip loop would still be traced and compiled)
        carry = lax.fori_loop(
            0, n - 1, lambda k, c: d_update(k, c, generate_fn(k)(g_params))[0], carry)
    fake, g_vjp = jax.vjp(generate_fn(n - 1), g_params)
    (d_params, d_opt, d_state, finite), metrics = d_update(n - 1, carry, fake)

    def g_loss_fn(x):
        return objective.g(d.apply(_d_variables(d_params, d_state), x, labels_at(n - 1)))

    g_loss, fake_grad = jax.value_and_grad(g_loss_fn)(fake)
    (g_grads,) = g_vjp(fake_grad)
    g_grads, g_loss = _pmean((g_grads, g_loss), axis_name)
    g_params, g_opt = _apply_update(optimizers["g"], g_grads, state.opt_state["g"], g_params)

    new = state.replace(
        step=state.step + 1, params={"g": g_params, "d": d_params},
        opt_state={"g": g_opt, "d": d_opt},
        model_state={"d": d_state} if d_state else {})
    metrics = {**metrics, "g_loss": g_loss,
               **_penalty_metrics(new.params, new.opt_state, penalty_cfgs)}
    return _finish(state, new, finite & jnp.isfinite(g_loss)), metrics


# ----------------------------------------------------------------------------
# VAE
# ----------------------------------------------------------------------------

def vae_step(state: TrainState, batch: Mapping[str, jax.Array], key: jax.Array | None = None,
             *, models: Mapping[str, nn.Module],
             optimizers: Mapping[str, optax.GradientTransformation],
             likelihood: str, gaussian_std: float = 1.0,
             penalty_cfgs: Mapping[str, ml_collections.ConfigDict] | None = None,
             axis_name: str | None = None) -> tuple[TrainState, Metrics]:
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
    check_batch(batch, encoder.data_shape)
    key = _step_key(state, key)
    x = batch["image"]
    eps = _local_draw(jax.random.normal, key, (x.shape[0], decoder.latent_dim), axis_name)

    def loss_fn(params):
        mean, logvar = encoder.apply({"params": params["encoder"]}, x)
        z = mean + jnp.exp(0.5 * logvar) * eps
        recon_out = decoder.apply({"params": params["decoder"]}, z)
        return losses.negative_elbo(x, recon_out, mean, logvar, likelihood, gaussian_std)

    (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grads, loss, parts = _pmean((grads, loss, parts), axis_name)
    params, opt_state = {}, {}
    for net in ("encoder", "decoder"):
        params[net], opt_state[net] = _apply_update(
            optimizers[net], grads[net], state.opt_state[net], state.params[net])
    new = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
    metrics = {"loss": loss, **parts, **_penalty_metrics(params, opt_state, penalty_cfgs)}
    return _finish(state, new, jnp.isfinite(loss)), metrics


# ----------------------------------------------------------------------------
# From a config
# ----------------------------------------------------------------------------

def make_step(config: ml_collections.ConfigDict, models: Mapping[str, nn.Module],
              optimizers: Mapping[str, optax.GradientTransformation]) -> Callable:
    """The step of ``config.model_type`` with its static parts bound (not jitted).

    Returns ``(state, batch, key=None, axis_name=None) -> (state, metrics)``;
    logs ``penalty_<net>`` for every network's ``config.penalty``.

    Raises:
      ValueError: an unknown model type, loss or gradient penalty name, or
        ``d_steps`` < 1, before any compute.
    """
    check_name("model_type", config.model_type, MODEL_TYPES)
    penalty_cfgs = dict(config.penalty)
    if config.model_type in ("gan", "cgan"):
        check_loss_config(config.loss)
        return functools.partial(gan_step, models=models, optimizers=optimizers,
                                 loss_cfg=config.loss, penalty_cfgs=penalty_cfgs)
    return functools.partial(vae_step, models=models, optimizers=optimizers,
                             likelihood=config.model.likelihood,
                             gaussian_std=config.model.gaussian_std,
                             penalty_cfgs=penalty_cfgs)


def init_state(config: ml_collections.ConfigDict, models: Mapping[str, nn.Module],
               optimizers: Mapping[str, optax.GradientTransformation], key: jax.Array,
               example_batch: Mapping[str, Any]) -> TrainState:
    """:func:`init_gan_state` or :func:`init_vae_state` by ``config.model_type``."""
    check_name("model_type", config.model_type, MODEL_TYPES)
    if config.model_type in ("gan", "cgan"):
        return init_gan_state(models, optimizers, key, example_batch)
    return init_vae_state(models, optimizers, key, example_batch)
