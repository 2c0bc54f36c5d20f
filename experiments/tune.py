"""Population-based search of a penalty's strength during training, as one vmapped program.

    python -m experiments.tune --config experiments/configs/digits_gan.py --workdir runs/tune \\
        --penalty l2 --target d --population 16 --interval 500 --metric fd

trains ``--population`` members of one penalty on one target (member k: seed
``config.seed + k``, its strength the k-th of ``--population`` values spread
evenly on a log scale over ``--range``), and every ``--interval`` steps
ranks them by ``--metric`` (a score of the in-training evaluation, or the
VAE's held-out ``elbo``; its direction is the study vocabulary's, unless
``--lower-is-better`` / ``--higher-is-better`` says otherwise); the bottom
``--quantile`` copies the states of members drawn from the top one and
multiplies their strengths by 0.8 or 1.25, clipped to ``--range``
(:mod:`regan_jax.tune`). With ``--calibration FILE`` (a record of
``python -m experiments.calibrate`` of the same experiment) ``--range`` is in
effective units: the initial values and the bounds are converted to raw
strengths per target network by the sweep's conversion
(:mod:`experiments.study.population`); a target whose networks would get
different raw bounds is refused (the search clips every network to one
range). Member k trains in ``WORKDIR/m<k>`` with the full
run-directory contract (lock, validation before anything is written, exit 2
with one line on bad input, SIGINT/SIGTERM save a checkpoint and exit
130/143; the same command resumes bitwise). The search's history is
``WORKDIR/search.json``; each member's lineage and strength trajectory are
in its metrics.jsonl (``pbt_parent``, ``pbt_score``, ``strength_<net>``) and
TensorBoard scalars. At the end the command draws
``WORKDIR/fig15_strength_search.png``.
"""

import argparse
import pathlib
import sys

import experiments
from experiments.study import population, vocabulary
from experiments.study.figures import search as search_figure
from regan_jax import tune
from regan_jax import workdir as workdir_lib

DEFAULT_RANGES = {"strength": "1e-6,1e-1", "radius": "0.25,8"}


def parse_run_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m experiments.tune",
        description=__doc__.split("\n\n")[0],
        epilog="Further --config.a.b=value tokens override the base config.",
    )
    parser.add_argument("--config", required=True, help="base experiment (FILE.py[:smoke] or name)")
    parser.add_argument("--workdir", required=True, help="the search directory")
    parser.add_argument(
        "--penalty", required=True, help=f"one of: {', '.join(_searchable_penalties())}"
    )
    parser.add_argument(
        "--target", required=True, help="a network (g, d / encoder, decoder) or both"
    )
    parser.add_argument("--population", type=int, default=16, help="members (K >= 2)")
    parser.add_argument("--interval", type=int, required=True, help="steps between exploit steps")
    parser.add_argument("--metric", default="fd", help="the score the members are ranked by")
    direction = parser.add_mutually_exclusive_group()
    direction.add_argument("--lower-is-better", dest="lower", action="store_true", default=None)
    direction.add_argument("--higher-is-better", dest="lower", action="store_false")
    parser.add_argument(
        "--range", default=None, help="LOW,HIGH: initial values and bounds (default by field)"
    )
    parser.add_argument(
        "--calibration",
        metavar="FILE",
        default=None,
        help="a record of python -m experiments.calibrate: --range is in effective units",
    )
    parser.add_argument(
        "--quantile", type=float, default=0.25, help="fraction of members replaced per step"
    )
    parser.add_argument("--search-seed", type=int, default=0, help="seed of the exploit draws")
    parser.add_argument("--no-progress", action="store_true")
    experiments.add_device_flags(parser)
    return parser.parse_known_args(argv)


def _searchable_penalties() -> list[str]:
    return [
        name
        for name, p in vocabulary.PENALTIES.items()
        if p.swept is not None and p.swept != "learning_rate"
    ]


