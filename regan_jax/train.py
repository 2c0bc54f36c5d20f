"""The training loop: ``train_and_evaluate(config, workdir)`` and ``train_members``.

Each run writes the workdir contract of :mod:`regan_jax.workdir`. The loop is
small: step ``k`` uses the batch the data iterator yields next and the key
``fold_in(run_key, k)``, so a resumed run (restored state and data position)
continues with exactly the randomness of an uninterrupted one. Metrics leave
the device only at logging steps. A run whose loss or parameters become
non-finite is frozen by the step (see :mod:`regan_jax.steps`); the loop
notices at the next logging step, stops, and the summary says ``diverged``
with the reason and step and reports no scores (a diverged run is a result,
not a crash; no NaN is ever a score).

A run holds its workdir's lock (:func:`regan_jax.workdir.lock`) from before
anything is written until it ends. SIGINT and SIGTERM are honoured from the
start: during set-up (building the program, setting up or restoring members)
the run stops before training and saves nothing; during training the current
step finishes, one checkpoint is saved (a vmapped group's as ONE checkpoint
of the stacked state, in ``checkpoints/.group`` of its first member, which
takes about a second for hundreds of members where member saves take
seconds each) and :class:`Interrupted` is raised; the resumed run is bitwise
the uninterrupted one (``benchmarks/sigterm.py`` measures the latency). Scalars and sample grids also go to
TensorBoard event files in the workdir (:mod:`regan_jax.events`).

Several runs whose configs differ only in seeds and injected hyperparameters
(strengths, learning rates) train as one vmapped program
(:func:`train_members`, used by ``experiments.sweep``); each member keeps its
own workdir with the same contract.

What the loop runs comes from elsewhere: the program (data, networks, step,
sampler) from :mod:`regan_jax.program`, which asks the model family; the
device wiring from :mod:`regan_jax.parallel` (a single run is data-parallel
over every device JAX sees, a vmapped group of K members is split
member-wise when the device count divides K, or on the ``members x batch``
mesh given); member stacking from :mod:`regan_jax.sweep`; the scores from
:mod:`regan_jax.evaluation`.

Several processes (``jax.distributed``, see :mod:`regan_jax.parallel`): every
process runs this same loop on the same global batches, and process 0 alone
touches the workdirs -- it takes the locks, makes the refusals (which every
process then raises), restores checkpoints (broadcast to the others), and
writes config, metrics, TensorBoard events, grids, checkpoints and
summaries from a host copy of the state (:func:`regan_jax.parallel.fetch`),
so the others need no access to the workdir at all. A signal is honoured at
the next logging or checkpoint step, when every process learns of it.
"""

import contextlib
import pathlib
import resource
import shutil
import signal
import threading
import time
import warnings
from typing import Callable, NamedTuple

import jax
import numpy as np
import tqdm.auto

from regan_jax import (
    checkpoint,
    data,
    effective_strength,
    evaluation,
    events,
    parallel,
    plotting,
    steps,
    sweep,
    walltime,
)
from regan_jax import config as config_lib
from regan_jax import program as program_lib
from regan_jax import workdir as workdir_lib
from regan_jax.evaluation import stability
from regan_jax.program import Program
from regan_jax.workdir import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    METRICS_FILE,
    SAMPLES_DIR,
    SUMMARY_FILE,
    WorkdirError,
    is_finished,
    read_json,
    read_metrics,
    write_json,
)

__all__ = [
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "Interrupted",
    "METRICS_FILE",
    "SAMPLES_DIR",
    "STEPS_PER_CALL",
    "SUMMARY_FILE",
    "WorkdirError",
    "chunk_length",
    "is_finished",
    "read_json",
    "read_metrics",
    "train_and_evaluate",
    "train_members",
    "write_json",
]

