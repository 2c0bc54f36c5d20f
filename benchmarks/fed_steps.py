"""The training loop's step programs side by side: host batches, device-fed, one-trip scan, vmapped.

Issue #25: the cycle GAN trained at 6.5 steps/s in study v2 and in a plain
run alike, against ~100 for its jitted step. For one experiment config this
times, in one process, alternating block by block
(:func:`benchmarks.harness.time_alternating`; ratios hold on a loaded
machine where absolute rates do not), the programs ``train.train_members``
can run for it (real data, the experiment's own step and init):

- ``host``: the jitted step on batches already on the device (``device_data=False``);
- ``fed``: one step per call fed on the device, as the loop runs it
  (:func:`regan_jax.parallel.fed_parallel`'s one-device chunk, built here the
  same way so that it can be lowered: :func:`regan_jax.steps.scan_steps`);
- ``fed_scan1``: the same inside a one-trip ``lax.scan`` (how the loop ran it before);
- ``vmap_k1``: the step vmapped over a member axis of size 1 (``sweep.vmap_step``);
- ``fed_k{K}`` / ``fed_k{K}_scan1``: a group of K members fed on the device, each way
  (per group step; member-steps/s = K / its time);
- ``fed_chunk{C}`` / ``fed_chunk{C}_unrolled``: one run, C steps per call
  (``--steps-per-call C``): the loop's ``lax.scan``, and the same scan unrolled whole.

Beside each, the convolutions of its compiled program by form
(:func:`conv_forms`): XLA:CPU's Eigen kernels take ``b01f_01io->b01f``; the
other forms it runs on a generic loop nest.

    python -m benchmarks.fed_steps --config digits_cyclegan --json benchmarks/results/fed_steps_cyclegan.json
    taskset -c 0 python -m benchmarks.fed_steps --config digits_gan --conv --steps 2 --blocks 3
"""

import argparse
import collections
import json
import re
import sys

import jax
from jax import lax

import experiments
from benchmarks import harness, jax_setups
from regan_jax import data, steps, sweep, xla
from regan_jax import program as program_lib

CANONICAL = "b01f_01io->b01f"  # the convolution form of XLA:CPU's Eigen kernels


def conv_forms(compiled_text: str) -> dict[str, int]:
    """``{form: count}`` of the convolutions in a compiled program's HLO text.

    A form is the ``dim_labels``, with ``feature_group_count`` /
    ``batch_group_count`` appended where one is given (a vmapped group's
    convolutions are grouped, one group per member).
    """
    forms = []
    for line in compiled_text.splitlines():
        if " convolution(" not in line:
            continue
        labels = re.search(r"dim_labels=([^,\s]+)", line).group(1)
        groups = re.findall(r"((?:feature|batch)_group_count=\d+)", line)
        forms.append(" ".join([labels, *groups]))
    return dict(collections.Counter(forms))


def one_trip_scan(step, unroll: int | bool = 1):
    """How the loop ran a chunk before: ``lax.scan`` over the step axis, even for one step.

    ``unroll=True``: the loop unrolled whole (straight-line code, no loop body).
    """

    def run(state, xs):
        state, metrics = lax.scan(step, state, xs, unroll=unroll)
        return state, jax.tree.map(lambda m: m[-1], metrics)

    return run


def chunk_program(step, gather, members: int, scan):
    """``fed_parallel``'s one-device chunk, its steps run by ``scan`` (compiled, state donated)."""

    def one(state, arrays, descriptor):
        return step(state, gather(arrays, descriptor))

    if members > 1:
        one = jax.vmap(one, in_axes=(0, None, 0))

    def chunk(state, arrays, descriptors):
        return scan(lambda s, d: one(s, arrays, d))(state, descriptors)

    return xla.jit(chunk, donate_argnums=0)


def cycling_side(run, state, inputs, extra=()):
    """``run(n)``: n calls of ``run(state, *extra, inputs[i])`` cycling ``inputs``, then block."""
    box, count = [state], [0]

    def advance(n: int) -> None:
        for _ in range(n):
            box[0], _ = run(box[0], *extra, inputs[count[0] % len(inputs)])
            count[0] += 1
        jax.block_until_ready(box[0])

    return advance


def feed_inputs(
    config, program, members: int, on_device: bool, count: int = 4, chunk: int = 1
) -> list:
    """``count`` host batches or descriptor chunks of ``chunk`` steps (member axis if K > 1)."""
    seeds = list(range(members)) if members > 1 else None
    iterator = data.make_iterator(
        config.data,
        config.seed,
        member_seeds=seeds,
        rows_per_step=program.rows_per_step,
        source=program.source,
        on_device=on_device,
    )
    if on_device:
        return [
            data.stack_descriptors([next(iterator) for _ in range(chunk)]) for _ in range(count)
        ]
    return [jax.device_put(next(iterator)) for _ in range(count)]


