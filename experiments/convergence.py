"""How long an unregularised baseline must train: ``python -m experiments.convergence --config NAME``.

Trains (or reuses) the unregularised run for ``--steps`` steps per seed and
prints the median score at every ``--every`` steps with the shortest length
that meets the experiment's criterion (:mod:`experiments.study.convergence`).

    python -m experiments.convergence --config digits_gan --steps 10000 --every 1000 \\
        --seeds 0,1,2,3 --workdir runs/convergence/digits_gan
"""

import argparse
import sys

import experiments
from experiments.study import convergence


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.convergence",
        description=__doc__.split("\n\n")[0],
        epilog="Further --config.a.b=value tokens override the config.",
    )
    parser.add_argument("--config", required=True, help="experiment (FILE.py[:smoke] or name)")
    parser.add_argument("--workdir", required=True, help="where the runs go (reused)")
    parser.add_argument("--steps", type=int, required=True, help="length of each run")
    parser.add_argument("--every", type=int, default=1000, help="steps between evaluations")
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--no-progress", action="store_true")

    def body():
        args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
        if args.steps < 2 or not 1 <= args.every <= args.steps:
            raise experiments.UsageError(
                f"need --steps >= 2 and 1 <= --every <= --steps; got {args.steps}, {args.every}"
            )
        overrides = [
            *experiments.split_overrides(rest),
            ("steps", str(args.steps)),
            ("eval.fd_every", str(args.every)),
        ]
        base = experiments.load_config(args.config, overrides)
        print(
            convergence.report(
                convergence.measure(
                    base,
                    experiments.parse_seeds(args.seeds),
                    args.workdir,
                    progress=not args.no_progress,
                )
            )
        )
        return 0

    return experiments.run_main(body)


if __name__ == "__main__":
    sys.exit(main())
