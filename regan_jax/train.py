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
"""
import json
import math
import os
import pathlib
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from regan_jax import config as config_lib

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
# Sampling
# ----------------------------------------------------------------------------

def make_sampler(config, models, spec):
    """``sample(params, key, n, start=0) -> (x [n, *shape] in [-1, 1], labels [n] or None)``.

    GAN: ``G(z)``, z ~ N(0, I). Conditional GAN: ``G(z, y)`` with y cycling
    through the classes (``y_i = (start + i) mod C``, so a grid with C columns
    shows one class per column, and batches drawn at offsets continue the cycle). VAE: the decoder's mean at z ~ N(0, I) — for the
    Bernoulli likelihood of pixels mapped to [0, 1] that is ``2 σ(logits) - 1``.
    """
    import jax
    import jax.numpy as jnp

    if config.model_type == "vae":
        decoder = models["decoder"]
        bernoulli = config.model.likelihood == "bernoulli"

        def sample(params, key, n, start=0):
            del start  # Unconditional.
            z = jax.random.normal(key, (n, decoder.latent_dim))
            out = decoder.apply({"params": params["decoder"]}, z)
            return (2 * jax.nn.sigmoid(out) - 1 if bernoulli else jnp.clip(out, -1, 1)), None
        return sample
    g = models["g"]
    conditional = config.model_type == "cgan"

    def sample(params, key, n, start=0):
        z = jax.random.normal(key, (n, g.latent_dim))
        labels = ((start + jnp.arange(n, dtype=jnp.int32)) % spec.num_classes
                  if conditional else None)
        return g.apply({"params": params["g"]}, z, labels), labels
    return sample


# ----------------------------------------------------------------------------
# The loop
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
    Each member has its own workdir with the full contract; the group is
    checkpointed member by member at the same steps and resumes together.

    Returns:
      The K final train states (unstacked).

    Raises:
      ValueError: no members, a workdir given twice, members that do not share
        a program, an invalid config; WorkdirError (see :func:`prepare_workdir`).
    """
    import jax

    from regan_jax import checkpoint, data, models as models_lib, penalties, steps, sweep

    configs, workdirs = list(configs), [pathlib.Path(w) for w in workdirs]
    if not configs or len(configs) != len(workdirs):
        raise ValueError(f"train_members needs one workdir per config and at least one; got "
                         f"{len(configs)} configs and {len(workdirs)} workdirs")
    if len({w.resolve() for w in workdirs}) != len(workdirs):
        raise ValueError(f"workdirs must be distinct, got {[str(w) for w in workdirs]}")
    for c in configs:
        config_lib.validate(c)
    keys = {program_key(c) for c in configs}
    if len(keys) != 1:
        raise ValueError("configs trained as one vmapped program may differ only in "
                         f"{MEMBER_KEYS} and {MEMBER_HYPERPARAMS}")
    for c, w in zip(configs, workdirs):
        prepare_workdir(w, c, overwrite)

    config = configs[0]
    source = data.from_config(config.data)
    spec = source.spec
    nets = models_lib.make_models(config.model, spec)
    step_fn = steps.make_step(config, nets, _optimizers(config, penalties))
    data_cfg = _data_config(config, steps)
    example = {"image": np.zeros((1, *spec.shape), np.float32),
               "label": np.zeros((1,), np.int32)}

    states, positions = [], []
    for c in configs:
        state = steps.init_state(c, nets, _optimizers(c, penalties), jax.random.key(c.seed),
                                 example)
        states.append(state)
    restored = [checkpoint.restore_latest(str(w / CHECKPOINT_DIR), s)
                for w, s in zip(workdirs, states)]
    restored_steps = {None if r is None else int(r[0].step) for r in restored}
    if len(restored_steps) == 1 and None not in restored_steps:
        states = [r[0] for r in restored]
        positions = [r[1] for r in restored]
    else:
        # Fresh start (or members checkpointed at different steps: a crash
        # between member saves); drop whatever a previous attempt left.
        for w in workdirs:
            shutil.rmtree(w / CHECKPOINT_DIR, ignore_errors=True)
        positions = [None] * len(configs)
    start = int(states[0].step)
    for w in workdirs:
        truncate_metrics(w, start)
    iterators = [data.make_iterator(data_cfg, c.seed, position=p, source=source)
                 for c, p in zip(configs, positions)]

    stacked = len(configs) > 1
    if stacked:
        state = sweep.stack_members(states)
        run_step = sweep.vmap_step(step_fn, shared_batch=False)

        def next_batch():
            batches = [next(it) for it in iterators]
            return {k: np.stack([b[k] for b in batches]) for k in batches[0]}
    else:
        state = states[0]
        run_step = jax.jit(step_fn, donate_argnums=0)

        def next_batch():
            return next(iterators[0])

    sampler = make_sampler(config, nets, spec)
    centres = getattr(source, "centres", None)
    evaluator = _make_evaluator(config, source, sampler)
    members = [_member_fn(stacked, i) for i in range(len(configs))]
    previous_wall = [_last_wall(w) for w in workdirs]
    log = config.log

    def due(interval, step):
        return interval > 0 and step % interval == 0

    def save_grids(state, step):
        for i, (c, w) in enumerate(zip(configs, workdirs)):
            images, _ = _draw(sampler, members[i](state.params), c, log.num_images, spec)
            save_samples_png(w / SAMPLES_DIR / f"step_{step:07d}.png", images,
                             f"{c.name} seed {c.seed}, step {step}",
                             columns=spec.num_classes if c.model_type == "cgan" else None,
                             centres=centres)

    bar = _progress_bar(config, start, len(configs),
                        config.log.progress if progress is None else progress)
    t0 = time.perf_counter()
    step = start
    try:
        while step < config.steps:
            state, metrics = run_step(state, next_batch())
            step += 1
            bar.update(1)
            fd_due = due(config.eval.fd_every, step)
            if due(log.every, step) or fd_due or step == config.steps:
                host, diverged = jax.device_get((metrics, state.diverged))
                wall = time.perf_counter() - t0
                for i, w in enumerate(workdirs):
                    row = {"step": step, "wall_s": previous_wall[i] + wall,
                           **{k: float(v) for k, v in members[i](host).items()}}
                    if fd_due and not members[i](diverged):
                        row["fd"] = evaluator.cheap_fd(members[i](state.params),
                                                       jax.random.fold_in(_eval_key(configs[i]), step))
                    append_metrics(w, row)
                bar.set_postfix(_postfix(host, stacked), refresh=False)
                if np.all(diverged):
                    break
            if due(log.samples_every, step):
                save_grids(state, step)
            if due(log.checkpoint_every, step):
                _save_checkpoints(checkpoint, workdirs, members, state, iterators, step)
        jax.block_until_ready(state)
        wall = time.perf_counter() - t0
    finally:
        bar.close()
    if checkpoint.latest_step(str(workdirs[0] / CHECKPOINT_DIR)) != step:
        _save_checkpoints(checkpoint, workdirs, members, state, iterators, step)
    save_grids(state, step)

    finals = []
    for i, (c, w) in enumerate(zip(configs, workdirs)):
        member_state = members[i](state)
        done = step - start
        summary = {"steps": int(member_state.step), "wall_s": previous_wall[i] + wall,
                   "steps_per_s": done / wall if wall > 0 and done else None,
                   **_divergence(member_state, steps)}
        if stacked:
            summary["sweep_members"] = len(configs)
        samples, labels = _draw(sampler, member_state.params, c, c.eval.num_samples, spec,
                                key=jax.random.fold_in(_eval_key(c), -1 % (2**31)))
        np.savez_compressed(w / SAMPLES_DIR / "final.npz", samples=samples[:log.num_images],
                            **({} if labels is None else {"labels": labels[:log.num_images]}))
        summary.update(evaluator.final(member_state, samples, labels,
                                       diverged=summary["diverged"]))
        write_json(w / SUMMARY_FILE, finite_or_none(summary))
        finals.append(member_state)
    return finals


