"""Calibration: penalty strengths in effective units that mean the same push for every penalty.

A raw strength λ means different things for different penalties: coupled L1
before Adam saturates once λ exceeds the loss gradient, while decoupled decay
and proximal steps shrink a weight by about T·η·λ in total over a run of T
updates at learning rate η -- negligible at the same λ. :func:`measure` runs
an experiment briefly *without* weight penalties and records, per network and
per penalised layer (the penalty's mask), what the units need:

- ``grad_rms`` -- the RMS of the loss gradient where a coupled penalty adds it
  (the gradient entering the optimizer, recorded by :func:`record_gradients`),
  averaged over the calibration steps and seeds;
- the weights at the end of the calibration run: ``weight_rms`` = sqrt(E w²),
  ``mean_abs`` = E|w|, ``nonzero`` = the fraction of non-zero weights,
  ``group_ms`` = E over weights of (w / ‖w_unit‖)² (= nonzero units / weights);
- at initialisation: ``unit_norm_init`` (median norm of an output unit's
  weights) and ``norm_init`` (the network's kernel norm);
- ``updates_per_step``: optimizer updates of the network per training step
  (a GAN's discriminator with ``d_steps`` > 1 updates more often).

With ρ(λ) the RMS of the penalty's (sub)gradient at those weights -- the
closed forms λ·weight_rms (L2), λ·sqrt(nonzero) (L1),
sqrt(λ₁² nonzero + 2λ₁λ₂ mean_abs + λ₂² weight_rms²) (elastic net) and
λ·sqrt(group_ms) (group L1) -- the *effective strength* e of a penalty is

==========================  ====================================================
penalty                     effective strength
==========================  ====================================================
coupled (loss + R)          e = ρ(λ) / grad_rms: the penalty's gradient relative
                            to the loss gradient it is added to
decoupled (AdamW-style),    e = S·ρ(λ) / weight_rms with S = Σ_k η_k m_k over the
proximal                    run's U = steps × updates_per_step updates (η_k the
                            learning rate, m_k the strength's schedule): the
                            total shrinkage over the run relative to the
                            weights' size. L2: e = S·λ (T·η·λ); L1: S·λ /
                            weight_rms; group L1: ≈ S·λ / unit norm
max_norm                    e = r / unit_norm_init: the radius relative to the
                            initial unit norm (smaller = stronger)
l2_ball                     e = r / norm_init
==========================  ====================================================

so e = 1 is "the penalty's gradient as large as the loss gradient" for a
coupled penalty and "enough shrinkage over the run to remove weights of the
typical size" for a decoupled or proximal one; both are linear in λ, and
:func:`raw_strength` inverts them. The network-level numbers pool all of its
penalised layers (the per-layer ones are kept in the record for inspection).
The loss gradient's scale drifts during training; the calibration is taken
over the first ``steps`` steps, which the record states.

The record (:func:`save` / :func:`load`, JSON) is what
``config.eval.calibration`` names; a run with one reports
``effective_strength`` (and ``effective_strength_<net>``) in its summary
(:func:`summary_fields`).
"""
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from regan_jax import config as config_lib
from regan_jax import data, parallel, penalties, sweep
from regan_jax import program as program_lib
from regan_jax.penalties.hyperparams import multiplier_schedule
from regan_jax.penalties.masks import config_mask, path_str, selected_leaves

FORMAT = 1
RADIUS_KINDS = ("max_norm", "l2_ball")
# The per-network numbers a record holds (module docstring).
FIELDS = ("grad_rms", "weight_rms", "mean_abs", "nonzero", "group_ms", "unit_norm_init",
          "norm_init", "updates_per_step")


# ----------------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------------

class GradientRecordState(NamedTuple):
    """Running sums of :func:`record_gradients`."""
    count: jax.Array    # int32 [], updates seen
    sum_sq: Any         # per leaf, float32 []: Σ over updates of Σ g²


