"""The cycle-consistent GAN family (``'cyclegan'``): unpaired image-to-image translation.

CycleGAN (Zhu et al. 2017). Translators G: A -> B and F: B -> A, and
discriminators D_A (real A against F(b)) and D_B (real B against G(a)):
networks ``g``, ``f``, ``d_a``, ``d_b``, each with its own optimizer and
penalty (``config.optimizer.<net>``, ``config.penalty.<net>``), so any
penalty can go on any of the four; a study's targets ``generators``
(``g``, ``f``), ``discriminators`` (``d_a``, ``d_b``) and ``all`` name them
in groups (:data:`TARGET_GROUPS`). The data is an unpaired dataset of
:mod:`regan_jax.data.unpaired`: row i holds an A image a_i and an unrelated
B image b_i on the channel axis.

Objective. With the registry's adversarial loss (L_d, L_g) =
``losses.gan_loss(config.loss.kind)`` (default ``'least_squares'``, LSGAN,
as in the paper), on a batch of N rows:

.. math::
    L_{G,F} = L_g(D_B(G(a))) + L_g(D_A(F(b)))
      + λ_{cyc}\\big(\\lVert F(G(a)) - a \\rVert_1 + \\lVert G(F(b)) - b \\rVert_1\\big)
      + λ_{id}\\big(\\lVert G(b) - b \\rVert_1 + \\lVert F(a) - a \\rVert_1\\big)

    L_{D_B} = L_d(D_B(b), D_B(G(a))) + γ\\,\\mathrm{GP}_B,\\qquad
    L_{D_A} = L_d(D_A(a), D_A(F(b))) + γ\\,\\mathrm{GP}_A

where ‖x - y‖₁ is the **mean absolute error per pixel** (Σ|x - y| over the
N·H·W·C entries, divided by N·H·W·C, pixels in [-1, 1];
:func:`cycle_consistency_loss`, :func:`identity_loss`), λ_cyc =
``config.loss.cycle_weight`` (10), λ_id = ``config.loss.identity_weight``
(0) and GP the registry's gradient penalty (``config.loss.gradient_penalty``,
weight γ = ``gp_weight``), so the GAN baselines apply.

Step: G and F update together against the current discriminators, then D_A
and D_B on the same fakes (from the generators before their update); one
discriminator step (``loss.d_steps`` = 1), no pool of past fakes, no ½ on
the discriminators' loss. Randomness: only WGAN-GP's ε, D_A's from
``fold_in(key, 0)``, D_B's from ``fold_in(key, 1)`` (then per device, as in
:func:`regan_jax.families.gan.gan_step`). Where and why this departs from the
paper (λ_id, the pool, the ½): ``docs/cyclegan.md``.

Networks: :class:`regan_jax.models.Translator` (G, F; ``g_width``,
``mlp_layers`` or the derived stages; ``latent_dim`` is unused) and the GAN's
discriminator (:func:`make_models`).

Held-out scores and null references: :mod:`regan_jax.evaluation.cyclegan`.

Samples (:func:`make_sampler`): translation strips of held-out rows,
``(3H + 2, 2W + 1, C)``: the left column a, G(a), F(G(a)); the right
column b, F(b), G(F(b)); grey (0) lines between.
"""

import functools
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from regan_jax import data, losses, steps
from regan_jax import models as models_lib
from regan_jax._names import choose
from regan_jax.data import unpaired
from regan_jax.evaluation import cyclegan as evaluation
from regan_jax.families import gan
from regan_jax.families.base import Family

NETWORKS = ("g", "f", "d_a", "d_b")
TARGET_GROUPS = (("generators", ("g", "f")), ("discriminators", ("d_a", "d_b")), ("all", NETWORKS))
GRID_POOL = 256  # held-out rows the sampler draws its strips from
_GAP = 0.0  # grey: the strips' separating lines (A's background is white, B's black)


def loss_config() -> ml_collections.ConfigDict:
    """``config.loss`` of the family: the GAN keys (LSGAN by default) and the two weights."""
    cfg = losses.default_config()
    cfg.kind = "least_squares"
    cfg.cycle_weight = 10.0  # λ_cyc of the cycle-consistency loss
    cfg.identity_weight = 0.0  # λ_id of the identity loss (the paper: 0.5 λ_cyc; see module)
    return cfg


# ----------------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------------