def _optimizers(config, penalties) -> dict:
    return {net: penalties.build_optimizer(config.optimizer[net], config.penalty[net])
            for net in config_lib.networks(config.model_type)}


def _data_config(config, steps):
    """``config.data`` with the batch a step consumes (GANs: ``d_steps`` batches)."""
    data_cfg = config_lib.copy_config(config.data)
    if config.model_type != "vae":
        data_cfg.batch_size = steps.examples_per_step(config.loss, config.data.batch_size)
    return data_cfg


def _member_fn(stacked: bool, index: int):
    """Member ``index`` of a stacked pytree (identity for a single run)."""
    import jax

    if not stacked:
        return lambda tree: tree
    return lambda tree: jax.tree.map(lambda x: x[index], tree)


def _eval_key(config):
    """The key of a run's sample grids and evaluation draws (not the training stream)."""
    import jax

    return jax.random.fold_in(jax.random.key(config.seed), 0x5A3)


def _draw(sampler, params, config, n: int, spec, key=None):
    """``n`` samples (numpy) in batches of ``config.eval.batch_size``; fixed key by default."""
    import jax

    key = _eval_key(config) if key is None else key
    images, labels = [], []
    for i, start in enumerate(range(0, n, config.eval.batch_size)):
        size = min(config.eval.batch_size, n - start)
        x, y = sampler(params, jax.random.fold_in(key, i), size, start)
        images.append(np.asarray(x))
        labels.append(None if y is None else np.asarray(y))
    return np.concatenate(images), (None if labels[0] is None else np.concatenate(labels))


