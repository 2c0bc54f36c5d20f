"""The training loop: ``train_and_evaluate(config, workdir)`` and its workdir contract.

A run's workdir holds (DESIGN.md)::

    config.json     the full resolved config (written first, atomically)
    metrics.jsonl   one JSON object per logged step: losses, penalty terms,
                    the cheap in-training FD, wall time
    samples/        PNG sample grids (scatter plots for 2-D data), and
                    final.npz (the final samples, for redrawing figures)
    checkpoints/    orbax checkpoints of the whole run state + data position
    summary.json    the final evaluation (written last: its presence marks a
                    finished run)

The loop is small: step ``k`` uses the batch the data iterator yields next
and the key ``fold_in(run_key, k)``, so a resumed run (restored state and
data position) continues with exactly the randomness of an uninterrupted one.
Metrics leave the device only at logging steps. A run whose loss or
parameters become non-finite is frozen by the step (see
:mod:`regan_jax.steps`); the loop notices at the next logging step, stops,
and the summary says ``diverged`` with the reason and step and reports no
scores (a diverged run is a result, not a crash; no NaN is ever a score).

Several runs whose configs differ only in seeds and injected hyperparameters
(strengths, learning rates) train as one vmapped program
(:func:`train_members`, used by ``experiments.sweep``); each member keeps its
own workdir with the same contract.

A single run uses every device JAX sees: with more than one, the step is
data-parallel (:func:`regan_jax.parallel.shard_map_step`: state replicated,
global batch split, gradients averaged), so it trains the same run as on one
device with the same global batch. A vmapped group of K members is split
member-wise across the devices when their count divides K
(:func:`member_parallel`). The loop is single-process (multi-host training
composes :mod:`regan_jax.parallel` with a per-process slice of the data; see
its docs).
"""
import json
import math
import os
import pathlib
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import tqdm.auto
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from regan_jax import checkpoint, data, evaluation, losses, parallel, penalties, steps, sweep
from regan_jax import config as config_lib
from regan_jax import models as models_lib

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
SAMPLES_DIR = "samples"
CHECKPOINT_DIR = "checkpoints"


class WorkdirError(ValueError):
    """The workdir holds something this run must not overwrite."""


# ----------------------------------------------------------------------------
# Files of the workdir contract
# ----------------------------------------------------------------------------

def write_json(path, obj) -> None:
    """Writes ``obj`` as JSON atomically (temp file in the same directory + rename).

    Raises:
      ValueError: ``obj`` holds NaN or infinity (never a valid score).
    """
    path = pathlib.Path(path)
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False)
    _write_text_atomic(path, text + "\n")


def read_json(path) -> dict:
    """The JSON object in ``path``."""
    with open(path) as f:
        return json.load(f)


def read_metrics(workdir) -> list[dict]:
    """The rows of ``metrics.jsonl`` (empty if there is none yet)."""
    path = pathlib.Path(workdir) / METRICS_FILE
    if not path.exists():
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def is_finished(workdir) -> bool:
    """Whether ``workdir`` holds a finished run (its ``summary.json``)."""
    return (pathlib.Path(workdir) / SUMMARY_FILE).is_file()


