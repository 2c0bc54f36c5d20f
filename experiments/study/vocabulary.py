"""The study's vocabulary, each name declared once: penalties, targets, metrics.

Every table, label, colour, figure and verdict of the study reads these
three tables; adding a penalty, a target or a metric is one entry here.

**Penalties** (:data:`PENALTIES`): a named setting of the config (a
registry, so a name on the command line selects code through one validated
table), with how every figure and table shows it:

=================  ==========================================================
name               setting (on each target network)
=================  ==========================================================
``none``           no penalty (the unregularised baseline)
``l2``             coupled L2: Adam on loss + (λ/2)‖w‖² (``l2``, coupled)
``weight_decay``   decoupled weight decay, AdamW (``l2``, decoupled)
``l1``             L1 by subgradient, coupled (``l1``)
``prox_l1``        L1 by its proximal step (``prox_l1``): exact zeros
``elastic_net``    proximal elastic net, λ₁ = λ₂ = λ (``prox_elastic_net``)
``group_l1``       proximal group L1 over output units/filters (``prox_group_l1``)
``max_norm``       projection of every unit's weights onto the ball ‖w_j‖ ≤ r
``spectral_norm``  baseline: spectrally normalised D, no weight penalty
``r1``             baseline: R1 gradient penalty on D (γ = 10), no weight penalty
``wgan_gp``        baseline: Wasserstein loss + gradient penalty (λ = 10)
=================  ==========================================================

A *weight penalty* sets a builder kind of :data:`regan_jax.penalties.PENALTY_KINDS`
on its target networks; a *baseline* (kind ``none``) sets only model and loss
fields, and the baselines are also the regularisers a weight penalty can be
added to (``r1`` + weight decay). The swept value is the strength λ, except
for ``max_norm`` where it is the radius r and spectral normalisation, whose
own learning-rate sweep sets ``learning_rate``; ``none``, R1 and WGAN-GP
have no swept value.

**Targets** (:data:`TARGETS`): one network (``g``, ``d``; ``encoder``,
``decoder``; the cycle GAN's ``f``, ``d_a``, ``d_b``), a group of networks
the family declares (``Family.target_groups``: ``generators``,
``discriminators``, ``all``) or ``both`` (every network); the table gives
their order in figures and tables and their labels.

**Metrics** (:data:`METRICS`): a score of a run's ``summary.json`` (or of
the study's own, e.g. ``sample_tv``), its label, short name, direction and
the value a diverged or unscored run counts as (:mod:`experiments.study.cells`),
and its smallest effect of interest (:class:`Sesoi`: the paired difference
below which an effect is too small to matter, declared before the data; the
claims' equivalence tests use it, :mod:`experiments.study.claims`).
"""

import math
from typing import NamedTuple

from regan_jax import families


class Penalty(NamedTuple):
    """A named penalty setting and how the study shows it.

    Attributes:
      kind: ``config.penalty.<net>.kind`` on the target networks (a key of
        :data:`regan_jax.penalties.PENALTY_KINDS`; ``'none'`` for a baseline).
      coupling: ``config.penalty.<net>.coupling``.
      swept: the field the swept value sets: the penalty's ``'strength'`` or
        ``'radius'`` on the target networks, ``'learning_rate'`` of every
        network (a baseline's own learning-rate sweep), or None.
      tied: penalty fields set to the swept value too (elastic net: λ₂ = λ₁).
      settings: other config fields, ``(('model.spectral_norm', True),)`` (baselines).
      gan_only: only meaningful for GANs (the discriminator baselines).
      label: its name in legends and tables.
      short: its name where space is short (sample panels, bar labels).
      colour: its colour in every figure (colour-blind-safe tab10 order).
    """

    kind: str
    coupling: str
    swept: str | None
    tied: tuple
    settings: tuple
    gan_only: bool
    label: str
    short: str
    colour: str


def _weight(kind, label, short, colour, *, coupling="coupled", swept="strength", tied=()):
    return Penalty(kind, coupling, swept, tied, (), False, label, short, colour)


def _baseline(label, short, colour, *, swept=None, settings=(), gan_only=True):
    return Penalty("none", "coupled", swept, (), settings, gan_only, label, short, colour)


