"""Calibration: measures the record that effective strengths are computed from.

:func:`measure` runs an experiment briefly *without* weight penalties (its
losses, model, data and optimizers kept; the penalty's mask and group axis
say which weights are measured) and records, per network and per penalised
layer, the fields of :data:`regan_jax.effective_strength.FIELDS`:

- ``grad_rms``: the RMS of the loss gradient entering the optimizer (where a
  coupled penalty adds its own), recorded by :func:`record_gradients`,
  averaged over the calibration steps and seeds;
- ``weight_rms``, ``mean_abs``, ``nonzero``, ``group_ms``: moments of the
  weights at the end of the calibration run;
- ``unit_norm_init``, ``norm_init``: the median unit norm and the kernel norm
  at initialisation;
- ``updates_per_step``: optimizer updates of the network per training step.

The network-level numbers pool its penalised layers (the per-layer ones are
kept for inspection). :func:`save` writes the record that
``config.eval.calibration`` names; :mod:`regan_jax.effective_strength` reads
it and turns raw strengths into effective ones and back; docs/calibration.md
derives the units.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from tqdm.auto import tqdm

from regan_jax import config as config_lib
from regan_jax import data, parallel, penalties, sweep, workdir
from regan_jax import program as program_lib
from regan_jax.effective_strength import FORMAT
from regan_jax.penalties.masks import config_mask, path_str, selected_leaves


class GradientRecordState(NamedTuple):
    """Running sums of :func:`record_gradients`."""

    count: jax.Array  # int32 [], updates seen
    sum_sq: Any  # per leaf, float32 []: Σ over updates of Σ g²


def record_gradients() -> optax.GradientTransformation:
    """An identity transform that sums each leaf's squared incoming gradient.

    Put first in a chain, it sees exactly what a coupled penalty would be
    added to (the loss gradient); the state holds the sums.
    """

    def init_fn(params):
        return GradientRecordState(
            jnp.zeros([], jnp.int32), jax.tree.map(lambda p: jnp.zeros([], jnp.float32), params)
        )

    def update_fn(updates, state, params=None):
        del params
        sum_sq = jax.tree.map(
            lambda s, g: s + jnp.sum(jnp.square(g.astype(jnp.float32))), state.sum_sq, updates
        )
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


def measure(
    config, *, steps: int = 200, seeds: Sequence[int] = (0, 1), progress: bool = True
) -> dict:
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
      (:data:`regan_jax.effective_strength.FIELDS`; the network's fields pool its layers).

    Raises:
      ValueError: ``steps`` < 1, no seeds, or an invalid config.
    """
    if steps < 1 or not seeds:
        raise ValueError(
            f"calibration needs steps >= 1 and at least one seed; got steps="
            f"{steps}, seeds={list(seeds)}"
        )
    config = unregularised(config)
    config.steps = int(steps)
    config_lib.validate(config)
    program = program_lib.build_program(
        config, wrap_optimizer=lambda opt: optax.chain(record_gradients(), opt)
    )
    seeds = [int(s) for s in seeds]
    states = [program.init(jax.random.key(s)) for s in seeds]
    initial = jax.device_get([s.params for s in states])
    state = sweep.stack_members(states)
    batches = data.make_iterator(
        config.data,
        seeds[0],
        member_seeds=seeds,
        rows_per_step=program.rows_per_step,
        source=program.source,
    )
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
            [p[net] for p in initial],
            record.sum_sq,
            record.count,
            steps,
            mask,
            axis,
        )
    return {
        "format": FORMAT,
        "experiment": config.name,
        "model_type": config.model_type,
        "steps": int(steps),
        "seeds": seeds,
        "networks": networks,
    }


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
    layers = {
        path: _moments(
            [w[path] for w in weights], [i[path] for i in inits], sums[path], counts, axis
        )
        for path in weights[0]
    }
    network = {
        key: sum(m[key] for m in layers.values())
        for key in ("size", "grad_sq", "w_sq", "w_abs", "nonzero", "group_sq")
    }
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
        "group_sq": float(
            sum(np.sum(np.square(w / np.where(u > 0, u, 1.0))) for w, u in zip(final, units))
        ),
        "init_units": np.concatenate([_unit_norms(w, axis).ravel() for w in init]),
        "init_sq_by_seed": np.array([np.sum(w * w) for w in init]),
    }


def _fields(moments, counts, steps) -> dict:
    """The record's fields (:data:`regan_jax.effective_strength.FIELDS`) from pooled moments."""
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
    return tqdm(total=steps, disable=not enabled, desc=f"calibrate {name}", leave=False)


def save(path, record: Mapping) -> None:
    """Writes ``record`` (from :func:`measure`) as JSON, atomically."""
    workdir.write_json(path, record)