def prepare_workdir(workdir, config, overwrite: bool = False) -> None:
    """Makes ``workdir`` ready for ``config``'s run, refusing to clobber another.

    - empty or missing: created, ``config.json`` written;
    - the same experiment, unfinished: kept as is (the run resumes);
    - finished (``summary.json``): refused unless ``overwrite``;
    - a different experiment's ``config.json``: refused unless ``overwrite``,
      naming the differing keys;
    - ``overwrite``: the contract's files are deleted first (nothing else).

    Raises:
      WorkdirError: the refusals above; nothing is modified.
    """
    workdir = pathlib.Path(workdir)
    config_path = workdir / CONFIG_FILE
    if not overwrite:
        if config_path.exists():
            saved = read_json(config_path)
            differing = config_lib.differing_keys(saved, config_lib.to_json_dict(config))
            if differing:
                shown = ", ".join(f"{k} (saved {_flat_get(saved, k)!r}, now "
                                  f"{_flat_get(config_lib.to_json_dict(config), k)!r})"
                                  for k in differing[:8])
                more = f" and {len(differing) - 8} more" if len(differing) > 8 else ""
                raise WorkdirError(
                    f"workdir {str(workdir)!r} holds a different experiment: {shown}{more}; "
                    "use another --workdir, or --overwrite to replace it")
        if is_finished(workdir):
            raise WorkdirError(
                f"workdir {str(workdir)!r} holds a finished run (summary.json); "
                "use another --workdir, or --overwrite to train it again")
    else:
        for name in (CONFIG_FILE, METRICS_FILE, SUMMARY_FILE):
            (workdir / name).unlink(missing_ok=True)
        for name in (SAMPLES_DIR, CHECKPOINT_DIR):
            shutil.rmtree(workdir / name, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    if not config_path.exists():
        write_json(config_path, config_lib.to_json_dict(config))


def truncate_metrics(workdir, last_step: int) -> None:
    """Drops ``metrics.jsonl`` rows after ``last_step`` (a resumed run re-logs them)."""
    rows = [r for r in read_metrics(workdir) if r["step"] <= last_step]
    _write_text_atomic(pathlib.Path(workdir) / METRICS_FILE,
                       "".join(json.dumps(r, allow_nan=False) + "\n" for r in rows))


def append_metrics(workdir, row: dict) -> None:
    """Appends one row to ``metrics.jsonl`` (non-finite values become null)."""
    with open(pathlib.Path(workdir) / METRICS_FILE, "a") as f:
        f.write(json.dumps(finite_or_none(row), allow_nan=False) + "\n")


def finite_or_none(row: dict) -> dict:
    """``row`` with every non-finite float replaced by None (JSON null)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in row.items()}


def _flat_get(nested: dict, dotted: str):
    return config_lib.flatten(nested).get(dotted, "<absent>")


def _write_text_atomic(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------
# Sample grids
# ----------------------------------------------------------------------------

def image_grid(images: np.ndarray, columns: int | None = None) -> np.ndarray:
    """Tiles ``[N, H, W, C]`` images in [-1, 1] into one ``[rows H, cols W, C]`` image in [0, 1].

    A 1-pixel gap (value 1, white) separates the tiles; missing tiles are white.
    """
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.ones((rows * (h + 1) + 1, columns * (w + 1) + 1, c), np.float32)
    for i, image in enumerate(np.clip((np.asarray(images) + 1) / 2, 0, 1)):
        r, col = divmod(i, columns)
        grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + col * (w + 1):1 + col * (w + 1) + w] = image
    return grid


def save_samples_png(path, samples: np.ndarray, title: str, *, columns: int | None = None,
                     centres: np.ndarray | None = None) -> None:
    """Saves a PNG of generated samples: an image grid, or a scatter for 2-D points.

    Args:
      path: the PNG file (written atomically).
      samples: ``[N, H, W, C]`` images in [-1, 1] or ``[N, 2]`` points.
      title: the figure title (experiment, step).
      columns: grid columns (e.g. the classes of a conditional model).
      centres: the true mode centres ``[M, 2]`` of 2-D data, drawn as crosses.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    samples = np.asarray(samples)
    if samples.ndim == 2:
        fig = Figure(figsize=(4, 4), dpi=100)
        ax = fig.add_subplot()
        ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4, label="samples")
        if centres is not None:
            ax.scatter(centres[:, 0], centres[:, 1], marker="x", c="red", s=30, label="modes")
            span = np.abs(centres).max() * 1.4 + 0.5
            ax.set_xlim(-span, span)
            ax.set_ylim(-span, span)
        ax.set_aspect("equal")
        ax.legend(loc="upper right", fontsize=7)
    else:
        grid = image_grid(samples, columns)
        fig = Figure(figsize=(4, 4 * grid.shape[0] / grid.shape[1] + 0.3), dpi=100)
        ax = fig.add_subplot()
        ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray",
                  vmin=0, vmax=1, interpolation="nearest")
        ax.axis("off")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    FigureCanvasAgg(fig).print_png(str(tmp))
    os.replace(tmp, path)


# ----------------------------------------------------------------------------
# The program: what every member of a run shares
# ----------------------------------------------------------------------------

# Config keys that may differ between members of one vmapped program: the seed
# and the scalars that live in the optimizer state (optax.inject_hyperparams).
MEMBER_KEYS = ("seed",)
MEMBER_HYPERPARAMS = {"optimizer": ("learning_rate",),
                      "penalty": ("strength", "l2_strength", "radius")}


