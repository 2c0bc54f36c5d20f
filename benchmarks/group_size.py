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
measured first in the same process (:func:`benchmarks.suites.matmul_peak`,
XLA's FLOPs of the compiled group step), and the group's train state in MiB
(``state_mib``: parameters and Adam moments of K members; the step's working
set is a few times that) beside the CPU's cache sizes.

The study's workers are each pinned to one core, so run it pinned (the CLI does
not pin itself; the JSON records the affinity it ran with):

    taskset -c 1 python -m benchmarks.group_size \\
        --config digits_gan,digits_vae,ring8_gan,fashion_mnist_gan_small \\
        --members 1,2,4,8,16,32,64 --json benchmarks/results/group_size.json
"""

import argparse
import json
import math
import os
import pathlib
import sys

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


def measure(config, members: list[int], member_steps: int, blocks: int, matmul_n: int) -> dict:
    """Each K's timing and figures (module doc) for one experiment config.

    The matmul peak is a side of the same alternation (one ``matmul_n``-square
    float32 product per block), so that on a loaded machine each fraction of
    the peak compares timings taken in the same rounds.
    """
    program = program_lib.build_program(config)
    feed = data.device_feed(program.source, program.rows_per_step)
    arrays = jax.device_put(feed.arrays)
    one = program_lib.init_member(program, config)
    runs, compiled, state_bytes = {}, {}, {}
    for k in members:
        group = sweep.stack_members([one] * k) if k > 1 else jax.tree.map(jnp.copy, one)
        inputs = fed_steps._inputs(config, program, k, True)  # pylint: disable=protected-access
        jitted = fed_steps._chunk(program.step, feed.gather, k, steps.scan_steps)  # pylint: disable=protected-access
        compiled[k] = harness.compile_seconds(jitted, group, arrays, inputs[0])
        state_bytes[k] = _state_bytes(group)
        runs[k] = fed_steps._side(compiled[k].executable, group, inputs, (arrays,))  # pylint: disable=protected-access
    runs["matmul"] = harness.matmul_sides(matmul_n, with_torch=False)["jax"]
    # Every side alternates with every other; a K's block is about member_steps member-steps.
    per_block = {k: steps_per_block(k, member_steps) for k in members} | {"matmul": 1}
    unit = min(per_block.values())
    timings = harness.time_alternating(
        {name: _scaled(run, per_block[name], unit) for name, run in runs.items()},
        steps_per_block=unit,
        blocks=blocks,
    )
    step_s = {name: t.median_s * unit / per_block[name] for name, t in timings.items()}
    peak = 2.0 * matmul_n**3 / step_s["matmul"]
    by_members = {}
    for k in members:
        by_members[k] = {
            "members": k,
            "steps_per_block": per_block[k],
            "median_s": step_s[k],
            "q25_s": timings[k].q25_s * unit / per_block[k],
            "q75_s": timings[k].q75_s * unit / per_block[k],
            "member_steps_per_s": k / step_s[k],
            "time_over_runs": step_s[k] / (k * step_s[1]) if 1 in step_s else math.nan,
            "flops_per_step": compiled[k].flops,
            "fraction_of_peak": compiled[k].flops / step_s[k] / peak,
            "compile_s": compiled[k].compile_s,
            "state_mib": state_bytes[k] / 2**20,
        }
    return {"peak_flops_per_s": peak, "by_members": by_members, **best_members(by_members)}


def _scaled(run, steps: int, unit: int):
    """``run`` doing ``steps`` steps wherever the harness asks for ``unit`` (at least one)."""

    def advance(n: int) -> None:
        run(max(1, n * steps // unit))

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
        figures = measure(config, members, args.member_steps, args.blocks, MATMUL_N)
        out["programs"][name] = figures
        print(f"{name}: matmul peak {figures['peak_flops_per_s'] / 1e9:.1f} GFLOP/s")
        for k, f in figures["by_members"].items():
            print(
                f"{name:>24} K={k:<3}: {f['member_steps_per_s']:8.1f} member-steps/s, "
                f"{f['fraction_of_peak']:.3f} of peak, "
                f"{f['time_over_runs']:5.2f}x K runs' time, "
                f"state {f['state_mib']:7.1f} MiB"
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