def domain_shape(data_shape) -> tuple[int, int, int]:
    """One domain's ``(H, W, C)`` of unpaired data ``(H, W, 2C)``.

    Raises:
      ValueError: data that is not two image domains stacked on the channels.
    """
    shape = tuple(int(s) for s in data_shape)
    if len(shape) != 3 or shape[-1] % 2:
        raise ValueError(
            f"model_type 'cyclegan' needs unpaired images (H, W, 2C), two domains "
            f"on the channel axis (regan_jax.data.unpaired); got shape {shape}"
        )
    return shape[:2] + (shape[2] // 2,)


def make_models(model_cfg: ml_collections.ConfigDict, data_spec) -> dict[str, nn.Module]:
    """``{'g', 'f': Translator, 'd_a', 'd_b': Discriminator}`` for one domain of ``data_spec``.

    The discriminators are the GAN's (``d_width``, ``spectral_norm``); the
    translators use ``g_width`` and ``mlp_layers`` / the derived stages.

    Raises:
      ValueError: data that is not unpaired images, or see
        :func:`regan_jax.models.trunk_and_body`.
    """
    shape = domain_shape(data_spec.shape)
    trunk, _, spec = models_lib.trunk_and_body(
        model_cfg, models_lib.DataSpec(shape, 0), model_cfg.spectral_norm
    )
    depth = (
        model_cfg.mlp_layers
        if model_cfg.arch == "mlp"
        else models_lib.num_stages(shape, model_cfg.stages)
    )
    output = choose("g_output", model_cfg.g_output, models_lib.GENERATOR_OUTPUTS)
    translator = models_lib.Translator(
        model_cfg.arch, model_cfg.g_width, depth, spec.shape, model_cfg.upsample, output
    )
    discriminator = models_lib.Discriminator(trunk, spec.shape, 0, model_cfg.spectral_norm)
    return {"g": translator, "f": translator, "d_a": discriminator, "d_b": discriminator}


def init_cyclegan_state(
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, optax.GradientTransformation],
    key: jax.Array,
    example_batch: Mapping[str, Any],
) -> steps.TrainState:
    """A fresh state: network k of :data:`NETWORKS` from ``fold_in(k_init, k)``, step 0.

    ``key`` splits into the parameter key ``k_init`` and the run's base key.
    Jitted; vmappable over ``key``.
    """
    steps.check_networks(models, optimizers, NETWORKS)
    a, _ = unpaired.split_domains(jnp.asarray(example_batch["image"])[:1])
    run_key, params, model_state = _init(steps.hashable(models), key, a)
    return steps.init_train_state(run_key, params, model_state, optimizers)


@functools.partial(jax.jit, static_argnums=0)
def _init(models, key, x):
    """``(run key, params, model state)``: one program per model, whatever the optimizers."""
    models = dict(models)
    init_key, run_key = jax.random.split(key)
    params, model_state = {}, {}
    for k, net in enumerate(NETWORKS):
        params[net], extra = steps.split_variables(
            models[net].init(jax.random.fold_in(init_key, k), x)
        )
        if extra:
            model_state[net] = extra
    return run_key, params, model_state


# ----------------------------------------------------------------------------
# Losses and the step
# ----------------------------------------------------------------------------


def mean_absolute_error(x: jax.Array, y: jax.Array) -> jax.Array:
    """‖x - y‖₁ per entry: ``Σ |x - y| / x.size`` (the module's normalisation)."""
    return jnp.mean(jnp.abs(x - y))


def cycle_consistency_loss(a, f_of_g_a, b, g_of_f_b) -> jax.Array:
    """‖F(G(a)) - a‖₁ + ‖G(F(b)) - b‖₁, each the mean absolute error per pixel (unweighted)."""
    return mean_absolute_error(f_of_g_a, a) + mean_absolute_error(g_of_f_b, b)


def identity_loss(a, f_of_a, b, g_of_b) -> jax.Array:
    """‖G(b) - b‖₁ + ‖F(a) - a‖₁, each the mean absolute error per pixel (unweighted)."""
    return mean_absolute_error(g_of_b, b) + mean_absolute_error(f_of_a, a)


