"""Member-steps/s of a vmapped group of K members, for each K: the best group size per program.

Issue #25: the study trains the members that share a compiled program as one
vmapped group of up to ``max_members``; on the 2-core AMD EPYC ``K = 64`` ran
slower per member than ``K = 8`` and the Fashion-MNIST MLP GAN's ``K = 5``
group slower than its runs one by one. For each experiment config this times,
in one process, the program ``train.train_members`` runs for a group of K
members fed on the device (:func:`benchmarks.fed_steps.measure`'s ``fed_k``
side: the real data set, each member its own batch rows), for every K of
``--members`` side by side, alternating block by block
(:func:`benchmarks.harness.time_alternating`; a block is about
``--member-steps`` member-steps, so every K's block takes about as long). Beside
each K: member-steps/s, its time over ``K`` one-run steps (``time_over_runs``,
< 1: the group beats its runs one by one), the fraction of the matmul peak
(a 2048-square float32 product timed as one more side of the same alternation;
XLA's FLOPs of the compiled group step), and the group's train state in MiB
(``state_mib``: parameters and Adam moments of K members; the step's working
set is a few times that) beside the CPU's caches. ``--before`` also times each
K with the divergence check's finite test as it was before this benchmark's
change (:func:`concatenated_finite_check`), side by side; ``--profile STEPS``
then traces STEPS steps of each K and gives each XLA op's seconds per step
(:func:`op_seconds`).

The study's workers are each pinned to one core, so run it pinned (the CLI does
not pin itself; the JSON records the affinity it ran with):

    taskset -c 1 python -m benchmarks.group_size \\
        --config digits_gan,digits_vae,ring8_gan,fashion_mnist_gan_small \\
        --members 1,2,4,8,16,32,64 --json benchmarks/results/group_size.json
"""

import argparse
import collections
import contextlib
import json
import math
import os
import pathlib
import sys
import tempfile
from unittest import mock

import jax
import jax.numpy as jnp

import experiments
from benchmarks import fed_steps, harness
from regan_jax import data, steps, sweep
from regan_jax import program as program_lib

DEFAULT_CONFIGS = ("digits_gan", "digits_vae", "ring8_gan", "fashion_mnist_gan_small")
DEFAULT_MEMBERS = (1, 2, 4, 8, 16, 32, 64)
MATMUL_N = 2048  # the peak probe of benchmarks.run


def cpu_caches(root: str = "/sys/devices/system/cpu/cpu0/cache") -> dict[str, int]:
    """``{'L1d': bytes, 'L2': bytes, 'L3': bytes}`` of a CPU from sysfs ({} where unreadable).

    Instruction caches are left out; a size is sysfs's ``32K`` / ``1024K`` / ``32768K``.
    """
    out = {}
    for index in sorted(pathlib.Path(root).glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if kind == "Instruction":
            continue
        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        bytes_ = int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
        out[f"L{level}" + ("d" if kind == "Data" else "")] = bytes_
    return out


def steps_per_block(members: int, member_steps: int) -> int:
    """Group steps per timed block: about ``member_steps`` member-steps, at least one."""
    return max(1, round(member_steps / members))


def best_members(figures: dict[int, dict]) -> dict:
    """The K of most member-steps/s, and its rate over K = 1's and over the largest K's."""
    rates = {k: f["member_steps_per_s"] for k, f in figures.items()}
    best = max(rates, key=rates.get)
    out = {"best_members": best}
    for k, label in ((min(rates), "best_over_k1"), (max(rates), "best_over_largest")):
        out[label] = rates[best] / rates[k]
    out["largest_members"] = max(rates)
    return out


def _state_bytes(state) -> int:
    return sum(x.nbytes for x in jax.tree.leaves(state))


def concatenated_finite_check(tree) -> jax.Array:
    """``steps._all_finite`` before the group-size change: the leaves raveled, concatenated,
    one reduction (XLA:CPU writes the concatenation out first; BENCHMARKS.md)."""
    return jnp.all(jnp.isfinite(jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])))


