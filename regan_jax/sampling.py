"""Samples from a saved run: :func:`load_run` reads a workdir, :func:`draw` samples its generator.

A finished run and an interrupted one load the same way: the saved
``config.json`` (upgraded and validated like a resumed run's) rebuilds the
program, and the latest complete checkpoint gives the state (a damaged one is
skipped with a warning, for the one before; it is left where it is). Nothing in the
workdir is written or locked, so a run that is still training can be read
(its latest checkpoint is the one loaded)::

    run = load_run("runs/digits_gan")
    samples, labels = draw(run, 64)            # the run's own grid samples
    samples, labels = draw(run, 64, seed=1)    # other latents
    samples, labels = draw(cgan_run, 10, label=3)  # ten 3s from a conditional GAN

The command line is ``python -m experiments.sample --workdir W --num N --out grid.png``.
"""

import pathlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from regan_jax import checkpoint, evaluation
from regan_jax import config as config_lib
from regan_jax import program as program_lib
from regan_jax.workdir import CHECKPOINT_DIR, CONFIG_FILE, read_json

SEED_LIMIT = 2**32  # jax.random.key keeps 32 bits of a seed (without x64): larger ones collide


class RunLoadError(ValueError):
    """A workdir that holds no run to sample from (missing, no config.json, no checkpoint)."""


class LoadedRun(NamedTuple):
    """A saved run, ready to sample.

    Attributes:
      config: the run's config (from its ``config.json``, validated).
      program: its :class:`regan_jax.program.Program` (data, networks, sampler).
      state: the :class:`regan_jax.steps.TrainState` of its latest checkpoint.
      step: that checkpoint's step (``config.steps`` for a finished run).
    """

    config: Any
    program: program_lib.Program
    state: Any
    step: int


def load_run(workdir) -> LoadedRun:
    """The config, program and latest checkpointed state of the run in ``workdir``.

    Args:
      workdir: a run directory written by ``regan_jax.train`` (finished or
        interrupted after its first checkpoint).

    Raises:
      RunLoadError: ``workdir`` is missing or not a directory, has no
        ``config.json``, or no checkpoint yet; a ``config.json`` that is not
        a valid config (the message names the file).
      ValueError: the data or networks of the config cannot be built, no
        checkpoint can be read, or the checkpoints do not match them.
    """
    workdir = pathlib.Path(workdir)
    if not workdir.is_dir():
        raise RunLoadError(
            f"workdir {str(workdir)!r} "
            f"{'is not a directory' if workdir.exists() else 'does not exist'}"
        )
    config_path = workdir / CONFIG_FILE
    if not config_path.is_file():
        raise RunLoadError(f"workdir {str(workdir)!r} has no {CONFIG_FILE}: not a run directory")
    try:
        config = config_lib.from_json_dict(read_json(config_path))
        config_lib.validate(config)
    except (ValueError, TypeError, KeyError) as e:  # JSONDecodeError is a ValueError.
        raise RunLoadError(f"{str(config_path)!r} is not a valid config: {e}") from None
    checkpoints = workdir / CHECKPOINT_DIR
    if checkpoint.latest_step(str(checkpoints)) is None:
        raise RunLoadError(
            f"workdir {str(workdir)!r} has no checkpoint yet (the run writes "
            f"one every log.checkpoint_every = {config.log.checkpoint_every} "
            "steps and at its end)"
        )
    program = program_lib.build_program(config)
    steps = checkpoint.all_steps(str(checkpoints))
    if not steps:  # Removed between the two looks (a run restarting from scratch).
        raise RunLoadError(f"workdir {str(workdir)!r} has no checkpoint any more")
    # A damaged newest checkpoint is skipped, not moved: the run belongs to whoever trains it.
    _, state, _ = checkpoint.restore_readable(
        str(checkpoints), steps, program_lib.init_member(program, config), move_aside=False
    )
    return LoadedRun(config=config, program=program, state=state, step=int(state.step))


def draw(
    run: LoadedRun,
    num: int,
    *,
    seed: int | None = None,
    label: int | None = None,
    batch_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``num`` samples from ``run``'s generator (sampler network), in batches.

    Batch ``i`` draws its latents from ``fold_in(key, i)``
    (:func:`regan_jax.evaluation.draw_samples`), with ``key`` the run's own
    :func:`regan_jax.program.sample_key` by default -- so ``draw(run,
    config.log.num_images)`` equals the run's final grid (``samples/final.npz``)
    -- or ``jax.random.key(seed)``. The samples depend on ``batch_size`` too
    (default ``config.eval.batch_size``, the grids' batch).

    Args:
      run: from :func:`load_run`.
      num: how many samples (>= 1).
      seed: draw with ``jax.random.key(seed)``, ``0 <= seed < 2**32`` (JAX keeps
        32 bits of a seed), instead of the run's sample key (None).
      label: conditional families only: draw every sample of this class
        (``0 <= label < num_classes``); None cycles the classes, ``i mod C``.
      batch_size: samples per sampler call (>= 1).

    Returns:
      ``(samples [num, *shape] float32, labels [num] int32 or None)``: images
      in [-1, 1] or 2-D points; the classes conditioned on, or None for an
      unconditional family.

    Raises:
      ValueError: ``num`` or ``batch_size`` < 1; a seed out of range; a label
        for an unconditional family or out of range.
    """
    config, program = run.config, run.program
    num = _integer("num", num, low=1)
    batch_size = (
        config.eval.batch_size if batch_size is None else _integer("batch_size", batch_size, low=1)
    )
    key = (
        program_lib.sample_key(config)
        if seed is None
        else jax.random.key(_integer("seed", seed, low=0, high=SEED_LIMIT))
    )
    params = run.state.params
    if label is None:

        def sample_fn(k, n):
            return evaluation.as_sample_fn_output(program.sample(params, k, n))
    else:
        label = _class(program, label)

        def sample_fn(k, n):
            return program.sample(params, k, n, labels=jnp.full((n,), label, jnp.int32))

    return evaluation.draw_samples(
        sample_fn, key, num, program_lib.sample_shape(program), batch_size=batch_size
    )


def _integer(
    name: str, value, low: int | None = None, high: int | None = None, what: str = ""
) -> int:
    """``value`` as an int in ``[low, high)``; anything else raises naming ``name``."""
    ok = (
        isinstance(value, (int, np.integer))
        and not isinstance(value, bool)
        and (low is None or value >= low)
        and (high is None or value < high)
    )
    if not ok:
        bounds = (
            f" in [{low}, {high})" if high is not None else f" >= {low}" if low is not None else ""
        )
        raise ValueError(f"{name} must be an integer{bounds}{what}, got {value!r}")
    return int(value)


def _class(program: program_lib.Program, label) -> int:
    """``label`` checked against the run's family and classes."""
    if not program.family.conditional:
        raise ValueError(
            f"a class label needs a conditional model; this run's model_type "
            f"{program.family.name!r} is unconditional"
        )
    return _integer(
        "class label",
        label,
        low=0,
        high=program.spec.num_classes,
        what=f" ({program.spec.name} has {program.spec.num_classes} classes)",
    )
