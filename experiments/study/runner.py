"""The preset runner: ``python -m experiments.figures --preset {smoke,cpu,full} --workdir DIR``.

1. :func:`train_preset` trains every member of the preset's grids
   (:data:`experiments.study.presets.PRESETS`) that has no finished run under
   ``DIR/<experiment>/`` yet -- members that share a compiled program as one
   vmapped program, through :func:`experiments.study.sweeps.run_members` -- and
   reuses the finished ones; ``jobs`` worker processes (each pinned to its
   share of the cores, all sharing one persistent compilation cache,
   ``DIR/.jax_cache``) train round-robin slices, and a progress bar counts
   member-steps over the whole preset; then it scores each experiment's null
   references once (:func:`null_references`);
2. :func:`make_figures` also collects every finished run into
   ``DIR/results.csv`` (:mod:`experiments.study.tables`), draws the figures of
   FIGURES.md into ``DIR/figures/`` (PNG and PDF,
   :mod:`experiments.study.figures`) and writes ``DIR/results.md`` (the tables
   and the figure list).

``train_missing=False`` redraws from what DIR holds; ``export=DIR2`` also
writes web-sized PNG copies (how ``docs/study/figures`` was made). The preset
is recorded in ``DIR/preset.json``; a DIR trained with another preset is
refused (its runs hold other configs).
"""

import json
import os
import pathlib
import subprocess
import sys
import threading
import time

import jax
from tqdm.auto import tqdm

import experiments
from experiments.study import cells, presets, sweeps, tables
from experiments.study import members as members_lib
from experiments.study.figures import output
from regan_jax import calibration, data, evaluation, families, xla
from regan_jax import workdir as workdir_lib

FIGURES_DIR = "figures"
# The persistent compilation cache that every process of a preset shares (xla.use_compilation_cache).
COMPILE_CACHE_DIR = ".jax_cache"


# ----------------------------------------------------------------------------
# Training the grids
# ----------------------------------------------------------------------------


def preset_members(
    preset: str, workdir=None, *, calibrate: bool = False, progress: bool = True, log=print
) -> dict:
    """``{experiment: [members.Member, ...]}`` of every grid in ``PRESETS[preset]``.

    Grids in effective units need the experiment's calibration record
    (:func:`calibration_path` under ``workdir``): with ``calibrate`` a missing
    one is measured and written first; without, a missing one raises.

    Raises:
      ValueError: an unknown preset (the valid ones are listed), or a missing
        calibration record.
    """
    if preset not in presets.PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(presets.PRESETS)}")
    out = {}
    for name, grids in presets.PRESETS[preset].items():
        members = []
        for grid in grids:
            record_path = None
            if grid.units == "effective":
                record_path = calibration_path(workdir, name, grid.on)
                if not record_path.exists():
                    if not calibrate:
                        raise ValueError(f"no calibration record at {str(record_path)!r}")
                    log(f"[{name}] calibrating ({grid.calibration_steps} steps x 2 seeds)")
                    calibration.save(
                        record_path,
                        calibration.measure(
                            members_lib.with_regulariser(grid_base(grid), grid.on),
                            steps=grid.calibration_steps,
                            seeds=(0, 1),
                            progress=progress,
                        ),
                    )
            members += grid_members(grid, record_path)
        out[name] = members
    return out


def grid_base(grid: presets.StudyGrid):
    """The base config of ``grid``: its experiment's config with the grid's overrides."""
    return experiments.load_config(grid.config, grid.overrides)


def grid_members(grid: presets.StudyGrid, record_path=None) -> list:
    """The members of one grid; ``record_path``: its calibration record (effective units).

    Without a record the strengths are read as raw λ: right for a raw-unit
    grid, and for counting an effective one's members and programs (a strength
    is an injected hyperparameter, so it changes neither).
    """
    seeds, _ = presets.grid_seeds(grid)
    return members_lib.grid(
        grid_base(grid),
        grid.penalties,
        grid.targets,
        {"strength": grid.strengths, "radius": grid.radii, "learning_rate": grid.learning_rates},
        seeds,
        None if record_path is None else str(record_path),
        on=grid.on,
    )