def program_key(config) -> str:
    """What must agree for runs to share one compiled program (JSON text).

    Everything in the config except the seed and the per-network injected
    hyperparameters (``optimizer.<net>.learning_rate``, ``penalty.<net>.strength``,
    ``l2_strength``, ``radius``).
    """
    flat = config_lib.flatten(config_lib.to_json_dict(config))
    varying = set(MEMBER_KEYS) | {
        f"{group}.{net}.{name}" for group, names in MEMBER_HYPERPARAMS.items()
        for net in config[group].keys() for name in names}
    return json.dumps({k: v for k, v in flat.items() if k not in varying}, sort_keys=True)


def make_sampler(config, models, spec):
    """``sample(params, key, n) -> (x [n, *shape] in [-1, 1], labels [n] or None)``.

    GAN: ``G(z)``, z ~ N(0, I). Conditional GAN: ``G(z, y)`` with y cycling
    through the classes, ``y_i = i mod C`` (a grid with C columns shows one
    class per column; a batch whose size is a multiple of C is balanced). VAE:
    the decoder's mean at z ~ N(0, I) — for the Bernoulli likelihood of pixels
    mapped to [0, 1] that is ``2 σ(logits) - 1``.
    """
    if config.model_type == "vae":
        decoder = models["decoder"]
        bernoulli = config.model.likelihood == "bernoulli"

        def sample(params, key, n):
            out = decoder.apply({"params": params["decoder"]},
                                jax.random.normal(key, (n, decoder.latent_dim)))
            return (2 * jax.nn.sigmoid(out) - 1 if bernoulli else jnp.clip(out, -1, 1)), None
        return sample
    g = models["g"]
    conditional = config.model_type == "cgan"

    def sample(params, key, n):
        z = jax.random.normal(key, (n, g.latent_dim))
        labels = jnp.arange(n, dtype=jnp.int32) % spec.num_classes if conditional else None
        return g.apply({"params": params["g"]}, z, labels), labels
    return sample


class Program(NamedTuple):
    """The static parts every member of a run shares (built once per program).

    Attributes:
      config: the first member's config (all agree on :func:`program_key`).
      source: the loaded dataset or mixture.
      spec: its :class:`regan_jax.data.DataSpec`.
      models: the networks by name.
      step: the pure step ``(state, batch, key=None) -> (state, metrics)``.
      init: jitted ``key -> state`` (the first member's hyperparameters).
      sample: jitted sampler (see :func:`make_sampler`), ``n`` static.
      data_config: ``config.data`` with the rows one step consumes.
    """
    config: Any
    source: Any
    spec: Any
    models: dict
    step: Callable
    init: Callable
    sample: Callable
    data_config: Any


def check_reachable(source) -> None:
    """Raises if a 2-D mixture's modes lie outside the generator's tanh range [-1, 1].

    The generator squashes every output with tanh (see :mod:`regan_jax.models`),
    so modes beyond ±1 (e.g. the protocol's ring of radius 2) cannot be
    reached; the configs scale the mixtures down instead.
    """
    if not hasattr(source, "centres"):
        return
    extent = float(np.max(np.abs(source.centres))) + 3 * float(source.sigma)
    if extent > 1.0:
        raise ValueError(
            f"{source.spec.name}'s modes reach {extent:.3g} (centres + 3 sigma) but the "
            "generator's tanh output is bounded by 1: shrink config.data.ring_radius / "
            "grid_spacing / sigma (e.g. ring_radius=0.8, sigma=0.02)")


def build_program(config) -> Program:
    """Loads the data and builds networks, optimizers, step, init and sampler.

    Raises:
      ValueError: a bad dataset, model, optimizer, penalty or loss setting,
        before any training compute.
    """
    source = data.from_config(config.data)
    spec = source.spec
    check_reachable(source)
    nets = models_lib.make_models(config.model, spec)
    optimizers = _optimizers(config)
    example = {"image": np.zeros((1, *spec.shape), np.float32),
               "label": np.zeros((1,), np.int32)}
    data_cfg = config_lib.copy_config(config.data)
    if config.model_type != "vae":
        data_cfg.batch_size = steps.examples_per_step(config.loss, config.data.batch_size)
    return Program(
        config=config, source=source, spec=spec, models=nets,
        step=steps.make_step(config, nets, optimizers),
        init=jax.jit(lambda key: steps.init_state(config, nets, optimizers, key, example)),
        sample=jax.jit(make_sampler(config, nets, spec), static_argnums=2),
        data_config=data_cfg)