def _last_wall(workdir) -> float:
    rows = read_metrics(workdir)
    return float(rows[-1]["wall_s"]) if rows else 0.0


def _save_checkpoints(checkpoint, workdirs, members, state, iterators, step) -> None:
    for i, w in enumerate(workdirs):
        checkpoint.save(str(w / CHECKPOINT_DIR), step, members[i](state), iterators[i].position)


def _divergence(state, steps) -> dict:
    diverged = bool(state.diverged)
    return {"diverged": diverged,
            "diverged_reason": steps.divergence_reason(state.diverged_reason) if diverged else None,
            "diverged_step": int(state.diverged_step) if diverged else None}


def _progress_bar(config, start: int, members: int, enabled: bool):
    from tqdm.auto import tqdm

    desc = config.name + (f" ×{members}" if members > 1 else "")
    return tqdm(total=config.steps, initial=start, desc=desc, disable=not enabled,
                dynamic_ncols=True, leave=True)


def _postfix(host_metrics: dict, stacked: bool) -> dict:
    """Live losses for the bar: the member median in a sweep."""
    shown = {}
    for k in ("d_loss", "g_loss", "loss", "recon", "kl"):
        if k in host_metrics:
            v = np.asarray(host_metrics[k])
            shown[k] = f"{float(np.nanmedian(v) if stacked else v):.3f}"
    return shown


class _Evaluator(NamedTuple):
    """The evaluation hooks of the loop.

    ``cheap_fd(params, key) -> float | None``: the in-training FD (None where
    no feature space applies); ``final(state, samples, labels, diverged) ->
    dict``: the summary's scores.
    """
    cheap_fd: Callable
    final: Callable


def _make_evaluator(config, source, sampler) -> _Evaluator:
    # PROVISIONAL until regan_jax.evaluation lands: weight statistics only.
    from regan_jax import penalties

    def cheap_fd(params, key):
        return None

    def final(state, samples, labels, diverged):
        out = {}
        for net, params in state.params.items():
            stats = penalties.weight_stats(params)
            out[f"sparsity_{net}"] = float(stats["sparsity"])
            out[f"norm_{net}"] = float(stats["l2"])
        return out

    return _Evaluator(cheap_fd, final)