def calibration_path(workdir, experiment: str, on: str = "none") -> pathlib.Path:
    """Where a preset keeps an experiment's calibration record (one per regulariser)."""
    suffix = "" if on == "none" else f"-{on}"
    return pathlib.Path(workdir) / experiment / f"calibration{suffix}.json"


def train_preset(
    preset: str, workdir, *, jobs: int = 1, shard=(0, 1), progress: bool = True, log=print
) -> dict:
    """Calibrates and trains what ``preset`` needs under ``workdir`` (finished members reused).

    Args:
      preset: a name in :data:`experiments.study.presets.PRESETS`.
      workdir: the preset's directory (one sub-directory per experiment).
      jobs: worker processes that train the members (round-robin slices of
        each experiment), each pinned to its share of the CPU cores where the
        OS allows. Small vmapped programs use a second core poorly within one
        process; two single-core workers trained the digits GAN 1.5x faster
        than one two-core process on a 2-core CPU (issue #13).
      shard: ``(i, n)``: train only the i-th of n slices (what a worker, or a
        job of an array, does); calibration records must exist then.
      progress: a bar of member-steps over the whole preset, with its ETA.
      log: where to report what runs.

    Returns:
      ``{experiment: members}`` of the preset.

    Raises:
      ValueError: an unknown preset, a bad ``jobs`` or ``shard``.
      WorkdirError: ``workdir`` recorded for another preset.
      WorkerFailed: a worker failed (its log is named; finished members are kept).
    """
    workdir = pathlib.Path(workdir)
    if preset not in presets.PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(presets.PRESETS)}")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {shard}")
    record = workdir / tables.PRESET_FILE
    recorded = workdir_lib.read_json(record)["preset"] if record.exists() else preset
    if recorded != preset:
        raise workdir_lib.WorkdirError(
            f"{str(workdir)!r} holds the {recorded!r} preset; use another --workdir for {preset!r}"
        )
    xla.use_compilation_cache(workdir / COMPILE_CACHE_DIR)  # before the first compile
    if count > 1:  # a worker: the parent calibrated and owns the bar and the nulls
        members = preset_members(preset, workdir, calibrate=False)
        for name, ms in members.items():
            sweeps.run_members(
                sweeps.shard_members(ms, shard),
                workdir / name,
                max_members=presets.max_members(preset, name),
                progress=False,
                log=log,
            )
        return members
    workdir_lib.write_json(record, {"preset": preset})
    members = preset_members(preset, workdir, calibrate=True, progress=progress, log=log)
    t0 = time.perf_counter()
    with _PresetProgress(members, workdir, enabled=progress):
        if jobs == 1:
            for name, ms in members.items():
                log(f"[{name}] {len(ms)} runs")
                sweeps.run_members(
                    ms,
                    workdir / name,
                    max_members=presets.max_members(preset, name),
                    progress=False,
                    log=log,
                )
        else:
            _run_workers(preset, workdir, jobs, log)
    for name, ms in members.items():
        null_references(workdir / name, ms[0].config)
    log(f"[{preset}] trained in {time.perf_counter() - t0:.0f} s")
    return members


class WorkerFailed(RuntimeError):
    """A worker process of ``train_preset(..., jobs > 1)`` exited non-zero."""