def init_member(program: Program, config):
    """A fresh state of ``config``'s run: ``program.init(key(seed))`` with its hyperparameters.

    Equal to ``steps.init_state`` with ``config``'s own optimizers: the
    injected scalars (learning rate, strengths) are the only optimizer-state
    values that depend on them.
    """
    state = program.init(jax.random.key(config.seed))
    opt_state = {}
    for net, net_state in state.opt_state.items():
        injected = penalties.get_hyperparams(net_state)
        values = {name: config[group][net][name]
                  for group, names in MEMBER_HYPERPARAMS.items() for name in names
                  if name in injected}
        opt_state[net] = penalties.set_hyperparams(net_state, **values)
    return state.replace(opt_state=opt_state)


def _optimizers(config) -> dict:
    return {net: penalties.build_optimizer(config.optimizer[net], config.penalty[net])
            for net in config_lib.networks(config.model_type)}


def grid_samples(program: Program, params, config):
    """The run's ``config.log.num_images`` samples for grids: ``(x, labels or None)`` (numpy).

    Always drawn with the run's fixed :func:`sample_key`, so grids at
    different steps show the same latents.
    """
    return evaluation.draw_samples(
        lambda key, n: _unconditional(program.sample(params, key, n)), sample_key(config),
        config.log.num_images, program.spec.shape, batch_size=config.eval.batch_size)


def sample_key(config):
    """The key of a run's sample grids and evaluation draws (apart from its training stream)."""
    return jax.random.fold_in(jax.random.key(config.seed), 0x5A3)


# ----------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------

def train_and_evaluate(config, workdir, *, overwrite: bool = False,
                       progress: bool | None = None):
    """Trains one run into ``workdir`` (see the module docstring) and evaluates it.

    Resumes from the latest checkpoint of an interrupted run of the same
    config; refuses a finished run or a different experiment's workdir unless
    ``overwrite``.

    Args:
      config: an experiment config (:mod:`regan_jax.config`).
      workdir: the run directory.
      overwrite: delete a previous run's files in ``workdir`` first.
      progress: show the tqdm bar (default: ``config.log.progress``).

    Returns:
      The final :class:`regan_jax.steps.TrainState`.

    Raises:
      ValueError: an invalid config (before any compute); WorkdirError: see
        :func:`prepare_workdir`.
    """
    return train_members([config], [workdir], overwrite=overwrite, progress=progress)[0]


def train_members(configs, workdirs, *, overwrite: bool = False,
                  progress: bool | None = None) -> list:
    """Trains K runs that share one compiled program (:func:`program_key`).

    K = 1 runs the jitted step; K > 1 stacks the K states on a member axis and
    runs ``sweep.vmap_step`` (each member with its own seed, data order and
    hyperparameters, equal to its own single run up to float reassociation).
    Each member has its own workdir with the full contract; the members are
    checkpointed at the same steps and resume together.

    Returns:
      The K final train states (unstacked).

    Raises:
      ValueError: no members, a workdir given twice, members that do not share
        a program, an invalid config; WorkdirError (see :func:`prepare_workdir`).
    """
    configs, workdirs = list(configs), [pathlib.Path(w) for w in workdirs]
    if not configs or len(configs) != len(workdirs):
        raise ValueError(f"train_members needs one workdir per config and at least one; got "
                         f"{len(configs)} configs and {len(workdirs)} workdirs")
    if len({w.resolve() for w in workdirs}) != len(workdirs):
        raise ValueError(f"workdirs must be distinct, got {[str(w) for w in workdirs]}")
    for c in configs:
        config_lib.validate(c)
    if len({program_key(c) for c in configs}) != 1:
        raise ValueError("configs trained as one vmapped program may differ only in "
                         f"{MEMBER_KEYS} and {MEMBER_HYPERPARAMS}")
    program = build_program(configs[0])
    stacked = len(configs) > 1
    run_step = (member_parallel(program.step, len(configs)) if stacked
                else data_parallel(program.step, program.data_config.batch_size))
    evaluator = evaluation_hooks(program)
    for c, w in zip(configs, workdirs):
        prepare_workdir(w, c, overwrite)
    group = _Group(configs, workdirs, stacked)
    state, iterators = _start(program, group)
    state, wall, trained = _loop(program, group, run_step, state, iterators, evaluator,
                                 progress)
    return _finish(program, group, state, iterators, evaluator, wall, trained)


