"""Effective strength: penalty strengths in units that mean the same push for every penalty.

A raw strength λ means different things for different penalties (coupled L1
saturates once λ exceeds the loss gradient; decoupled decay shrinks a weight by
about T·η·λ over a run). A calibration record of the experiment run without
penalties (measured by :mod:`regan_jax.calibration`; its :data:`FIELDS` per
network) gives ρ(λ), the RMS of the penalty's (sub)gradient at the calibrated
weights, and the effective strength e:

==========================  ====================================================
penalty                     effective strength
==========================  ====================================================
coupled (loss + R)          e = ρ(λ) / grad_rms
decoupled, proximal         e = S·ρ(λ) / weight_rms, S = Σ_k η_k m_k over the
                            run's steps × updates_per_step updates
max_norm                    e = r / unit_norm_init
l2_ball                     e = r / norm_init
==========================  ====================================================

ρ: λ·weight_rms (L2), λ·sqrt(nonzero) (L1), sqrt(λ₁² nonzero + 2λ₁λ₂ mean_abs
+ λ₂² weight_rms²) (elastic net), λ·sqrt(group_ms) (group L1). e is linear in
λ (or r), so :func:`raw_strength` inverts it. An adaptive penalty
(``penalty.<net>.adaptive``) holds e = its ``strength`` by construction
(:func:`adaptive_effective_strength`), with no record needed. Each kind of the optimizer
builder's registry (:data:`regan_jax.penalties.PENALTY_KINDS`) has one rule in
:data:`RULES`; the kind's role there picks the row. docs/calibration.md
derives the units.

This module reads records (:func:`load`, :func:`check_networks`) and reports
a run's ``effective_strength`` fields (:func:`summary_fields`); it imports
no config, program or workdir, so ``config.validate`` can check a record.
"""

import copy
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from regan_jax._names import choose
from regan_jax.penalties import PENALTY_KINDS
from regan_jax.penalties.hyperparams import multiplier_schedule

FORMAT = 1
# The per-network numbers a record holds (docs/calibration.md).
FIELDS = (
    "grad_rms",
    "weight_rms",
    "mean_abs",
    "nonzero",
    "group_ms",
    "unit_norm_init",
    "norm_init",
    "updates_per_step",
)


class Rule(NamedTuple):
    """How one penalty kind's setting becomes an effective strength.

    Attributes:
      gradient_rms: ``(fields, strength, l2_strength) -> ρ`` for a kind with
        strengths (None otherwise).
      radius_over: the record field a radius is divided by, for a projection
        kind (None otherwise).
    """

    gradient_rms: Callable[[Mapping, float, float], float] | None = None
    radius_over: str | None = None


def _l2_rms(fields, strength, l2_strength):
    del l2_strength
    return strength * fields["weight_rms"]


def _l1_rms(fields, strength, l2_strength):
    del l2_strength
    return strength * math.sqrt(fields["nonzero"])


def _elastic_net_rms(fields, strength, l2_strength):
    return math.sqrt(
        strength**2 * fields["nonzero"]
        + 2 * strength * l2_strength * fields["mean_abs"]
        + l2_strength**2 * fields["weight_rms"] ** 2
    )


def _group_l1_rms(fields, strength, l2_strength):
    del l2_strength
    return strength * math.sqrt(fields["group_ms"])


# One rule per key of PENALTY_KINDS (a test checks it); a proximal kind shares its penalty's ρ.
RULES: dict[str, Rule] = {
    "none": Rule(),
    "l2": Rule(_l2_rms),
    "l1": Rule(_l1_rms),
    "elastic_net": Rule(_elastic_net_rms),
    "group_l1": Rule(_group_l1_rms),
    "prox_l1": Rule(_l1_rms),
    "prox_elastic_net": Rule(_elastic_net_rms),
    "prox_group_l1": Rule(_group_l1_rms),
    "l2_ball": Rule(radius_over="norm_init"),
    "max_norm": Rule(radius_over="unit_norm_init"),
}
RADIUS_KINDS = tuple(kind for kind, rule in RULES.items() if rule.radius_over is not None)


def penalty_gradient_rms(kind: str, strength: float, l2_strength: float, fields: Mapping) -> float:
    """ρ: the RMS of ``kind``'s (sub)gradient at the calibrated weights (module docstring)."""
    rule = choose("penalty kind", kind, RULES)
    if rule.gradient_rms is None:
        raise ValueError(
            f"penalty kind {kind!r} has no gradient; valid: "
            f"{', '.join(k for k, r in RULES.items() if r.gradient_rms)}"
        )
    return rule.gradient_rms(fields, strength, l2_strength)


def total_step(optimizer_cfg, penalty_cfg, updates: int) -> float:
    """S = Σ_{k < updates} η_k m_k: the learning rate times the strength's schedule, summed."""
    k = jnp.arange(int(updates))
    per_update = np.full(k.shape, float(optimizer_cfg.learning_rate))
    for cfg in (optimizer_cfg, penalty_cfg):
        multiplier = multiplier_schedule(cfg.schedule, cfg.warmup_steps, cfg.decay_steps)
        if multiplier is not None:
            per_update = per_update * np.asarray(multiplier(k), np.float64)
    return float(np.sum(per_update))