def measure(config, members: int, steps_per_block: int, blocks: int, chunk: int = 3) -> dict:
    """Each side's timing, its conv forms and its time per step over ``host``'s (module doc).

    A ``fed_chunk{C}`` side's block runs ``steps_per_block`` chunks of C steps.
    """
    program = program_lib.build_program(config)
    step, feed = program.step, data.device_feed(program.source, program.rows_per_step)
    arrays = jax.device_put(feed.arrays)
    one = program_lib.init_member(program, config)
    group = sweep.stack_members([one] * members)
    host, descriptors = (
        feed_inputs(config, program, 1, False),
        feed_inputs(config, program, 1, True),
    )
    group_descriptors = feed_inputs(config, program, members, True)
    chunks_of = feed_inputs(config, program, 1, True, chunk=chunk)
    host_step = xla.jit(step, donate_argnums=0)
    chunks = {  # (program, state, inputs); the fed programs take the arrays first
        "host": (host_step, one, host),
        "fed": (chunk_program(step, feed.gather, 1, steps.scan_steps), one, descriptors),
        "fed_scan1": (chunk_program(step, feed.gather, 1, one_trip_scan), one, descriptors),
        "vmap_k1": (
            sweep.vmap_step(step, shared_batch=False),
            sweep.stack_members([one]),
            [jax.tree.map(lambda x: x[None], b) for b in host],
        ),
        f"fed_k{members}": (
            chunk_program(step, feed.gather, members, steps.scan_steps),
            group,
            group_descriptors,
        ),
        f"fed_k{members}_scan1": (
            chunk_program(step, feed.gather, members, one_trip_scan),
            group,
            group_descriptors,
        ),
        f"fed_chunk{chunk}": (
            chunk_program(step, feed.gather, 1, steps.scan_steps),
            one,
            chunks_of,
        ),
        f"fed_chunk{chunk}_unrolled": (
            chunk_program(step, feed.gather, 1, lambda s: one_trip_scan(s, unroll=True)),
            one,
            chunks_of,
        ),
    }
    runs, forms = {}, {}
    for name, (jitted, state, inputs) in chunks.items():
        extra = (arrays,) if name.startswith("fed") else ()
        if name != "vmap_k1":  # sweep.vmap_step's runner has no lower()
            compiled = jitted.lower(state, *extra, inputs[0]).compile()
            forms[name] = conv_forms(compiled.as_text())
        runs[name] = (jitted, state, inputs, extra)
    sides = {
        name: cycling_side(run, jax.tree.map(lambda x: x.copy(), state), inputs, extra)
        for name, (run, state, inputs, extra) in runs.items()
    }
    timings = harness.time_alternating(sides, steps_per_block=steps_per_block, blocks=blocks)
    base = timings["host"].median_s
    out = {}
    for name, timing in timings.items():
        k = members if name.startswith("fed_k") else 1
        per_call = chunk if name.startswith("fed_chunk") else 1
        out[name] = {
            **timing.as_dict(),
            "members": k,
            "steps_per_call": per_call,
            "member_steps_per_s": k * per_call / timing.median_s,
            "time_over_host": timing.median_s / per_call / base,
            "conv_forms": forms.get(name),
        }
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="digits_cyclegan", help="experiment config name")
    parser.add_argument(
        "--conv", action="store_true", help="the config's DCGAN variant (jax_setups.conv_variant)"
    )
    parser.add_argument("--members", type=int, default=3, help="K of the device-fed group")
    parser.add_argument("--chunk", type=int, default=3, help="C of the fed_chunk sides")
    parser.add_argument("--steps", type=int, default=10, help="calls per timed block")
    parser.add_argument("--blocks", type=int, default=5, help="timed blocks per side")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    if args.config.split(":")[0] not in experiments.experiment_names():
        print(f"unknown config {args.config!r}", file=sys.stderr)
        return 2
    if args.members < 2 or args.chunk < 2 or args.steps < 1 or args.blocks < 1:
        print("--members and --chunk must be >= 2, --steps and --blocks >= 1", file=sys.stderr)
        return 2
    config = experiments.load_config(args.config)
    config = jax_setups.conv_variant(config) if args.conv else config
    out = measure(config, args.members, args.steps, args.blocks, args.chunk)
    for name, figures in out.items():
        print(
            f"{name:>20}: {figures['steps_per_s']:8.2f} calls/s "
            f"({figures['member_steps_per_s']:8.2f} member-steps/s), "
            f"{figures['time_over_host']:6.2f}x host's time per step"
            + (f", convs {figures['conv_forms']}" if figures["conv_forms"] else "")
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": args.config, "conv": args.conv, "sides": out}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