def _run_workers(preset: str, workdir: pathlib.Path, jobs: int, log) -> None:
    """Runs ``jobs`` worker processes (``--shard i/jobs``), each on its share of the cores."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    procs = []
    for i in range(jobs):
        log_path = workdir / f"worker-{i}.log"
        cmd = [
            sys.executable,
            "-m",
            "experiments.figures",
            "--preset",
            preset,
            "--workdir",
            str(workdir),
            "--shard",
            f"{i}/{jobs}",
            "--no-progress",
        ]
        with open(log_path, "a") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        share = cpus[i * len(cpus) // jobs : (i + 1) * len(cpus) // jobs]
        if share:  # before the worker has imported jax and sized its thread pools
            os.sched_setaffinity(proc.pid, share)
        procs.append((proc, log_path))
        log(f"  worker {i}/{jobs} (pid {proc.pid}, cpus {share or 'all'}) -> {log_path}")
    failed = [(p.wait(), path) for p, path in procs]
    failed = [(rc, path) for rc, path in failed if rc != 0]
    if failed:
        raise WorkerFailed(
            "; ".join(f"worker failed with exit {rc}: see {str(path)!r}" for rc, path in failed)
        )


def _steps_done(run_dir: pathlib.Path, steps: int) -> int:
    """Steps a member has done: all if finished, else its last logged step."""
    if workdir_lib.is_finished(run_dir):
        return steps
    try:
        with open(run_dir / workdir_lib.METRICS_FILE, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            last = f.read().splitlines()[-1]
        return min(steps, int(json.loads(last)["step"]))
    except (OSError, IndexError, ValueError, KeyError):
        return 0


class _PresetProgress:
    """A bar of member-steps over a whole preset (with its ETA), polled from the run directories.

    A thread reads each member's last logged step every ``every`` seconds, so
    the bar counts the work of worker processes too.
    """

    def __init__(
        self, members: dict, workdir: pathlib.Path, *, enabled: bool = True, every: float = 5.0
    ):
        self._runs = [
            (workdir / name / m.name, m.config.steps) for name, ms in members.items() for m in ms
        ]
        self._enabled, self._every = enabled, every
        self._stop = threading.Event()

    def _done(self) -> int:
        return sum(_steps_done(run, steps) for run, steps in self._runs)

    def _poll(self, bar) -> None:
        while not self._stop.wait(self._every):
            bar.update(self._done() - bar.n)

    def __enter__(self):
        if self._enabled:
            self._bar = tqdm(
                total=sum(s for _, s in self._runs),
                initial=self._done(),
                unit="member-step",
                unit_scale=True,
                desc="preset",
                smoothing=0.05,
            )
            self._thread = threading.Thread(target=self._poll, args=(self._bar,), daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._enabled:
            self._stop.set()
            self._thread.join()
            self._bar.update(self._done() - self._bar.n)
            self._bar.close()
        return False


def null_references(directory, config, *, seed: int = 0) -> dict:
    """The null references of an experiment, scored once and kept in ``directory/nulls.json``.

    ``{'num_samples': N, 'scores': {kind: scores}}``: the nulls of
    :func:`regan_jax.evaluation.null_scores` at the runs' sample count, or
    at the held-out pool's size where that is smaller (digits: 148 images;
    the figures say N). Empty scores where the data has no feature space.
    With ``config.eval.protocol_v2`` the nulls are scored against the runs'
    training set too (``config.data``'s, ``train_size`` applied): the
    generalisation scores, and the ``memoriser`` null.
    A family with its own evaluation scores its own nulls (``Family.null_scores``).
    """
    path = pathlib.Path(directory) / cells.NULLS_FILE
    if path.exists():
        return workdir_lib.read_json(path)
    family = families.get(config.model_type)
    reference = None if family.null_scores else evaluation.config_reference(config)
    scores, n = {}, config.eval.num_samples
    if family.null_scores is not None:  # a family scored by its own evaluation
        scores, n = family.null_scores(config, jax.random.key(seed))
    elif reference is not None:
        if reference.images is not None:  # the pool of 'real': half the held-out split
            n = min(n, len(reference.images) // 2)
        train = (
            evaluation.training_reference(reference, data.from_config(config.data))
            if config.eval.protocol_v2
            else None
        )
        scores = evaluation.null_scores(reference, jax.random.key(seed), n, train=train)
    out = {"num_samples": n, "scores": scores}  # evaluate's scores: non-finite -> None
    workdir_lib.write_json(path, out)
    return out


def make_figures(
    preset: str,
    workdir,
    *,
    train_missing: bool = True,
    jobs: int = 1,
    progress: bool = True,
    export=None,
    log=print,
) -> dict:
    """The whole pipeline: train what is missing (``jobs`` workers), collect, draw, results.md.

    Returns ``{stem: PNG path}`` of the figures.
    """
    workdir = pathlib.Path(workdir)
    if train_missing:
        train_preset(preset, workdir, jobs=jobs, progress=progress, log=log)
    elif preset not in presets.PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(presets.PRESETS)}")
    rows = tables.collect_results(workdir)
    written = output.draw_figures(rows, workdir, preset, workdir / FIGURES_DIR)
    tables.write_results_md(workdir, rows, preset, written)
    if export is not None:
        output.export_small_pngs(written, export)
    log(f"figures: {len(written)} figures, {len(rows)} runs -> {workdir / tables.RESULTS_MD}")
    return written
