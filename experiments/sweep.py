"""Sweeps over penalties, strengths, targets and seeds, and ``collect`` into one CSV.

Run a grid (every penalty x target x strength x seed)::

    python -m experiments.sweep --config experiments/configs/ring8_gan.py --workdir runs/ring8_sweep \\
        --penalties none,l2,weight_decay,l1,prox_l1 --targets g,d,both \\
        --strengths 1e-5,1e-4,1e-3,1e-2 --seeds 0,1,2

or a log-uniform random search (``--random N`` values per penalty and target
in ``--strength-range``). Members whose configs differ only in seed and
injected hyperparameters (strengths, radii, learning rates) share a compiled
program and train as ONE vmapped program (``regan_jax.train.train_members``);
the others run one program after another. ``--shard i/N`` runs the i-th of N
slices (0-based; e.g. ``--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``).
Every member gets its own run directory ``WORKDIR/<penalty>-<target>-<value>-seed<s>``
with the full run contract; finished members are reused, and a diverged member
is a result (its summary says so). Then::

    python -m experiments.sweep collect runs/ring8_sweep [more dirs] [--out results.csv]

merges every finished run under the given directories into one tidy CSV: one
row per run with its study labels, its summary and its full flattened config.

Devices and processes: ``--mesh members=M,batch=B`` splits each vmapped group's
members M ways and each member's batch B ways. ``--coordinator HOST:PORT
--num-processes N --process-id I`` (or a multi-process ``srun`` / ``mpirun``
launch, when ``--shard`` is not given) runs every group across N processes,
process 0 writing the member directories. Shards are independent jobs: with
``--shard i/N`` (N > 1) a launcher's environment is not read, so
``srun -n 8 ... --shard $SLURM_PROCID/8`` runs eight independent shards.
"""
import argparse
import csv
import io
import json
import pathlib
import sys

import experiments
from experiments.study import members as members_lib
from experiments.study import vocabulary
from regan_jax import config as config_lib
from regan_jax import effective_strength, families, parallel, program, train
from regan_jax import workdir as workdir_lib

LABELS = ("run", "penalty", "target", "value", "regulariser", "seed")


def shard_members(members: list, shard: tuple[int, int]) -> list:
    """The ``i``-th of ``n`` round-robin slices of ``members`` (``shard = (i, n)``)."""
    index, count = shard
    return members[index::count]