def _figures(k, compiled, step_s, timing, scale, one_s, peak, state_bytes) -> dict:
    return {
        "members": k,
        "median_s": step_s,
        "q25_s": timing.q25_s * scale,
        "q75_s": timing.q75_s * scale,
        "member_steps_per_s": k / step_s,
        "time_over_runs": step_s / (k * one_s) if one_s else math.nan,
        "flops_per_step": compiled.flops,
        "fraction_of_peak": compiled.flops / step_s / peak,
        "compile_s": compiled.compile_s,
        "state_mib": state_bytes / 2**20,
    }


def measure(
    config,
    members: list[int],
    member_steps: int,
    blocks: int,
    matmul_n: int,
    before: bool = False,
    profile: int = 0,
) -> dict:
    """Each K's timing and figures (module doc) for one experiment config.

    The matmul peak is a side of the same alternation (one ``matmul_n``-square
    float32 product per block), so that on a loaded machine each fraction of
    the peak compares timings taken in the same rounds. ``before``: every K
    also compiled with :func:`concatenated_finite_check` (``by_members_before``,
    and ``before_over_now``, its step time over the library's). ``profile``: after
    the timing, ``profile`` steps of each K traced, :func:`op_seconds` per K.
    """
    program = program_lib.build_program(config)
    feed = data.device_feed(program.source, program.rows_per_step)
    arrays = jax.device_put(feed.arrays)
    one = program_lib.init_member(program, config)
    checks = {"now": contextlib.nullcontext}
    if before:
        checks["before"] = lambda: mock.patch.object(
            steps, "_all_finite", concatenated_finite_check
        )
    runs, compiled, state_bytes, per_block = {}, {}, {}, {"matmul": 1}
    for k in members:
        for label, check in checks.items():
            group = sweep.stack_members([one] * k) if k > 1 else jax.tree.map(jnp.copy, one)
            inputs = fed_steps.feed_inputs(config, program, k, True)
            with check():  # the step is traced, so the check chosen, when it is lowered
                jitted = fed_steps.chunk_program(program.step, feed.gather, k, steps.scan_steps)
                compiled[label, k] = harness.compile_seconds(jitted, group, arrays, inputs[0])
            state_bytes[k] = _state_bytes(group)
            per_block[label, k] = steps_per_block(k, member_steps)
            runs[label, k] = fed_steps.cycling_side(
                compiled[label, k].executable, group, inputs, (arrays,)
            )
    runs["matmul"] = harness.matmul_sides(matmul_n, with_torch=False)["jax"]
    # Every side alternates with every other; a K's block is about member_steps member-steps.
    unit = min(per_block.values())
    timings = harness.time_alternating(
        {name: _scaled(run, per_block[name], unit) for name, run in runs.items()},
        steps_per_block=unit,
        blocks=blocks,
    )
    step_s = {name: t.median_s * unit / per_block[name] for name, t in timings.items()}
    peak = 2.0 * matmul_n**3 / step_s["matmul"]
    out = {"peak_flops_per_s": peak}
    for label in checks:
        one_s = step_s.get((label, 1))
        out["by_members" + ("" if label == "now" else f"_{label}")] = {
            k: {
                **_figures(
                    k,
                    compiled[label, k],
                    step_s[label, k],
                    timings[label, k],
                    unit / per_block[label, k],
                    one_s,
                    peak,
                    state_bytes[k],
                ),
                "steps_per_block": per_block[label, k],
            }
            for k in members
        }
    if before:
        out["before_over_now"] = {k: step_s["before", k] / step_s["now", k] for k in members}
    if profile:  # last: the trace is not timed
        out["op_seconds"] = {k: op_seconds(runs["now", k], profile) for k in members}
    return {**out, **best_members(out["by_members"])}


