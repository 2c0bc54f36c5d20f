"""Steps/s of CPU-sized 28x28 GAN/VAE candidates beside the Fashion-MNIST DCGAN (issue #25 item 4).

Each candidate is ``fashion_mnist_gan`` (or ``fashion_mnist_gan_small``,
``fashion_mnist_vae_small``) with a few ``config.model`` / batch overrides; every step is the library's (``jax_setups.gan_setup``: the
family's step as training compiles it, on synthetic batches already on the
device), and all sides are timed in one process, alternating block by block
(:func:`benchmarks.harness.time_alternating`), so the ratios to the width-64
DCGAN hold on a loaded machine even where the absolute rates do not.

    python -m benchmarks.fashion_candidates
    python -m benchmarks.fashion_candidates --only dcgan64_b64,dcgan16_b64 --blocks 3
    python -m benchmarks.fashion_candidates --only fashion_mnist_gan_small --members 5

``--members K`` times instead one candidate's step vmapped over K seeds (one
program, as ``experiments.sweep --seeds`` runs a group; the batch shared, as
in ``benchmarks.suites``' sweeps) beside its single-run step.
"""

import argparse
import json
import sys

import experiments
from benchmarks import harness, jax_setups
from regan_jax import sweep

BASELINE = "dcgan64_b64"

# name -> (experiment config, its overrides of config.model / config.data.batch_size).
CANDIDATES = {
    BASELINE: ("fashion_mnist_gan", {}),
    "dcgan32_b64": ("fashion_mnist_gan", {"model.g_width": 32, "model.d_width": 32}),
    "dcgan24_b64": ("fashion_mnist_gan", {"model.g_width": 24, "model.d_width": 24}),
    "dcgan16_b64": ("fashion_mnist_gan", {"model.g_width": 16, "model.d_width": 16}),
    "dcgan32_b32": (
        "fashion_mnist_gan",
        {"model.g_width": 32, "model.d_width": 32, "data.batch_size": 32},
    ),
    "dcgan16_b32": (
        "fashion_mnist_gan",
        {"model.g_width": 16, "model.d_width": 16, "data.batch_size": 32},
    ),
    # The MLP GAN of width 256 (digits_gan's shape at 784 inputs), as committed.
    "fashion_mnist_gan_small": ("fashion_mnist_gan_small", {}),
    "mlp512_b64": (
        "fashion_mnist_gan_small",
        {"model.g_width": 512, "model.d_width": 512},
    ),
    # The MLP VAE of width 256 (digits_vae's shape at 784 inputs), as committed.
    "fashion_mnist_vae_small": ("fashion_mnist_vae_small", {}),
}


def candidate_config(name: str):
    """The experiment config of ``CANDIDATES[name]`` with its overrides, validated."""
    base, overrides = CANDIDATES[name]
    return experiments.load_config(base, [(key, str(value)) for key, value in overrides.items()])


def measure(names: list[str], steps_per_block: int, blocks: int) -> dict:
    """``{name: {steps_per_s, images_per_s, vs_baseline, ...}}``, all sides in one run."""
    sides, batch = {}, {}
    for name in names:
        setup = jax_setups.gan_setup(candidate_config(name))
        sides[name] = jax_setups.loop_side(setup.jit(), setup.init(0), setup.batches)
        batch[name] = setup.config.data.batch_size
    timings = harness.time_alternating(sides, steps_per_block=steps_per_block, blocks=blocks)
    out = {}
    for name, timing in timings.items():
        out[name] = {
            **timing.as_dict(),
            "images_per_s": batch[name] / timing.median_s,
            "vs_baseline": timings[BASELINE].median_s / timing.median_s
            if BASELINE in timings
            else None,
        }
    return out


def members(name: str, k: int, steps_per_block: int, blocks: int) -> dict:
    """One run's step beside ``k`` seeds' vmapped step of candidate ``name``, alternating.

    ``time_ratio``: the K-member step over one run's (K sequential runs: K);
    ``speedup``: K one-run steps over one K-member step.
    """
    setup = jax_setups.gan_setup(candidate_config(name))
    stacked = sweep.init_sweep(setup.init_from_key, list(range(k)))
    sides = {
        "one": jax_setups.loop_side(setup.jit(), setup.init(0), setup.batches),
        f"k{k}": jax_setups.loop_side(setup.jit_vmapped(), stacked, setup.batches),
    }
    timings = harness.time_alternating(sides, steps_per_block=steps_per_block, blocks=blocks)
    ratio = timings[f"k{k}"].median_s / timings["one"].median_s
    return {
        "members": k,
        "timings": {side: t.as_dict() for side, t in timings.items()},
        "time_ratio": ratio,
        "speedup": k / ratio,
        "member_steps_per_s": k / timings[f"k{k}"].median_s,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(CANDIDATES), help="comma-separated candidates")
    parser.add_argument("--steps", type=int, default=5, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=5, help="timed blocks per side")
    parser.add_argument("--members", type=int, default=0, help="K: vmapped K seeds vs one run")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    names = args.only.split(",")
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        print(f"unknown candidate(s) {unknown}; known: {list(CANDIDATES)}", file=sys.stderr)
        return 2
    if args.members:
        if len(names) != 1 or args.members < 2:
            print("--members K needs K >= 2 and exactly one candidate in --only", file=sys.stderr)
            return 2
        out = members(names[0], args.members, args.steps, args.blocks)
        one, group = (out["timings"][s]["steps_per_s"] for s in ("one", f"k{args.members}"))
        print(
            f"{names[0]}: one run {one:.2f} steps/s, K={args.members} {group:.2f} steps/s "
            f"({out['member_steps_per_s']:.2f} member-steps/s): K-step / one-step "
            f"{out['time_ratio']:.2f}, speed-up over {args.members} sequential {out['speedup']:.2f}x"
        )
    else:
        out = measure(names, args.steps, args.blocks)
        _print(out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


def _print(out: dict) -> None:
    for name, figures in out.items():
        ratio = figures["vs_baseline"]
        print(
            f"{name:>24}: {figures['steps_per_s']:7.2f} steps/s  "
            f"(fastest block {1 / figures['min_s']:7.2f})  "
            f"{figures['images_per_s']:8.0f} images/s  "
            + (f"{ratio:5.2f}x {BASELINE}" if ratio is not None else "")
        )


if __name__ == "__main__":
    sys.exit(main())
