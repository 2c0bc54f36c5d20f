"""Where one training step's time goes, op by op: ``python -m benchmarks.op_profile --config NAME``.

Compiles the config's one-run step as training does (``regan_jax.xla.jit``),
traces ``--steps`` steps with ``jax.profiler`` (:func:`benchmarks.group_size.op_seconds`)
and prints the ops' milliseconds per step, grouped by kind (the op name
without its number: ``transpose_copy_fusion``, ``convolution``, ...) and the
slowest ops one by one. The lead for a slow step: issue #25's conv step runs
below torch's same-math step, and this says which kind of op holds its time.

    python -m benchmarks.op_profile --config fashion_mnist_gan [--conv] [--steps 5] [--json PATH]
"""

import argparse
import collections
import json
import pathlib
import re
import sys

import experiments
from benchmarks import group_size, jax_setups, run


def kind(op: str) -> str:
    """An op's kind: its name without XLA's ``.N`` suffix (``convolution.3`` -> ``convolution``)."""
    return re.sub(r"\.\d+$", "", op)


def by_kind(seconds: dict[str, float]) -> dict[str, float]:
    """Seconds per step summed over the ops of each kind, largest first."""
    out = collections.Counter()
    for op, s in seconds.items():
        out[kind(op)] += s
    return dict(out.most_common())


def measure(name: str, *, conv: bool, steps: int) -> dict:
    config = jax_setups.experiment_config(name)
    if conv:
        config = jax_setups.conv_variant(config)
    setup = jax_setups.gan_setup(config)
    step = jax_setups.jit_variant(setup.step, "library", donate_argnums=0)
    seconds = group_size.op_seconds(jax_setups.loop_side(step, setup.init(0), setup.batches), steps)
    return {"config": name, "conv": conv, "steps": steps, "ops": seconds, "kinds": by_kind(seconds)}


def report(result: dict, top: int = 12) -> str:
    total = sum(result["ops"].values())
    lines = [f"{result['config']}: {total * 1e3:.2f} ms of ops per step", "by kind:"]
    lines += [
        f"  {s * 1e3:8.2f} ms  {s / total:6.1%}  {k}"
        for k, s in list(result["kinds"].items())[:top]
    ]
    lines.append("slowest ops:")
    slowest = sorted(result["ops"].items(), key=lambda kv: -kv[1])[:top]
    lines += [f"  {s * 1e3:8.2f} ms  {op}" for op, s in slowest]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.op_profile", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--config", required=True, help="a GAN experiment config name")
    parser.add_argument("--conv", action="store_true", help="its DCGAN variant (conv_variant)")
    parser.add_argument("--steps", type=int, default=5, help="steps traced")
    parser.add_argument("--json", metavar="PATH")

    def body() -> int:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        if args.config not in experiments.experiment_names():
            raise experiments.UsageError(f"--config needs an experiment name, got {args.config!r}")
        if args.steps < 1:
            raise experiments.UsageError(f"--steps must be >= 1, got {args.steps}")
        result = measure(args.config, conv=args.conv, steps=args.steps)
        print(report(result))
        if args.json:
            pathlib.Path(args.json).write_text(
                json.dumps({"machine": run.machine_info(), **result}, indent=1)
            )
        return 0

    return experiments.run_main(body)


if __name__ == "__main__":
    sys.exit(main())
