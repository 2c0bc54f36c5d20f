"""The JAX side of the benchmarks: configs, train states, jitted steps, batches.

Everything here goes through the library's public pieces — the experiment
configs (``experiments.load_config``), the model family's ``make_models``,
``make_step`` and ``init_state`` (``regan_jax.families``),
``penalties.build_optimizer``, and ``sweep.init_sweep`` / ``sweep.vmap_step``
— so the benchmark times the code users run.

Throughput benchmarks feed a small pool of synthetic batches (uniform in
[-1, 1], or points of the ring for 2-D data) already on the device, so that
the input pipeline is not part of a step's time; the memory benchmark
(:mod:`benchmarks.memory`) uses the real data iterator.
"""

import dataclasses
import pathlib
from typing import Any, Callable, Sequence

import jax
import ml_collections
import numpy as np

import experiments
from regan_jax import config as config_lib
from regan_jax import data, families, models, penalties, sweep, xla

# The checkout's root: where the memory benchmark's subprocesses run.
REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent

# How a benchmarked step is compiled: "library" is what training runs
# (regan_jax.xla.jit: the CPU options on programs with a convolution);
# "xla_defaults" is plain jax.jit, the library before it chose options (the
# "before" of BENCHMARKS.md); "candidate" turns YNNPACK off altogether
# (regan_jax.xla.CPU_CANDIDATE), measured beside the default.
VARIANTS = ("library", "xla_defaults", "candidate")


def jit_variant(fun: Callable, variant: str = "library", **kwargs) -> Callable:
    """A *fresh* jit of ``fun`` compiled as ``variant`` (see :data:`VARIANTS`)."""
    if variant == "library":
        return xla.jit(fun, **kwargs)
    if variant == "xla_defaults":
        return jax.jit(fun, **kwargs)
    if variant == "candidate":
        return jax.jit(fun, compiler_options=xla.CPU_CANDIDATE, **kwargs)
    raise ValueError(f"unknown variant {variant!r}; expected one of {list(VARIANTS)}")


def experiment_config(name: str, dataset: str | None = None) -> ml_collections.ConfigDict:
    """``experiments/configs/<name>.py``'s ``get_config()``, else the library default.

    Args:
      name: config file stem, e.g. ``'digits_gan'``, ``'fashion_mnist_gan'``.
      dataset: the dataset of the fallback ``config.base_config('gan', dataset)``
        used when that file does not exist (yet); None = no fallback.

    Raises:
      FileNotFoundError: no such config file and no fallback dataset.
    """
    if name in experiments.experiment_names():
        return experiments.load_config(name)
    if dataset is None:
        raise FileNotFoundError(
            f"no experiment config {name!r} in {experiments.CONFIG_DIR} "
            "and no fallback dataset given"
        )
    return config_lib.base_config("gan", dataset)


def data_shape(config: ml_collections.ConfigDict) -> tuple[int, ...]:
    """One example's shape, without loading the data (mixtures: ``(2,)``)."""
    if config.data.name in data.MIXTURES:
        return (2,)
    known = {
        "digits": (8, 8, 1),
        "fashion_mnist": (28, 28, 1),
        "mnist": (28, 28, 1),
        "stacked_digits": (8, 8, 3),
        "cifar10": (32, 32, 3),
    }
    if config.data.name not in known:
        raise ValueError(
            f"benchmarks know the shapes of {sorted(known)} and the mixtures, "
            f"got dataset {config.data.name!r}"
        )
    return known[config.data.name]


def synthetic_batches(
    shape: tuple[int, ...], batch_size: int, count: int, seed: int = 0
) -> list[dict[str, np.ndarray]]:
    """``count`` numpy batches ``{'image': [B, *shape] in [-1, 1], 'label': zeros [B]}``."""
    rng = np.random.default_rng(seed)
    return [
        {
            "image": rng.uniform(-1, 1, (batch_size,) + tuple(shape)).astype(np.float32),
            "label": np.zeros((batch_size,), np.int32),
        }
        for _ in range(count)
    ]


