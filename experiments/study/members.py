"""Member configs from the study's names: grids, random searches, and the labels read back.

A *member* is one run of a sweep: a named penalty (:data:`experiments.study.vocabulary.PENALTIES`)
at a swept value on a target, with a seed, as its full config (:func:`member_config`);
:func:`grid` and :func:`random_search` make many. :func:`describe` reads the labels back
from any run's config, so ``collect`` labels runs that were trained by hand too.
"""

import itertools
import math
import pathlib
from typing import NamedTuple

import numpy as np

from experiments.study.vocabulary import (
    BASELINES,
    PENALTIES,
    WEIGHT_PENALTIES,
    Penalty,
    check_names,
    target_name,
    target_networks,
)
from regan_jax import config as config_lib
from regan_jax import effective_strength as calibration_lib


class Member(NamedTuple):
    """One run of a sweep: its labels and its full config (target None: unswept).

    ``value`` is the swept value as given: a raw strength (radius), or an
    effective strength when ``calibrated`` (see :mod:`regan_jax.calibration`).
    """

    penalty: str
    target: str | None
    value: float | None
    seed: int
    config: object
    calibrated: bool = False
    base: str = "none"

    @property
    def name(self) -> str:
        """The member's directory name, e.g. ``prox_l1-g-1e-04-seed0``.

        ``-e0.1-`` for an effective strength; ``r1+`` in front for a penalty
        on top of a regulariser; ``spectral_norm-both-lr0.0002-seed0`` for a
        learning-rate sweep.
        """
        unit = (
            "lr"
            if PENALTIES[self.penalty].swept == "learning_rate"
            else "e"
            if self.calibrated
            else ""
        )
        value = "" if self.value is None else f"-{unit}{self.value:.3g}"
        target = "" if self.value is None else f"-{self.target}"
        base = "" if self.base == "none" else f"{self.base}+"
        return f"{base}{self.penalty}{target}{value}-seed{self.seed}"


def member_config(
    base, penalty: str, target: str, value: float | None, seed: int, calibration: str | None = None
):
    """``base`` with ``penalty`` at ``value`` on ``target`` and the given seed (a copy).

    Unswept penalties (``none`` and the baselines) take ``value`` None and
    ignore ``target``. With ``calibration`` (the path of a
    :mod:`regan_jax.calibration` record, set as ``config.eval.calibration`` on
    every member so that all share one program) ``value`` is an effective
    strength: each target network gets the raw strength (radius) that means
    ``value`` on it, so ``both`` may carry a different raw λ per network.

    Raises:
      ValueError: an unknown penalty or target, or a missing value for a
        swept penalty.
    """
    spec = PENALTIES.get(penalty)
    check_names([penalty], [] if spec is None or spec.swept is None else [target], base.model_type)
    if (spec.swept is None) != (value is None):
        raise ValueError(
            f"penalty {penalty!r} {'takes no' if spec.swept is None else 'needs a'} "
            f"swept value, got {value!r}"
        )
    config = config_lib.copy_config(base)
    config.seed = seed
    record = None
    if calibration is not None:
        # Absolute: runs resume and collect from any working directory.
        config.eval.calibration = str(pathlib.Path(calibration).resolve())
        record = calibration_lib.load(calibration)
    for key, setting in spec.settings:
        config_lib.override(config, key, setting)
    if spec.swept == "learning_rate":
        for net in config.optimizer.keys():
            config.optimizer[net].learning_rate = float(value)
        config_lib.validate(config)
        return config
    nets = target_networks(config.model_type, target)
    for net in nets if spec.swept is not None else ():
        raw = float(value) if record is None else raw_value(config, penalty, net, value, record)
        _set_penalty(config.penalty[net], spec, raw)
    config_lib.validate(config)
    return config


def with_regulariser(base, on: str):
    """``base`` carrying the regulariser ``on`` of :data:`.vocabulary.BASELINES` (a copy).

    Raises:
      ValueError: an unknown regulariser.
    """
    if on not in BASELINES:
        raise ValueError(f"unknown regulariser {on!r}; valid: {', '.join(BASELINES)}")
    config = config_lib.copy_config(base)
    for key, setting in PENALTIES[on].settings:
        config_lib.override(config, key, setting)
    return config


def _set_penalty(cfg, spec: Penalty, value: float) -> None:
    """One network's penalty config set to ``spec`` at the raw ``value`` (and its tied fields)."""
    cfg.kind, cfg.coupling = spec.kind, spec.coupling
    for field in (spec.swept, *spec.tied):
        cfg[field] = float(value)


def raw_value(base, penalty: str, net: str, effective: float, record) -> float:
    """The raw strength (radius) of ``penalty`` on ``net`` at ``effective`` strength.

    For a run of ``base.steps`` steps with ``base``'s optimizer, from the
    calibration ``record`` (:func:`regan_jax.effective_strength.raw_strength`).
    """
    spec = PENALTIES[penalty]
    cfg = config_lib.copy_config(base.penalty[net])
    _set_penalty(cfg, spec, 1.0)
    return calibration_lib.raw_strength(
        cfg, base.optimizer[net], base.steps, record["networks"][net], effective
    )


def strength_per_step(penalty: str, effective: float | None, steps: int) -> float | None:
    """An effective strength per training step, shown beside the per-run one.

    A decoupled or proximal penalty's effective strength is its total
    shrinkage over the run's ``steps`` (:mod:`regan_jax.calibration`), so per
    step it is ``effective / steps``: the same e over twice the steps is half
    the push per step (the length confound the ``length`` preset ablates).
    A coupled penalty's e is already per step (its gradient relative to the
    loss gradient) and comes back unchanged; a radius, a baseline or a
    missing strength gives None.
    """
    spec = PENALTIES.get(penalty)
    if effective is None or spec is None or spec.swept != "strength":
        return None
    over_the_run = spec.coupling == "decoupled" or spec.kind.startswith("prox_")
    return effective / steps if over_the_run else effective