# Steps per dispatch where the data live on the device (see train_members,
# "Dispatch"). On the 2-core CPU, chunks of 10 steps bought nothing over one
# step per call (the step, not the dispatch, is the cost; BENCHMARKS.md), so
# the default keeps one; the benchmark measures both for an accelerator.
STEPS_PER_CALL = 1
# A signal's one checkpoint of a vmapped group, in the first member's checkpoints/ (which
# --overwrite moves aside with the rest; orbax lists only numbered steps there).
GROUP_CHECKPOINT_DIR = f"{CHECKPOINT_DIR}/.group"
SWEEP_MEMBERS = "sweep_members"  # the size of the group a member trained in
# What a group needs (check_resources). Open files: the interpreter, JAX, the data and a
# checkpoint being saved (BASE_OPEN_FILES); a tensorboardX event log holds 3 (measured).
# Memory: each member's state exists as the fresh state, in the stacked state, as the
# step's output and as a host copy at a checkpoint.
BASE_OPEN_FILES = 128
EVENT_LOG_OPEN_FILES = 3
STATE_COPIES = 4


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the run after a step; its checkpoint was saved.

    Attributes:
      signum: the signal's number (the command line exits with 128 + signum).
      step: the step the checkpoint holds (None: stopped during set-up, nothing saved).
    """

    def __init__(self, signum: int, step: int | None):
        name = signal.Signals(signum).name
        super().__init__(
            f"interrupted by {name} during set-up, before training; nothing saved, run the "
            "same command again to start"
            if step is None
            else f"interrupted by {name} at step {step}; checkpoint saved, run the same command "
            "again to resume"
        )
        self.signum, self.step = signum, step


def train_and_evaluate(
    config,
    workdir,
    *,
    overwrite: bool = False,
    progress: bool | None = None,
    data_parallel: str = "shard_map",
    mesh: parallel.MeshShape | None = None,
    steps_per_call: int = STEPS_PER_CALL,
    device_data: bool = True,
):
    """Trains one run into ``workdir`` (see the module docstring) and evaluates it.

    Resumes from the latest checkpoint of an interrupted run of the same
    config; refuses a finished run or a different experiment's workdir unless
    ``overwrite``.

    Args:
      config: an experiment config (:mod:`regan_jax.config`).
      workdir: the run directory.
      overwrite: delete a previous run's files in ``workdir`` first.
      progress: show the tqdm bar (default: ``config.log.progress``).
      data_parallel: ``'shard_map'`` or ``'pmap'``, how the step is split over
        several devices (:func:`regan_jax.parallel.data_parallel`).
      mesh: ``MeshShape(1, D)``: data-parallel over the first D devices
        (default: all of them).
      steps_per_call, device_data: how the steps are dispatched (see
        :func:`train_members`, "Dispatch").

    Returns:
      The final :class:`regan_jax.steps.TrainState`.

    Raises:
      ValueError: an invalid config (before any compute); WorkdirError: see
        :func:`regan_jax.workdir.prepare`.
    """
    return train_members(
        [config],
        [workdir],
        overwrite=overwrite,
        progress=progress,
        data_parallel=data_parallel,
        mesh=mesh,
        steps_per_call=steps_per_call,
        device_data=device_data,
    )[0]


def train_members(
    configs,
    workdirs,
    *,
    overwrite: bool = False,
    progress: bool | None = None,
    data_parallel: str = "shard_map",
    mesh: parallel.MeshShape | None = None,
    steps_per_call: int = STEPS_PER_CALL,
    device_data: bool = True,
    on_scores: Callable | None = None,
) -> list:
    """Trains K runs that share one compiled program (:func:`regan_jax.program.program_key`).

    K = 1 runs the jitted step; K > 1 stacks the K states on a member axis and
    runs ``sweep.vmap_step`` (each member with its own seed, data order and
    hyperparameters, equal to its own single run up to float reassociation).
    Each member has its own workdir with the full contract; the members are
    checkpointed at the same steps and resume together. ``mesh`` places
    them (:func:`regan_jax.parallel.member_parallel`; for K = 1
    :func:`regan_jax.parallel.data_parallel`).

    Dispatch. With ``device_data`` (the default) and a placement that keeps
    each member's batch on one device (:func:`regan_jax.parallel.fed_parallel`),
    the dataset lives on the device, each step's batch is gathered (or a
    mixture sampled) inside the compiled program, and up to
    ``steps_per_call`` steps run per dispatch in one ``lax.scan``; a chunk
    ends early at every logging, evaluation, grid and checkpoint step, so
    those happen exactly where they would. Otherwise (a batch split over
    devices, several processes, or ``device_data=False``) host batches are
    fed one step per call. Both give the same batches, keys and positions:
    a run without convolutions trains bitwise the same either way, with any
    ``steps_per_call``; a convolutional one in chunks of more than one step
    agrees to float reassociation (XLA compiles a loop body's convolutions
    apart), so keep ``steps_per_call`` fixed within a study
    (tests/test_device_data.py). A run may resume under either.

    ``on_scores(program, step, state, rows) -> (state, extras)``, if given, is
    called at every in-training evaluation (``eval.fd_every``) of a stacked
    group in one process, after the scores and before grids and checkpoints:
    ``rows`` are the members' metrics rows (None for a member frozen since
    an earlier step), ``state`` the stacked state; it returns the state to
    train on and one dict per member merged into its row (a frozen member
    given a non-empty dict logs it and trains on, if the new state's
    ``diverged`` flag is down). The population-based search
    (:mod:`regan_jax.tune`) is such a callback.

    Returns:
      The K final train states (unstacked).

    Raises:
      ValueError: no members, a workdir given twice or not UTF-8, members that do not share
        a program, an invalid config, ``steps_per_call`` < 1; WorkdirError (see
        :func:`regan_jax.workdir.prepare`). All before anything is written.
    """
    if not isinstance(steps_per_call, int) or steps_per_call < 1:
        raise ValueError(f"steps_per_call must be an integer >= 1, got {steps_per_call!r}")
    configs, workdirs = list(configs), [pathlib.Path(w) for w in workdirs]
    if not configs or len(configs) != len(workdirs):
        raise ValueError(
            f"train_members needs one workdir per config and at least one; got "
            f"{len(configs)} configs and {len(workdirs)} workdirs"
        )
    for w in workdirs:
        workdir_lib.check_path(w)
    if len({w.resolve() for w in workdirs}) != len(workdirs):
        raise ValueError(f"workdirs must be distinct, got {[str(w) for w in workdirs]}")
    for c in configs:
        config_lib.validate(c)
    if on_scores is not None and (len(configs) < 2 or jax.process_count() > 1):
        raise ValueError("on_scores needs a vmapped group (two members or more) in one process")
    if len({program_lib.program_key(c) for c in configs}) != 1:
        raise ValueError(
            "configs trained as one vmapped program may differ only in "
            f"{program_lib.MEMBER_KEYS} and {program_lib.MEMBER_HYPERPARAMS}"
        )
    # From the start: a signal during set-up ends it there.
    with _StopOnSignal() as stop, walltime.WallProfile() as profile:
        with profile.phase("setup"):
            program = program_lib.build_program(configs[0])
            group = _Group(configs, workdirs, len(configs) > 1)
            feeder = _feeder(program, group, mesh, data_parallel, steps_per_call, device_data)
            hooks = evaluation.run_hooks(program)
        stop.check()
        return _train(program, group, feeder, hooks, overwrite, progress, stop, profile, on_scores)


def _train(
    program: Program,
    group: "_Group",
    feeder: "_Feeder",
    hooks,
    overwrite: bool,
    progress: bool | None,
    stop: "_StopOnSignal",
    profile: walltime.WallProfile,
    on_scores: Callable | None = None,
) -> list:
    """:func:`train_members` once the program is built: take the workdirs, start, loop, finish.

    Each summary then gains the group's wall profile (:mod:`regan_jax.walltime`) of this call.
    """
    configs, workdirs, writes = group.configs, group.workdirs, group.writes
    show = (program.config.log.progress if progress is None else progress) and writes
    check_resources(program, group)
    with contextlib.ExitStack() as stack:

        def take_workdirs():  # Process 0's: refusals first, a refused run touches nothing.
            for c, w in zip(configs, workdirs):
                workdir_lib.check_can_prepare(w, c, overwrite)
            stack.enter_context(workdir_lib.lock_group(workdirs))
            for c, w in zip(configs, workdirs):
                workdir_lib.prepare(w, c, overwrite)

        with profile.phase("setup"):
            parallel.on_main_process(take_workdirs)
        logs = [
            stack.enter_context(
                contextlib.closing(events.EventLog(w, c.log.tensorboard and writes))
            )
            for c, w in zip(configs, workdirs)
        ]
        try:
            with profile.phase("setup"):
                state, batches, recorded = _start(program, group, feeder, stop, show)
            stack.callback(batches.close)
            stop.check()
            state, loop_wall, trained = _loop(
                program, group, state, batches, hooks, show, logs, stop, profile, on_scores
            )
        except BaseException:
            for w in workdirs if writes else ():  # An --overwrite'n run comes back if this
                started = bool(workdir_lib.read_metrics(w))  # one never started.
                (workdir_lib.discard_previous if started else workdir_lib.restore_previous)(w)
            raise
        for w in workdirs if writes else ():
            workdir_lib.discard_previous(w)
        # The group a member trained in: this one, or (nothing left to train, e.g. killed
        # between the members' summaries) the one its checkpoint records.
        members = len(configs) if trained or recorded is None else recorded
        finals = _finish(
            program, group, state, batches, hooks, loop_wall, trained, logs, members, profile
        )
        _add_wall_profile(group, profile.fields())
        return finals


def _add_wall_profile(group: "_Group", fields: dict) -> None:
    """Adds the group's wall profile to each member's ``summary.json`` (process 0's work)."""
    for w in group.workdirs if group.writes else ():
        write_json(w / SUMMARY_FILE, {**read_json(w / SUMMARY_FILE), **fields})


def check_resources(program: Program, group: "_Group") -> None:
    """Refuses, before anything is written, a group that cannot fit this process's limits.

    Estimates the open files (:data:`BASE_OPEN_FILES`, plus
    :data:`EVENT_LOG_OPEN_FILES` per member writing TensorBoard events; the
    locks take one, :func:`regan_jax.workdir.lock_group`) against ``ulimit -n``,
    and the memory (:data:`STATE_COPIES` copies of every member's state) against
    the memory available (``/proc/meminfo``, where there is one).

    Raises:
      ValueError: naming both numbers and what to change.
    """
    members = len(group.configs)
    events_on = sum(bool(c.log.tensorboard) for c in group.configs) if group.writes else 0
    files = BASE_OPEN_FILES + EVENT_LOG_OPEN_FILES * events_on
    limit, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if limit != resource.RLIM_INFINITY and files > limit:
        raise ValueError(
            f"a group of {members} members needs about {files} open files ({events_on} "
            f"TensorBoard event logs x {EVENT_LOG_OPEN_FILES} + {BASE_OPEN_FILES}), more than "
            f"this process may open (ulimit -n {limit}); raise the limit, split the group "
            "(--max-members), or set --config.log.tensorboard=false"
        )
    state = jax.eval_shape(program.init, jax.random.key(0))
    per_member = sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(state))
    needed, available = STATE_COPIES * members * per_member, _available_memory()
    if available is not None and needed > available:
        raise ValueError(
            f"a group of {members} members needs about {_size(needed)} of memory "
            f"({STATE_COPIES} copies of {_size(per_member)} of state each), more than the "
            f"{_size(available)} available; split the group (--max-members)"
        )


