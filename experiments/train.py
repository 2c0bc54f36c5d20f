"""Trains one run: ``python -m experiments.train --config FILE.py[:smoke] --workdir DIR``.

Writes config.json, metrics.jsonl, samples/, checkpoints/ and summary.json
into DIR (see :mod:`regan_jax.train`); resumes DIR if it holds an interrupted
run of the same config; refuses a finished run or another experiment's DIR
unless ``--overwrite`` (which moves the old run aside and deletes it only
once the new one has started). Config fields are overridden with
``--config.a.b=value`` (e.g. ``--config.penalty.g.kind=prox_l1
--config.penalty.g.strength=1e-4``). Bad input exits with code 2 and one
line saying what was wrong; a second process on the same workdir is refused
(exit 2, naming the pid that holds it); Ctrl-C or SIGTERM saves a checkpoint
after the current step and exits 130 / 143 (run again to resume).

One training across hosts (data parallel, the same global batch as one
process, so the same parameters up to float reassociation)::

    # on each of N hosts, I = 0..N-1:
    python -m experiments.train --config ... --workdir DIR \
        --coordinator HOST0:PORT --num-processes N --process-id I

or, under ``srun --ntasks N`` (SLURM) or ``mpirun -n N``, without those flags.
Process 0 writes DIR; the others write nothing. When one process fails or dies,
the others exit within about ``--process-timeout``/2 seconds (default 60 s),
each with one line naming it; the run resumes like any interrupted one.
"""

import argparse
import sys

import experiments
from regan_jax import parallel, train


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m experiments.train",
        description=__doc__.split("\n\n")[0],
        epilog="Any further --config.a.b=value overrides one config field.",
    )
    parser.add_argument(
        "--config",
        required=True,
        help="experiments/configs/NAME.py[:smoke] or an experiment name "
        f"({', '.join(experiments.experiment_names())})",
    )
    parser.add_argument("--workdir", required=True, help="the run directory")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a finished run or another experiment's files in --workdir",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--data-parallel",
        choices=("shard_map", "pmap"),
        default="shard_map",
        help="how the step is split over several devices (same numbers)",
    )
    experiments.add_device_flags(parser)
    args, rest = parser.parse_known_args(argv)
    return args, rest


def main(argv=None) -> int:
    args, rest = parse_args(sys.argv[1:] if argv is None else argv)

    def body():
        overrides = experiments.split_overrides(rest)
        per_call = experiments.steps_per_call(args)
        mesh = experiments.start_devices(args)
        config = experiments.load_config(args.config, overrides)
        train.train_and_evaluate(
            config,
            args.workdir,
            overwrite=args.overwrite,
            progress=False if args.no_progress else None,
            data_parallel=args.data_parallel,
            mesh=mesh,
            steps_per_call=per_call,
        )
        if parallel.is_main_process():
            print(f"done: {args.workdir}/summary.json")
        return 0

    return experiments.run_main(body)


if __name__ == "__main__":
    sys.exit(main())
