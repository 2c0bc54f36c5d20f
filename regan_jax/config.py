"""The experiment config: one schema, built from each module's defaults.

An experiment config is a locked ``ml_collections.ConfigDict`` (unknown keys
fail)::

    name, model_type, seed, steps
    data            regan_jax.data.default_config()
    model           regan_jax.models.default_config()
    loss            regan_jax.losses.default_config() (+ the family's own keys)
    optimizer.<net> regan_jax.penalties.default_optimizer_config()
    penalty.<net>   regan_jax.penalties.default_penalty_config()
    eval            sample counts and the interval of the cheap in-training FD
    log             intervals of metrics, sample grids and checkpoints

``model_type`` names the model family (:mod:`regan_jax.families`), which
says the networks: ``g``, ``d`` for ``gan``/``cgan``, ``encoder``,
``decoder`` for ``vae``, ``g``, ``f``, ``d_a``, ``d_b`` for ``cyclegan``.
``experiments/configs/*.py`` start from :func:`base_config` and override a
few fields. :func:`validate` is the one validation pass over every field;
the layers after it trust the config.
"""

import ast
import copy
import os

import ml_collections

from regan_jax import data, effective_strength, families, models, penalties

TOP_LEVEL = (
    "name",
    "model_type",
    "seed",
    "steps",
    "data",
    "model",
    "loss",
    "optimizer",
    "penalty",
    "eval",
    "log",
)
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
# Keys that were removed, with what replaces them (an override of one names its replacement).
REMOVED = {"model.kind": "model_type (the model family: gan, cgan, vae)"}
# Keys added since runs were first written, with the value that gives the
# behaviour of the runs written before them (filled in by ``upgrade``).
ADDED = {
    ("model", "g_output"): "tanh",
    ("eval", "calibration"): "",
    ("data", "train_size"): None,
    ("data", "train_subset_seed"): 0,
    ("eval", "protocol_v2"): False,
}
# Likewise for keys added to every network's section of a group.
ADDED_PER_NETWORK = {
    ("penalty", "adaptive"): False,
    ("penalty", "granularity"): "network",
}


def networks(model_type: str) -> tuple[str, ...]:
    """Names of the trained networks of a model family (``'gan'`` -> ``('g', 'd')``)."""
    return families.get(model_type).networks


def base_config(model_type: str, dataset: str) -> ml_collections.ConfigDict:
    """The full default config of a ``model_type`` on ``dataset``, locked.

    Every section comes from the module that reads it, so a new field there is
    a new (overridable, validated) config key here with no further change.

    Args:
      model_type: a family name (``'gan'``, ``'cgan'``, ``'vae'``, ``'cyclegan'``).
      dataset: ``config.data.name`` (e.g. ``'digits'``, ``'ring8'``).
    """
    family = families.get(model_type)
    nets = family.networks
    config = ml_collections.ConfigDict()
    config.name = f"{dataset}_{model_type}"
    config.model_type = model_type
    config.seed = 0
    config.steps = 2000
    config.data = data.default_config()
    config.data.name = dataset
    config.model = models.default_config()
    config.loss = family.loss_config()
    config.optimizer = {net: penalties.default_optimizer_config() for net in nets}
    config.penalty = {net: penalties.default_penalty_config() for net in nets}
    config.eval = eval_config()
    config.log = log_config()
    config.lock()
    return config


def eval_config() -> ml_collections.ConfigDict:
    """Evaluation sizes: final sample count, and the cheap FD logged while training.

    ``fd_every`` = 0 turns the in-training FD off; it is what the stability
    figure plots against steps.
    """
    return ml_collections.ConfigDict(
        {
            "num_samples": 2000,  # samples drawn for the final summary
            "fd_every": 0,  # steps between cheap FDs logged to metrics.jsonl
            "fd_samples": 500,  # samples per cheap FD
            "batch_size": 500,  # sampling/feature batch
            "inception_weights": "",  # pytorch-fid Inception-v3 weights file: FID features
            "calibration": "",  # regan_jax.calibration record: effective strengths in the summary
            "protocol_v2": False,  # the summary's generalisation, D-overfitting and near-zero scores
        }
    )