PENALTIES = {
    "none": _baseline("none", "none", "black", gan_only=False),
    "l2": _weight("l2", "L2 (coupled)", "L2", "tab:blue"),
    "weight_decay": _weight(
        "l2", "weight decay (AdamW)", "AdamW", "tab:cyan", coupling="decoupled"
    ),
    "l1": _weight("l1", "L1 (subgradient)", "L1 subgrad", "tab:orange"),
    "prox_l1": _weight("prox_l1", "L1 (proximal)", "L1 prox", "tab:red"),
    "elastic_net": _weight(
        "prox_elastic_net", "elastic net (prox)", "elastic net", "tab:purple", tied=("l2_strength",)
    ),
    "group_l1": _weight("prox_group_l1", "group L1 (prox)", "group L1", "tab:brown"),
    "max_norm": _weight("max_norm", "max-norm", "max-norm", "tab:olive", swept="radius"),
    # Tuned: spectral normalisation's own learning-rate sweep (on G and D alike).
    "spectral_norm": _baseline(
        "spectral norm (best lr)",
        "spectral norm",
        "tab:green",
        swept="learning_rate",
        settings=(("model.spectral_norm", True),),
    ),
    "r1": _baseline(
        "R1 penalty",
        "R1",
        "tab:pink",
        settings=(("loss.gradient_penalty", "r1"), ("loss.gp_weight", 10.0)),
    ),
    "wgan_gp": _baseline(
        "WGAN-GP",
        "WGAN-GP",
        "tab:gray",
        settings=(
            ("loss.kind", "wasserstein"),
            ("loss.gradient_penalty", "wgan_gp"),
            ("loss.gp_weight", 10.0),
        ),
    ),
}
# A run whose config carries no named setting (``describe`` labels it 'custom').
CUSTOM = Penalty("custom", "coupled", None, (), (), False, "custom", "custom", "gold")
WEIGHT_PENALTIES = tuple(name for name, p in PENALTIES.items() if p.kind != "none")
# The baselines, which are also the regularisers a weight penalty can be added to.
BASELINES = tuple(name for name, p in PENALTIES.items() if p.kind == "none")


def penalty(name: str) -> Penalty:
    """The :class:`Penalty` of ``name`` (:data:`CUSTOM` for ``'custom'``)."""
    return CUSTOM if name == "custom" else PENALTIES[name]


# Every target the study names, in the order of figures and tables, with its label.
TARGETS = {
    "g": "G",
    "d": "D",
    "encoder": "encoder",
    "decoder": "decoder",
    "f": "F",
    "d_a": "d_a",
    "d_b": "d_b",
    "generators": "generators",
    "discriminators": "discriminators",
    "both": "both",
    "all": "all",
}


def target_label(target: str) -> str:
    """A target's label (``'G'``, ``'decoder'``; a comma-joined set as it is)."""
    return TARGETS.get(target, target)


class Sesoi(NamedTuple):
    """A metric's smallest effect of interest on a paired difference ``d``.

    ``value`` in the metric's own units (``scale='units'``: FD 5, recall
    0.05), or in standard deviations of ``d`` (``scale='d_z'``: the margin is
    ``value * sd(d)``) for a metric without a natural unit.
    """

    value: float
    scale: str


def _units(value: float) -> Sesoi:
    return Sesoi(value, "units")


def _d_z(value: float) -> Sesoi:
    return Sesoi(value, "d_z")


# Where a metric declares no natural unit: half a standard deviation of d (Cohen's medium d_z).
DEFAULT_SESOI = _d_z(0.5)


class Metric(NamedTuple):
    """How a score is labelled and compared (each metric states the first four).

    Attributes:
      label: the axis label.
      short: its name in tables and panel titles.
      lower: lower is better (True), higher is better (False), no direction (None).
      worst: the value a diverged run (or a missing score) counts as; None
        exactly for a metric without a direction (such runs are dropped).
      sesoi: the smallest effect of interest (:class:`Sesoi`).
    """

    label: str
    short: str
    lower: bool | None
    worst: float | None
    sesoi: Sesoi = DEFAULT_SESOI


def _lower(label, short, sesoi=DEFAULT_SESOI):
    return Metric(label, short, True, math.inf, sesoi)


def _higher(label, short, worst=0.0, sesoi=DEFAULT_SESOI):
    return Metric(label, short, False, worst, sesoi)


def _descriptive(label, short, sesoi=DEFAULT_SESOI):
    return Metric(label, short, None, None, sesoi)