def cyclegan_step(
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
    """One update of G and F, then of D_A and D_B (module docstring).

    Args:
      state: a :class:`TrainState` from :func:`init_cyclegan_state`.
      batch: ``{'image': [N, H, W, 2C]}``: A images on the first C channels,
        B images on the last C.
      key: the step's key; None = ``fold_in(state.key, state.step)``.
      models, optimizers: ``{'g', 'f', 'd_a', 'd_b'}``.
      loss_cfg: ``config.loss`` (``kind``, ``gradient_penalty``, ``gp_weight``,
        ``cycle_weight``, ``identity_weight``).
      penalty_cfgs: ``{net: config.penalty.<net>}`` to log ``penalty_<net>``.
      axis_name: the device axis to ``pmean`` over, or None.

    Returns:
      ``(state, metrics)``: ``g_loss`` (both translators' adversarial terms),
      ``cycle`` and ``identity`` (unweighted), ``gen_loss`` (the whole L_{G,F}),
      ``d_loss`` (both discriminators' adversarial terms), ``d_a_loss``,
      ``d_b_loss``, ``gp`` (unweighted, summed) and ``penalty_<net>``.
    """
    shape = tuple(models["d_a"].data_shape)
    steps.check_batch(batch, shape[:2] + (2 * shape[2],))
    key = steps.step_key(state, key)
    objective = losses.gan_loss(loss_cfg.kind)
    penalty = losses.gradient_penalty_fn(loss_cfg.gradient_penalty)
    a, b = unpaired.split_domains(batch["image"])
    model_state = state.model_state

    def discriminate(net, params, x, d_state=None):
        d_state = model_state.get(net, {}) if d_state is None else d_state
        return models[net].apply({"params": params, **d_state}, x)

    def translate(net, params, x):
        return models[net].apply({"params": params[net]}, x)

    def generator_loss(gen):
        fake_b, fake_a = translate("g", gen, a), translate("f", gen, b)
        adversarial = objective.g(discriminate("d_b", state.params["d_b"], fake_b)) + objective.g(
            discriminate("d_a", state.params["d_a"], fake_a)
        )
        cycle = cycle_consistency_loss(
            a, translate("f", gen, fake_b), b, translate("g", gen, fake_a)
        )
        total = adversarial + loss_cfg.cycle_weight * cycle
        identity = jnp.zeros((), cycle.dtype)
        if loss_cfg.identity_weight:  # Static: no extra forward passes at weight 0.
            identity = identity_loss(a, translate("f", gen, a), b, translate("g", gen, b))
            total = total + loss_cfg.identity_weight * identity
        return total, (
            (fake_a, fake_b),
            {"g_loss": adversarial, "cycle": cycle, "identity": identity, "gen_loss": total},
        )

    generators = {"g": state.params["g"], "f": state.params["f"]}
    grads, ((fake_a, fake_b), metrics_) = jax.grad(generator_loss, has_aux=True)(generators)
    grads, metrics_ = steps.pmean((grads, metrics_), axis_name)
    params, opt_state = dict(state.params), dict(state.opt_state)
    for net in ("g", "f"):
        params[net], opt_state[net] = steps.apply_update(
            optimizers[net], grads[net], state.opt_state[net], state.params[net]
        )
    finite = jnp.isfinite(metrics_["gen_loss"])

    new_model_state = {}
    for purpose, (net, real, fake) in enumerate((("d_a", a, fake_a), ("d_b", b, fake_b))):
        d, d_state = models[net], model_state.get(net, {})
        gp_key = jax.random.fold_in(key, purpose)
        if axis_name is not None:  # Drawn per device (see gan.gan_step).
            gp_key = jax.random.fold_in(gp_key, jax.lax.axis_index(axis_name))
        fake = jax.lax.stop_gradient(fake)

        def d_loss_fn(p, d=d, d_state=d_state, net=net, real=real, fake=fake, gp_key=gp_key):
            logits, new_state = d.apply(
                {"params": p, **d_state},
                jnp.concatenate([real, fake]),
                update_stats=True,
                mutable=list(d_state),
            )
            real_logits, fake_logits = jnp.split(logits, 2)
            adversarial = objective.d(real_logits, fake_logits)
            gp = penalty(lambda x: discriminate(net, p, x, new_state), real, fake, gp_key)
            return adversarial + loss_cfg.gp_weight * gp, (new_state, adversarial, gp)

        d_grads, (d_state, adversarial, gp) = jax.grad(d_loss_fn, has_aux=True)(params[net])
        d_grads, d_state, adversarial, gp = steps.pmean(
            (d_grads, d_state, adversarial, gp), axis_name
        )
        params[net], opt_state[net] = steps.apply_update(
            optimizers[net], d_grads, state.opt_state[net], state.params[net]
        )
        if d_state:
            new_model_state[net] = d_state
        metrics_[f"{net}_loss"] = adversarial
        metrics_["gp"] = metrics_.get("gp", 0.0) + gp
        finite = finite & jnp.isfinite(adversarial) & jnp.isfinite(gp)
    metrics_["d_loss"] = metrics_["d_a_loss"] + metrics_["d_b_loss"]

    new = state.replace(
        step=state.step + 1, params=params, opt_state=opt_state, model_state=new_model_state
    )
    metrics_.update(steps.penalty_metrics(new.params, new.opt_state, penalty_cfgs))
    return steps.freeze_if_diverged(state, new, finite), metrics_


def rows_per_step(config: ml_collections.ConfigDict) -> int:
    """Rows a step consumes: one batch (each row an A and a B image)."""
    return config.data.batch_size


def make_step(
    config: ml_collections.ConfigDict,
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, optax.GradientTransformation],
) -> Callable:
    """:func:`cyclegan_step` with the networks, optimizers, loss and penalty configs bound."""
    return functools.partial(
        cyclegan_step,
        models=models,
        optimizers=optimizers,
        loss_cfg=config.loss,
        penalty_cfgs=dict(config.penalty),
    )