class _Group(NamedTuple):
    """The members of one program: their configs and workdirs; stacked when K > 1."""
    configs: list
    workdirs: list
    stacked: bool

    def member(self, tree, index: int):
        return _take(tree, index) if self.stacked else tree


@jax.jit
def _take(tree, index):
    return jax.tree.map(lambda x: x[index], tree)


def data_parallel(step: Callable, batch_size: int) -> Callable:
    """``step`` jitted with its state donated; data-parallel over all devices when there are several.

    Raises:
      ValueError: a batch size that the device count does not divide (before any compute).
    """
    devices = jax.device_count()
    if devices == 1:
        return jax.jit(step, donate_argnums=0)
    if batch_size % devices:
        raise ValueError(f"the batch of {batch_size} rows per step is not divisible by the "
                         f"{devices} devices; set config.data.batch_size to a multiple of {devices}")
    return parallel.shard_map_step(step, parallel.make_mesh())


def member_parallel(step: Callable, num_members: int) -> Callable:
    """``step`` vmapped over stacked members; split across the devices when their count divides K.

    Members are independent, so splitting the member axis (state and per-member
    batches) over a one-axis mesh needs no communication: XLA partitions the
    vmapped program and each device trains K / D members.
    """
    vmapped = sweep.vmap_step(step, shared_batch=False)
    devices = jax.device_count()
    if devices == 1 or num_members % devices:
        return vmapped
    # A plain Mesh (automatic axes): the loop's other jitted code (member slices,
    # sampling) then just follows the data, with no sharding in the types.
    mesh = Mesh(np.array(jax.devices()), (parallel.BATCH_AXIS,))
    split = NamedSharding(mesh, PartitionSpec(parallel.BATCH_AXIS))

    def run(states, batch):
        return vmapped(jax.device_put(states, split), jax.device_put(batch, split))

    return run


def _start(program: Program, group: _Group):
    """The (stacked) state to train from, and one data iterator per member.

    Restores the latest checkpoints if every member has one at the same step;
    otherwise (a fresh run, or a crash between member saves) starts over.
    Rows of metrics.jsonl after the restored step are dropped.
    """
    fresh = [init_member(program, c) for c in group.configs]
    restored = [checkpoint.restore_latest(str(w / CHECKPOINT_DIR), s)
                for w, s in zip(group.workdirs, fresh)]
    restored_steps = {None if r is None else int(r[0].step) for r in restored}
    if len(restored_steps) == 1 and None not in restored_steps:
        states, positions = [r[0] for r in restored], [r[1] for r in restored]
    else:
        for w in group.workdirs:
            shutil.rmtree(w / CHECKPOINT_DIR, ignore_errors=True)
        states, positions = fresh, [None] * len(fresh)
    for w in group.workdirs:
        truncate_metrics(w, int(states[0].step))
    iterators = [data.make_iterator(program.data_config, c.seed, position=p,
                                    source=program.source)
                 for c, p in zip(group.configs, positions)]
    return (sweep.stack_members(states) if group.stacked else states[0]), iterators