def adaptive_effective_strength(penalty_cfg, steps: int, fields: Mapping | None) -> float | None:
    """e of an adaptive penalty (:mod:`regan_jax.penalties.adaptive`): its ``strength``.

    A coupled one holds e·m(k) at update k, reported as e (the fixed-λ row
    ignores the schedule likewise); a decoupled or proximal one shrinks by
    e·m(k)/U at update k of U, so e × the mean of m over the run's U updates
    (U from ``fields['updates_per_step']``; None without ``fields`` when the
    schedule is not constant).
    """
    multiplier = multiplier_schedule(
        penalty_cfg.schedule, penalty_cfg.warmup_steps, penalty_cfg.decay_steps
    )
    coupled = PENALTY_KINDS[penalty_cfg.kind].role == "additive" and (
        penalty_cfg.coupling == "coupled"
    )
    if multiplier is None or coupled:
        return float(penalty_cfg.strength)
    if fields is None:
        return None
    updates = jnp.arange(round(steps * fields["updates_per_step"]))
    return float(penalty_cfg.strength) * float(np.mean(np.asarray(multiplier(updates), np.float64)))


def effective_strength(penalty_cfg, optimizer_cfg, steps: int, fields: Mapping) -> float | None:
    """The effective strength of one network's penalty (module docstring); None for no penalty.

    Args:
      penalty_cfg: ``config.penalty.<net>`` (its base strength or radius).
      optimizer_cfg: ``config.optimizer.<net>`` (learning rate and schedule).
      steps: the run's training steps T.
      fields: the network's calibration record (``record['networks'][net]``).
    """
    kind = penalty_cfg.kind
    rule = choose("penalty kind", kind, RULES)
    if penalty_cfg.adaptive:
        return adaptive_effective_strength(penalty_cfg, steps, fields)
    if rule.radius_over is not None:
        return penalty_cfg.radius / fields[rule.radius_over]
    if rule.gradient_rms is None:
        return None
    rho = rule.gradient_rms(fields, penalty_cfg.strength, penalty_cfg.l2_strength)
    if PENALTY_KINDS[kind].role == "additive" and penalty_cfg.coupling == "coupled":
        return rho / fields["grad_rms"]
    updates = round(steps * fields["updates_per_step"])
    return total_step(optimizer_cfg, penalty_cfg, updates) * rho / fields["weight_rms"]


def raw_strength(
    penalty_cfg, optimizer_cfg, steps: int, fields: Mapping, effective: float
) -> float:
    """The raw strength (or radius) at which :func:`effective_strength` is ``effective``.

    For elastic net the ratio ``l2_strength / strength`` of ``penalty_cfg`` is
    kept and the returned value is the new ``strength`` (λ₁).

    Raises:
      ValueError: a non-positive ``effective`` or a penalty kind of ``none``.
    """
    if not effective > 0:
        raise ValueError(f"effective strength must be > 0, got {effective!r}")
    if penalty_cfg.kind == "none":
        raise ValueError("penalty kind 'none' has no strength to calibrate")
    # e is linear in the radius, or in the strengths' common scale: e(value) = value * e(1).
    unit = copy.deepcopy(penalty_cfg)
    if unit.kind in RADIUS_KINDS:
        unit.radius = 1.0
    else:
        ratio = unit.l2_strength / unit.strength if unit.strength > 0 else 1.0
        unit.strength, unit.l2_strength = 1.0, ratio
    return effective / effective_strength(unit, optimizer_cfg, steps, fields)


def load(path) -> dict:
    """Reads a record written by :func:`regan_jax.calibration.save`.

    Raises:
      ValueError: no file, or a file that is not a calibration record.
    """
    try:
        with open(path) as f:
            record = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"no calibration record at {str(path)!r}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{str(path)!r} is not a calibration record: {e}") from None
    if (
        not isinstance(record, dict)
        or record.get("format") != FORMAT
        or any(f not in fields for fields in record.get("networks", {}).values() for f in FIELDS)
    ):
        raise ValueError(
            f"{str(path)!r} is not a calibration record (format {FORMAT}, "
            f"fields {', '.join(FIELDS)} per network)"
        )
    return record


def check_networks(record: Mapping, networks: Sequence[str], where: str) -> None:
    """Raises unless ``record`` calibrates exactly ``networks``."""
    if sorted(record["networks"]) != sorted(networks):
        raise ValueError(
            f"{where}: the calibration record has networks "
            f"{sorted(record['networks'])}; this model trains {sorted(networks)}"
        )


def summary_fields(config, record: Mapping | None = None) -> dict:
    """``effective_strength_<net>`` per penalised network and ``effective_strength``.

    ``effective_strength`` is the common value when every penalised network's
    agrees (to 1e-6 relative: one effective strength on ``both``), else None.
    Without ``config.eval.calibration`` (and no ``record`` given) only the
    adaptive penalties', whose e needs no record; empty if there are none.
    """
    if record is None and config.eval.calibration:
        record = load(config.eval.calibration)
    out, unknown = {}, False
    for net in config.penalty.keys():
        cfg = config.penalty[net]
        if record is None and not cfg.adaptive:
            unknown = unknown or cfg.kind != "none"  # a fixed penalty's e needs the record
            continue
        fields = record["networks"][net] if record is not None else None
        value = effective_strength(cfg, config.optimizer[net], config.steps, fields)
        if value is not None:
            out[f"effective_strength_{net}"] = value
    if record is None and not out:
        return {}
    values = list(out.values())
    common = (
        not unknown and values and all(math.isclose(v, values[0], rel_tol=1e-6) for v in values)
    )
    out["effective_strength"] = float(np.mean(values)) if common else None
    return out
