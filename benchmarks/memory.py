"""Peak memory of one training run, in a process of its own.

    python -m benchmarks.memory --side {jax,torch} --config NAME [--steps N] [--smoke]

Trains ``experiments/configs/NAME.py``'s GAN for N steps on its real data
(``data.make_iterator``; JAX: the library's jitted step, torch: the same-math
reference of :mod:`benchmarks.torch_reference`) and prints one JSON line:
``peak_rss_bytes`` (``VmHWM``, see ``harness.peak_rss_bytes``: the whole process, interpreter and
libraries included), ``import_rss_bytes`` (RSS once every module is imported,
before any data or model), ``training_rss_bytes`` (their difference: what the
run itself added, comparable across frameworks), and ``device_peak_bytes`` on an accelerator
(``memory_stats()['peak_bytes_in_use']`` / ``torch.cuda.max_memory_allocated``).
A fresh process is needed because maxrss never goes down.
"""

import argparse
import json
import sys


def _jax_run(config, steps: int) -> dict:
    import jax  # pylint: disable=g-import-not-at-top

    from benchmarks import harness, jax_setups  # pylint: disable=g-import-not-at-top
    from regan_jax import data  # pylint: disable=g-import-not-at-top

    import_rss = harness.current_rss_bytes()
    setup = jax_setups.gan_setup(config, num_batches=1)
    iterator = data.make_iterator(config.data, config.seed)
    step = setup.jit()
    state = setup.init(config.seed)
    for _ in range(steps):
        state, _ = step(state, jax.device_put(next(iterator)))
    jax.block_until_ready(state)
    return {"import_rss_bytes": import_rss, "device_peak_bytes": harness.jax_device_peak_bytes()}


def _torch_run(config, steps: int) -> dict:
    import numpy as np  # pylint: disable=g-import-not-at-top
    import torch  # pylint: disable=g-import-not-at-top

    from benchmarks import harness, jax_setups  # pylint: disable=g-import-not-at-top
    from benchmarks import torch_reference as tr  # pylint: disable=g-import-not-at-top
    from regan_jax import data  # pylint: disable=g-import-not-at-top

    import_rss = harness.current_rss_bytes()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    shape = jax_setups.data_shape(config)
    g, d = tr.make_gan(config.model, shape)
    g, d = g.to(device), d.to(device)
    step = tr.same_math_step(
        g,
        d,
        tr.adam(g, config.optimizer.g),
        tr.adam(d, config.optimizer.d),
        config.model.latent_dim,
    )
    iterator = data.make_iterator(config.data, config.seed)
    for _ in range(steps):
        x = np.asarray(next(iterator)["image"])
        if x.ndim == 4:
            x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
        step(torch.from_numpy(x).to(device))
    harness.torch_sync()
    device_peak = torch.cuda.max_memory_allocated() if device == "cuda" else None
    return {"import_rss_bytes": import_rss, "device_peak_bytes": device_peak}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=("jax", "torch"), required=True)
    parser.add_argument("--config", required=True, help="experiments/configs/NAME.py stem")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--smoke", action="store_true", help="test-size model and batch")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    from benchmarks import harness, jax_setups  # pylint: disable=g-import-not-at-top

    fallback = {
        "digits_gan": "digits",
        "ring8_gan": "ring8",
        "fashion_mnist_gan": "fashion_mnist",
    }.get(args.config)
    config = jax_setups.experiment_config(args.config, fallback)
    if args.smoke:
        from regan_jax import config as config_lib  # pylint: disable=g-import-not-at-top

        config = config_lib.shrink_for_smoke(config)
    result = (_jax_run if args.side == "jax" else _torch_run)(config, args.steps)
    peak = harness.peak_rss_bytes()
    result.update(
        side=args.side,
        config=args.config,
        steps=args.steps,
        batch_size=config.data.batch_size,
        peak_rss_bytes=peak,
        training_rss_bytes=peak - result["import_rss_bytes"],
    )
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
