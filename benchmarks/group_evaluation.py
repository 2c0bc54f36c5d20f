"""A sweep group's evaluation member by member vs as one group, side by side in one process.

    python -m benchmarks.group_evaluation [--members 8] [--protocol-v2] [--rounds 3]

Builds a ``digits_gan`` group of K members (seeds 0..K-1, prox-L1 on G at
four strengths), trains it a few vmapped steps, and times ``run_hooks``'
``final`` (the summary's scores) and ``cheap`` (the in-training FD) two
ways, alternating within each round: each member alone (``evaluate`` with
its own key: the path before :mod:`regan_jax.evaluation.members`) and the
whole group (one vmapped sampler, one feature pass). Round 0 includes the
compiles, most of them (feature network, metric kernels) shared by both
sides and paid by the side that runs first (the per-member one), so it is
reported (``rounds_s``) but not compared; the speed-ups are ratios of the
medians over the other rounds. ``parts`` splits one warm per-member evaluation into sampling,
features (and logits) and the statistics that follow them, and times the
same statistics once more with what the members share computed once for the
group (``statistics_shared_s``, :func:`regan_jax.evaluation.generalisation.shared`
included; protocol v2 only) -- the statistics before and after, side by
side. Prints one JSON object. The machine may be shared: compare the two sides, not absolute seconds.
"""

import argparse
import json
import statistics
import sys
import time

import jax
import numpy as np

from experiments.configs import digits_gan
from regan_jax import config as config_lib
from regan_jax import data, sweep
from regan_jax import program as program_lib
from regan_jax.evaluation import classifier, evaluator, generalisation, hooks

STRENGTHS = (0.0, 1e-4, 1e-3, 1e-2)
TRAIN_STEPS = 200


def _group(size: int, protocol_v2: bool):
    configs = []
    for k in range(size):
        c = digits_gan.get_config()
        c.seed = k
        c.penalty.g.kind = "prox_l1"
        c.penalty.g.strength = STRENGTHS[k % len(STRENGTHS)]
        c.eval.protocol_v2 = protocol_v2
        c.log.progress = False
        config_lib.validate(c)
        configs.append(c)
    program = program_lib.build_program(configs[0])
    state = sweep.stack_members([program_lib.init_member(program, c) for c in configs])
    step = sweep.vmap_step(program.step)
    batches = data.make_iterator(
        configs[0].data, 0, rows_per_step=program.rows_per_step, source=program.source
    )
    for _ in range(TRAIN_STEPS):
        state, _ = step(state, next(batches))
    return program, configs, jax.block_until_ready(state)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _parts(program, configs, state, run_hooks_reference) -> dict:
    """One warm member-by-member pass split: sampling, features (+ logits), statistics.

    The statistics are those of the summary without the critic's r_t / r_v
    (with protocol v2: with the generalisation and smoothness scores).
    """
    reference, config = run_hooks_reference, configs[0]
    train = hooks.training_reference(reference, program.source) if config.eval.protocol_v2 else None
    parts = {"sample_s": 0.0, "features_s": 0.0, "statistics_s": 0.0}
    member_inputs = []
    for k, c in enumerate(configs):
        params = sweep.member(state.params, k)
        sample_key, metric_key = jax.random.split(jax.random.fold_in(program_lib.sample_key(c), 1))
        start = time.perf_counter()
        samples, labels = evaluator.draw_samples(
            lambda key, n, p=params: evaluator.as_sample_fn_output(program.sample(p, key, n)),
            sample_key,
            config.eval.num_samples,
            reference.sample_shape,
            batch_size=config.eval.batch_size,
        )
        parts["sample_s"] += time.perf_counter() - start
        start = time.perf_counter()
        features = np.asarray(reference.feature_net.features(samples))
        logits = (
            np.asarray(reference.classifier.logits(samples))
            if isinstance(reference.classifier, classifier.FeatureClassifier)
            else None
        )
        parts["features_s"] += time.perf_counter() - start
        latent_map = hooks.latent_map(program, params) if train is not None else None
        member_inputs.append((samples, labels, metric_key, features, logits, latent_map))
        generalisation.clear_split_cache()  # each member alone fits its own statistics
        start = time.perf_counter()
        evaluator.score_samples(
            reference,
            samples,
            labels,
            metric_key,
            train=train,
            features=features,
            logits=logits,
            latent_map=latent_map,
        )
        parts["statistics_s"] += time.perf_counter() - start
    total = sum(parts.values())
    out = {**parts, **{name.replace("_s", "_share"): v / total for name, v in parts.items()}}
    if train is None:
        return out
    generalisation.clear_split_cache()
    start = time.perf_counter()
    shared = generalisation.shared(train, reference, config.eval.num_samples, reference.feature_net)
    for samples, labels, metric_key, features, logits, latent_map in member_inputs:
        evaluator.score_samples(
            reference,
            samples,
            labels,
            metric_key,
            train=train,
            features=features,
            logits=logits,
            latent_map=latent_map,
            shared=shared,
        )
    out["statistics_shared_s"] = time.perf_counter() - start
    out["statistics_speedup"] = parts["statistics_s"] / out["statistics_shared_s"]
    return out


def measure(size: int, protocol_v2: bool, rounds: int) -> dict:
    program, configs, state = _group(size, protocol_v2)
    run = hooks.run_hooks(program)
    final_keys = [jax.random.fold_in(program_lib.sample_key(c), 1) for c in configs]
    cheap_keys = [jax.random.fold_in(program_lib.sample_key(c), 500) for c in configs]
    diverged = [False] * size

    def final_alone():
        for k, c in enumerate(configs):
            run.final(sweep.member(state, k), [c], [final_keys[k]], [False])

    def final_group():
        run.final(state, configs, final_keys, diverged)

    def cheap_alone():
        for k in range(size):
            member = sweep.member(state, k)
            run.cheap(member.params, [cheap_keys[k]], member.model_state)

    def cheap_group():
        run.cheap(state.params, cheap_keys, state.model_state)

    times = {name: [] for name in ("final_alone", "final_group", "cheap_alone", "cheap_group")}
    for _ in range(rounds):
        for name, fn in (
            ("final_alone", final_alone),
            ("final_group", final_group),
            ("cheap_alone", cheap_alone),
            ("cheap_group", cheap_group),
        ):
            times[name].append(_timed(fn))
    warm = {name: statistics.median(values[1:]) for name, values in times.items()}
    reference = hooks.config_reference(configs[0], program.source)
    return {
        "members": size,
        "protocol_v2": protocol_v2,
        "num_samples": configs[0].eval.num_samples,
        "fd_samples": configs[0].eval.fd_samples,
        "rounds_s": times,
        "final_group_speedup_warm": warm["final_alone"] / warm["final_group"],
        "cheap_group_speedup_warm": warm["cheap_alone"] / warm["cheap_group"],
        "parts_per_member_path": _parts(program, configs, state, reference),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--protocol-v2", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.members < 2 or args.rounds < 2:
        print(
            f"--members and --rounds must be >= 2, got {args.members}, {args.rounds}",
            file=sys.stderr,
        )
        sys.exit(2)
    print(json.dumps(measure(args.members, args.protocol_v2, args.rounds), indent=1))


if __name__ == "__main__":
    main()
