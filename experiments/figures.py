"""Reproduces the study's figures: ``python -m experiments.figures --preset {smoke,cpu,full} --workdir DIR``.

Trains what the preset needs (reusing finished runs), then writes
``DIR/results.csv``, the figures of docs/FIGURES.md into ``DIR/figures/`` and
``DIR/results.md`` (:func:`experiments.study.runner.make_figures`).
``--no-train`` redraws from what DIR holds; ``--export DIR2`` also writes
web-sized PNG copies; ``--shard i/N`` trains one slice and stops (what a
worker of ``--jobs N`` runs). Redraw from a notebook with
:func:`experiments.study.tables.load_results` and
:func:`experiments.study.figures.output.draw_figures`.
"""

import argparse
import sys
import time

import experiments
from experiments import sweep
from experiments.study import presets, runner


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.figures", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--preset", required=True, choices=list(presets.PRESETS))
    parser.add_argument("--workdir", required=True, help="results directory (reused)")
    parser.add_argument(
        "--no-train", action="store_true", help="redraw from the finished runs in --workdir only"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="worker processes that train (each on its share of the cores)",
    )
    parser.add_argument(
        "--shard",
        default=None,
        metavar="i/N",
        help="train only slice i of N and stop (a worker, or a job array); "
        "the calibration records must exist",
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--export",
        metavar="DIR",
        help="also write web-sized PNG copies into DIR (e.g. docs/study/figures)",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()

    def body():
        if args.jobs < 1:
            raise experiments.UsageError(f"--jobs must be >= 1, got {args.jobs}")
        shard = None if args.shard is None else sweep.parse_shard(args.shard)
        if shard is not None:
            runner.train_preset(args.preset, args.workdir, shard=shard, progress=False)
            print(f"figures: shard {args.shard} of {args.preset} trained")
            return 0
        try:
            runner.make_figures(
                args.preset,
                args.workdir,
                train_missing=not args.no_train,
                jobs=args.jobs,
                progress=not args.no_progress,
                export=args.export,
            )
        except runner.WorkerFailed as e:  # one line; the worker's log holds its own error
            print(f"error: {e}; run the same command again to resume", file=sys.stderr)
            return 1
        print(f"figures: preset {args.preset} done in {time.perf_counter() - t0:.0f} s")
        return 0

    return experiments.run_main(body)


if __name__ == "__main__":
    sys.exit(main())
