"""Running a list of study members: shards, finished runs reused, same-program members vmapped.

:func:`run_members` is what ``python -m experiments.sweep``, the preset
runner and the convergence measurement call: members whose configs differ only
in seed and injected hyperparameters share a compiled program and train as ONE
vmapped program (:func:`regan_jax.train.train_members`); the others run one
program after another; every member keeps the full run-directory contract.
"""

import pathlib

import jax

from regan_jax import families, parallel, program, train
from regan_jax import workdir as workdir_lib

# The largest vmapped group when the caller names none. On a CPU a group pays only while
# its state stays in the cache. Measured on the 2-core AMD EPYC (L2 1 MiB per core, L3
# 32 MiB shared), one core per worker as the preset runs them, by `taskset -c 1 python -m
# benchmarks.group_size --before` (BENCHMARKS.md, "The vmapped group's size"; a shared
# machine): at K = 4 the digits GAN, VAE and ring8 made 0.72-0.76 of their best K's
# member-steps/s (best K 2, 2, 16) and 1.2-1.7x K = 64's, the 28x28 MLP GAN its best
# (2.1x K = 64's); once a group's state passed 13-50 MiB every program slowed 1.6-2x.
# Accelerators keep the large group. The study's presets name theirs (presets.max_members).
CPU_MAX_MEMBERS = 4
ACCELERATOR_MAX_MEMBERS = 64


def default_max_members(backend: str | None = None) -> int:
    """The largest vmapped group on ``backend`` (default: JAX's) when none is given."""
    backend = jax.default_backend() if backend is None else backend
    return CPU_MAX_MEMBERS if backend == "cpu" else ACCELERATOR_MAX_MEMBERS


def shard_members(members: list, shard: tuple[int, int]) -> list:
    """The ``i``-th of ``n`` round-robin slices of ``members`` (``shard = (i, n)``)."""
    index, count = shard
    return members[index::count]


def run_members(
    members: list,
    workdir,
    *,
    max_members: int | None = None,
    progress: bool = True,
    log=print,
    mesh: parallel.MeshShape | None = None,
    steps_per_call: int | None = None,
) -> dict:
    """Trains the members that have no finished run yet; same-program members vmapped.

    Args:
      members: :class:`experiments.study.members.Member` s.
      workdir: the sweep directory; member m trains in ``workdir/m.name``.
      max_members: the largest group trained as one vmapped program (None:
        :func:`default_max_members`).
      progress: show progress bars.
      log: where to report what runs (process 0 only, with several processes).
      mesh: the device mesh of each vmapped group
        (:func:`regan_jax.parallel.member_mesh`); a lone member runs
        data-parallel over every device.
      steps_per_call: steps per dispatch (default: ``train.STEPS_PER_CALL``).

    Returns:
      ``{'trained': n, 'reused': n, 'groups': n}``.

    Raises:
      ValueError: no members, a member directory holding another experiment,
        or a mesh that does not fit a group (checked for every member and group
        before anything trains).
    """
    if not members:
        raise ValueError(
            "the sweep has zero members: give at least one penalty, target, "
            "strength (or --random N) and seed"
        )
    max_members = default_max_members() if max_members is None else max_members
    if max_members < 1:
        raise ValueError(f"max_members must be >= 1, got {max_members}")
    workdir = pathlib.Path(workdir)

    def unfinished():  # Process 0 reads the member directories; every process trains the same.
        names = []
        for m in members:
            run_dir = workdir / m.name
            workdir_lib.check_same_experiment(run_dir, m.config)
            if not workdir_lib.is_finished(run_dir):
                names.append(m.name)
        return names

    names = set(parallel.on_main_process(unfinished))
    todo = [m for m in members if m.name in names]
    reused = len(members) - len(todo)
    if not parallel.is_main_process():

        def log(*args, **kwargs):
            del args, kwargs

    groups = {}
    for m in todo:
        groups.setdefault(program.program_key(m.config), []).append(m)
    chunks = [
        g[i : i + max_members] for g in groups.values() for i in range(0, len(g), max_members)
    ]
    for chunk in chunks:
        if len(chunk) > 1:
            config = chunk[0].config
            parallel.member_mesh(
                len(chunk), families.get(config.model_type).rows_per_step(config), mesh
            )
    log(
        f"sweep: {len(members)} members, {reused} finished already, {len(todo)} to train "
        f"as {len(chunks)} program(s)"
    )
    for chunk in chunks:
        log(
            f"  {len(chunk)} member(s): {', '.join(m.name for m in chunk[:4])}"
            f"{' ...' if len(chunk) > 4 else ''}"
        )
        train.train_members(
            [m.config for m in chunk],
            [workdir / m.name for m in chunk],
            progress=progress,
            mesh=mesh if len(chunk) > 1 else None,
            steps_per_call=steps_per_call or train.STEPS_PER_CALL,
        )
    return {"trained": len(todo), "reused": reused, "groups": len(chunks)}