def record_gradients() -> optax.GradientTransformation:
    """An identity transform that sums each leaf's squared incoming gradient.

    Put first in a chain, it sees exactly what a coupled penalty would be
    added to (the loss gradient); the state holds the sums.
    """
    def init_fn(params):
        return GradientRecordState(jnp.zeros([], jnp.int32),
                                   jax.tree.map(lambda p: jnp.zeros([], jnp.float32), params))

    def update_fn(updates, state, params=None):
        del params
        sum_sq = jax.tree.map(lambda s, g: s + jnp.sum(jnp.square(g.astype(jnp.float32))),
                              state.sum_sq, updates)
        return updates, GradientRecordState(state.count + 1, sum_sq)

    return optax.GradientTransformation(init_fn, update_fn)


def unregularised(config) -> ml_collections.ConfigDict:
    """``config`` with every network's weight penalty removed (a copy); losses kept.

    The penalty's ``mask`` and ``group_axis`` stay: they say which weights
    (and units) the calibration measures.
    """
    config = config_lib.copy_config(config)
    default = penalties.default_penalty_config()
    for net in config.penalty.keys():
        for key, value in default.items():
            if key not in ("mask", "group_axis"):
                config.penalty[net][key] = value
    return config


def measure(config, *, steps: int = 200, seeds: Sequence[int] = (0, 1),
            progress: bool = True) -> dict:
    """Runs ``config`` unregularised for ``steps`` steps per seed (vmapped) and records the units.

    Args:
      config: the experiment (its penalties are ignored; its loss, model,
        data and optimizers are used as they are).
      steps: calibration steps (>= 1).
      seeds: one calibration run per seed (>= 1 seeds).
      progress: a tqdm bar over the steps.

    Returns:
      The record: ``{'format', 'experiment', 'model_type', 'steps', 'seeds',
      'networks': {net: {field: value, ..., 'layers': {path: {...}}}}}``
      (:data:`FIELDS`; the network's fields pool its layers).

    Raises:
      ValueError: ``steps`` < 1, no seeds, or an invalid config.
    """
    if steps < 1 or not seeds:
        raise ValueError(f"calibration needs steps >= 1 and at least one seed; got steps="
                         f"{steps}, seeds={list(seeds)}")
    config = unregularised(config)
    config.steps = int(steps)
    config_lib.validate(config)
    program = program_lib.build_program(
        config, wrap_optimizer=lambda opt: optax.chain(record_gradients(), opt))
    seeds = [int(s) for s in seeds]
    states = [program.init(jax.random.key(s)) for s in seeds]
    initial = jax.device_get([s.params for s in states])
    state = sweep.stack_members(states)
    batches = data.make_iterator(config.data, seeds[0], member_seeds=seeds,
                                 rows_per_step=program.rows_per_step, source=program.source)
    run_step = parallel.member_parallel(program.step, len(seeds))
    bar = _progress(steps, progress, config.name)
    for _ in range(steps):
        state, _ = run_step(state, next(batches))
        bar.update(1)
    bar.close()
    state = jax.device_get(state)
    networks = {}
    for net in program.family.networks:
        record = state.opt_state[net][0]
        mask = config_mask(config.penalty[net].mask)
        axis = config.penalty[net].group_axis
        networks[net] = _network_fields(
            [_member(state.params[net], k) for k in range(len(seeds))],
            [p[net] for p in initial], record.sum_sq, record.count, steps, mask, axis)
    return {"format": FORMAT, "experiment": config.name, "model_type": config.model_type,
            "steps": int(steps), "seeds": seeds, "networks": networks}


def _member(tree, index: int):
    """Member ``index`` of a host-side stacked tree."""
    return jax.tree.map(lambda x: np.asarray(x)[index], tree)