def log_config() -> ml_collections.ConfigDict:
    """Intervals (in steps; 0 = never, except at the end) of logging and I/O."""
    return ml_collections.ConfigDict(
        {
            "every": 50,  # metrics pulled to host and appended to metrics.jsonl
            "samples_every": 500,  # PNG sample grids in samples/
            "checkpoint_every": 500,  # orbax checkpoints in checkpoints/
            "num_images": 64,  # images per sample grid (points for 2-D data: 1000)
            "progress": True,  # tqdm progress bar with live losses
            "tensorboard": True,  # TensorBoard event files (scalars, sample grids) in the workdir
        }
    )


def shrink_for_smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config at test size: a few steps, tiny widths, small evaluation.

    The same code paths run (logging, cheap FD, samples, checkpoints all fire
    at least once); only sizes change.
    """
    config.steps = 12
    config.data.batch_size = min(config.data.batch_size, 32)
    config.data.stacked_size = min(config.data.stacked_size, 500)
    config.data.stacked_test_size = min(config.data.stacked_test_size, 200)
    config.model.latent_dim = min(config.model.latent_dim, 8)
    config.model.g_width = min(config.model.g_width, 8)
    config.model.d_width = min(config.model.d_width, 8)
    config.eval.num_samples = min(config.eval.num_samples, 200)
    config.eval.fd_samples = min(config.eval.fd_samples, 100)
    config.eval.batch_size = min(config.eval.batch_size, 100)
    config.eval.fd_every = 6 if config.eval.fd_every else 0
    config.log.every = 3
    config.log.samples_every = 6
    config.log.checkpoint_every = 6
    config.log.num_images = min(config.log.num_images, 100)
    return config


OPTIONS = {"smoke": shrink_for_smoke}


def conditional(gan_config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A GAN config made class-conditional, everything else kept.

    Sets ``model_type`` to ``'cgan'``, the name to ``<dataset>_cgan``, and
    100-image sample grids (10 per class of a 10-class dataset, one class per
    column).

    Raises:
      ValueError: ``gan_config`` is not a GAN config.
    """
    if gan_config.model_type != "gan":
        raise ValueError(
            f"conditional() takes a 'gan' config, got model_type {gan_config.model_type!r}"
        )
    gan_config.model_type = "cgan"
    gan_config.name = f"{gan_config.data.name}_cgan"
    gan_config.log.num_images = 100
    return gan_config


