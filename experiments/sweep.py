"""Sweeps over penalties, strengths, targets and seeds, and ``collect`` into one CSV.

Run a grid (every penalty x target x strength x seed)::

    python -m experiments.sweep --config experiments/configs/ring8_gan.py --workdir runs/ring8_sweep \\
        --penalties none,l2,weight_decay,l1,prox_l1 --targets g,d,both \\
        --strengths 1e-5,1e-4,1e-3,1e-2 --seeds 0,1,2

or a log-uniform random search (``--random N`` values per penalty and target
in ``--strength-range``). Members whose configs differ only in seed and
injected hyperparameters (strengths, radii, learning rates) share a compiled
program and train as ONE vmapped program (:func:`experiments.study.sweeps.run_members`);
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
import pathlib
import sys

import experiments
from experiments.study import members as members_lib
from experiments.study import results, sweeps, vocabulary
from regan_jax import xla


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise experiments.UsageError(
            f"--shard must look like i/N (e.g. 0/4), got {text!r}"
        ) from None
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
        prog="python -m experiments.sweep",
        description=__doc__.split("\n\n")[0],
        epilog="Further --config.a.b=value tokens override the base config; "
        "`python -m experiments.sweep collect DIR...` merges results.",
    )
    parser.add_argument("--config", required=True, help="base experiment (FILE.py[:smoke] or name)")
    parser.add_argument("--workdir", required=True, help="the sweep directory")
    parser.add_argument(
        "--penalties",
        default="none,l2,weight_decay,l1,prox_l1",
        help=f"comma-separated, from: {', '.join(vocabulary.PENALTIES)}",
    )
    parser.add_argument(
        "--targets",
        default="both",
        help="comma-separated networks (g, d / encoder, decoder) or both",
    )
    parser.add_argument(
        "--strengths",
        default="1e-5,1e-4,1e-3,1e-2",
        help="grid of strengths λ (effective strengths with --calibration)",
    )
    parser.add_argument(
        "--calibration",
        metavar="FILE",
        default=None,
        help="a record of python -m experiments.calibrate: --strengths, "
        "--radii and the --random ranges are in effective units",
    )
    parser.add_argument("--radii", default="0.5,1,2,4", help="grid of max_norm radii")
    parser.add_argument("--seeds", default="0", help="comma-separated integer seeds")
    parser.add_argument(
        "--random",
        type=int,
        default=0,
        metavar="N",
        help="log-uniform random search: N values per penalty and target instead of the grids",
    )
    parser.add_argument("--strength-range", default="1e-6,1e-1", help="LOW,HIGH for --random")
    parser.add_argument("--radius-range", default="0.25,8", help="LOW,HIGH for --random")
    parser.add_argument("--search-seed", type=int, default=0, help="seed of --random draws")
    parser.add_argument("--shard", default="0/1", help="run slice i of N (0-based), e.g. 2/8")
    parser.add_argument(
        "--max-members",
        type=int,
        help="largest group trained as one vmapped program (default: "
        f"{sweeps.CPU_MAX_MEMBERS} on a CPU, {sweeps.ACCELERATOR_MAX_MEMBERS} otherwise)",
    )
    parser.add_argument(
        "--compile-cache",
        metavar="DIR",
        help="persistent XLA compilation cache shared by the sweep's processes "
        "(e.g. WORKDIR/.jax_cache)",
    )
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
    if args.max_members is not None and args.max_members < 1:
        raise experiments.UsageError(f"--max-members must be >= 1, got {args.max_members}")
    try:
        if args.random:
            return members_lib.random_search(
                base,
                penalties,
                targets,
                {
                    "strength": _range(args.strength_range, "--strength-range"),
                    "radius": _range(args.radius_range, "--radius-range"),
                },
                seeds,
                args.random,
                args.search_seed,
                args.calibration,
            )
        values = {
            "strength": experiments.parse_floats(args.strengths, "--strengths"),
            "radius": experiments.parse_floats(args.radii, "--radii"),
        }
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
        rows = results.collect(args.directories, out)
        print(f"collect: {len(rows)} runs -> {out}")
        return 0
    args, rest = parse_run_args(argv)
    overrides = experiments.split_overrides(rest)
    shard = parse_shard(args.shard)
    if args.compile_cache:
        xla.use_compilation_cache(args.compile_cache)
    per_call = experiments.steps_per_call(args)
    mesh = experiments.start_devices(args, detect=shard[1] == 1, join=not args.dry_run)
    members = members_from_args(args, overrides)
    if not members:
        raise experiments.UsageError(
            "the sweep has zero members: give at least one penalty, target, strength and seed"
        )
    mine = sweeps.shard_members(members, shard)
    if args.dry_run:
        print("\n".join(m.name for m in mine))
        return 0
    if not mine:
        print(f"sweep: shard {args.shard} of {len(members)} members is empty")
        return 0
    sweeps.run_members(
        mine,
        args.workdir,
        max_members=args.max_members,
        progress=not args.no_progress,
        mesh=mesh,
        steps_per_call=per_call,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
