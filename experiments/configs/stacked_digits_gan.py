"""Unconditional GAN on ``stacked_digits``: three digits as RGB channels, 1,000 modes.

The Stacked-MNIST protocol on bundled data: each generated channel is scored
by the digits classifier; the summary reports modes covered (of 1,000) and
the KL of the mode histogram to uniform. Same networks as ``digits_gan``.

    python -m experiments.train --config experiments/configs/stacked_digits_gan.py --workdir runs/stacked_digits_gan
"""
from experiments.configs import digits_gan
from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = digits_gan.get_config()
    config.name = "stacked_digits_gan"
    config.data.name = "stacked_digits"
    config.eval.num_samples = 10_000  # ~10 samples per mode, as in the protocol
    return config_lib.with_options(config, arg)
