"""Calibrates an experiment's penalty units: ``python -m experiments.calibrate --config NAME --out FILE``.

Runs the experiment without weight penalties for ``--steps`` steps per seed
(one vmapped program), writes the record of :mod:`regan_jax.calibration`
(loss-gradient RMS, weight RMS and unit norms per network and layer) to
``--out``, and prints, for a run of the config's length, the raw strength of
every study penalty at each ``--effective`` strength. Name the record in a
run's config (``--config.eval.calibration=FILE``) to have its summary report
``effective_strength``; ``python -m experiments.sweep --calibration FILE``
takes its strengths in effective units. Bad input exits with code 2 before
anything runs.

    python -m experiments.calibrate --config digits_gan --out runs/digits_gan_calibration.json
"""

import argparse
import sys

import experiments
from experiments import sample
from experiments.study import members, vocabulary
from regan_jax import calibration


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m experiments.calibrate",
        description=__doc__.split("\n\n")[0],
        epilog="Further --config.a.b=value tokens override the config.",
    )
    parser.add_argument("--config", required=True, help="experiment (FILE.py[:smoke] or name)")
    parser.add_argument("--out", required=True, help="the calibration record to write (.json)")
    parser.add_argument("--steps", type=int, default=200, help="calibration steps (>= 1)")
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds, one run each")
    parser.add_argument(
        "--effective", default="0.1,1,10", help="effective strengths to print the raw values of"
    )
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_known_args(argv)


def strength_table(base, record, effective) -> str:
    """Markdown: the raw strength (radius) of each study penalty per network at each effective value."""
    head = ["penalty", "network", *(f"e = {e:g}" for e in effective)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in vocabulary.WEIGHT_PENALTIES:
        for net in base.penalty.keys():
            raw = [members.raw_value(base, name, net, e, record) for e in effective]
            lines.append("| " + " | ".join([name, net, *(f"{r:.3g}" for r in raw)]) + " |")
    return "\n".join(lines)


def network_table(record) -> str:
    """Markdown: the measured units of each network."""
    fields = ("grad_rms", "weight_rms", "unit_norm_init", "updates_per_step")
    lines = ["| network | " + " | ".join(fields) + " |", "|" + "---|" * (len(fields) + 1)]
    for net, values in record["networks"].items():
        lines.append(f"| {net} | " + " | ".join(f"{values[f]:.4g}" for f in fields) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    def body():
        args, rest = parse_args(sys.argv[1:] if argv is None else argv)
        base = experiments.load_config(args.config, experiments.split_overrides(rest))
        seeds = experiments.parse_seeds(args.seeds)
        effective = experiments.parse_floats(args.effective, "--effective", positive=True)
        if args.steps < 1:
            raise experiments.UsageError(f"--steps must be >= 1, got {args.steps}")
        out = sample.check_output(args.out, ".json", "--out")
        record = calibration.measure(
            base, steps=args.steps, seeds=seeds, progress=not args.no_progress
        )
        calibration.save(out, record)
        print(f"calibration of {base.name}: {args.steps} steps x seeds {seeds} -> {out}\n")
        print(network_table(record) + "\n")
        print(f"raw strengths (radii for max_norm) for a run of {base.steps} steps:\n")
        print(strength_table(base, record, effective))
        return 0

    return experiments.run_main(body)


if __name__ == "__main__":
    sys.exit(main())
