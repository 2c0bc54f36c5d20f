"""A program: what every member of a run (or of a vmapped sweep group) shares, built once.

:func:`build_program` loads the data, asks the model family
(:mod:`regan_jax.families`) for the networks, step, initialiser and sampler,
builds each network's optimizer, and checks what needs the data or the
networks -- batch against the dataset and device count, masks against the
parameter paths, a mixture against the generator's range -- before anything
is written or compiled. Runs may share a program when their configs agree on
everything but :data:`MEMBER_KEYS` and :data:`MEMBER_HYPERPARAMS`
(:func:`program_key`).
"""

import contextlib
import functools
import json
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from regan_jax import config as config_lib
from regan_jax import data, evaluation, families, penalties, sweep, xla

# Config keys that may differ between members of one vmapped program: the seed
# and the scalars that live in the optimizer state (optax.inject_hyperparams).
MEMBER_KEYS = ("seed",)
MEMBER_HYPERPARAMS = {
    "optimizer": ("learning_rate",),
    "penalty": ("strength", "l2_strength", "radius"),
}


def program_key(config) -> str:
    """What must agree for runs to share one compiled program (JSON text).

    Everything in the config except the seed and the per-network injected
    hyperparameters (``optimizer.<net>.learning_rate``, ``penalty.<net>.strength``,
    ``l2_strength``, ``radius``).
    """
    flat = config_lib.flatten(config_lib.to_json_dict(config))
    varying = set(MEMBER_KEYS) | {
        f"{group}.{net}.{name}"
        for group, names in MEMBER_HYPERPARAMS.items()
        for net in config[group].keys()
        for name in names
    }
    return json.dumps({k: v for k, v in flat.items() if k not in varying}, sort_keys=True)


class Program(NamedTuple):
    """The static parts every member of a run shares (built once per program).

    Attributes:
      config: the first member's config (all agree on :func:`program_key`).
      family: its :class:`regan_jax.families.Family`.
      source: the loaded dataset or mixture.
      test: the held-out split (an image dataset's ``'test'`` split; None for a
        mixture), loaded once for the sampler and the evaluation.
      spec: its :class:`regan_jax.data.DataSpec`.
      models: the networks by name.
      step: the pure step ``(state, batch, key=None) -> (state, metrics)``.
      init: ``key -> state`` (the first member's hyperparameters): two compiled programs,
        the networks' initialiser (per model) and the optimizer states' (per optimizers).
      sample: jitted sampler ``(params, key, n) -> (x, labels or None)``, ``n`` static.
      rows_per_step: rows of data one step consumes (per member).
    """

    config: Any
    family: families.Family
    source: Any
    test: Any
    spec: Any
    models: dict
    step: Callable
    init: Callable
    sample: Callable
    rows_per_step: int


def check_reachable(source, g_output: str = "tanh") -> None:
    """Raises if a 2-D mixture's modes lie outside a tanh generator's range [-1, 1].

    A generator with ``g_output='tanh'`` squashes every output (see
    :mod:`regan_jax.models`), so modes beyond ±1 (e.g. the published grid of
    spacing 2) cannot be reached; the mixture configs use ``'linear'``.
    """
    if not isinstance(source, data.Mixture) or g_output != "tanh":
        return
    extent = float(np.max(np.abs(source.centres))) + 3 * float(source.sigma)
    if extent > 1.0:
        raise ValueError(
            f"{source.spec.name}'s modes reach {extent:.3g} (centres + 3 sigma) but the "
            "generator's tanh output is bounded by 1: set config.model.g_output='linear', or "
            "shrink config.data.ring_radius / grid_spacing / sigma"
        )