@dataclasses.dataclass
class GanSetup:
    """A GAN config made concrete: networks, optimizers, the (unjitted) step.

    Attributes:
      config: the experiment config.
      shape: one example's shape.
      models: ``{'g', 'd'}`` Flax modules.
      optimizers: ``{'g', 'd'}`` optax transformations (``build_optimizer``).
      step: ``(state, batch, key=None) -> (state, metrics)`` from the family's ``make_step``.
      batches: device batches of ``config.data.batch_size`` rows.
    """

    config: ml_collections.ConfigDict
    shape: tuple[int, ...]
    models: dict
    optimizers: dict
    step: Callable
    batches: list

    def init(self, seed: int = 0) -> Any:
        """A fresh train state from ``jax.random.key(seed)``."""
        return self.init_from_key(jax.random.key(seed))

    def init_from_key(self, key: jax.Array) -> Any:
        """A fresh train state from ``key`` (what ``sweep.init_sweep`` calls)."""
        family = families.get(self.config.model_type)
        return family.init_state(self.models, self.optimizers, key, self.batches[0])

    def jit(self, variant: str = "library") -> Callable:
        """A *fresh* jit of the step (state donated), so its compile is cold."""
        return jit_variant(self.step, variant, donate_argnums=0)

    def jit_vmapped(self, variant: str = "library") -> Callable:
        """A fresh jit of the step vmapped over stacked members (shared batch), state donated."""
        return jit_variant(jax.vmap(self.step, in_axes=(0, None)), variant, donate_argnums=0)


def gan_setup(
    config: ml_collections.ConfigDict, *, num_batches: int = 4, seed: int = 0
) -> GanSetup:
    """Builds :class:`GanSetup` for ``config`` with synthetic device batches."""
    family = families.get(config.model_type)
    shape = data_shape(config)
    nets = family.make_models(config.model, models.DataSpec(shape))
    optimizers = {
        net: penalties.build_optimizer(config.optimizer[net], config.penalty[net])
        for net in family.networks
    }
    rows = family.rows_per_step(config)
    batches = [jax.device_put(b) for b in synthetic_batches(shape, rows, num_batches, seed)]
    return GanSetup(
        config, shape, nets, optimizers, family.make_step(config, nets, optimizers), batches
    )


def loop_side(jitted: Callable, state: Any, batches: Sequence[Any]) -> Callable[[int], None]:
    """``run(n)``: n steps of a (donating) jitted step over ``batches``, then block.

    The state lives in the closure; keys come from the state
    (``fold_in(state.key, state.step)``), as in a training run.
    """
    box = [state]
    counter = [0]

    def run(n: int) -> None:
        for _ in range(n):
            box[0], _ = jitted(box[0], batches[counter[0] % len(batches)])
            counter[0] += 1
        jax.block_until_ready(box[0])

    return run


def conv_variant(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """``config`` with the library's default DCGAN nets (``arch='dcgan'``, default widths).

    The default ``digits_gan`` is an MLP; its documented conv variant
    (``--config.model.arch=dcgan``) with the model defaults' widths and latent
    size is the "digits conv GAN" of the benchmarks.
    """
    config = config_lib.copy_config(config)
    defaults = models.default_config()
    config.model.arch = "dcgan"
    for field in ("latent_dim", "g_width", "d_width", "stages", "upsample"):
        config.model[field] = defaults[field]
    return config


def sweep_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """``config`` with a decoupled L2 penalty on D: the swept strength lives in its state."""
    config = config_lib.copy_config(config)
    config.penalty.d.kind = "l2"
    config.penalty.d.coupling = "decoupled"
    config.penalty.d.strength = 1e-4
    return config


def sweep_states(setup: GanSetup, members: int) -> Any:
    """``members`` states (seeds 0..K-1, D's L2 strength log-spaced 1e-5..1e-2), stacked."""
    strengths = np.logspace(-5, -2, members).tolist()
    return sweep.init_sweep(
        setup.init_from_key, list(range(members)), {"d": {"strength": strengths}}
    )


def sequential_side(step: Callable, setup: GanSetup, stacked: Any) -> Callable[[int], None]:
    """``run(n)``: n steps of each member, one member after another (K runs).

    Each of the K single runs is advanced by n steps in turn (run 0 for n
    steps, then run 1, ...), as K separate training runs would execute.

    Args:
      step: the single-run step, jitted (or compiled) with the state donated.
      setup: gives the batches.
      stacked: the members' states (sliced, not donated).
    """
    runs = [loop_side(step, member, setup.batches) for member in sweep.unstack(stacked)]

    def run(n: int) -> None:
        for member_run in runs:
            member_run(n)

    return run
