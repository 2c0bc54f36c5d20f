"""The protocol-v2 measures on one experiment's unregularised run, beside their nulls.

For each training-set size, trains (or reuses) the unregularised run with
``config.eval.protocol_v2`` on and prints, in one table, the generalisation
scores of three sample sources scored by the same evaluator against the
same references at the same sample count:

- ``run``: the trained generator;
- ``memoriser``: training images plus N(0, 0.05²) pixel noise (clipped,
  :func:`regan_jax.evaluation.memoriser_samples`): must be flagged (C_T ≪ 0,
  memorisation ≈ 1);
- ``real``: held-out images the reference does not hold (the nulls' pool,
  :func:`regan_jax.evaluation.null_halves`): must not be (C_T ≈ 0,
  memorisation ≈ 0.05).

All three are scored against the nulls' half of the held-out split
(:func:`regan_jax.evaluation.null_reference`) with ``N`` = the pool's size,
so they are comparable with each other; the run's own summary (whole
held-out split, ``config.eval.num_samples``) is printed below. FD∞ of the
training set against the held-out split is the real floor.

    python -m experiments.study.protocol_check --config digits_gan \\
        --workdir runs/protocol_check --train-sizes full,200
"""

import argparse
import functools
import json
import pathlib
import sys

import jax

import experiments
from regan_jax import evaluation, metrics, sampling, train
from regan_jax import workdir as workdir_lib
from regan_jax.evaluation import generalisation, hooks

# The table's columns: the protocol-v2 scores as the evaluator names them (the Jacobian's
# scale left out: the table compares a run with its nulls, which have no generator).
COLUMNS = (
    *generalisation.GENERALISATION_METRICS,
    *generalisation.CRITIC_METRICS,
    "ppl",
    "jacobian_log_cond",
)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m experiments.study.protocol_check", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--config", default="digits_gan", help="an experiment (image data)")
    parser.add_argument("--workdir", required=True, help="one run directory per size inside")
    parser.add_argument(
        "--train-sizes",
        default="full,200",
        help="comma-separated: 'full' or a number of training images",
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_known_args(argv)


def _sizes(text: str) -> list:
    sizes = []
    for part in text.split(","):
        if part == "full":
            sizes.append(None)
        elif part.isdigit() and int(part) >= 1:
            sizes.append(int(part))
        else:
            raise ValueError(f"--train-sizes: {part!r} is neither 'full' nor a positive integer")
    return sizes


def _run(args, rest, size, root: pathlib.Path):
    overrides = [("seed", str(args.seed)), ("eval.protocol_v2", "true"), ("log.progress", "false")]
    if size is not None:
        overrides.append(("data.train_size", str(size)))
    config = experiments.load_config(args.config, overrides + experiments.split_overrides(rest))
    workdir = root / f"train_size_{'full' if size is None else size}"
    if not (workdir / workdir_lib.SUMMARY_FILE).exists():
        train.train_and_evaluate(config, workdir, progress=False)
    return sampling.load_run(workdir), workdir


def check(run) -> dict:
    """``{source: scores}`` for the run, the memoriser and the real null, and the real floor."""
    program, state = run.program, run.state
    reference = hooks.config_reference(run.config, program.source)
    train_ref = hooks.training_reference(reference, program.source)
    held = evaluation.null_reference(reference)
    n = len(evaluation.null_halves(reference.labels)[1])  # the real null's pool

    def run_fn(key, k):
        return evaluation.as_sample_fn_output(program.sample(state.params, key, k))

    sources = {
        "run": (
            run_fn,
            hooks.critic(program, state.params, state.model_state, 500),
            hooks.latent_map(program, state.params),
        ),
        "memoriser": (
            functools.partial(evaluation.memoriser_samples, train_ref.images),
            None,
            None,
        ),
        "real": (functools.partial(evaluation.null_samples, reference, "real"), None, None),
    }
    out = {
        name: evaluation.evaluate(
            fn,
            jax.random.key(1),
            held,
            num_samples=n,
            batch_size=n,
            train=train_ref,
            critic_fn=critic,
            latent_map=latent,
            progress=False,
        )
        for name, (fn, critic, latent) in sources.items()
    }
    out["floor"] = {
        "fd_inf_train_vs_held_out": metrics.frechet_distance_infinity(
            train_ref.features, reference.features
        )["fd_inf"],
        "num_samples": n,
    }
    return out


def _table(size, scores, summary) -> str:
    head = f"train_size={'full' if size is None else size} (scored at N={scores['floor']['num_samples']})"
    lines = [head, "source     " + " ".join(f"{c:>21}" for c in COLUMNS)]
    for name in ("run", "memoriser", "real"):
        row = scores[name]
        lines.append(
            f"{name:<10} "
            + " ".join(
                f"{row[c]:>21.3f}" if isinstance(row.get(c), float) else f"{'-':>21}"
                for c in COLUMNS
            )
        )
    lines.append(
        f"real floor: FD∞(train, held-out) = {scores['floor']['fd_inf_train_vs_held_out']:.3f}"
    )
    keep = ("fd", "kid", *COLUMNS, "jacobian_fro", "train_size", "near_zero_g", "near_zero_d")
    lines.append(
        "run summary (whole held-out split, eval.num_samples): "
        + json.dumps({k: summary.get(k) for k in keep if k in summary})
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    args, rest = parse_args(sys.argv[1:] if argv is None else argv)

    def body():
        sizes = _sizes(args.train_sizes)
        root = pathlib.Path(args.workdir)
        for size in sizes:
            run, workdir = _run(args, rest, size, root)
            summary = workdir_lib.read_json(workdir / workdir_lib.SUMMARY_FILE)
            print(_table(size, check(run), summary), flush=True)
        return 0

    return experiments.run_main(body)


if __name__ == "__main__":
    sys.exit(main())