def grid(
    base, penalties, target_names, values, seeds, calibration=None, on: str = "none"
) -> list[Member]:
    """Every (penalty, target, value, seed); unswept penalties once per seed.

    ``values`` maps a swept field (``'strength'``, ``'radius'``,
    ``'learning_rate'``) to its list (a missing ``'learning_rate'`` list:
    the base config's rate); with ``calibration`` (a record's path) the
    strengths and radii are effective strengths (see :func:`member_config`).
    ``on`` names a regulariser of :data:`~experiments.study.vocabulary.BASELINES` that every member
    carries (weight penalties on top of R1: ``on='r1'``).
    """
    check_names(penalties, target_names, base.model_type)
    base = with_regulariser(base, on)
    members = []
    for p in penalties:
        swept = PENALTIES[p].swept
        if swept is None:
            cells = [(None, None)]
        elif swept == "learning_rate":
            rates = values.get(swept) or [
                base.optimizer[config_lib.networks(base.model_type)[0]].learning_rate
            ]
            cells = [("both", rate) for rate in rates]
        else:
            cells = itertools.product(target_names, values[swept])
        for (target, value), seed in itertools.product(cells, seeds):
            members.append(
                Member(
                    p,
                    target,
                    value,
                    seed,
                    member_config(base, p, target, value, seed, calibration),
                    calibration is not None,
                    on,
                )
            )
    return _unique(members)


def random_search(
    base, penalties, target_names, ranges, seeds, draws: int, search_seed: int, calibration=None
) -> list[Member]:
    """``draws`` log-uniform values per (swept penalty, target), as in compare_gan.

    ``ranges`` maps a swept field to ``(low, high)``; value = exp(U[log low,
    log high]) from ``numpy.random.default_rng(search_seed)`` (effective
    strengths with ``calibration``, see :func:`grid`).
    """
    rng = np.random.default_rng(search_seed)
    values = {}
    for field, (low, high) in ranges.items():
        if not 0 < low < high:
            raise ValueError(f"range of {field} must satisfy 0 < low < high, got {low}, {high}")
        values[field] = [
            float(f"{v:.3g}") for v in np.exp(rng.uniform(math.log(low), math.log(high), draws))
        ]
    return grid(base, penalties, target_names, values, seeds, calibration)


def describe(flat_config: dict) -> dict:
    """The study labels of a run from its flattened config (``config.json``).

    Returns ``{'penalty', 'target', 'value', 'regulariser'}``: the registry
    name whose setting the config carries (``'custom'`` if none does), the
    networks it is on (None for unswept penalties), the swept raw value (of
    the first target network, in sorted order, for a calibrated run on
    ``both``; the effective strength is the summary's ``effective_strength``;
    the learning rate of a spectral-norm run) and the regulariser of
    :data:`~experiments.study.vocabulary.BASELINES` the run carries besides (``'r1'`` for a weight
    penalty on top of R1). Inverse of :func:`member_config`.
    """
    nets = sorted(
        k.split(".")[1] for k in flat_config if k.startswith("penalty.") and k.endswith(".kind")
    )
    on = [n for n in nets if flat_config[f"penalty.{n}.kind"] != "none"]
    regulariser = _regulariser(flat_config)
    if not on:
        if regulariser == "spectral_norm":
            return {
                "penalty": regulariser,
                "target": "both",
                "regulariser": regulariser,
                "value": flat_config[f"optimizer.{nets[0]}.learning_rate"],
            }
        return {"penalty": regulariser, "target": None, "value": None, "regulariser": regulariser}
    labels = _weight_labels(flat_config, nets, on)
    return {**labels, "regulariser": regulariser}


def _regulariser(flat_config: dict) -> str:
    """Which of the baselines a config's model and loss settings carry (or 'custom')."""
    for name in BASELINES[1:]:
        if all(flat_config.get(k) == v for k, v in PENALTIES[name].settings):
            return name
    plain = (
        not flat_config.get("model.spectral_norm")
        and flat_config.get("loss.gradient_penalty", "none") == "none"
    )
    return "none" if plain else "custom"


def _weight_labels(flat_config: dict, nets: list, on: list) -> dict:
    """``{'penalty', 'target', 'value'}`` of the weight penalty on the networks ``on``."""
    # Calibrated runs on 'both' carry a raw value per network: compare the kinds only.
    fields = (
        ("kind", "coupling")
        if flat_config.get("eval.calibration")
        else ("kind", "coupling", "strength", "l2_strength", "radius")
    )
    settings = {tuple(flat_config[f"penalty.{n}.{f}"] for f in fields) for n in on}
    kind, coupling = flat_config[f"penalty.{on[0]}.kind"], flat_config[f"penalty.{on[0]}.coupling"]
    target = target_name(flat_config.get("model_type"), on, nets)
    for name in WEIGHT_PENALTIES:
        spec = PENALTIES[name]
        if len(settings) == 1 and (spec.kind, spec.coupling) == (kind, coupling):
            return {
                "penalty": name,
                "target": target,
                "value": flat_config[f"penalty.{on[0]}.{spec.swept}"],
            }
    return {"penalty": "custom", "target": target, "value": None}


def _unique(members: list[Member]) -> list[Member]:
    seen, out = set(), []
    for m in members:
        if m.name not in seen:
            seen.add(m.name)
            out.append(m)
    return out