# ----------------------------------------------------------------------------
# Samples: translation strips
# ----------------------------------------------------------------------------


def strip_shape(data_shape) -> tuple[int, int, int]:
    """A strip's shape for unpaired data ``(H, W, 2C)``: ``(3H + 2, 2W + 1, C)``."""
    h, w, c = domain_shape(data_shape)
    return (3 * h + 2, 2 * w + 1, c)


def translation_strips(a, b, fake_b, fake_a, rec_a, rec_b) -> jax.Array:
    """``[N, 3H + 2, 2W + 1, C]``: columns (a, G(a), F(G(a))) and (b, F(b), G(F(b)))."""

    def column(*images):
        gap = jnp.full(images[0].shape[:1] + (1,) + images[0].shape[2:], _GAP, images[0].dtype)
        return jnp.concatenate([images[0], gap, images[1], gap, images[2]], axis=1)

    left, right = column(a, fake_b, rec_a), column(b, fake_a, rec_b)
    gap = jnp.full(left.shape[:2] + (1,) + left.shape[3:], _GAP, left.dtype)
    return jnp.concatenate([left, gap, right], axis=2)


def make_sampler(
    config: ml_collections.ConfigDict, models: Mapping[str, nn.Module], spec, test=None
):
    """``sample(params, key, n) -> (strips [n, 3H + 2, 2W + 1, C], None)`` of held-out rows.

    Row r of the first ``GRID_POOL`` rows of the test split (``test``, the
    program's; loaded from ``config.data`` if not given) for each strip:
    ``permutation(key, P)[:n]`` (distinct rows) when n <= P, else
    ``randint(key, (n,), 0, P)``. See :func:`translation_strips`.
    """
    test = data.from_config(config.data, "test") if test is None else test
    pool = np.asarray(test.images[:GRID_POOL])
    if tuple(pool.shape[1:]) != tuple(spec.shape):
        raise ValueError(
            f"test images of shape {pool.shape[1:]} do not match the data's {tuple(spec.shape)}"
        )
    g, f = models["g"], models["f"]

    def sample(params, key, n):
        size = pool.shape[0]
        rows = (
            jax.random.permutation(key, size)[:n]
            if n <= size
            else jax.random.randint(key, (n,), 0, size)
        )
        a, b = unpaired.split_domains(jnp.asarray(pool)[rows])
        fake_b = g.apply({"params": params["g"]}, a)
        fake_a = f.apply({"params": params["f"]}, b)
        rec_a = f.apply({"params": params["f"]}, fake_b)
        rec_b = g.apply({"params": params["g"]}, fake_a)
        return translation_strips(a, b, fake_b, fake_a, rec_a, rec_b), None

    return sample


def validate(config: ml_collections.ConfigDict) -> None:
    """The family's fields: unpaired data, ``config.loss`` (one D step, weights >= 0).

    Raises:
      ValueError: naming the config key and its value.
    """
    if config.data.name not in unpaired.UNPAIRED:
        raise ValueError(
            f"config.data.name: model_type 'cyclegan' needs an unpaired two-domain "
            f"dataset, one of {list(unpaired.UNPAIRED)}; got {config.data.name!r}"
        )
    if config.eval.inception_weights:
        raise ValueError(
            "config.eval.inception_weights: model_type 'cyclegan' is scored with "
            "the base dataset's shipped classifier; Inception features are not "
            "supported"
        )
    gan.check_loss_config(config.loss)
    if config.loss.d_steps != 1:
        raise ValueError(
            f"config.loss.d_steps must be 1 for model_type 'cyclegan' (one "
            f"discriminator update per step), got {config.loss.d_steps}"
        )
    for name in ("cycle_weight", "identity_weight"):
        if not config.loss[name] >= 0:
            raise ValueError(f"config.loss.{name} must be >= 0, got {config.loss[name]}")


CYCLEGAN = Family(
    name="cyclegan",
    networks=NETWORKS,
    adversarial=True,
    conditional=False,
    make_models=make_models,
    init_state=init_cyclegan_state,
    make_step=make_step,
    make_sampler=make_sampler,
    rows_per_step=rows_per_step,
    validate=validate,
    make_evaluator=evaluation.make_evaluator,
    null_scores=evaluation.study_nulls,
    sample_shape=strip_shape,
    loss_config=loss_config,
    target_groups=TARGET_GROUPS,
)