def _network_fields(params_by_seed, init_by_seed, sum_sq, counts, steps, mask, axis) -> dict:
    """One network's record: its fields pooled over layers, and each layer's own.

    ``params_by_seed`` / ``init_by_seed``: the network's final and initial
    parameters per seed; ``sum_sq``: the stacked gradient sums ``[K]`` per
    leaf; ``counts``: the updates per seed ``[K]``.
    """
    weights = [dict(selected_leaves(p, mask)) for p in params_by_seed]
    inits = [dict(selected_leaves(p, mask)) for p in init_by_seed]
    sums = {path_str(p): x for p, x in jax.tree_util.tree_flatten_with_path(sum_sq)[0]}
    counts = np.asarray(counts, np.float64).reshape(-1)
    layers = {path: _moments([w[path] for w in weights], [i[path] for i in inits],
                             sums[path], counts, axis) for path in weights[0]}
    network = {key: sum(m[key] for m in layers.values()) for key in
               ("size", "grad_sq", "w_sq", "w_abs", "nonzero", "group_sq")}
    network["init_units"] = np.concatenate([m["init_units"] for m in layers.values()])
    network["init_sq_by_seed"] = np.sum([m["init_sq_by_seed"] for m in layers.values()], axis=0)
    out = _fields(network, counts, steps)
    out["layers"] = {path: _fields(m, counts, steps) for path, m in layers.items()}
    return out


def _moments(final_by_seed, init_by_seed, grad_sums, counts, axis) -> dict:
    """Sums over seeds of one layer's weight moments (what :func:`_fields` divides)."""
    final = [np.asarray(x, np.float64) for x in final_by_seed]
    init = [np.asarray(x, np.float64) for x in init_by_seed]
    units = [_unit_norms(w, axis, keepdims=True) for w in final]
    return {
        "size": float(sum(w.size for w in final)),
        "grad_sq": float(np.sum(grad_sums)) / float(np.mean(counts)),  # Σ_seeds E_updates Σ g²
        "w_sq": float(sum(np.sum(w * w) for w in final)),
        "w_abs": float(sum(np.sum(np.abs(w)) for w in final)),
        "nonzero": float(sum(np.count_nonzero(w) for w in final)),
        "group_sq": float(sum(np.sum(np.square(w / np.where(u > 0, u, 1.0)))
                              for w, u in zip(final, units))),
        "init_units": np.concatenate([_unit_norms(w, axis).ravel() for w in init]),
        "init_sq_by_seed": np.array([np.sum(w * w) for w in init]),
    }


def _fields(moments, counts, steps) -> dict:
    """The record's :data:`FIELDS` from pooled moments."""
    size = moments["size"]
    return {
        "grad_rms": math.sqrt(moments["grad_sq"] / size),
        "weight_rms": math.sqrt(moments["w_sq"] / size),
        "mean_abs": moments["w_abs"] / size,
        "nonzero": moments["nonzero"] / size,
        "group_ms": moments["group_sq"] / size,
        "unit_norm_init": float(np.median(moments["init_units"])),
        "norm_init": float(np.mean(np.sqrt(moments["init_sq_by_seed"]))),
        "updates_per_step": float(np.mean(counts)) / steps,
    }


