"""A sweep group split member-wise over virtual CPU devices, against the group on one device.

    XLA_FLAGS=--xla_force_host_platform_device_count=N python -m benchmarks.devices \
        [--config ring8_gan] [--members 8] [--steps 20] [--blocks 5]

Times the vmapped step of K members of ``--config`` (seeds 0..K-1, D's L2
strength log-spaced, per-member batches) on one device
(``sweep.vmap_step``) and split over the N devices
(``parallel.members_step`` on a ``members=N`` mesh), alternating block by
block in this one process, and checks that both give the same states after a
few steps. Prints one JSON line. A subprocess of its own because the device
count is fixed when JAX starts (``benchmarks.suites.virtual_devices``).
"""

import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.devices")
    parser.add_argument("--config", default="ring8_gan")
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)

    import jax  # pylint: disable=g-import-not-at-top
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    import numpy as np  # pylint: disable=g-import-not-at-top

    from benchmarks import harness, jax_setups  # pylint: disable=g-import-not-at-top
    from regan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
    from regan_jax import parallel, sweep  # pylint: disable=g-import-not-at-top

    devices = jax.device_count()
    config = jax_setups.sweep_config(jax_setups.experiment_config(args.config))
    if args.smoke:
        config = config_lib.shrink_for_smoke(config)
    setup = jax_setups.gan_setup(config)
    states = jax_setups.sweep_states(setup, args.members)
    batches = [jax.tree.map(lambda x: jnp.stack([x] * args.members), b) for b in setup.batches]
    one = sweep.vmap_step(setup.step, shared_batch=False)
    split = parallel.members_step(
        setup.step, parallel.make_member_mesh(parallel.MeshShape(devices, 1))
    )
    sides = {
        "one_device": jax_setups.loop_side(one, jax.tree.map(jnp.copy, states), batches),
        "split": jax_setups.loop_side(split, jax.tree.map(jnp.copy, states), batches),
    }
    timings = harness.time_alternating(sides, steps_per_block=args.steps, blocks=args.blocks)

    def after(run, n=3):
        state = jax.tree.map(jnp.copy, states)
        for i in range(n):
            state, _ = run(state, batches[i % len(batches)])
        return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state.params))]

    a, b = after(one), after(split)
    print(
        json.dumps(
            {
                "config": args.config,
                "members": args.members,
                "devices": devices,
                "timings": {k: t.as_dict() for k, t in timings.items()},
                "one_device_member_steps_per_s": args.members / timings["one_device"].median_s,
                "split_member_steps_per_s": args.members / timings["split"].median_s,
                "split_vs_one_device": timings["one_device"].median_s / timings["split"].median_s,
                "bitwise_equal": all(np.array_equal(x, y) for x, y in zip(a, b)),
                "max_abs_difference": max(float(np.max(np.abs(x - y))) for x, y in zip(a, b)),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
