"""XLA compile options for the study's steps: compile time, step time, and whether bitwise.

    python -m benchmarks.compile_options [--configs digits_gan,ring8_gan] [--json PATH]
    python -m benchmarks.compile_options --configs fashion_mnist_gan --sets conv --steps 3

For each config, the single-run training step is compiled cold (a fresh
``jax.jit``, no persistent cache) under each option set of :data:`OPTION_SETS`
and timed against the others in one process (``harness.time_alternating``:
alternating blocks after warm-up, medians). Each variant then trains
``--check-steps`` steps from the same state as the library's program, and the
states are compared bit for bit: an option that changes the last bits of
every run would change the study's recorded runs (``tests/test_golden.py``)
and needs a reason to. Issue #25 item 3: options chosen by measurement.
"""

import argparse
import json
import pathlib
import sys

import jax
import numpy as np

import experiments
from benchmarks import harness, jax_setups, run
from regan_jax import xla

# name -> XLA:CPU compile options (None: the library's choice, ``regan_jax.xla.jit``).
# For MLP programs (the library compiles them as plain jax.jit).
OPTION_SETS = {
    "library": None,
    "llvm_O1": {"xla_backend_optimization_level": 1},
    "no_fusion_emitters": {"xla_cpu_use_fusion_emitters": False},
    "no_expensive_llvm_passes": {"xla_llvm_disable_expensive_passes": True},
    "ynnpack_off": {"xla_cpu_experimental_ynn_fusion_type": ""},
}
# For programs with a convolution: each on top of the library's conv option. oneDNN and
# XNNPACK are the libraries torch's CPU convolutions use; YNNPACK for convolutions too is
# what regan_jax.xla turned off.
_CONV = xla.CPU_OPTIONS
CONV_OPTION_SETS = {
    "library": None,
    "onednn": {**_CONV, "xla_cpu_use_onednn": True},
    "onednn_custom_call": {**_CONV, "xla_cpu_experimental_onednn_custom_call": True},
    "xnnpack": {**_CONV, "xla_cpu_use_xnnpack": True},
    "xnnpack_convolutions": {
        **_CONV,
        "xla_cpu_use_xnnpack": True,
        "xla_cpu_experimental_xnn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION",
    },
    "ynnpack_convolutions_too": {
        "xla_cpu_experimental_ynn_fusion_type": (
            f"{_CONV['xla_cpu_experimental_ynn_fusion_type']},"
            "LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION"
        )
    },
}
SETS = {"mlp": OPTION_SETS, "conv": CONV_OPTION_SETS}


def _jit(step, options):
    if options is None:
        return jax_setups.jit_variant(step, "library", donate_argnums=0)
    return jax.jit(step, compiler_options=options, donate_argnums=0)


def _arrays(state) -> list[np.ndarray]:
    """The state's numeric leaves (keys and float0 aside) as numpy arrays."""
    leaves = []
    for leaf in jax.tree.leaves(state):
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            continue
        if dtype == jax.dtypes.float0:
            continue
        leaves.append(np.asarray(leaf))
    return leaves


def _train(executable, setup, steps: int):
    """The state after ``steps`` steps of ``executable`` from seed 0's state."""
    state = setup.init(0)
    for i in range(steps):
        state, _ = executable(state, setup.batches[i % len(setup.batches)])
    return state


def measure(
    name: str, *, steps_per_block: int, blocks: int, check_steps: int, option_sets=OPTION_SETS
) -> dict:
    """One config's option sets: cold compile seconds, step time, bitwise equality."""
    setup = jax_setups.gan_setup(jax_setups.experiment_config(name))
    compiled = {
        label: harness.compile_seconds(_jit(setup.step, options), setup.init(0), setup.batches[0])
        for label, options in option_sets.items()
    }
    sides = {
        label: jax_setups.loop_side(c.executable, setup.init(0), setup.batches)
        for label, c in compiled.items()
    }
    timings = harness.time_alternating(sides, steps_per_block=steps_per_block, blocks=blocks)
    finals = {
        label: _arrays(_train(c.executable, setup, check_steps)) for label, c in compiled.items()
    }
    base = timings["library"].median_s
    out = {}
    for label, c in compiled.items():
        out[label] = {
            "options": option_sets[label],
            "compile_s": c.compile_s,
            "compile_cpu_s": c.cpu_s,
            "step_ms": timings[label].median_s * 1e3,
            "step_iqr_ms": [timings[label].q25_s * 1e3, timings[label].q75_s * 1e3],
            "speed_vs_library": base / timings[label].median_s,
            "bitwise_library": all(
                np.array_equal(a, b) for a, b in zip(finals[label], finals["library"])
            ),
        }
    return out


def table(results: dict) -> str:
    lines = [
        "| program | options | compile (s) | step (ms) | speed vs library | bitwise |",
        "|---|---|---|---|---|---|",
    ]
    for name, variants in results.items():
        for label, r in variants.items():
            lines.append(
                f"| {name} | {label} | {r['compile_s']:.2f} | {r['step_ms']:.3f} | "
                f"{r['speed_vs_library']:.2f}x | {'yes' if r['bitwise_library'] else 'no'} |"
            )
    return "\n".join(lines)


def _check(args, names) -> None:
    """Raises ``experiments.UsageError`` (exit 2, one line) on a bad argument."""
    unknown = [n for n in names if n not in experiments.experiment_names()]
    if not names or unknown:
        raise experiments.UsageError(f"--configs needs experiment names, got {unknown or '(none)'}")
    for flag, value in (
        ("--steps", args.steps),
        ("--blocks", args.blocks),
        ("--check-steps", args.check_steps),
    ):
        if value < 1:
            raise experiments.UsageError(f"{flag} must be >= 1, got {value}")
    if args.sets not in SETS:
        raise experiments.UsageError(f"--sets must be one of {sorted(SETS)}, got {args.sets!r}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compile_options", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--configs", default="digits_gan,ring8_gan")
    parser.add_argument(
        "--sets", default="mlp", help="option sets: mlp (OPTION_SETS) or conv (CONV_OPTION_SETS)"
    )
    parser.add_argument("--steps", type=int, default=100, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=7)
    parser.add_argument("--check-steps", type=int, default=20)
    parser.add_argument("--json", metavar="PATH")

    def body() -> int:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        names = [n for n in args.configs.split(",") if n]
        _check(args, names)
        results = {
            name: measure(
                name,
                steps_per_block=args.steps,
                blocks=args.blocks,
                check_steps=args.check_steps,
                option_sets=SETS[args.sets],
            )
            for name in names
        }
        print(table(results))
        if args.json:
            record = {"machine": run.machine_info(), "jax": jax.__version__, "results": results}
            pathlib.Path(args.json).write_text(json.dumps(record, indent=1))
        return 0

    return experiments.run_main(body)


if __name__ == "__main__":
    sys.exit(main())