def build_program(config, *, wrap_optimizer: Callable | None = None) -> Program:
    """Loads the data and builds networks, optimizers, step, init and sampler.

    ``config`` has passed :func:`regan_jax.config.validate`. Each optimizer's
    initialisation is traced here (``jax.eval_shape``: no compile, no
    compute), so a mask that selects no parameter fails now, not after the
    workdir is written. ``wrap_optimizer(optimizer) -> optimizer``, if given,
    wraps each network's optimizer (the calibration records gradients so).

    Raises:
      ValueError: a dataset, architecture, batch or mask that does not fit,
        naming the config key -- before any training compute.
    """
    family = families.get(config.model_type)
    with _naming("config.data"):
        source = data.from_config(config.data)
        check_reachable(source, config.model.g_output)
        test = None if isinstance(source, data.Mixture) else data.from_config(config.data, "test")
    spec = source.spec
    with _naming("config.model"):
        nets = family.make_models(config.model, spec)
    optimizers = {
        net: penalties.build_optimizer(
            config.optimizer[net],
            config.penalty[net],
            run_updates=config.steps * family.updates_per_step(config, net),
        )
        for net in family.networks
    }
    if wrap_optimizer is not None:
        optimizers = {net: wrap_optimizer(opt) for net, opt in optimizers.items()}
    rows = family.rows_per_step(config)
    with _naming(f"config.data.batch_size ({rows} rows per step)"):
        # The iterator checks the batch against the dataset when made (no data is read).
        data.make_iterator(config.data, config.seed, rows_per_step=rows, source=source)
    example = {"image": np.zeros((1, *spec.shape), np.float32), "label": np.zeros((1,), np.int32)}
    _check_masks(family, nets, optimizers, example)
    # Not one jitted program: the family compiles its networks' initialiser per model and the
    # optimizer states per optimizers (steps.init_train_state), so penalties share the former.
    init = functools.partial(family.init_state, nets, optimizers, example_batch=example)
    return Program(
        config=config,
        family=family,
        source=source,
        test=test,
        spec=spec,
        models=nets,
        step=family.make_step(config, nets, optimizers),
        init=init,
        sample=xla.jit(family.make_sampler(config, nets, spec, test), static_argnums=2),
        rows_per_step=rows,
    )


@contextlib.contextmanager
def _naming(key: str):
    """Prefixes a ``ValueError`` raised inside with the config key it is about."""
    try:
        yield
    except ValueError as e:
        raise ValueError(f"{key}: {e}") from None


def _check_masks(family, nets, optimizers, example) -> None:
    """Traces each network's optimizer init on its parameter shapes: a mask that selects
    nothing raises here, naming ``config.penalty.<net>`` (``jax.eval_shape``: no compute)."""
    plain = {net: optax.identity() for net in family.networks}
    shapes = jax.eval_shape(
        lambda key: family.init_state(nets, plain, key, example).params, jax.random.key(0)
    )
    for net in family.networks:
        with _naming(f"config.penalty.{net}"):
            jax.eval_shape(optimizers[net].init, shapes[net])


def member_hyperparams(program: Program, config) -> dict:
    """``{net: {name: value}}``: ``config``'s injected hyperparameters.

    The names are those of :data:`MEMBER_HYPERPARAMS` that the network's
    optimizer state holds.
    """
    injected = {
        net: penalties.get_hyperparams(opt_state)
        for net, opt_state in jax.eval_shape(program.init, jax.random.key(0)).opt_state.items()
    }
    return {
        net: {
            name: config[group][net][name]
            for group, names in MEMBER_HYPERPARAMS.items()
            for name in names
            if name in injected[net]
        }
        for net in injected
    }


def init_member(program: Program, config):
    """A fresh state of ``config``'s run: ``program.init(key(seed))`` with its hyperparameters.

    Equal to the family's ``init_state`` with ``config``'s own optimizers: the
    injected scalars (learning rate, strengths) are the only optimizer-state
    values that depend on them.
    """
    return sweep.init_member(program.init, config.seed, member_hyperparams(program, config))


def sample_key(config):
    """The key of a run's sample grids and evaluation draws (apart from its training stream)."""
    return jax.random.fold_in(jax.random.key(config.seed), 0x5A3)


def grid_samples(program: Program, params, config):
    """The run's ``config.log.num_images`` samples for grids: ``(x, labels or None)`` (numpy).

    Always drawn with the run's fixed :func:`sample_key`, so grids at
    different steps show the same latents.
    """

    def sample_fn(key, n):
        return evaluation.as_sample_fn_output(program.sample(params, key, n))

    return evaluation.draw_samples(
        sample_fn,
        sample_key(config),
        config.log.num_images,
        sample_shape(program),
        batch_size=config.eval.batch_size,
    )


def sample_shape(program: Program) -> tuple[int, ...]:
    """One sample's shape: the data's, or the family's own (a translation strip)."""
    shape = program.family.sample_shape
    return tuple(program.spec.shape) if shape is None else tuple(shape(program.spec.shape))


def grid_columns(program: Program) -> int | None:
    """Columns of a sample grid: one per class for a conditional family, else square."""
    return program.spec.num_classes if program.family.conditional else None