def _loop(program: Program, group: _Group, run_step, state, iterators, evaluator, progress):
    """Runs the steps from ``state.step`` to ``config.steps`` (or until all diverge).

    Returns ``(state, wall seconds, steps trained here)``.
    """
    config, log = program.config, program.config.log
    if group.stacked:
        def next_batch():
            batches = [next(it) for it in iterators]
            return {k: np.stack([b[k] for b in batches]) for k in batches[0]}
    else:
        def next_batch():
            return next(iterators[0])

    def due(interval, step):
        return interval > 0 and step % interval == 0

    start = step = int(group.member(state, 0).step)
    previous_wall = [_last_wall(w) for w in group.workdirs]
    bar = _progress_bar(config, start, len(group.configs),
                        log.progress if progress is None else progress)
    t0 = time.perf_counter()
    try:
        while step < config.steps:
            state, metrics = run_step(state, next_batch())
            step += 1
            bar.update(1)
            fd_due = due(config.eval.fd_every, step)
            if due(log.every, step) or fd_due or step == config.steps:
                host, diverged = jax.device_get((metrics, state.diverged))
                wall = time.perf_counter() - t0
                for i, (c, w) in enumerate(zip(group.configs, group.workdirs)):
                    row = {"step": step, "wall_s": previous_wall[i] + wall,
                           **{k: float(np.asarray(v)[i] if group.stacked else v)
                              for k, v in host.items()}}
                    if fd_due and not np.asarray(diverged).reshape(-1)[i]:
                        row.update(evaluator.cheap(group.member(state, i).params,
                                                   jax.random.fold_in(sample_key(c), step)))
                    append_metrics(w, row)
                bar.set_postfix(_postfix(host, group.stacked), refresh=False)
                if np.all(diverged):
                    break
            if due(log.samples_every, step):
                _save_grids(program, group, state, step)
            if due(log.checkpoint_every, step):
                _save_checkpoints(group, state, iterators, step)
        jax.block_until_ready(state)
        return state, time.perf_counter() - t0, step - start
    finally:
        bar.close()


def _finish(program: Program, group: _Group, state, iterators, evaluator, wall, trained):
    """Final checkpoint, sample grid, ``samples/final.npz`` and ``summary.json`` per member."""
    step = int(group.member(state, 0).step)
    if checkpoint.latest_step(str(group.workdirs[0] / CHECKPOINT_DIR)) != step:
        _save_checkpoints(group, state, iterators, step)
    _save_grids(program, group, state, step)
    finals = []
    for i, (c, w) in enumerate(zip(group.configs, group.workdirs)):
        member = group.member(state, i)
        # wall_s: training time over all attempts (the last row of metrics.jsonl);
        # steps_per_s: this attempt's rate (None if it had nothing left to train).
        summary = {"steps": int(member.step), "wall_s": _last_wall(w),
                   "steps_per_s": trained / wall if trained and wall > 0 else None,
                   **_divergence(member)}
        if group.stacked:
            summary["sweep_members"] = len(group.configs)
        samples, labels = grid_samples(program, member.params, c)
        np.savez_compressed(w / SAMPLES_DIR / "final.npz", samples=samples,
                            **({} if labels is None else {"labels": labels}))
        summary.update(evaluator.final(member, c, diverged=summary["diverged"]))
        write_json(w / SUMMARY_FILE, finite_or_none(summary))
        finals.append(member)
    return finals


def _save_grids(program: Program, group: _Group, state, step: int) -> None:
    for i, (c, w) in enumerate(zip(group.configs, group.workdirs)):
        images, _ = grid_samples(program, group.member(state, i).params, c)
        save_samples_png(w / SAMPLES_DIR / f"step_{step:07d}.png", images,
                         f"{c.name} seed {c.seed}, step {step}",
                         columns=program.spec.num_classes if c.model_type == "cgan" else None,
                         centres=getattr(program.source, "centres", None))


def _save_checkpoints(group: _Group, state, iterators, step: int) -> None:
    for i, w in enumerate(group.workdirs):
        checkpoint.save(str(w / CHECKPOINT_DIR), step, group.member(state, i),
                        iterators[i].position)


def _last_wall(workdir) -> float:
    rows = read_metrics(workdir)
    return float(rows[-1]["wall_s"]) if rows else 0.0


def _divergence(state) -> dict:
    diverged = bool(state.diverged)
    return {"diverged": diverged,
            "diverged_reason": steps.divergence_reason(state.diverged_reason) if diverged else None,
            "diverged_step": int(state.diverged_step) if diverged else None}


def _progress_bar(config, start: int, members: int, enabled: bool):
    desc = config.name + (f" x{members}" if members > 1 else "")
    return tqdm.auto.tqdm(total=config.steps, initial=start, desc=desc, disable=not enabled,
                          dynamic_ncols=True, leave=True)


def _postfix(host_metrics: dict, stacked: bool) -> dict:
    """Live losses for the bar (the median over members in a sweep)."""
    shown = {}
    for k in ("d_loss", "g_loss", "loss", "recon", "kl"):
        if k in host_metrics:
            v = np.asarray(host_metrics[k], np.float64)
            shown[k] = f"{float(np.nanmedian(v) if stacked else v):.3f}"
    return shown


# ----------------------------------------------------------------------------
# Evaluation hooks
# ----------------------------------------------------------------------------