def _direction(metric: str, lower: bool | None) -> bool:
    if lower is not None:
        return lower
    declared = vocabulary.METRICS.get(metric)
    if declared is None or declared.lower is None:
        raise experiments.UsageError(
            f"--metric {metric}: no declared direction; give --lower-is-better or "
            "--higher-is-better"
        )
    return declared.lower


def search_from_args(args, overrides):
    """``(member configs, member workdirs, tune config)`` of the command line.

    Raises:
      UsageError: any bad flag or value, naming it (before anything is written).
    """
    base = experiments.load_config(args.config, overrides)
    if args.penalty not in _searchable_penalties():
        raise experiments.UsageError(
            f"--penalty {args.penalty!r}: not searchable; one of {', '.join(_searchable_penalties())}"
        )
    spec = vocabulary.PENALTIES[args.penalty]
    targets = vocabulary.targets(base.model_type)
    if args.target not in targets:
        raise experiments.UsageError(
            f"--target {args.target!r}: not a target of {base.model_type}; one of "
            f"{', '.join(targets)}"
        )
    if args.population < 2:
        raise experiments.UsageError(f"--population must be >= 2, got {args.population}")
    if args.interval < 1:
        raise experiments.UsageError(f"--interval must be >= 1, got {args.interval}")
    if args.search_seed < 0:
        raise experiments.UsageError(f"--search-seed must be >= 0, got {args.search_seed}")
    text = args.range or DEFAULT_RANGES.get(spec.swept, DEFAULT_RANGES["strength"])
    bounds = experiments.parse_floats(text, "--range", positive=True)
    if len(bounds) != 2 or not bounds[0] < bounds[1]:
        raise experiments.UsageError(f"--range must be LOW,HIGH with 0 < LOW < HIGH, got {text!r}")
    lower = _direction(args.metric, args.lower)
    workdir = pathlib.Path(args.workdir)
    try:
        record = (
            None if args.calibration is None else population.load_record(args.calibration, base)
        )
        raw = (
            tuple(bounds)
            if record is None
            else population.raw_bounds(base, args.penalty, args.target, bounds, record)
        )
        tune_config = population.tune_config(
            base,
            args.penalty,
            args.target,
            raw,
            metric=args.metric,
            lower_is_better=lower,
            interval=args.interval,
            quantile=args.quantile,
            seed=args.search_seed,
        )
        configs = population.member_configs(
            base, args.penalty, args.target, bounds, args.population, args.calibration
        )
        workdirs = [workdir / f"m{k:02d}" for k in range(args.population)]
        configs = tune.prepare_configs(configs, tune_config)
        tune.check_search_dir(workdir, tune.header(tune_config, workdirs, configs))
    except ValueError as e:
        raise experiments.UsageError(f"{_flag(str(e))}{e}") from e
    return configs, workdirs, tune_config


def _flag(message: str) -> str:
    """The flag a library message is about (``tune.metric`` -> ``--metric: ``)."""
    for field, flag in (
        ("tune.metric", "--metric"),
        ("tune.interval", "--interval"),
        ("tune.quantile", "--quantile"),
        ("population", "--population"),
        ("calibration record", "--calibration"),
    ):
        if message.startswith(field) or f" {field} " in message:
            return f"{flag}: "
    return ""


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    return experiments.run_main(lambda: _main(argv))


def _main(argv) -> int:
    args, rest = parse_run_args(argv)
    overrides = experiments.split_overrides(rest)
    per_call = experiments.steps_per_call(args)
    mesh = experiments.start_devices(args)
    configs, workdirs, tune_config = search_from_args(args, overrides)
    if all(workdir_lib.is_finished(w) for w in workdirs):
        for c, w in zip(configs, workdirs):  # a finished search of another experiment: refused
            workdir_lib.check_same_experiment(w, c)
        print(f"tune: the search in {args.workdir} has finished already")
    else:
        tune.search(
            configs,
            workdirs,
            tune_config,
            args.workdir,
            progress=not args.no_progress,
            mesh=mesh,
            steps_per_call=per_call,
        )
    print(f"tune: {search_figure.save(args.workdir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