def run_members(members: list, workdir, *, max_members: int = 64, progress: bool = True,
                log=print, mesh: parallel.MeshShape | None = None,
                steps_per_call: int | None = None) -> dict:
    """Trains the members that have no finished run yet; same-program members vmapped.

    Args:
      members: :class:`experiments.study.members.Member` s.
      workdir: the sweep directory; member m trains in ``workdir/m.name``.
      max_members: the largest group trained as one vmapped program.
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
        raise ValueError("the sweep has zero members: give at least one penalty, target, "
                         "strength (or --random N) and seed")
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
    chunks = [g[i:i + max_members] for g in groups.values() for i in range(0, len(g), max_members)]
    for chunk in chunks:
        if len(chunk) > 1:
            config = chunk[0].config
            parallel.member_mesh(len(chunk),
                                 families.get(config.model_type).rows_per_step(config), mesh)
    log(f"sweep: {len(members)} members, {reused} finished already, {len(todo)} to train "
        f"as {len(chunks)} program(s)")
    for chunk in chunks:
        log(f"  {len(chunk)} member(s): {', '.join(m.name for m in chunk[:4])}"
            f"{' ...' if len(chunk) > 4 else ''}")
        train.train_members([m.config for m in chunk], [workdir / m.name for m in chunk],
                            progress=progress, mesh=mesh if len(chunk) > 1 else None,
                            steps_per_call=steps_per_call or train.STEPS_PER_CALL)
    return {"trained": len(todo), "reused": reused, "groups": len(chunks)}


def collect(directories, out=None) -> list[dict]:
    """One row per finished run under ``directories``: labels, summary, flattened config.

    Columns: ``run`` (the run directory), the study labels ``penalty``,
    ``target``, ``value`` (:func:`experiments.study.members.describe`), ``seed``, every
    summary key, then ``config.<key>`` for every config field. Unfinished runs
    are skipped (and counted on stderr). Writes ``out`` atomically if given.

    Raises:
      ValueError: a directory that does not exist, or no finished run at all.
    """
    rows, unfinished, records = [], 0, {}
    for directory in map(pathlib.Path, directories):
        if not directory.is_dir():
            raise ValueError(f"collect: {str(directory)!r} is not a directory")
        for config_path in sorted(directory.rglob(workdir_lib.CONFIG_FILE)):
            run_dir = config_path.parent
            if not workdir_lib.is_finished(run_dir):
                unfinished += 1
                continue
            flat = config_lib.flatten(workdir_lib.read_json(config_path))
            labels = members_lib.describe(flat)
            rows.append({"run": str(run_dir), **labels, "seed": flat["seed"],
                         **workdir_lib.read_json(run_dir / workdir_lib.SUMMARY_FILE),
                         **_calibration_columns(flat.get("eval.calibration"), records),
                         **{f"config.{k}": v for k, v in flat.items()}})
    if unfinished:
        print(f"collect: skipped {unfinished} unfinished run(s)", file=sys.stderr)
    if not rows:
        raise ValueError(f"collect: no finished run (summary.json) under "
                         f"{', '.join(map(str, directories))}")
    if out is not None:
        write_csv(out, rows)
    return rows


def _calibration_columns(path, records: dict) -> dict:
    """``calibration.<net>.<field>`` of a run's calibration record (none if it has none).

    ``records`` caches the records read so far by path.
    """
    if not path:
        return {}
    if path not in records:
        try:
            records[path] = effective_strength.load(path)
        except ValueError as e:  # Moved with its runs: the summaries keep the effective strengths.
            print(f"collect: no calibration columns: {e}", file=sys.stderr)
            records[path] = {"networks": {}}
    return {f"calibration.{net}.{field}": values[field]
            for net, values in records[path]["networks"].items()
            for field in effective_strength.FIELDS}


def write_csv(path, rows: list[dict]) -> None:
    """Writes rows as CSV (columns: labels, summary keys, config keys), atomically."""
    summary_keys = sorted({k for r in rows for k in r} - set(LABELS)
                          - {k for r in rows for k in r if k.startswith("config.")})
    config_keys = sorted({k for r in rows for k in r if k.startswith("config.")})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*LABELS, *summary_keys, *config_keys],
                            extrasaction="raise")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _cell(v) for k, v in r.items()})
    workdir_lib.write_text_atomic(path, buffer.getvalue())


def read_csv(path) -> list[dict]:
    """Rows of a :func:`collect` CSV with numbers, booleans and empties parsed back."""
    with open(path, newline="") as f:
        return [{k: _parse_cell(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


def _parse_cell(text: str):
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise experiments.UsageError(f"--shard must look like i/N (e.g. 0/4), got {text!r}")
    if not 0 <= index < count:
        raise experiments.UsageError(f"--shard {text}: need 0 <= i < N")
    return index, count


def _range(text: str, what: str) -> tuple[float, float]:
    values = experiments.parse_floats(text, what)
    if len(values) != 2:
        raise experiments.UsageError(f"{what} must be LOW,HIGH, got {text!r}")
    return values[0], values[1]


def parse_run_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m experiments.sweep", description=__doc__.split("\n\n")[0],
        epilog="Further --config.a.b=value tokens override the base config; "
               "`python -m experiments.sweep collect DIR...` merges results.")
    parser.add_argument("--config", required=True, help="base experiment (FILE.py[:smoke] or name)")
    parser.add_argument("--workdir", required=True, help="the sweep directory")
    parser.add_argument("--penalties", default="none,l2,weight_decay,l1,prox_l1",
                        help=f"comma-separated, from: {', '.join(vocabulary.PENALTIES)}")
    parser.add_argument("--targets", default="both",
                        help="comma-separated networks (g, d / encoder, decoder) or both")
    parser.add_argument("--strengths", default="1e-5,1e-4,1e-3,1e-2",
                        help="grid of strengths λ (effective strengths with --calibration)")
    parser.add_argument("--calibration", metavar="FILE", default=None,
                        help="a record of python -m experiments.calibrate: --strengths, "
                             "--radii and the --random ranges are in effective units")
    parser.add_argument("--radii", default="0.5,1,2,4", help="grid of max_norm radii")
    parser.add_argument("--seeds", default="0", help="comma-separated integer seeds")
    parser.add_argument("--random", type=int, default=0, metavar="N",
                        help="log-uniform random search: N values per penalty and target "
                             "instead of the grids")
    parser.add_argument("--strength-range", default="1e-6,1e-1", help="LOW,HIGH for --random")
    parser.add_argument("--radius-range", default="0.25,8", help="LOW,HIGH for --random")
    parser.add_argument("--search-seed", type=int, default=0, help="seed of --random draws")
    parser.add_argument("--shard", default="0/1", help="run slice i of N (0-based), e.g. 2/8")
    parser.add_argument("--max-members", type=int, default=64,
                        help="largest group trained as one vmapped program")
    parser.add_argument("--dry-run", action="store_true", help="list the members and exit")
    parser.add_argument("--no-progress", action="store_true")
    experiments.add_device_flags(parser)
    return parser.parse_known_args(argv)


def members_from_args(args, overrides) -> list:
    base = experiments.load_config(args.config, overrides)
    penalties = [p for p in args.penalties.split(",") if p]
    targets = [t for t in args.targets.split(",") if t]
    seeds = experiments.parse_seeds(args.seeds)
    if args.random < 0:
        raise experiments.UsageError(f"--random N needs N >= 0 (0 = the grids), got {args.random}")
    if args.max_members < 1:
        raise experiments.UsageError(f"--max-members must be >= 1, got {args.max_members}")
    try:
        if args.random:
            return members_lib.random_search(
                base, penalties, targets,
                {"strength": _range(args.strength_range, "--strength-range"),
                 "radius": _range(args.radius_range, "--radius-range")},
                seeds, args.random, args.search_seed, args.calibration)
        values = {"strength": experiments.parse_floats(args.strengths, "--strengths"),
                  "radius": experiments.parse_floats(args.radii, "--radii")}
        return members_lib.grid(base, penalties, targets, values, seeds, args.calibration)
    except ValueError as e:
        raise experiments.UsageError(str(e)) from e


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    return experiments.run_main(lambda: _main(argv))


def _main(argv) -> int:
    if argv[:1] == ["collect"]:
        parser = argparse.ArgumentParser(prog="python -m experiments.sweep collect")
        parser.add_argument("directories", nargs="+")
        parser.add_argument("--out", help="CSV path (default: FIRST_DIR/results.csv)")
        args = parser.parse_args(argv[1:])
        out = args.out or str(pathlib.Path(args.directories[0]) / "results.csv")
        rows = collect(args.directories, out)
        print(f"collect: {len(rows)} runs -> {out}")
        return 0
    args, rest = parse_run_args(argv)
    overrides = experiments.split_overrides(rest)
    shard = parse_shard(args.shard)
    per_call = experiments.steps_per_call(args)
    mesh = experiments.start_devices(args, detect=shard[1] == 1, join=not args.dry_run)
    members = members_from_args(args, overrides)
    if not members:
        raise experiments.UsageError("the sweep has zero members: give at least one "
                                     "penalty, target, strength and seed")
    mine = shard_members(members, shard)
    if args.dry_run:
        print("\n".join(m.name for m in mine))
        return 0
    if not mine:
        print(f"sweep: shard {args.shard} of {len(members)} members is empty")
        return 0
    run_members(mine, args.workdir, max_members=args.max_members,
                progress=not args.no_progress, mesh=mesh, steps_per_call=per_call)
    return 0


if __name__ == "__main__":
    sys.exit(main())