def _size(nbytes: int) -> str:
    return next(
        f"{nbytes / 2**shift:.1f} {unit}"
        for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB"), (0, "bytes"))
        if nbytes >= 2**shift or shift == 0
    )


def _available_memory() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (None where there is none)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class _Group(NamedTuple):
    """The members of one program: their configs and workdirs; stacked when K > 1."""

    configs: list
    workdirs: list
    stacked: bool

    @property
    def writes(self) -> bool:
        """Whether this process writes the workdirs (process 0 of a multi-process run)."""
        return parallel.is_main_process()

    def member(self, tree, index: int):
        return sweep.member(tree, index) if self.stacked else tree

    def seeds(self):
        return [c.seed for c in self.configs]


class _Feeder(NamedTuple):
    """How the loop advances: a runner and whether it takes device-side descriptors.

    ``run`` is ``(state, batch) -> (state, metrics)`` for host batches, or
    ``(state, stacked descriptors) -> (state, metrics)`` when ``on_device``.
    """

    run: Callable
    on_device: bool
    steps_per_call: int


def _feeder(
    program: Program, group: _Group, mesh, backend: str, steps_per_call: int, device_data: bool
) -> _Feeder:
    """The runner of the group's steps (see :func:`train_members`, "Dispatch")."""
    members = len(group.configs)
    if device_data:
        feed = data.device_feed(program.source, program.rows_per_step)
        run = parallel.fed_parallel(
            program.step, feed.gather, feed.arrays, members, program.rows_per_step, mesh
        )
        if run is not None:
            return _Feeder(run, True, steps_per_call)
    run = (
        parallel.member_parallel(program.step, members, program.rows_per_step, mesh)
        if group.stacked
        else parallel.data_parallel(program.step, program.rows_per_step, backend, mesh)
    )
    return _Feeder(run, False, 1)