def with_options(config: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
    """Applies the ``get_config`` argument: comma-separated names of :data:`OPTIONS`.

    ``experiments/configs/digits_gan.py:smoke`` on the command line passes
    ``'smoke'`` here.

    Raises:
      ValueError: an unknown option (the valid ones are listed).
    """
    for option in filter(None, (arg or "").split(",")):
        if option not in OPTIONS:
            raise ValueError(
                f"unknown config option {option!r}; valid options: {', '.join(sorted(OPTIONS))}"
            )
        config = OPTIONS[option](config)
    return config


def flatten(config) -> dict:
    """``{'a.b': value}`` for every leaf, tuples as lists (JSON-ready, sorted)."""
    out = {}

    def visit(prefix, node):
        for key in sorted(node.keys()):
            value = node[key]
            path = f"{prefix}{key}"
            if isinstance(value, (ml_collections.ConfigDict, dict)):
                visit(path + ".", value)
            else:
                out[path] = list(value) if isinstance(value, tuple) else value

    visit("", config.to_dict() if isinstance(config, ml_collections.ConfigDict) else config)
    return out


def unflatten(flat: dict) -> dict:
    """Inverse of :func:`flatten`: ``{'a.b': v}`` -> ``{'a': {'b': v}}``."""
    nested = {}
    for dotted, value in flat.items():
        *groups, leaf = dotted.split(".")
        node = nested
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = value
    return nested


def to_json_dict(config) -> dict:
    """The nested plain-dict form of a config (what ``config.json`` holds)."""
    return _jsonable(config.to_dict())


def upgrade(data: dict) -> dict:
    """A saved ``config.json`` dict in today's schema, so older runs resume and collect.

    ``model.kind`` (removed: it repeated ``model_type``) is dropped when it
    equals ``model_type``; keys added since (:data:`ADDED`) get the value
    that reproduces what those runs did.

    Raises:
      ValueError: a saved ``model.kind`` that disagrees with ``model_type``.
    """
    model = data.get("model")
    if isinstance(model, dict) and "kind" in model:
        if model["kind"] != data.get("model_type"):
            raise ValueError(
                f"saved config has model.kind {model['kind']!r} but model_type "
                f"{data.get('model_type')!r}; model.kind was removed, "
                "model_type names the family"
            )
        data = {**data, "model": {k: v for k, v in model.items() if k != "kind"}}
    for (section, key), value in ADDED.items():
        if isinstance(data.get(section), dict) and key not in data[section]:
            data = {**data, section: {**data[section], key: value}}
    for (group, key), value in ADDED_PER_NETWORK.items():
        if isinstance(data.get(group), dict):
            nets = {
                net: {**cfg, key: cfg.get(key, value)} if isinstance(cfg, dict) else cfg
                for net, cfg in data[group].items()
            }
            data = {**data, group: nets}
    return data


def from_json_dict(data: dict) -> ml_collections.ConfigDict:
    """Inverse of :func:`to_json_dict` (lists back to tuples), locked; see :func:`upgrade`."""
    config = ml_collections.ConfigDict(_tuplify(upgrade(data)))
    config.lock()
    return config


def differing_keys(a, b) -> list[str]:
    """Dotted keys whose values differ between two configs (or their JSON dicts)."""
    fa = flatten(a if isinstance(a, dict) else to_json_dict(a))
    fb = flatten(b if isinstance(b, dict) else to_json_dict(b))
    return sorted(k for k in fa.keys() | fb.keys() if fa.get(k, _MISSING) != fb.get(k, _MISSING))


def override(config: ml_collections.ConfigDict, key: str, value) -> None:
    """Sets ``config.<key> = value``, parsing a string to the field's type.

    Args:
      config: a locked config.
      key: dotted path, e.g. ``'penalty.g.strength'``.
      value: the new value; a string (from the command line) is parsed to the
        type of the field it replaces: bool (true/false/1/0/yes/no), int,
        float, str, tuple (Python literal); a field whose default is ``None``
        takes a Python literal or, failing that, the string.

    Raises:
      KeyError: an unknown key; the message lists the valid keys at that level.
      TypeError: a value that does not parse as the field's type.
    """
    if key in REMOVED:
        raise KeyError(f"config key {key!r} was removed; use {REMOVED[key]}")
    parts = key.split(".")
    node, path = config, []
    for part in parts:
        if not isinstance(node, ml_collections.ConfigDict):
            raise KeyError(
                f"unknown config key {key!r}: {'.'.join(path)!r} is a value ({node!r}), not a group"
            )
        if part not in node:
            where = ".".join(path) or "the top level"
            raise KeyError(
                f"unknown config key {key!r}: valid keys at {where} are "
                f"{', '.join(sorted(node.keys()))}"
            )
        parent, node = node, node[part]
        path.append(part)
    if isinstance(node, ml_collections.ConfigDict):
        raise KeyError(
            f"config key {key!r} is a group; set one of its keys: "
            f"{', '.join(f'{key}.{k}' for k in sorted(node.keys()))}"
        )
    new = _parse(key, node, value) if isinstance(value, str) else value
    try:
        parent[parts[-1]] = new
    except TypeError as e:
        raise TypeError(
            f"config key {key!r} holds a {type(node).__name__} ({node!r}); got {value!r}"
        ) from e


def validate(config: ml_collections.ConfigDict) -> None:
    """The one validation pass over every field of a resolved config, before anything runs.

    Checks the schema (top level and every section against its defaults),
    the model family and its networks, every optimizer and penalty setting,
    the family's own fields (the GAN loss), and the values of ``seed``,
    ``steps``, ``data``, ``eval`` and ``log``. What needs the data or the
    networks (batch against the dataset and device count, masks against the
    parameter paths, architecture against the data shape) is checked by
    ``regan_jax.program.build_program``, also before anything is written.

    Raises:
      ValueError: naming the config key, its value and what was expected.
    """
    keys = set(config.keys())
    if keys != set(TOP_LEVEL):
        raise ValueError(
            f"config keys {sorted(keys)} do not match the schema "
            f"{list(TOP_LEVEL)} (missing {sorted(set(TOP_LEVEL) - keys)}, "
            f"extra {sorted(keys - set(TOP_LEVEL))})"
        )
    family = families.get(config.model_type)
    _check_sections(config)
    for group in ("optimizer", "penalty"):
        if tuple(sorted(config[group].keys())) != tuple(sorted(family.networks)):
            raise ValueError(
                f"config.{group} has networks {sorted(config[group].keys())}; "
                f"model_type {config.model_type!r} trains {list(family.networks)}"
            )
    for net in family.networks:
        try:
            penalties.validate_optimizer_config(config.optimizer[net])
            penalties.validate_penalty_config(config.penalty[net])
        except ValueError as e:
            raise ValueError(f"config.optimizer.{net} / config.penalty.{net}: {e}") from None
    family.validate(config)
    for key, low in _MINIMA.items():
        value = _get(config, key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < low:
            raise ValueError(f"config.{key} must be a number >= {low}, got {value!r}")
    for key in _POSITIVE:
        value = _get(config, key)
        if not value > 0:
            raise ValueError(f"config.{key} must be > 0, got {value!r}")
    size = config.data.train_size  # Checked against the split's size when it is loaded.
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise ValueError(
            f"config.data.train_size must be None (the whole training split) or "
            f"an integer >= 1, got {size!r}"
        )
    if config.eval.inception_weights and not os.path.isfile(config.eval.inception_weights):
        raise ValueError(
            f"config.eval.inception_weights: no file at {config.eval.inception_weights!r}"
        )
    if config.eval.calibration:
        try:
            record = effective_strength.load(config.eval.calibration)
        except ValueError as e:
            raise ValueError(f"config.eval.calibration: {e}") from None
        effective_strength.check_networks(record, family.networks, "config.eval.calibration")


# Lower bounds of integer fields (inclusive). eval.num_samples: precision and
# recall use k = 5 nearest neighbours, so more than 5 samples; fd_samples:
# a covariance needs 2.
_MINIMA = {
    "seed": 0,
    "steps": 1,
    "data.batch_size": 1,
    "data.prefetch": 0,
    "data.stacked_size": 1,
    "data.stacked_test_size": 1,
    "data.stacked_seed": 0,
    "data.train_subset_seed": 0,
    "eval.num_samples": 6,
    "eval.fd_every": 0,
    "eval.fd_samples": 2,
    "eval.batch_size": 1,
    "log.every": 0,
    "log.samples_every": 0,
    "log.checkpoint_every": 0,
    "log.num_images": 1,
}
_POSITIVE = ("data.ring_radius", "data.grid_spacing", "data.sigma")


def _get(config, dotted: str):
    node = config
    for part in dotted.split("."):
        node = node[part]
    return node


def _check_sections(config: ml_collections.ConfigDict) -> None:
    """Every section holds exactly the keys of its module's defaults (unknown keys fail)."""
    defaults = {
        "data": data.default_config(),
        "model": models.default_config(),
        "loss": families.get(config.model_type).loss_config(),
        "eval": eval_config(),
        "log": log_config(),
    }
    for section, default in defaults.items():
        have, want = set(config[section].keys()), set(default.keys())
        if have != want:
            raise ValueError(
                f"config.{section} keys do not match the schema: missing "
                f"{sorted(want - have)}, unknown {sorted(have - want)}"
            )


_MISSING = object()


def _parse(key, current, raw: str):
    """Parses a command-line string to the type of ``current``."""
    kind = type(current)
    try:
        if kind is bool:
            if raw.lower() in _TRUE + _FALSE:
                return raw.lower() in _TRUE
            raise ValueError
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is str:
            return raw
        if kind in (tuple, list):
            value = ast.literal_eval(raw)
            if not isinstance(value, (tuple, list)):
                value = (value,)
            return kind(value)
        if current is None:
            try:
                return ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                return raw
    except (ValueError, SyntaxError):
        pass
    raise TypeError(
        f"config key {key!r} expects type {kind.__name__} "
        f"(current value {current!r}); cannot parse {raw!r}"
    )


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def _tuplify(value):
    if isinstance(value, dict):
        return {k: _tuplify(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value


def copy_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A deep, still-locked copy (for sweeps that derive one config per member)."""
    return copy.deepcopy(config)