def _unit_norms(x: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    """Norms of the slices of a kernel along ``axis`` (one output unit or filter each)."""
    others = tuple(i for i in range(x.ndim) if i != axis % x.ndim)
    return np.sqrt(np.sum(np.square(x), axis=others, keepdims=keepdims))


def _progress(steps, enabled, name):
    from tqdm.auto import tqdm

    return tqdm(total=steps, disable=not enabled, desc=f"calibrate {name}", leave=False)


# ----------------------------------------------------------------------------
# Units
# ----------------------------------------------------------------------------

def penalty_gradient_rms(kind: str, strength: float, l2_strength: float, fields: Mapping) -> float:
    """ρ: the RMS of ``kind``'s (sub)gradient at the calibrated weights (module docstring)."""
    base = kind.removeprefix("prox_")
    if base == "l2":
        return strength * fields["weight_rms"]
    if base == "l1":
        return strength * math.sqrt(fields["nonzero"])
    if base == "elastic_net":
        return math.sqrt(strength**2 * fields["nonzero"]
                         + 2 * strength * l2_strength * fields["mean_abs"]
                         + l2_strength**2 * fields["weight_rms"]**2)
    if base == "group_l1":
        return strength * math.sqrt(fields["group_ms"])
    raise ValueError(f"penalty kind {kind!r} has no gradient; valid: l2, l1, elastic_net, "
                     "group_l1 and their prox_ forms")


def total_step(optimizer_cfg, penalty_cfg, updates: int) -> float:
    """S = Σ_{k < updates} η_k m_k: the learning rate times the strength's schedule, summed."""
    k = jnp.arange(int(updates))
    per_update = np.full(k.shape, float(optimizer_cfg.learning_rate))
    for cfg in (optimizer_cfg, penalty_cfg):
        multiplier = multiplier_schedule(cfg.schedule, cfg.warmup_steps, cfg.decay_steps)
        if multiplier is not None:
            per_update = per_update * np.asarray(multiplier(k), np.float64)
    return float(np.sum(per_update))


def effective_strength(penalty_cfg, optimizer_cfg, steps: int, fields: Mapping) -> float | None:
    """The effective strength of one network's penalty (module docstring); None for no penalty.

    Args:
      penalty_cfg: ``config.penalty.<net>`` (its base strength or radius).
      optimizer_cfg: ``config.optimizer.<net>`` (learning rate and schedule).
      steps: the run's training steps T.
      fields: the network's calibration record (``record['networks'][net]``).
    """
    kind = penalty_cfg.kind
    if kind == "none":
        return None
    if kind == "max_norm":
        return penalty_cfg.radius / fields["unit_norm_init"]
    if kind == "l2_ball":
        return penalty_cfg.radius / fields["norm_init"]
    rho = penalty_gradient_rms(kind, penalty_cfg.strength, penalty_cfg.l2_strength, fields)
    if not kind.startswith("prox_") and penalty_cfg.coupling == "coupled":
        return rho / fields["grad_rms"]
    updates = round(steps * fields["updates_per_step"])
    return total_step(optimizer_cfg, penalty_cfg, updates) * rho / fields["weight_rms"]


def raw_strength(penalty_cfg, optimizer_cfg, steps: int, fields: Mapping,
                 effective: float) -> float:
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
    unit = config_lib.copy_config(penalty_cfg)
    if unit.kind in RADIUS_KINDS:
        unit.radius = 1.0
    else:
        ratio = unit.l2_strength / unit.strength if unit.strength > 0 else 1.0
        unit.strength, unit.l2_strength = 1.0, ratio
    return effective / effective_strength(unit, optimizer_cfg, steps, fields)


# ----------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------

def save(path, record: Mapping) -> None:
    """Writes ``record`` as JSON, atomically."""
    from regan_jax import workdir  # workdir reads configs; keep this module light.

    workdir.write_json(path, record)


def load(path) -> dict:
    """Reads a record written by :func:`save`.

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
    if not isinstance(record, dict) or record.get("format") != FORMAT or any(
            f not in fields for fields in record.get("networks", {}).values() for f in FIELDS):
        raise ValueError(f"{str(path)!r} is not a calibration record (format {FORMAT}, "
                         f"fields {', '.join(FIELDS)} per network)")
    return record


def check_networks(record: Mapping, networks: Sequence[str], where: str) -> None:
    """Raises unless ``record`` calibrates exactly ``networks``."""
    if sorted(record["networks"]) != sorted(networks):
        raise ValueError(f"{where}: the calibration record has networks "
                         f"{sorted(record['networks'])}; this model trains {sorted(networks)}")


def summary_fields(config, record: Mapping | None = None) -> dict:
    """``effective_strength_<net>`` per penalised network and ``effective_strength``.

    ``effective_strength`` is the common value when every penalised network's
    agrees (to 1e-6 relative: one effective strength on ``both``), else None.
    Empty when ``config.eval.calibration`` is unset (and no ``record`` given).
    """
    if record is None:
        if not config.eval.calibration:
            return {}
        record = load(config.eval.calibration)
    out = {}
    for net in config.penalty.keys():
        value = effective_strength(config.penalty[net], config.optimizer[net], config.steps,
                                   record["networks"][net])
        if value is not None:
            out[f"effective_strength_{net}"] = value
    values = list(out.values())
    common = values and all(math.isclose(v, values[0], rel_tol=1e-6) for v in values)
    out["effective_strength"] = float(np.mean(values)) if common else None
    return out