def op_seconds(run, count: int) -> dict[str, float]:
    """Seconds per step of each XLA op (thunk) name over ``count`` steps of ``run``.

    From a ``jax.profiler`` trace: XLA:CPU records every op it executes; the
    durations of one name are summed over the process's threads (a name is an
    op of the compiled program, e.g. ``concatenate.9`` or ``multiply_add_fusion.24``).
    """
    run(1)  # compiled and warm
    with tempfile.TemporaryDirectory() as directory:
        with jax.profiler.trace(directory):
            run(count)
        (path,) = pathlib.Path(directory).glob("**/*.xplane.pb")
        profile = jax.profiler.ProfileData.from_file(str(path))
    seconds = collections.Counter()
    for plane in profile.planes:
        for line in plane.lines:
            if line.name == "python":
                continue
            for event in line.events:
                if not event.name.startswith("ThunkExecutor"):
                    seconds[event.name] += event.duration_ns * 1e-9 / count
    return dict(seconds)


def _scaled(run, count: int, unit: int):
    """``run`` doing ``count`` steps wherever the harness asks for ``unit`` (at least one)."""

    def advance(n: int) -> None:
        run(max(1, n * count // unit))

    return advance


def _parse_members(text: str) -> list[int]:
    values = [int(v) for v in text.split(",")]
    if not values or min(values) < 1 or len(set(values)) != len(values):
        raise ValueError(text)
    return sorted(values)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config", default=",".join(DEFAULT_CONFIGS), help="experiment config names, commas"
    )
    parser.add_argument(
        "--members",
        default=",".join(map(str, DEFAULT_MEMBERS)),
        help="group sizes K, commas (distinct, >= 1)",
    )
    parser.add_argument(
        "--member-steps", type=int, default=64, help="member-steps per timed block (about)"
    )
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks per K")
    parser.add_argument(
        "--before",
        action="store_true",
        help="also time each K with the finite check as it was (concatenated_finite_check)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="STEPS",
        help="then trace STEPS steps of each K: seconds per step of each XLA op (JSON)",
    )
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    names = args.config.split(",")
    unknown = [n for n in names if n.split(":")[0] not in experiments.experiment_names()]
    if unknown:
        print(f"unknown config(s) {unknown}", file=sys.stderr)
        return 2
    try:
        members = _parse_members(args.members)
    except ValueError:
        print(
            f"--members must be distinct ints >= 1, commas; got {args.members!r}", file=sys.stderr
        )
        return 2
    if args.member_steps < 1 or args.blocks < 1:
        print("--member-steps and --blocks must be >= 1", file=sys.stderr)
        return 2
    if args.profile < 0:
        print("--profile must be >= 0", file=sys.stderr)
        return 2
    if args.json and not pathlib.Path(args.json).resolve().parent.is_dir():
        print(f"--json: no directory {pathlib.Path(args.json).parent}", file=sys.stderr)
        return 2
    out = {
        "affinity": sorted(os.sched_getaffinity(0)),
        "load_before": os.getloadavg(),
        "caches": cpu_caches(),
        "matmul_n": MATMUL_N,
        "programs": {},
    }
    print(f"cores {out['affinity']}, caches {out['caches']}")
    for name in names:
        config = experiments.load_config(name)
        figures = measure(
            config,
            members,
            args.member_steps,
            args.blocks,
            MATMUL_N,
            before=args.before,
            profile=args.profile,
        )
        out["programs"][name] = figures
        print(f"{name}: matmul peak {figures['peak_flops_per_s'] / 1e9:.1f} GFLOP/s")
        for k, f in figures["by_members"].items():
            print(
                f"{name:>24} K={k:<3}: {f['member_steps_per_s']:8.1f} member-steps/s, "
                f"{f['fraction_of_peak']:.3f} of peak, "
                f"{f['time_over_runs']:5.2f}x K runs' time, "
                f"state {f['state_mib']:7.1f} MiB"
                + (f", before {figures['before_over_now'][k]:.2f}x" if args.before else "")
            )
        print(
            f"{name:>24} best K={figures['best_members']}: "
            f"{figures['best_over_k1']:.2f}x K=1, "
            f"{figures['best_over_largest']:.2f}x K={figures['largest_members']}"
        )
    out["load_after"] = os.getloadavg()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
