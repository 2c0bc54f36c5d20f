"""Where one run's final evaluation goes (protocol v2), part by part, in one process.

    taskset -c 0 python -m benchmarks.fashion_evaluation [--config fashion_mnist_gan_small]
        [--steps 20] [--samples 5000] [--json out.json]

Builds the config's program with the study preset's evaluation overrides
(``eval.protocol_v2``, ``--samples`` samples), trains it ``--steps`` steps
and times each part of the final evaluation of issue #21's protocol v2
(``time.perf_counter`` around ``jax.block_until_ready``): the held-out and
training references (feature passes), sampling, the samples' features, FD,
KID, PRDC, ``r_t`` / ``r_v``, the smoothness scores, and the generalisation
scores three ways: ``generalisation_before_s``, the metrics' own functions
recomputing the k-means cells and held-out distances for each score (the
path before :func:`regan_jax.evaluation.generalisation.cached_split_statistics`),
``generalisation_cold_s``, :func:`~regan_jax.evaluation.generalisation.generalisation_scores`
with an empty cache (a worker's first run), and ``generalisation_warm_s``, the same
again (its later runs on the same dataset). ``generalisation_equal``: the three
agree bit for bit. Each part is timed once (its first call, compiles
included; the cold side runs first and pays FD-infinity's): read the shares and the before/after ratios, not absolute seconds
on a shared machine. Prints one JSON object.
"""

import argparse
import json
import sys
import time

import jax
import numpy as np

import experiments
from regan_jax import data, metrics
from regan_jax import program as program_lib
from regan_jax.evaluation import evaluator, generalisation, hooks


def _timed(parts: dict, name: str, fn):
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    parts[name] = time.perf_counter() - start
    return out


def generalisation_before(train, held_out, samples, fake, key) -> dict:
    """:func:`generalisation_scores` as it was: each metric recomputes the split statistics."""
    key_held, key_train = jax.random.split(key)
    cells = generalisation.copying_cells(len(samples))
    flat = [x.reshape(len(x), -1) for x in (train.images, held_out.images, samples)]
    points = {"pixels": flat, "features": (train.features, held_out.features, fake)}
    scores = {}
    for space, (t, p, q) in points.items():
        scores[f"copying_{space}"] = metrics.copying_statistic(t, p, q, num_cells=cells)
        scores[f"memorisation_{space}"] = metrics.memorisation_ratio(t, p, q)
    fd_inf = metrics.frechet_distance_infinity(held_out.features, fake, key=key_held)["fd_inf"]
    fd_inf_train = metrics.frechet_distance_infinity(train.features, fake, key=key_train)
    scores["fd_inf"] = fd_inf
    scores["fd_inf_train"] = fd_inf_train["fd_inf"]
    scores["fd_inf_gap"] = fd_inf - fd_inf_train["fd_inf"]
    return scores


def measure(config, steps: int) -> dict:
    parts: dict = {}
    program = _timed(parts, "build_program_s", lambda: program_lib.build_program(config))
    state = program_lib.init_member(program, config)
    step = jax.jit(program.step)
    batches = data.make_iterator(
        config.data, config.seed, rows_per_step=program.rows_per_step, source=program.source
    )
    for _ in range(steps):
        state, _ = step(state, next(batches))
    state = jax.block_until_ready(state)
    reference = _timed(
        parts,
        "held_out_features_s",
        lambda: hooks.config_reference(config, program.source, program.test),
    )
    train = _timed(
        parts, "train_features_s", lambda: hooks.training_reference(reference, program.source)
    )
    params, n = state.params, config.eval.num_samples
    sample_key, key = jax.random.split(jax.random.fold_in(program_lib.sample_key(config), 1))
    samples, _ = _timed(
        parts,
        "sample_s",
        lambda: evaluator.draw_samples(
            lambda k, m: evaluator.as_sample_fn_output(program.sample(params, k, m)),
            sample_key,
            n,
            reference.sample_shape,
            batch_size=config.eval.batch_size,
        ),
    )
    fake = _timed(
        parts, "sample_features_s", lambda: np.asarray(reference.feature_net.features(samples))
    )
    _timed(parts, "fd_s", lambda: metrics.frechet_distance(reference.features, fake))
    _timed(parts, "kid_s", lambda: metrics.kid(reference.features, fake, key=key))
    _timed(parts, "prdc_s", lambda: metrics.prdc(reference.features, fake, 5))
    critic = hooks.critic(program, params, state.model_state, config.eval.batch_size)
    _timed(
        parts,
        "r_t_r_v_s",
        lambda: generalisation.critic_scores(critic, train, reference, samples, None),
    )
    latent_map = hooks.latent_map(program, params)
    _timed(
        parts,
        "smoothness_s",
        lambda: generalisation.smoothness_scores(
            latent_map, reference.feature_net.feature_map(), n, jax.random.fold_in(key, 2)
        ),
    )
    gen_key = jax.random.fold_in(key, 1)

    def after(side):
        return _timed(
            parts,
            f"generalisation_{side}_s",
            lambda: generalisation.generalisation_scores(train, reference, samples, fake, gen_key),
        )

    # Cold first: it pays FD-infinity's compiles, not the path before.
    generalisation.clear_split_cache()
    cold = after("cold")
    before = _timed(
        parts,
        "generalisation_before_s",
        lambda: generalisation_before(train, reference, samples, fake, gen_key),
    )
    warm = after("warm")
    evaluation = [name for name in parts if name != "build_program_s"]
    other = sum(parts[name] for name in evaluation if not name.startswith("generalisation_"))
    totals = {
        side: other + parts[f"generalisation_{side}_s"] for side in ("before", "cold", "warm")
    }
    return {
        "train_size": int(train.images.shape[0]),
        "held_out_size": int(reference.images.shape[0]),
        "num_samples": n,
        "parts_s": parts,
        "final_before_s": totals["before"],
        "final_cold_s": totals["cold"],
        "final_warm_s": totals["warm"],
        "generalisation_share_before": parts["generalisation_before_s"] / totals["before"],
        "generalisation_speedup_cold": parts["generalisation_before_s"]
        / parts["generalisation_cold_s"],
        "generalisation_speedup_warm": parts["generalisation_before_s"]
        / parts["generalisation_warm_s"],
        "final_speedup_warm": totals["before"] / totals["warm"],
        "generalisation_equal": before == cold == warm,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="fashion_mnist_gan_small", help="experiment config")
    parser.add_argument("--steps", type=int, default=20, help="training steps before evaluating")
    parser.add_argument("--samples", type=int, default=5000, help="eval.num_samples (the preset's)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    if args.config.split(":")[0] not in experiments.experiment_names():
        print(f"unknown config {args.config!r}", file=sys.stderr)
        return 2
    if args.steps < 1 or args.samples < 1:
        print("--steps and --samples must be >= 1", file=sys.stderr)
        return 2
    overrides = (
        ("eval.protocol_v2", "True"),
        ("eval.num_samples", str(args.samples)),
        ("log.progress", "False"),
    )
    out = measure(experiments.load_config(args.config, overrides), args.steps)
    text = json.dumps({"config": args.config, "steps": args.steps, **out}, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