class EvaluationHooks(NamedTuple):
    """What the loop asks of :mod:`regan_jax.evaluation`.

    ``cheap(params, key) -> dict``: the in-training scores logged to
    metrics.jsonl (``fd`` for images, the mode metrics for 2-D data; empty
    where no feature space applies); ``final(state, config, diverged) ->
    dict``: the summary's scores and weight statistics (``sparsity_<net>``,
    ``norm_<net>`` and the unit-level ``filter_sparsity_<net>``). A diverged run gets
    weight statistics only: scores of its frozen pre-divergence parameters
    would not describe the run.
    """
    cheap: Callable
    final: Callable


def evaluation_hooks(program: Program) -> EvaluationHooks:
    """The evaluation of ``program``'s runs against the held-out split (or the mixture).

    Sample metrics need a feature space: the mixture itself, a shipped
    feature classifier (digits, stacked_digits, fashion_mnist) or Inception
    weights named by ``config.eval.inception_weights``; without one the
    summary holds the weight statistics (and, for VAEs, the ELBO) only.
    """
    config = program.config
    # The held-out split, loaded once for the reference and every member's VAE scores.
    test = (None if isinstance(program.source, data.Mixture)
            else data.from_config(config.data, "test"))
    reference = _reference(program, test)

    def sample_fn(params):
        return lambda key, n: _unconditional(program.sample(params, key, n))

    def cheap(params, key):
        if reference is None:
            return {}
        scores = evaluation.evaluate(sample_fn(params), key, reference,
                                     num_samples=config.eval.fd_samples,
                                     batch_size=config.eval.batch_size, cheap=True)
        return {k: v for k, v in scores.items() if k not in ("num_samples", "nonfinite_samples")}

    def final(state, member_config, diverged):
        out = evaluation.weight_summary(state.params)
        if diverged:
            return out
        key = jax.random.fold_in(sample_key(member_config), 1)
        if reference is not None:
            out.update(evaluation.evaluate(
                sample_fn(state.params), key, reference,
                num_samples=member_config.eval.num_samples,
                batch_size=member_config.eval.batch_size))
        if config.model_type == "vae":
            out.update(_vae_scores(program, test, state.params, key))
        return out

    return EvaluationHooks(cheap, final)


def _unconditional(out):
    """The sampler's ``(x, None)`` as ``x``; a conditional ``(x, labels)`` unchanged."""
    x, labels = out
    return x if labels is None else (x, labels)


def _reference(program: Program, test):
    """The evaluation reference of the program's data (``test``: its held-out split, None for
    a mixture), or None if it has no feature space."""
    config = program.config
    if test is None:
        return evaluation.make_reference(
            config.data.name, data_options=dict(radius=config.data.ring_radius,
                                                spacing=config.data.grid_spacing,
                                                sigma=config.data.sigma))
    feature_net = (evaluation.load_inception(config.eval.inception_weights)
                   if config.eval.inception_weights else None)
    if feature_net is None and evaluation.evaluator.default_classifier(config.data.name) is None:
        return None
    return evaluation.make_reference(config.data.name, images=test.images, labels=test.labels,
                                     feature_net=feature_net)


def _vae_scores(program: Program, test, params, key) -> dict:
    """``elbo`` and ``recon`` (nats per example) of the held-out split ``test``, one z draw each.

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) ‖ p(z)), estimated with one
    z ~ q(z|x); ``recon`` is the estimate's -log p(x|z) term.
    """
    config = program.config
    encoder, decoder = program.models["encoder"], program.models["decoder"]

    def per_example(x, key):
        mean, logvar = encoder.apply({"params": params["encoder"]}, x[None])
        z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape)
        out = decoder.apply({"params": params["decoder"]}, z)
        loss, parts = losses.negative_elbo(x[None], out, mean, logvar, config.model.likelihood,
                                           config.model.gaussian_std)
        return jnp.stack([-loss, parts["recon"]])

    @jax.jit
    def scores(images):
        keys = jax.random.split(key, images.shape[0])
        return jax.vmap(per_example)(images, keys)

    values = np.asarray(evaluation.classifier.batched_apply(scores, test.images,
                                                            config.eval.batch_size), np.float64)
    return {"elbo": float(np.mean(values[:, 0])), "recon": float(np.mean(values[:, 1]))}
