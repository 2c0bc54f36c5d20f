"""How long an unregularised baseline must train: ``python -m experiments.convergence --config NAME``.

Trains (or reuses) the unregularised run of an experiment for ``--steps``
steps per seed as one vmapped sweep, with the cheap in-training scores every
``--every`` steps, and prints the median over seeds at every evaluation
together with the shortest length that meets the experiment's convergence
criterion (:func:`converged_at`):

- 2-D mixtures: the median high-quality fraction is >= 0.5 from T on (the
  run puts most of its mass on the modes, and keeps it there; issue #12);
- images: the median FD at T is within 10 % of the median FD at 2T (a
  plateau), so ``--steps`` must be at least twice the length it reports.

The config docstrings state the lengths this measured.

    python -m experiments.convergence --config digits_gan --steps 10000 --every 1000 \\
        --seeds 0,1,2,3 --workdir runs/convergence/digits_gan
"""
import argparse
import sys

import numpy as np

import experiments
from experiments import study, sweep
from regan_jax import stats
from regan_jax import workdir as workdir_lib

HQ_THRESHOLD = 0.5
FD_PLATEAU = 1.10


def step_values(histories: list[list[dict]], metric: str) -> dict[int, list[float]]:
    """``{step: [one value per run]}`` of ``metric`` at the steps where every run logged it."""
    by_step = [{r["step"]: r[metric] for r in h if r.get(metric) is not None} for h in histories]
    common = set.intersection(*(set(s) for s in by_step)) if by_step else set()
    return {step: [s[step] for s in by_step] for step in sorted(common)}


def medians(histories: list[list[dict]], metric: str) -> dict[int, float]:
    """``{step: median over runs}`` of :func:`step_values`."""
    return {step: float(np.median(v)) for step, v in step_values(histories, metric).items()}


def converged_at(curve: dict[int, float], metric: str) -> int | None:
    """The shortest evaluated length meeting the criterion (module docstring), or None.

    ``hq_fraction``: the first step from which every median is >= 0.5.
    ``fd``: the first step T whose median is <= 1.1 x the median at 2T (T and
    2T both evaluated).
    """
    if metric == "hq_fraction":
        return next((t for t in curve if all(v >= HQ_THRESHOLD for s, v in curve.items()
                                             if s >= t)), None)
    if metric == "fd":
        return next((t for t, v in curve.items()
                     if 2 * t in curve and v <= FD_PLATEAU * curve[2 * t]), None)
    raise ValueError(f"no convergence criterion for metric {metric!r}; valid: hq_fraction, fd")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.convergence",
                                     description=__doc__.split("\n\n")[0],
                                     epilog="Further --config.a.b=value tokens override the config.")
    parser.add_argument("--config", required=True, help="experiment (FILE.py[:smoke] or name)")
    parser.add_argument("--workdir", required=True, help="where the runs go (reused)")
    parser.add_argument("--steps", type=int, required=True, help="length of each run")
    parser.add_argument("--every", type=int, default=1000, help="steps between evaluations")
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--no-progress", action="store_true")

    def body():
        args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
        if args.steps < 2 or not 1 <= args.every <= args.steps:
            raise experiments.UsageError(f"need --steps >= 2 and 1 <= --every <= --steps; got "
                                         f"{args.steps}, {args.every}")
        overrides = [*experiments.split_overrides(rest), ("steps", str(args.steps)),
                     ("eval.fd_every", str(args.every))]
        base = experiments.load_config(args.config, overrides)
        members = study.grid(base, ["none"], [], {}, experiments.parse_seeds(args.seeds))
        sweep.run_members(members, args.workdir, progress=not args.no_progress)
        histories = [workdir_lib.read_metrics(f"{args.workdir}/{m.name}") for m in members]
        metric = "hq_fraction" if any("hq_fraction" in r for r in histories[0]) else "fd"
        curve = {}
        print(f"{base.name}: median {metric} over seeds {[m.seed for m in members]}")
        for step, values in step_values(histories, metric).items():
            cell = stats.cell(values)
            curve[step] = cell["median"]
            print(f"  step {step:>7}: {cell['median']:.4g}  [95 % CI {cell['low']:.4g}, "
                  f"{cell['high']:.4g}]")
        length = converged_at(curve, metric)
        print(f"converged at: {length if length is not None else 'not within the run'} "
              f"({'median HQ >= 0.5 from then on' if metric == 'hq_fraction' else 'FD(T) <= 1.1 FD(2T)'})")
        return 0

    return experiments.run_main(body)


if __name__ == "__main__":
    sys.exit(main())