class _Stream:
    """The group's data stream: ``advance(state, n)`` trains n steps; ``position`` is resumable."""

    def __init__(self, iterator, feeder: _Feeder, prefetch: int):
        self._feeder = feeder
        self._iterator = (
            iterator if feeder.on_device else data.prefetch_to_device(iterator, prefetch)
        )

    @property
    def position(self) -> dict:
        return self._iterator.position

    @property
    def steps_per_call(self) -> int:
        return self._feeder.steps_per_call

    def close(self) -> None:
        self._iterator.close()

    def advance(self, state, n: int):
        """``n`` steps: one dispatch of a full chunk, else one step per dispatch."""
        run, it = self._feeder.run, self._iterator
        if not self._feeder.on_device:
            for _ in range(n):
                state, metrics = run(state, next(it))
            return state, metrics
        if n == self._feeder.steps_per_call:
            return run(state, data.stack_descriptors([next(it) for _ in range(n)]))
        for _ in range(n):  # A short chunk: the one-step program, not a new compile per length.
            state, metrics = run(state, data.stack_descriptors([next(it)]))
        return state, metrics


def chunk_length(step: int, config, steps_per_call: int) -> int:
    """Steps from ``step`` to the next place the loop must stop, at most ``steps_per_call``.

    The loop stops at every multiple of a non-zero ``log.every``,
    ``eval.fd_every``, ``log.samples_every`` and ``log.checkpoint_every``, and
    at ``config.steps``.
    """
    end = min(step + steps_per_call, config.steps)
    for interval in (
        config.log.every,
        config.eval.fd_every,
        config.log.samples_every,
        config.log.checkpoint_every,
    ):
        if interval > 0:
            end = min(end, (step // interval + 1) * interval)
    return end - step


def _start(program: Program, group: _Group, feeder: _Feeder, stop: "_StopOnSignal", show: bool):
    """The (stacked) state to train from, the group's :class:`_Stream`, and the group size
    that the restored checkpoint records (None: none recorded).

    Restores the newest step that every member has checkpointed and can read
    (a sweep killed between its members' saves loses only the members' newer
    checkpoints; a damaged one is moved aside, :func:`_restore_common`), or
    the group's own checkpoint (:func:`_restore_group`) where it is newer;
    with none it starts over. Temporary directories of unfinished saves are
    removed first. Rows of metrics.jsonl after the restored step are dropped.
    A signal between members' set-up raises :class:`Interrupted` (nothing saved).
    """
    fresh = _init_members(program, group, stop, show)
    directories = [str(w / CHECKPOINT_DIR) for w in group.workdirs]

    def newest_common_step():
        for d in directories:  # What a killed or failed save left.
            checkpoint.remove_temporary(d)
        common = set.intersection(*(set(checkpoint.all_steps(d)) for d in directories))
        return max(common) if common else None

    # Process 0 reads the workdirs; the others get its step, states and positions.
    step = parallel.on_main_process(newest_common_step)
    grouped = _restore_group(group, fresh, step) if _group_checkpoints(group) else None
    if grouped is not None:  # A signal's one checkpoint of the whole group.
        states, group_position = grouped
        positions = [group_position]
        for d in directories:
            checkpoint.remove_after(d, int(states[0].step))
    elif step is not None:  # A crash between member saves: the newest step all of them have.
        restored = []

        def restore():
            restored[:] = _restore_common(directories, fresh, stop)
            return [position for _, position in restored]

        positions = parallel.on_main_process(restore)
        states = parallel.broadcast([r[0] for r in restored] if group.writes else fresh)
        group_position = data.group_position(positions) if group.stacked else positions[0]
    else:
        for d in directories if group.writes else ():
            checkpoint.remove_all(d)
        states, positions, group_position = fresh, [{}], None
    for w in group.workdirs if group.writes else ():
        workdir_lib.truncate_metrics(w, int(states[0].step))
    cfg = program.config
    iterator = data.make_iterator(
        cfg.data,
        group.configs[0].seed,
        **({"member_seeds": group.seeds()} if group.stacked else {}),
        position=group_position,
        rows_per_step=program.rows_per_step,
        source=program.source,
        on_device=feeder.on_device,
    )
    state = sweep.stack_members(states) if group.stacked else states[0]
    return state, _Stream(iterator, feeder, cfg.data.prefetch), positions[0].get(SWEEP_MEMBERS)


def _init_members(program: Program, group: _Group, stop: "_StopOnSignal", show: bool) -> list:
    """Each member's initial state, with a progress line for a group (a signal stops it)."""
    fresh = []
    with tqdm.auto.tqdm(
        group.configs,
        desc=f"set-up x{len(group.configs)}",
        leave=False,
        disable=not (show and group.stacked),
        dynamic_ncols=True,
    ) as configs:
        for c in configs:
            stop.check()
            fresh.append(program_lib.init_member(program, c))
    return fresh


def _restore_group(group: _Group, fresh: list, common_step: int | None):
    """``(member states, group position)`` from the group checkpoint, or None.

    A signal makes one checkpoint of the whole stacked group in the first
    member's ``checkpoints/.group`` (:func:`_save_on_signal`); it is used when it is
    of this very group (the same member workdirs, in order) and newer than
    the members' own. Otherwise (stale, or another group's) it is removed.
    """
    directory = str(_group_directory(group))
    steps = checkpoint.all_steps(directory)
    if not steps or (common_step is not None and max(steps) <= common_step):
        shutil.rmtree(directory, ignore_errors=True)
        return None
    try:
        _, state, saved = checkpoint.restore_readable(directory, steps, sweep.stack_members(fresh))
    except ValueError as e:  # Damaged: the members' own checkpoints are still there.
        warnings.warn(
            f"the group checkpoint in {directory!r} cannot be read ({e}); moved to "
            f"{checkpoint.move_to_corrupt(directory, max(steps))!r}",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    if saved["members"] != _member_names(group):
        warnings.warn(
            f"the group checkpoint in {directory!r} is of another group of members "
            f"({len(saved['members'])}); resuming from the members' own checkpoints",
            RuntimeWarning,
            stacklevel=2,
        )
        shutil.rmtree(directory, ignore_errors=True)
        return None
    return sweep.unstack(state), saved["position"]


def _group_checkpoints(group: _Group) -> bool:
    """Whether a signal saves the group as one checkpoint: a vmapped group in one process
    (with several processes each member is saved, at a step they agree on)."""
    return group.stacked and jax.process_count() == 1


def _group_directory(group: _Group) -> pathlib.Path:
    return group.workdirs[0] / GROUP_CHECKPOINT_DIR


def _member_names(group: _Group) -> list[str]:
    return [str(w.resolve()) for w in group.workdirs]


def _restore_common(directories: list[str], templates: list, stop: "_StopOnSignal") -> list:
    """Each member's ``(state, position)`` at the newest step that every member can read.

    A member's damaged checkpoint is moved aside (:func:`regan_jax.checkpoint.restore_readable`)
    and the group falls back to the step before; checkpoints after the step restored are
    removed (a sweep killed between its members' saves). A signal stops it (nothing changed
    but damaged checkpoints moved aside).
    """
    common = sorted(set.intersection(*(set(checkpoint.all_steps(d)) for d in directories)))
    step, restored = common[-1], []
    while len(restored) < len(directories):
        restored = []
        for d, template in zip(directories, templates):
            stop.check()
            got, state, position = checkpoint.restore_readable(
                d, [s for s in common if s <= step], template
            )
            if got < step:  # This member's newer ones were damaged: all fall back.
                step = got
                break
            restored.append((state, position))
    for d in directories:
        checkpoint.remove_after(d, step)
    return restored


def _loop(
    program: Program,
    group: _Group,
    state,
    batches,
    hooks,
    progress,
    logs,
    stop,
    profile,
    on_scores=None,
):
    """Runs the steps from ``state.step`` to ``config.steps`` (or until all diverge).

    ``profile`` (a :class:`regan_jax.walltime.WallProfile`) is charged with its phases.

    A member found diverged writes one last row (``frozen``, with the step
    and reason) and no more (unless ``on_scores`` revives it, see
    :func:`train_members`). Returns ``(state, wall seconds, steps trained here)``.

    Raises:
      Interrupted: a signal arrived; the checkpoint of the step reached is saved.
    """
    config, log = program.config, program.config.log

    def due(interval, step):
        return interval > 0 and step % interval == 0

    start = step = int(group.member(state, 0).step)
    previous_wall = [workdir_lib.last_wall(w) if group.writes else 0.0 for w in group.workdirs]
    frozen = [bool(d) for d in np.asarray(jax.device_get(state.diverged)).reshape(-1)]
    bar = _progress_bar(
        config,
        start,
        len(group.configs),
        (log.progress if progress is None else progress) and group.writes,
    )
    t0 = time.perf_counter()
    try:
        while step < config.steps:
            n = chunk_length(step, config, batches.steps_per_call)
            with profile.phase("train"):
                state, metrics = batches.advance(state, n)
            step += n
            bar.update(n)
            fd_due = due(config.eval.fd_every, step)
            logged = due(log.every, step) or fd_due or step == config.steps
            if logged:
                with profile.phase("train"):  # Waits for the steps dispatched so far.
                    host, divergence = jax.device_get(
                        parallel.fetch(
                            (metrics, (state.diverged, state.diverged_step, state.diverged_reason))
                        )
                    )
                scored = parallel.fetch(state) if fd_due else None
                with profile.phase("eval"):
                    cheap = (
                        hooks.cheap(
                            scored.params,
                            [
                                jax.random.fold_in(program_lib.sample_key(c), step)
                                for c in group.configs
                            ],
                            scored.model_state,
                            [
                                not (f or bool(d))
                                for f, d in zip(frozen, np.asarray(divergence[0]).reshape(-1))
                            ],
                        )
                        if fd_due and group.writes
                        else None
                    )
                wall = time.perf_counter() - t0
                rows = [None] * len(group.configs)
                for i in range(len(group.configs)):
                    if frozen[i]:
                        continue
                    diverged, at, reason = (np.asarray(x).reshape(-1)[i] for x in divergence)
                    row = {"step": step, "wall_s": previous_wall[i] + wall}
                    if diverged:
                        frozen[i] = True
                        row.update(
                            frozen=True,
                            diverged_step=int(at),
                            diverged_reason=steps.divergence_reason(reason),
                        )
                    elif group.writes:
                        row.update(
                            {
                                k: float(np.asarray(v)[i] if group.stacked else v)
                                for k, v in host.items()
                            }
                        )
                        if fd_due:
                            row.update(cheap[i])
                    rows[i] = row
                if on_scores is not None and fd_due:
                    with profile.phase("eval"):
                        state, extras = on_scores(program, step, state, rows)
                    for i, extra in enumerate(extras):
                        if extra and rows[i] is None:  # revived by the callback
                            rows[i] = {"step": step, "wall_s": previous_wall[i] + wall}
                        if extra:
                            rows[i].update(extra)
                    frozen = [bool(d) for d in np.asarray(jax.device_get(state.diverged))]
                for i, w in enumerate(group.workdirs):
                    if rows[i] is not None and group.writes:
                        with profile.phase("io"):
                            workdir_lib.append_metrics(w, rows[i])
                            logs[i].scalars(rows[i])
                bar.set_postfix(_postfix(host, group.stacked), refresh=False)
                if all(frozen):
                    break
            if due(log.samples_every, step):
                _wait(state, profile)
                with profile.phase("io"):
                    _save_grids(program, group, parallel.fetch(state), step, logs)
            saved = due(log.checkpoint_every, step)
            if saved:
                _wait(state, profile)
                with profile.phase("io"):
                    _save_checkpoints(group, parallel.fetch(state), batches, step, stop)
            # With several processes, they agree on a signal where they meet anyway.
            if (jax.process_count() == 1 or logged or saved) and parallel.any_process(
                stop.signum is not None
            ):
                if not saved:
                    _save_on_signal(group, parallel.fetch(state), batches, step)
                raise Interrupted(stop.signum or signal.SIGTERM, step)
        _wait(state, profile)
        return state, time.perf_counter() - t0, step - start
    finally:
        bar.close()


def _wait(state, profile: walltime.WallProfile) -> None:
    """Waits for the steps dispatched so far, charging the wait to training."""
    with profile.phase("train"):
        jax.block_until_ready(state)


def _finish(
    program: Program,
    group: _Group,
    state,
    batches,
    hooks,
    wall,
    trained,
    logs,
    members: int,
    profile: walltime.WallProfile,
):
    """Final checkpoint, sample grid, ``samples/final.npz`` and ``summary.json`` per member.

    ``members``: the size of the group the members trained in (``sweep_members``
    in the summaries when > 1).

    A diverged member's ``final.npz`` is written only if its (frozen) samples
    are finite: never a NaN sample.
    """
    state = parallel.fetch(state)
    if not group.writes:
        return [group.member(state, i) for i in range(len(group.configs))]
    step = int(group.member(state, 0).step)
    with profile.phase("io"):
        if checkpoint.latest_step(str(group.workdirs[0] / CHECKPOINT_DIR)) != step:
            _save_checkpoints(group, state, batches, step)
        grids = _save_grids(program, group, state, step, logs)
    with profile.phase("final"):
        scores = hooks.final(
            state,
            group.configs,
            [jax.random.fold_in(program_lib.sample_key(c), 1) for c in group.configs],
            [bool(d) for d in np.asarray(jax.device_get(state.diverged)).reshape(-1)],
        )
    finals = []
    for i, (c, w) in enumerate(zip(group.configs, group.workdirs)):
        member = group.member(state, i)
        # wall_s: training time over all attempts (the last row of metrics.jsonl);
        # steps_per_s: this attempt's rate (None if it had nothing left to train).
        summary = {
            "steps": int(member.step),
            "wall_s": workdir_lib.last_wall(w),
            "steps_per_s": trained / wall if trained and wall > 0 else None,
            **_divergence(member),
        }
        if members > 1:
            summary[SWEEP_MEMBERS] = members
        samples, labels = grids[i]
        if np.all(np.isfinite(samples)):
            with profile.phase("io"), workdir_lib.atomic_path(w / SAMPLES_DIR / "final.npz") as tmp:
                np.savez_compressed(
                    tmp, samples=samples, **({} if labels is None else {"labels": labels})
                )
        summary.update(scores[i])
        summary.update(
            stability.run_flags(
                workdir_lib.read_metrics(w), summary, c.steps, program.spec.num_classes
            )
        )
        summary.update(effective_strength.summary_fields(c))
        with profile.phase("io"):
            write_json(w / SUMMARY_FILE, workdir_lib.finite_or_none(summary))
        finals.append(member)
    return finals


def _save_grids(program: Program, group: _Group, state, step: int, logs) -> list:
    """Each member's grid PNG (and TensorBoard image); returns its ``(samples, labels)``.

    Process 0's work (nothing in the others); ``state`` is whole in this
    process (:func:`regan_jax.parallel.fetch`).
    """
    if not group.writes:
        return []
    grids = []
    for i, (c, w) in enumerate(zip(group.configs, group.workdirs)):
        images, labels = program_lib.grid_samples(program, group.member(state, i).params, c)
        rgb = plotting.save_samples_png(
            w / SAMPLES_DIR / f"step_{step:07d}.png",
            images,
            f"{c.name} seed {c.seed}, step {step}",
            columns=program_lib.grid_columns(program),
            centres=getattr(program.source, "centres", None),
        )
        logs[i].image("samples", rgb, step)
        grids.append((images, labels))
    return grids


def _save_checkpoints(group: _Group, state, batches, step: int, stop=None) -> None:
    """Each member's checkpoint (process 0's work; ``state`` whole in this process).

    A vmapped group's member checkpoints record the group's size (``sweep_members``
    beside the data position). If a signal arrives between two members' saves
    (``stop``), the rest give way to one checkpoint of the whole group
    (:func:`_save_on_signal`).
    """
    if not group.writes:
        return
    position = batches.position
    for i, w in enumerate(group.workdirs):
        if stop is not None and stop.signum is not None and _group_checkpoints(group):
            _save_on_signal(group, state, batches, step)
            return
        checkpoint.save(
            str(w / CHECKPOINT_DIR),
            step,
            group.member(state, i),
            {**data.member_position(position, i), SWEEP_MEMBERS: len(group.configs)}
            if group.stacked
            else position,
        )
    if _group_checkpoints(group):  # The members hold this step now.
        shutil.rmtree(_group_directory(group), ignore_errors=True)


def _save_on_signal(group: _Group, state, batches, step: int) -> None:
    """The checkpoint a signal asks for: a vmapped group's as ONE checkpoint of the stacked
    state in the first member's workdir (K member saves take K times as long; a scheduler
    gives seconds), else each member's."""
    if not group.writes:
        return
    if not _group_checkpoints(group):
        _save_checkpoints(group, state, batches, step)
        return
    directory = str(_group_directory(group))
    checkpoint.remove_all(directory)
    checkpoint.save(
        directory,
        step,
        state,
        {"position": batches.position, "members": _member_names(group)},
        keep=1,
    )


class _StopOnSignal:
    """Records SIGINT/SIGTERM instead of dying mid-step (main thread only; handlers restored)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._record)
        return self

    def _record(self, signum, frame):
        del frame
        self.signum = signum

    def check(self) -> None:
        """Raises :class:`Interrupted` (nothing trained or saved) if a signal has arrived."""
        if self.signum is not None:
            raise Interrupted(self.signum, None)

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _divergence(state) -> dict:
    diverged = bool(state.diverged)
    return {
        "diverged": diverged,
        "diverged_reason": steps.divergence_reason(state.diverged_reason) if diverged else None,
        "diverged_step": int(state.diverged_step) if diverged else None,
    }


def _progress_bar(config, start: int, members: int, enabled: bool):
    desc = config.name + (f" x{members}" if members > 1 else "")
    return tqdm.auto.tqdm(
        total=config.steps,
        initial=start,
        desc=desc,
        disable=not enabled,
        dynamic_ncols=True,
        leave=True,
    )


def _postfix(host_metrics: dict, stacked: bool) -> dict:
    """Live losses for the bar (the median over members in a sweep)."""
    shown = {}
    for k in ("d_loss", "g_loss", "loss", "recon", "kl"):
        if k in host_metrics:
            v = np.asarray(host_metrics[k], np.float64)
            shown[k] = f"{float(np.nanmedian(v) if stacked else v):.3f}"
    return shown