METRICS = {
    "fd": _lower("Fréchet distance (features) ↓", "FD", sesoi=_units(5.0)),
    "kid": _lower("KID (features) ↓", "KID", sesoi=_d_z(0.5)),
    "modes": _higher("modes covered ↑", "modes", sesoi=_units(1.0)),
    "robust_modes": _higher("robust modes (noise-tested) ↑", "robust modes", sesoi=_units(1.0)),
    "hq_fraction": _higher("high-quality fraction ↑", "HQ fraction", sesoi=_units(0.05)),
    "reverse_kl": _lower("reverse KL to uniform ↓", "reverse KL", sesoi=_units(0.1)),
    "class_kl": _lower("KL(mode histogram ‖ uniform) ↓", "KL to uniform", sesoi=_d_z(0.5)),
    "elbo": _higher("held-out ELBO (nats) ↑", "ELBO", -math.inf, sesoi=_units(1.0)),
    "recon": _lower("reconstruction −log p(x|z) ↓", "recon", sesoi=_units(1.0)),
    "cond_accuracy": _higher("classifier accuracy on samples ↑", "accuracy", sesoi=_units(0.05)),
    "intra_fd": _lower("intra-class Fréchet distance ↓", "intra-class FD", sesoi=_units(5.0)),
    "content_accuracy": _higher(
        "content accuracy of G(a) (classifier reads a's class) ↑",
        "content accuracy",
        sesoi=_units(0.05),
    ),
    "cycle_error_a": _lower("cycle error |F(G(a)) − a| ↓", "cycle error", sesoi=_d_z(0.5)),
    "precision": _higher("precision ↑", "precision", sesoi=_units(0.05)),
    "recall": _higher("recall ↑", "recall", sesoi=_units(0.05)),
    "density": _higher("density ↑", "density", sesoi=_units(0.05)),
    "coverage": _higher("coverage ↑", "coverage", sesoi=_units(0.05)),
    "fd_rebound": _lower(
        "FD rebound (second-half max / min FD) ↓", "fd_rebound", sesoi=_units(0.1)
    ),
    "sample_tv": _descriptive(
        "total variation of samples (blur: lower = blurrier)", "sample_tv", sesoi=_d_z(0.5)
    ),
    "sparsity": _descriptive("fraction of exactly-zero weights", "sparsity", sesoi=_units(0.01)),
    "filter_sparsity": _descriptive(
        "fraction of all-zero units", "filter_sparsity", sesoi=_units(0.01)
    ),
    "near_zero": _descriptive(
        "fraction of near-zero weights (|w| < 1e-3 × initial RMS)", "near_zero", sesoi=_units(0.01)
    ),
    # Copying: C_T ≪ 0 copies the training set, ≫ 0 underfits; ≈ 0 is right, so no direction.
    "copying_pixels": _descriptive("copying statistic C_T, pixels (≪ 0: copies)", "C_T pixels"),
    "copying_features": _descriptive(
        "copying statistic C_T, features (≪ 0: copies)", "C_T features"
    ),
    "memorisation_pixels": _lower(
        "memorisation ratio, pixels (null 0.05) ↓", "memorisation pixels", sesoi=_units(0.05)
    ),
    "memorisation_features": _lower(
        "memorisation ratio, features (null 0.05) ↓", "memorisation features", sesoi=_units(0.05)
    ),
    "fd_inf": _lower("FD∞ vs held-out (features) ↓", "FD∞", sesoi=_units(5.0)),
    "fd_inf_train": _lower("FD∞ vs training set (features) ↓", "FD∞ train", sesoi=_units(5.0)),
    "fd_inf_gap": _lower(
        "FD∞ gap: vs held-out − vs train (> 0: closer to train) ↓", "FD∞ gap", sesoi=_units(5.0)
    ),
    "r_t": _descriptive("D overfitting r_t = E[sign D(x_train)]", "r_t"),
    "r_v": _lower("D overfitting r_v (0: held-out scored like train) ↓", "r_v", sesoi=_units(0.1)),
    "ppl": _lower("perceptual path length (classifier features) ↓", "PPL"),
    "jacobian_fro": _descriptive("RMS ‖J_G(z)‖_F (the map's scale)", "‖J‖_F"),
    "jacobian_log_cond": _lower("mean log condition number of J_G(z) ↓", "log cond J"),
}


def metric(name: str) -> Metric:
    """The :class:`Metric` of ``name``.

    Raises:
      ValueError: an undeclared metric (the declared ones are listed).
    """
    if name not in METRICS:
        raise ValueError(f"undeclared metric {name!r}; declared: {', '.join(METRICS)}")
    return METRICS[name]


def targets(model_type: str) -> tuple[str, ...]:
    """Valid targets of a model type: each network, the family's groups, then ``'both'``.

    ``'both'`` only where no group of the family names every network already
    (the cycle GAN's ``'all'``), so that :func:`experiments.study.members.describe`
    reads each target back under the name it was given.
    """
    family = families.get(model_type)
    groups = tuple(name for name, _ in family.target_groups)
    covered = any(set(nets) == set(family.networks) for _, nets in family.target_groups)
    return family.networks + groups + (() if covered else ("both",))


def target_networks(model_type: str, target: str) -> tuple[str, ...]:
    """The networks ``target`` names: itself, a group of the family, or every one (``'both'``)."""
    family = families.get(model_type)
    return (
        family.networks if target == "both" else dict(family.target_groups).get(target, (target,))
    )


def target_name(model_type: str | None, on, nets) -> str:
    """The target naming the penalised networks ``on`` of ``nets``: a group the family
    declares, ``'both'`` (all of more than one) or the names joined by commas."""
    groups = families.get(model_type).target_groups if model_type in families.FAMILIES else ()
    for name, group in groups:
        if set(group) == set(on):
            return name
    return "both" if len(on) == len(nets) > 1 else ",".join(on)


def check_names(penalties, target_names, model_type: str) -> None:
    """Raises ValueError naming an unknown penalty or target (listing the valid ones)."""
    for p in penalties:
        if p not in PENALTIES:
            raise ValueError(f"unknown penalty {p!r}; valid: {', '.join(PENALTIES)}")
        if PENALTIES[p].gan_only and not families.get(model_type).adversarial:
            raise ValueError(
                f"penalty {p!r} is a discriminator baseline; model_type "
                f"{model_type!r} has no discriminator"
            )
    valid = targets(model_type)
    for t in target_names:
        if t not in valid:
            raise ValueError(
                f"unknown target {t!r} for model_type {model_type!r}; valid: {', '.join(valid)}"
            )
